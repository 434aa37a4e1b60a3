"""From the outbox to deliveries: one delivery per (event, enabled endpoint that subscribed to it).

Events are taken oldest first, in batches; a batch's deliveries are created and its events marked
`dispatched_at` in one transaction, so an event is dispatched exactly once even if the process
dies half way (the whole batch is simply taken again). Endpoints are matched when the event is
dispatched: an endpoint created later does not receive older events (redeliver them if needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import OutboxEvent
from mpesa_bridge.core.webhooks.entity import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from mpesa_bridge.core.webhooks.ports import WebhookUnitOfWork


def new_delivery(
    event: OutboxEvent, endpoint: WebhookEndpoint, at: datetime, *, redelivery: bool = False
) -> WebhookDelivery:
    return WebhookDelivery(
        id=new_id("whd", at),
        event_id=event.id,
        endpoint_id=endpoint.id,
        subject_type=event.subject_type,
        subject_id=event.subject_id,
        status=DeliveryStatus.PENDING,
        created_at=at,
        next_attempt_at=at,
        redelivery=redelivery,
    )


def deliveries_for(event: OutboxEvent, endpoints: Sequence[WebhookEndpoint], at: datetime) -> list[WebhookDelivery]:
    return [
        new_delivery(event, endpoint, at)
        for endpoint in endpoints
        if endpoint.enabled and endpoint.deleted_at is None and endpoint.subscribes_to(event.type)
    ]


async def dispatch_events(uow: WebhookUnitOfWork, at: datetime, limit: int) -> tuple[int, int]:
    """Dispatch up to `limit` events in the caller's transaction: (events dispatched, deliveries made).

    Only one dispatcher works at a time (the repository's `lock_dispatch`): with two, the later
    event of a payment could get its delivery before the earlier one, and be sent first."""
    if not await uow.webhooks.lock_dispatch():
        return 0, 0
    events = await uow.webhooks.undispatched(limit)
    if not events:
        return 0, 0
    subscribed: dict[tuple[str, str], Sequence[WebhookEndpoint]] = {}
    deliveries: list[WebhookDelivery] = []
    for event in events:
        tenant = (event.project_id, event.mode)
        if tenant not in subscribed:
            subscribed[tenant] = await uow.webhooks.subscribed_endpoints(*tenant)
        deliveries += deliveries_for(event, subscribed[tenant], at)
    await uow.webhooks.add_deliveries(deliveries)
    await uow.webhooks.mark_dispatched([e.id for e in events], at)
    return len(events), len(deliveries)
