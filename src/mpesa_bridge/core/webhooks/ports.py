"""What the webhook use cases need from the world: storage (adapter: `storage.webhooks`) and an
HTTP sender (adapter: `workers.delivery`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from mpesa_bridge.core.payments.entity import OutboxEvent, Subject
from mpesa_bridge.core.projects import Tenant
from mpesa_bridge.core.webhooks.entity import ClaimedDelivery, WebhookAttempt, WebhookDelivery, WebhookEndpoint


@dataclass(frozen=True)
class EventFilter:
    type: str | None = None
    subject: Subject | None = None
    created_gte: datetime | None = None
    created_lte: datetime | None = None
    starting_after: str | None = None
    limit: int = 20


@dataclass(frozen=True)
class DeliveryFilter:
    """The dashboard's delivery log: newest first, keyset-paged by id.

    `state`: None (all), "undelivered" (not succeeded: pending, failed or cancelled) or "failing"
    (its last attempt failed: pending with attempts, or given up)."""

    endpoint_id: str | None = None
    state: str | None = None
    starting_after: str | None = None
    limit: int = 50


class WebhookRepository(Protocol):
    # --- endpoints (tenant-scoped reads never return deleted endpoints) ---------------------------
    async def add_endpoint(self, endpoint: WebhookEndpoint) -> None: ...

    async def endpoint(self, tenant: Tenant, endpoint_id: str, *, lock: bool = False) -> WebhookEndpoint | None: ...

    async def endpoints(self, tenant: Tenant) -> Sequence[WebhookEndpoint]: ...

    async def save_endpoint(self, endpoint: WebhookEndpoint) -> None: ...

    async def lock_endpoint(self, endpoint_id: str) -> WebhookEndpoint | None: ...

    async def subscribed_endpoints(self, project_id: str, mode: str) -> Sequence[WebhookEndpoint]: ...

    async def endpoint_succeeded(self, endpoint_id: str) -> None: ...

    async def endpoint_failed(self, endpoint_id: str, at: datetime) -> None: ...

    # --- dispatch -------------------------------------------------------------------------------
    async def lock_dispatch(self) -> bool: ...

    async def undispatched(self, limit: int) -> Sequence[OutboxEvent]: ...

    async def mark_dispatched(self, event_ids: Sequence[str], at: datetime) -> None: ...

    async def add_event(self, event: OutboxEvent) -> None: ...

    # --- deliveries -----------------------------------------------------------------------------
    async def add_deliveries(self, deliveries: Sequence[WebhookDelivery]) -> None: ...

    async def any_due(self, now: datetime) -> bool: ...

    async def claim_due(
        self, now: datetime, worker_id: str, lease_until: datetime, limit: int
    ) -> Sequence[ClaimedDelivery]: ...

    async def release(self, delivery: WebhookDelivery, worker_id: str) -> bool: ...

    async def add_attempt(self, attempt: WebhookAttempt) -> None: ...

    async def add_attempts(self, attempts: Sequence[WebhookAttempt]) -> None:
        """Several attempts in one statement."""
        ...

    async def cancel_pending(self, endpoint_id: str, at: datetime) -> int: ...

    # --- events ---------------------------------------------------------------------------------
    async def event(self, tenant: Tenant, event_id: str, *, lock: bool = False) -> OutboxEvent | None: ...

    async def events(self, tenant: Tenant, query: EventFilter) -> Sequence[OutboxEvent]: ...

    async def deliveries_of(self, event_id: str) -> Sequence[WebhookDelivery]: ...

    async def pending_redeliveries(self, event_id: str) -> Sequence[WebhookDelivery]: ...

    async def attempts_of(self, delivery_ids: Sequence[str]) -> Sequence[WebhookAttempt]: ...

    async def prune_events(self, before: datetime, limit: int) -> int: ...

    # --- the delivery log and resending (dashboard) ---------------------------------------------
    async def deliveries(self, tenant: Tenant, query: DeliveryFilter) -> Sequence[WebhookDelivery]:
        """Up to `query.limit + 1` deliveries of the tenant's endpoints, newest first."""
        ...

    async def delivery(self, tenant: Tenant, delivery_id: str) -> WebhookDelivery | None: ...

    async def retry_now(self, delivery_ids: Sequence[str], at: datetime) -> int:
        """Bring pending deliveries' next attempt forward to `at`; how many were pending."""
        ...

    async def failed_since(self, tenant: Tenant, since: datetime, limit: int) -> Sequence[WebhookDelivery]:
        """Deliveries of the tenant's enabled endpoints that failed (gave up or were cancelled) at or
        after `since` and have no later delivery of the same event to the same endpoint, oldest
        first: what "resend everything that failed" still has to resend."""
        ...

    async def failing_pending(self, tenant: Tenant, since: datetime, limit: int) -> Sequence[str]:
        """Ids of pending deliveries whose last attempt, at or after `since`, failed."""
        ...

    async def endpoints_to_alert(self, failing_before: datetime, limit: int) -> Sequence[WebhookEndpoint]:
        """Enabled endpoints of every tenant failing since `failing_before` or earlier whose current
        streak has not been reported yet."""
        ...

    async def mark_alerted(self, endpoint_id: str, failing_before: datetime, at: datetime) -> bool:
        """Record that the current streak was reported, if it still qualifies and was not already:
        True for exactly one caller per streak."""
        ...


class WebhookUnitOfWork(Protocol):
    """One transaction. Leaving the block without error commits (writers); an error rolls back."""

    @property
    def webhooks(self) -> WebhookRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class WebhookUnitOfWorkFactory(Protocol):
    def write(self) -> WebhookUnitOfWork: ...

    def read(self) -> WebhookUnitOfWork: ...


@dataclass(frozen=True)
class SendResult:
    """What one POST gave: a status (any) or an error (no usable answer), and how long it took."""

    latency_ms: int
    status_code: int | None = None
    body: str | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


class Sender(Protocol):
    async def post(self, url: str, mode: str, headers: dict[str, str], body: bytes) -> SendResult:
        """POST `body` to `url` under the address rule of `mode`; never raises for network trouble."""
        ...
