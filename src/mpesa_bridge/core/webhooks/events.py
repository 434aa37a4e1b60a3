"""The events API: a tenant's events newest first, one event with where it went, redelivery.

At most one redelivery per event and endpoint is pending: asking again while one is pending
answers with that one and queues nothing, so repeated calls cannot pile up POSTs to a receiver.
The decision is made with the event's row locked (PostgreSQL; SQLite has one writer), so
concurrent calls agree on one delivery.

Events are kept `retention` (30 days by default, `MPESA_BRIDGE_EVENT_RETENTION_DAYS`); the
delivery worker prunes older ones with their deliveries and attempts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.errors import NotFound
from mpesa_bridge.core.payments.entity import OutboxEvent
from mpesa_bridge.core.projects import Tenant
from mpesa_bridge.core.webhooks.dispatch import new_delivery
from mpesa_bridge.core.webhooks.entity import WebhookAttempt, WebhookDelivery
from mpesa_bridge.core.webhooks.errors import EndpointDisabled
from mpesa_bridge.core.webhooks.ports import EventFilter, WebhookUnitOfWorkFactory


@dataclass(frozen=True)
class EventDetail:
    event: OutboxEvent
    deliveries: list[tuple[WebhookDelivery, list[WebhookAttempt]]]


@dataclass(frozen=True)
class Redelivery:
    """The pending redelivery of each endpoint asked for; `queued` of them were created by this call."""

    deliveries: list[WebhookDelivery]
    queued: int


class EventService:
    def __init__(self, db: WebhookUnitOfWorkFactory, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def list(self, tenant: Tenant, query: EventFilter) -> Sequence[OutboxEvent]:
        """Up to `query.limit + 1` events, newest first (one more than asked tells `has_more`)."""
        async with self._db.read() as uow:
            return await uow.webhooks.events(tenant, query)

    async def get(self, tenant: Tenant, event_id: str) -> EventDetail:
        async with self._db.read() as uow:
            event = await uow.webhooks.event(tenant, event_id)
            if event is None:
                raise _not_found(event_id)
            deliveries = await uow.webhooks.deliveries_of(event.id)
            attempts = await uow.webhooks.attempts_of([d.id for d in deliveries])
        by_delivery: dict[str, list[WebhookAttempt]] = {d.id: [] for d in deliveries}
        for attempt in attempts:
            by_delivery[attempt.delivery_id].append(attempt)
        return EventDetail(event, [(d, by_delivery[d.id]) for d in deliveries])

    async def redeliver(self, tenant: Tenant, event_id: str, endpoint_id: str | None = None) -> Redelivery:
        """Send the event again: to one endpoint of the tenant (any of its enabled ones, subscribed or
        not), or to every enabled endpoint subscribed to its type. Same `webhook-id` as before. An
        endpoint that already has a pending redelivery of this event gets no second one."""
        now = self._clock.now()
        async with self._db.write() as uow:
            event = await uow.webhooks.event(tenant, event_id, lock=True)
            if event is None:
                raise _not_found(event_id)
            if endpoint_id is not None:
                endpoint = await uow.webhooks.endpoint(tenant, endpoint_id)
                if endpoint is None:
                    raise NotFound(f"No such webhook endpoint: '{endpoint_id}'", param="endpoint_id")
                if not endpoint.enabled:
                    raise EndpointDisabled(f"webhook endpoint '{endpoint_id}' is disabled; enable it first")
                targets = [endpoint]
            else:
                subscribed = await uow.webhooks.subscribed_endpoints(tenant.project_id, tenant.mode.value)
                targets = [e for e in subscribed if e.subscribes_to(event.type)]
            pending = {d.endpoint_id: d for d in await uow.webhooks.pending_redeliveries(event.id)}
            queued = [new_delivery(event, e, now, redelivery=True) for e in targets if e.id not in pending]
            await uow.webhooks.add_deliveries(queued)
        pending.update((d.endpoint_id, d) for d in queued)
        return Redelivery([pending[e.id] for e in targets], queued=len(queued))


def _not_found(event_id: str) -> NotFound:
    return NotFound(f"No such event: '{event_id}'", param="id")
