"""A payment's history, as the dashboard's detail page shows it: the payment, every evidence row
with its verdict, every callback as it arrived, and every outbox event — read in one transaction,
scoped to the tenant (another project's id is not found)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mpesa_bridge.core.errors import NotFound
from mpesa_bridge.core.payments.entity import InboundCallback, OutboxEvent, Payment, PaymentEvidence
from mpesa_bridge.core.ports import UnitOfWorkFactory
from mpesa_bridge.core.projects import Tenant


@dataclass(frozen=True)
class PaymentHistory:
    payment: Payment
    evidence: Sequence[PaymentEvidence]
    callbacks: Sequence[InboundCallback]
    events: Sequence[OutboxEvent]


async def payment_history(db: UnitOfWorkFactory, tenant: Tenant, payment_id: str) -> PaymentHistory:
    async with db.read() as uow:
        payment = await uow.payments.get(tenant, payment_id)
        if payment is None:
            raise NotFound(f"No such payment: '{payment_id}'", param="id")
        evidence = await uow.evidence.for_payment(payment.id)
        callbacks = await uow.callbacks.for_payment(payment.id)
        events = await uow.events.for_payment(payment.id)
    return PaymentHistory(payment, evidence, callbacks, events)
