"""Maps the core's dataclasses onto the tables (imperative mapping: the core never sees SQLAlchemy)."""

from __future__ import annotations

from sqlalchemy.orm import registry

from mpesa_bridge.core.payments.entity import InboundCallback, OutboxEvent, Payment, PaymentEvidence
from mpesa_bridge.core.projects import ApiKey, DarajaConfig, Project
from mpesa_bridge.storage import tables

mapper_registry = registry(metadata=tables.metadata)
_mapped = False


def map_entities() -> None:
    global _mapped
    if _mapped:
        return
    mapper_registry.map_imperatively(Project, tables.projects)
    mapper_registry.map_imperatively(DarajaConfig, tables.daraja_configs)
    mapper_registry.map_imperatively(ApiKey, tables.api_keys)
    mapper_registry.map_imperatively(Payment, tables.payments)
    mapper_registry.map_imperatively(PaymentEvidence, tables.payment_evidence)
    mapper_registry.map_imperatively(InboundCallback, tables.inbound_callbacks)
    mapper_registry.map_imperatively(OutboxEvent, tables.outbox_events)
    _mapped = True
