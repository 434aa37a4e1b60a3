"""Webhook endpoints, deliveries and attempts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from mpesa_bridge.core.balances.entity import BalanceQueryEventType
from mpesa_bridge.core.c2b.entity import C2BEventType
from mpesa_bridge.core.checkout.entity import CheckoutEventType
from mpesa_bridge.core.payments.entity import EventType, OutboxEvent
from mpesa_bridge.core.payouts.entity import PayoutEvent
from mpesa_bridge.core.reversals.entity import ReversalEventType
from mpesa_bridge.core.status_queries.entity import StatusQueryEvent

ENDPOINT_DISABLED = "endpoint.disabled"
# What `enabled_events` may name; "*" alone means every type, present and future.
EVENT_TYPES: tuple[str, ...] = (*EventType.ALL, *CheckoutEventType.ALL, ENDPOINT_DISABLED)
EVENT_TYPES = (*EVENT_TYPES, *C2BEventType.ALL)  # C2B payments (docs/c2b.md)
EVENT_TYPES += (*ReversalEventType.ALL, *BalanceQueryEventType.ALL)  # core.reversals, core.balances
EVENT_TYPES += (*PayoutEvent.ALL, *StatusQueryEvent.ALL)  # core/payouts, core/status_queries
ALL_EVENTS = "*"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (or for an earlier one of its payment)
    SUCCEEDED = "succeeded"  # a 2xx answer
    FAILED = "failed"  # the retry window ended without a 2xx
    CANCELLED = "cancelled"  # its endpoint was disabled or deleted first


@dataclass(eq=False)
class WebhookEndpoint:
    """A URL of one project and mode that receives the events it subscribed to, signed."""

    id: str
    project_id: str
    mode: str
    url: str
    enabled_events: list[str]
    description: str | None
    enabled: bool
    secret_sealed: str = field(repr=False)
    created_at: datetime
    updated_at: datetime
    # After a rotation the old secret keeps signing (beside the new one) until this time.
    previous_secret_sealed: str | None = field(default=None, repr=False)
    previous_secret_expires_at: datetime | None = None
    failing_since: datetime | None = None  # first failed attempt since the last success
    disabled_reason: str | None = None  # "failing" when the bridge disabled it, None when a person did
    disabled_at: datetime | None = None
    deleted_at: datetime | None = None
    # When the owners were told of the current failure streak (`core.webhooks.alerts`): a streak
    # whose `failing_since` is later than this has not been told yet.
    failing_notified_at: datetime | None = None

    def subscribes_to(self, event_type: str) -> bool:
        return ALL_EVENTS in self.enabled_events or event_type in self.enabled_events


@dataclass(eq=False)
class WebhookDelivery:
    """One event to one endpoint: attempted until a 2xx, the end of the retry window, or cancellation."""

    id: str
    event_id: str
    endpoint_id: str
    # Copied from the event: the deliveries of one subject to one endpoint go out in order.
    subject_type: str | None
    subject_id: str | None
    status: DeliveryStatus
    created_at: datetime
    next_attempt_at: datetime | None
    attempts: int = 0
    first_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    completed_at: datetime | None = None
    redelivery: bool = False
    claimed_by: str | None = None
    lease_until: datetime | None = None


@dataclass(eq=False)
class WebhookAttempt:
    """One POST to an endpoint and what came back (or why nothing did)."""

    id: str
    delivery_id: str
    attempted_at: datetime
    succeeded: bool
    latency_ms: int
    status_code: int | None = None
    response_body: str | None = None  # the first RESPONSE_BODY_LIMIT bytes, decoded leniently
    error: str | None = None


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery a worker holds under a lease, with what it needs to send it."""

    delivery: WebhookDelivery
    endpoint: WebhookEndpoint
    event: OutboxEvent


RESPONSE_BODY_LIMIT = 1024
