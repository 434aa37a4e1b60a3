"""Resending from the dashboard: one delivery, or everything that failed since a time.

Built on the existing redelivery (a new delivery of the same event, same `webhook-id`, marked
`redelivery`). Both are idempotent:

- A delivery still pending (its retries not over) is not doubled: its next attempt is brought
  forward to now ("retry now"); pressing again changes nothing more.
- A delivery that gave up or was cancelled gets one redelivery. It is then *superseded* (a later
  delivery of its event to its endpoint exists), and "resend everything that failed since" skips
  superseded deliveries — so pressing it twice queues one new delivery per failed one, not two.
  The decision is taken with the tenant's endpoints locked (PostgreSQL; SQLite has one writer), so
  two presses at the same moment agree as well.

A press handles at most `limit` failed deliveries (oldest first) and says how many it left: press
again for the next ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.errors import NotFound
from mpesa_bridge.core.payments.entity import OutboxEvent
from mpesa_bridge.core.projects import Tenant
from mpesa_bridge.core.webhooks.dispatch import new_delivery
from mpesa_bridge.core.webhooks.entity import DeliveryStatus, WebhookDelivery
from mpesa_bridge.core.webhooks.errors import EndpointDisabled
from mpesa_bridge.core.webhooks.ports import WebhookUnitOfWorkFactory

RESEND_LIMIT = 500  # failed deliveries one press resends, at most


@dataclass(frozen=True)
class ResendReport:
    queued: int  # new deliveries (redeliveries of deliveries that gave up or were cancelled)
    retried_now: int  # pending deliveries whose next attempt was brought forward
    more: bool  # more failed deliveries are left: press again

    @property
    def total(self) -> int:
        return self.queued + self.retried_now


class ResendService:
    def __init__(self, db: WebhookUnitOfWorkFactory, clock: Clock, *, limit: int = RESEND_LIMIT) -> None:
        self._db = db
        self._clock = clock
        self._limit = limit

    async def resend_one(self, tenant: Tenant, delivery_id: str) -> ResendReport:
        """Send one delivery again: now if it is still pending, else as a new delivery (unless one
        is already pending for its event and endpoint)."""
        now = self._clock.now()
        async with self._db.write() as uow:
            delivery = await uow.webhooks.delivery(tenant, delivery_id)
            if delivery is None:
                raise NotFound(f"No such webhook delivery: '{delivery_id}'", param="id")
            if delivery.status is DeliveryStatus.PENDING:
                return ResendReport(0, await uow.webhooks.retry_now([delivery.id], now), more=False)
            endpoint = await uow.webhooks.endpoint(tenant, delivery.endpoint_id, lock=True)
            if endpoint is None or not endpoint.enabled:
                raise EndpointDisabled("This delivery's endpoint is disabled; enable it first.")
            event = await uow.webhooks.event(tenant, delivery.event_id, lock=True)
            if event is None:
                raise NotFound(f"The event of delivery '{delivery_id}' is no longer kept.", param="id")
            pending = await uow.webhooks.pending_redeliveries(event.id)
            if any(p.endpoint_id == endpoint.id for p in pending):
                return ResendReport(0, 0, more=False)
            await uow.webhooks.add_deliveries([new_delivery(event, endpoint, now, redelivery=True)])
        return ResendReport(1, 0, more=False)

    async def resend_failed_since(self, tenant: Tenant, since: datetime) -> ResendReport:
        """Every delivery of the tenant that failed at or after `since`, sent again (see the module)."""
        now = self._clock.now()
        async with self._db.write() as uow:
            # Lock the tenant's endpoints (in id order): concurrent presses take turns.
            for listed in await uow.webhooks.endpoints(tenant):
                await uow.webhooks.endpoint(tenant, listed.id, lock=True)
            failed = await uow.webhooks.failed_since(tenant, since, self._limit + 1)
            more = len(failed) > self._limit
            failed = failed[: self._limit]
            queued: list[WebhookDelivery] = []
            events: dict[str, OutboxEvent | None] = {}
            for delivery in failed:
                if delivery.event_id not in events:
                    events[delivery.event_id] = await uow.webhooks.event(tenant, delivery.event_id)
            endpoints = {e.id: e for e in await uow.webhooks.endpoints(tenant)}
            for delivery in failed:
                event, endpoint = events[delivery.event_id], endpoints.get(delivery.endpoint_id)
                if event is not None and endpoint is not None:
                    queued.append(new_delivery(event, endpoint, now, redelivery=True))
            await uow.webhooks.add_deliveries(queued)
            pending = await uow.webhooks.failing_pending(tenant, since, self._limit)
            retried = await uow.webhooks.retry_now(pending, now)
        return ResendReport(len(queued), retried, more=more)
