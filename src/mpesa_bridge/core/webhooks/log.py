"""The delivery log the dashboard shows: a tenant's deliveries, newest first, each with its event's
type and every attempt (status, answer code, the kept excerpt of the answer, duration, time)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from mpesa_bridge.core.projects import Tenant
from mpesa_bridge.core.webhooks.entity import WebhookAttempt, WebhookDelivery
from mpesa_bridge.core.webhooks.ports import DeliveryFilter, WebhookUnitOfWorkFactory

MAX_PAGE = 100


@dataclass(frozen=True)
class LoggedDelivery:
    delivery: WebhookDelivery
    event_type: str
    attempts: list[WebhookAttempt]


@dataclass(frozen=True)
class DeliveryPage:
    rows: list[LoggedDelivery]
    next_after: str | None  # the `starting_after` of the next page; None on the last


async def delivery_log(db: WebhookUnitOfWorkFactory, tenant: Tenant, query: DeliveryFilter) -> DeliveryPage:
    limit = max(1, min(query.limit, MAX_PAGE))
    async with db.read() as uow:
        found = list(await uow.webhooks.deliveries(tenant, replace(query, limit=limit)))
        more = len(found) > limit
        found = found[:limit]
        attempts = await uow.webhooks.attempts_of([d.id for d in found])
        types: dict[str, str] = {}
        for delivery in found:
            if delivery.event_id not in types:
                event = await uow.webhooks.event(tenant, delivery.event_id)
                types[delivery.event_id] = event.type if event is not None else "?"
    by_delivery: dict[str, list[WebhookAttempt]] = {d.id: [] for d in found}
    for attempt in attempts:
        by_delivery[attempt.delivery_id].append(attempt)
    rows = [LoggedDelivery(d, types[d.event_id], by_delivery[d.id]) for d in found]
    return DeliveryPage(rows, found[-1].id if more and found else None)
