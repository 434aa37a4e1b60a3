"""All SQL of webhooks: endpoints, dispatch, claims under a lease, attempts, the events API, pruning.

`WebhookStorage` hands out units of work over `Database` (the same engines and transactions as
every other write: one writer on SQLite, row locks on PostgreSQL) with a `webhooks` repository.

Claims (`claim_due`) on PostgreSQL select due rows `FOR UPDATE SKIP LOCKED`, so concurrent workers
take disjoint batches without waiting, and stamp `claimed_by` / `lease_until` before the commit;
on SQLite the claim's `BEGIN IMMEDIATE` transaction already excludes every other writer. A due
delivery is skipped while an earlier delivery (by event id) of the same endpoint and payment is
still pending, which keeps each payment's events in order per endpoint. The dispatcher is made
single with a transaction-scoped advisory lock on PostgreSQL (`lock_dispatch`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mpesa_bridge.core.payments.entity import OutboxEvent
from mpesa_bridge.core.projects import Tenant
from mpesa_bridge.core.webhooks.entity import (
    ClaimedDelivery,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from mpesa_bridge.core.webhooks.ports import DeliveryFilter, EventFilter
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.db import Database, SqlReadUnitOfWork, SqlUnitOfWork
from mpesa_bridge.storage.events import EVENTS, SqlEventRepository, build_events

_endpoints = tables.webhook_endpoints
_deliveries = tables.webhook_deliveries
_attempts = tables.webhook_attempts
_events = tables.outbox_events
_PENDING = DeliveryStatus.PENDING.value
_DISPATCH_LOCK = int.from_bytes(hashlib.sha256(b"mpesa_bridge.webhooks.dispatch").digest()[:8], "big", signed=True)
# Columns an endpoint's owner or the worker may change after creation.
_ENDPOINT_MUTABLE = (
    "url",
    "enabled_events",
    "description",
    "enabled",
    "secret_sealed",
    "previous_secret_sealed",
    "previous_secret_expires_at",
    "failing_since",
    "disabled_reason",
    "disabled_at",
    "deleted_at",
    "updated_at",
)


# The delivery worker's statements, built once with bound parameters (`make bench`, B4).
_ec, _dc = _endpoints.c, _deliveries.c
_ENDPOINT_SUCCEEDED = (
    # Conditional, so that a healthy endpoint's row is not rewritten (nor locked) on every success.
    sa.update(_endpoints)
    .where(_ec.id == sa.bindparam("endpoint_id"), _ec.failing_since.is_not(None))
    .values(failing_since=None)
)
_ENDPOINT_FAILED = (
    sa.update(_endpoints)
    .where(_ec.id == sa.bindparam("endpoint_id"), _ec.failing_since.is_(None))
    .values(failing_since=sa.bindparam("at", type_=_ec.failing_since.type))
)
# Only while still ours: a lease that ran out may have passed the delivery to another worker, and
# an endpoint switched off meanwhile has cancelled it.
_RELEASE = sa.update(_deliveries).where(
    _dc.id == sa.bindparam("delivery_id"), _dc.claimed_by == sa.bindparam("worker_id"), _dc.status == _PENDING
)
_DUE = (
    _dc.status == _PENDING,
    _dc.next_attempt_at <= sa.bindparam("now", type_=_dc.next_attempt_at.type),
    sa.or_(_dc.lease_until.is_(None), _dc.lease_until <= sa.bindparam("now", type_=_dc.lease_until.type)),
)
_ANY_DUE = sa.select(_dc.id).where(*_DUE).limit(1)
_INSERT_ATTEMPT = sa.insert(_attempts)
_earlier = _deliveries.alias("earlier")
_WAITS_FOR_EARLIER = sa.exists().where(
    _earlier.c.endpoint_id == _dc.endpoint_id,
    _earlier.c.subject_type == _dc.subject_type,  # NULL (about no subject) never waits
    _earlier.c.subject_id == _dc.subject_id,
    _earlier.c.status == _PENDING,
    sa.or_(
        _earlier.c.event_id < _dc.event_id,
        sa.and_(_earlier.c.event_id == _dc.event_id, _earlier.c.id < _dc.id),
    ),
)
# Due deliveries of enabled endpoints whose (endpoint, subject) has no earlier one pending, in the
# order of ix_webhook_deliveries_status_next (status, next_attempt_at, id; migration 0009).
_CLAIM = (
    sa.select(_dc.id)
    .join(_endpoints, _ec.id == _dc.endpoint_id)
    .where(*_DUE, _ec.enabled.is_(True), ~_WAITS_FOR_EARLIER)
    .order_by(_dc.next_attempt_at, _dc.id)
    .limit(sa.bindparam("limit", type_=sa.Integer()))
)
_CLAIM_LOCKED = _CLAIM.with_for_update(skip_locked=True, of=_deliveries)
_TAKE = (
    sa.update(_deliveries)
    .where(_dc.id.in_(sa.bindparam("ids", expanding=True)))
    .values(claimed_by=sa.bindparam("worker_id"), lease_until=sa.bindparam("lease", type_=_dc.lease_until.type))
)
_DELIVERIES_BY_ID = sa.select(_deliveries).where(_dc.id.in_(sa.bindparam("ids", expanding=True)))
_ENDPOINTS_BY_ID = sa.select(_endpoints).where(_ec.id.in_(sa.bindparam("ids", expanding=True)))
_EVENTS_BY_ID = EVENTS.select().where(_events.c.id.in_(sa.bindparam("ids", expanding=True)))


def _row(obj: Any) -> dict[str, Any]:
    values = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if "status" in values:
        values["status"] = str(values["status"])
    return values


def _endpoint(row: sa.RowMapping) -> WebhookEndpoint:
    return WebhookEndpoint(**{**row, "enabled_events": list(row["enabled_events"])})


def _delivery(row: sa.RowMapping) -> WebhookDelivery:
    return WebhookDelivery(**{**row, "status": DeliveryStatus(row["status"])})


class SqlWebhookRepository:
    def __init__(
        self, conn: AsyncConnection, *, postgres: bool, lock: bool, events: SqlEventRepository | None = None
    ) -> None:
        self._s = conn
        self._events = events
        self._postgres = postgres
        self._lock = lock  # row locks (FOR UPDATE) in write units on PostgreSQL

    # --- endpoints ------------------------------------------------------------------------------

    async def add_endpoint(self, endpoint: WebhookEndpoint) -> None:
        await self._s.execute(sa.insert(_endpoints).values(_row(endpoint)))

    async def endpoint(self, tenant: Tenant, endpoint_id: str, *, lock: bool = False) -> WebhookEndpoint | None:
        stmt = sa.select(_endpoints).where(
            _endpoints.c.id == endpoint_id,
            _endpoints.c.project_id == tenant.project_id,
            _endpoints.c.mode == tenant.mode.value,
            _endpoints.c.deleted_at.is_(None),
        )
        return await self._one_endpoint(stmt, lock=lock)

    async def endpoints(self, tenant: Tenant) -> Sequence[WebhookEndpoint]:
        c = _endpoints.c
        stmt = sa.select(_endpoints).where(
            c.project_id == tenant.project_id, c.mode == tenant.mode.value, c.deleted_at.is_(None)
        )
        rows = (await self._s.execute(stmt.order_by(c.id))).mappings().all()
        return [_endpoint(r) for r in rows]

    async def save_endpoint(self, endpoint: WebhookEndpoint) -> None:
        values = {name: getattr(endpoint, name) for name in _ENDPOINT_MUTABLE}
        await self._s.execute(sa.update(_endpoints).where(_endpoints.c.id == endpoint.id).values(values))

    async def lock_endpoint(self, endpoint_id: str) -> WebhookEndpoint | None:
        return await self._one_endpoint(sa.select(_endpoints).where(_endpoints.c.id == endpoint_id), lock=True)

    async def subscribed_endpoints(self, project_id: str, mode: str) -> Sequence[WebhookEndpoint]:
        c = _endpoints.c
        stmt = sa.select(_endpoints).where(
            c.project_id == project_id, c.mode == mode, c.enabled.is_(True), c.deleted_at.is_(None)
        )
        rows = (await self._s.execute(stmt.order_by(c.id))).mappings().all()
        return [_endpoint(r) for r in rows]

    async def endpoint_succeeded(self, endpoint_id: str) -> None:
        await self._s.execute(_ENDPOINT_SUCCEEDED, {"endpoint_id": endpoint_id})

    async def endpoint_failed(self, endpoint_id: str, at: datetime) -> None:
        await self._s.execute(_ENDPOINT_FAILED, {"endpoint_id": endpoint_id, "at": at})

    async def _one_endpoint(self, stmt: sa.Select[Any], *, lock: bool) -> WebhookEndpoint | None:
        if lock and self._lock:
            # FOR NO KEY UPDATE: deliveries being inserted for this endpoint (their foreign key takes
            # KEY SHARE) need not wait for it.
            stmt = stmt.with_for_update(key_share=True)
        row = (await self._s.execute(stmt)).mappings().first()
        return _endpoint(row) if row is not None else None

    # --- dispatch -------------------------------------------------------------------------------

    async def lock_dispatch(self) -> bool:
        if not self._postgres:
            return True  # SQLite: this write transaction already excludes every other writer
        result = await self._s.execute(sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _DISPATCH_LOCK})
        return bool(result.scalar())

    async def undispatched(self, limit: int) -> Sequence[OutboxEvent]:
        stmt = EVENTS.select().where(_events.c.dispatched_at.is_(None)).order_by(_events.c.id).limit(limit)
        return build_events(await self._s.execute(stmt))

    async def mark_dispatched(self, event_ids: Sequence[str], at: datetime) -> None:
        if event_ids:
            stmt = sa.update(_events).where(_events.c.id.in_(list(event_ids))).values(dispatched_at=at)
            await self._s.execute(stmt)

    async def add_event(self, event: OutboxEvent) -> None:
        """Written at once (its deliveries reference it), announced with the commit."""
        if self._events is None:
            raise RuntimeError("events are written in a write unit of work")
        await self._events.add_now(event)

    # --- deliveries -----------------------------------------------------------------------------

    async def add_deliveries(self, deliveries: Sequence[WebhookDelivery]) -> None:
        if deliveries:
            await self._s.execute(sa.insert(_deliveries), [_row(d) for d in deliveries])

    async def any_due(self, now: datetime) -> bool:
        return (await self._s.execute(_ANY_DUE, {"now": now})).first() is not None

    async def claim_due(
        self, now: datetime, worker_id: str, lease_until: datetime, limit: int
    ) -> Sequence[ClaimedDelivery]:
        stmt = _CLAIM_LOCKED if self._lock else _CLAIM
        ids = list((await self._s.execute(stmt, {"now": now, "limit": limit})).scalars().all())
        if not ids:
            return []
        await self._s.execute(_TAKE, {"ids": ids, "worker_id": worker_id, "lease": lease_until})
        return await self._claimed(ids)

    async def _claimed(self, ids: list[str]) -> list[ClaimedDelivery]:
        rows = (await self._s.execute(_DELIVERIES_BY_ID, {"ids": ids})).mappings().all()
        deliveries = {r["id"]: _delivery(r) for r in rows}
        endpoint_ids = list({d.endpoint_id for d in deliveries.values()})
        event_ids = list({d.event_id for d in deliveries.values()})
        endpoint_rows = (await self._s.execute(_ENDPOINTS_BY_ID, {"ids": endpoint_ids})).mappings()
        endpoints = {r["id"]: _endpoint(r) for r in endpoint_rows.all()}
        events = build_events(await self._s.execute(_EVENTS_BY_ID, {"ids": event_ids}))
        by_id = {event.id: event for event in events}
        return [
            ClaimedDelivery(deliveries[i], endpoints[deliveries[i].endpoint_id], by_id[deliveries[i].event_id])
            for i in ids
        ]

    async def release(self, delivery: WebhookDelivery, worker_id: str) -> bool:
        values = {
            "delivery_id": delivery.id,
            "worker_id": worker_id,
            "status": str(delivery.status),
            "attempts": delivery.attempts,
            "first_attempt_at": delivery.first_attempt_at,
            "last_attempt_at": delivery.last_attempt_at,
            "next_attempt_at": delivery.next_attempt_at,
            "completed_at": delivery.completed_at,
            "claimed_by": None,
            "lease_until": None,
        }
        result = await self._s.execute(_RELEASE, values)
        return bool(getattr(result, "rowcount", 0) == 1)

    async def add_attempt(self, attempt: WebhookAttempt) -> None:
        await self.add_attempts([attempt])

    async def add_attempts(self, attempts: Sequence[WebhookAttempt]) -> None:
        """One INSERT for all of them."""
        rows = [_row(attempt) for attempt in attempts]
        if rows:
            await self._s.execute(_INSERT_ATTEMPT, rows if len(rows) > 1 else rows[0])

    async def cancel_pending(self, endpoint_id: str, at: datetime) -> int:
        d = _deliveries.c
        stmt = (
            sa.update(_deliveries)
            .where(d.endpoint_id == endpoint_id, d.status == _PENDING)
            .values(status=DeliveryStatus.CANCELLED.value, completed_at=at, next_attempt_at=None)
        )
        result = await self._s.execute(stmt)
        return int(getattr(result, "rowcount", 0) or 0)

    # --- events ---------------------------------------------------------------------------------

    async def event(self, tenant: Tenant, event_id: str, *, lock: bool = False) -> OutboxEvent | None:
        c = _events.c
        stmt = EVENTS.select().where(c.id == event_id, c.project_id == tenant.project_id, c.mode == tenant.mode.value)
        if lock and self._lock:
            # FOR NO KEY UPDATE: serialises redelivery decisions about this event; deliveries being
            # inserted for it (their foreign key takes KEY SHARE) need not wait.
            stmt = stmt.with_for_update(key_share=True)
        found = build_events(await self._s.execute(stmt))
        return found[0] if found else None

    async def events(self, tenant: Tenant, query: EventFilter) -> Sequence[OutboxEvent]:
        c = _events.c
        stmt = EVENTS.select().where(c.project_id == tenant.project_id, c.mode == tenant.mode.value)
        if query.type is not None:
            stmt = stmt.where(c.type == query.type)
        if query.subject is not None:
            stmt = stmt.where(c.subject_type == query.subject.type, c.subject_id == query.subject.id)
        if query.created_gte is not None:
            stmt = stmt.where(c.created_at >= query.created_gte)
        if query.created_lte is not None:
            stmt = stmt.where(c.created_at <= query.created_lte)
        if query.starting_after is not None:
            stmt = stmt.where(c.id < query.starting_after)
        stmt = stmt.order_by(c.id.desc()).limit(query.limit + 1)
        return build_events(await self._s.execute(stmt))

    async def deliveries_of(self, event_id: str) -> Sequence[WebhookDelivery]:
        stmt = sa.select(_deliveries).where(_deliveries.c.event_id == event_id).order_by(_deliveries.c.id)
        return [_delivery(r) for r in (await self._s.execute(stmt)).mappings().all()]

    async def pending_redeliveries(self, event_id: str) -> Sequence[WebhookDelivery]:
        d = _deliveries.c
        stmt = sa.select(_deliveries).where(d.event_id == event_id, d.redelivery.is_(True), d.status == _PENDING)
        return [_delivery(r) for r in (await self._s.execute(stmt.order_by(d.id))).mappings().all()]

    async def attempts_of(self, delivery_ids: Sequence[str]) -> Sequence[WebhookAttempt]:
        if not delivery_ids:
            return []
        a = _attempts.c
        stmt = sa.select(_attempts).where(a.delivery_id.in_(list(delivery_ids))).order_by(a.attempted_at, a.id)
        return [WebhookAttempt(**r) for r in (await self._s.execute(stmt)).mappings().all()]

    async def prune_events(self, before: datetime, limit: int) -> int:
        c, d = _events.c, _deliveries.c
        pending = sa.exists().where(d.event_id == c.id, d.status == _PENDING)
        stmt = (
            sa.select(c.id)
            .where(c.created_at < before, c.dispatched_at.is_not(None), ~pending)
            .order_by(c.created_at)
            .limit(limit)
        )
        if self._lock:
            stmt = stmt.with_for_update(skip_locked=True, of=_events)
        ids = list((await self._s.execute(stmt)).scalars().all())
        if not ids:
            return 0
        deliveries = sa.select(d.id).where(d.event_id.in_(ids)).scalar_subquery()
        await self._s.execute(sa.delete(_attempts).where(_attempts.c.delivery_id.in_(deliveries)))
        await self._s.execute(sa.delete(_deliveries).where(d.event_id.in_(ids)))
        await self._s.execute(sa.delete(_events).where(c.id.in_(ids)))
        return len(ids)

    # --- the delivery log and resending -----------------------------------------------------------

    def _of_tenant(self, tenant: Tenant) -> sa.Select[Any]:
        return (
            sa.select(_deliveries)
            .join(_endpoints, _ec.id == _dc.endpoint_id)
            .where(_ec.project_id == tenant.project_id, _ec.mode == tenant.mode.value)
        )

    async def deliveries(self, tenant: Tenant, query: DeliveryFilter) -> Sequence[WebhookDelivery]:
        stmt = self._of_tenant(tenant)
        if query.endpoint_id is not None:
            stmt = stmt.where(_dc.endpoint_id == query.endpoint_id)
        if query.state == "undelivered":
            stmt = stmt.where(_dc.status != DeliveryStatus.SUCCEEDED.value)
        elif query.state == "failing":
            stmt = stmt.where(
                sa.or_(
                    _dc.status == DeliveryStatus.FAILED.value,
                    sa.and_(_dc.status == _PENDING, _dc.attempts > 0),
                )
            )
        if query.starting_after is not None:
            stmt = stmt.where(_dc.id < query.starting_after)
        stmt = stmt.order_by(_dc.id.desc()).limit(query.limit + 1)
        return [_delivery(r) for r in (await self._s.execute(stmt)).mappings().all()]

    async def delivery(self, tenant: Tenant, delivery_id: str) -> WebhookDelivery | None:
        row = (await self._s.execute(self._of_tenant(tenant).where(_dc.id == delivery_id))).mappings().first()
        return _delivery(row) if row is not None else None

    async def retry_now(self, delivery_ids: Sequence[str], at: datetime) -> int:
        if not delivery_ids:
            return 0
        stmt = (
            sa.update(_deliveries)
            .where(_dc.id.in_(list(delivery_ids)), _dc.status == _PENDING, _dc.next_attempt_at > at)
            .values(next_attempt_at=at)
        )
        result = await self._s.execute(stmt)
        return int(getattr(result, "rowcount", 0) or 0)

    async def failed_since(self, tenant: Tenant, since: datetime, limit: int) -> Sequence[WebhookDelivery]:
        later = _deliveries.alias("later")
        superseded = sa.exists().where(
            later.c.event_id == _dc.event_id, later.c.endpoint_id == _dc.endpoint_id, later.c.id > _dc.id
        )
        stmt = (
            self._of_tenant(tenant)
            .where(
                _dc.status.in_([DeliveryStatus.FAILED.value, DeliveryStatus.CANCELLED.value]),
                _dc.completed_at >= since,
                _ec.enabled.is_(True),
                _ec.deleted_at.is_(None),
                ~superseded,
            )
            .order_by(_dc.id)
            .limit(limit)
        )
        return [_delivery(r) for r in (await self._s.execute(stmt)).mappings().all()]

    async def failing_pending(self, tenant: Tenant, since: datetime, limit: int) -> Sequence[str]:
        stmt = (
            sa.select(_dc.id)
            .join(_endpoints, _ec.id == _dc.endpoint_id)
            .where(
                _ec.project_id == tenant.project_id,
                _ec.mode == tenant.mode.value,
                _dc.status == _PENDING,
                _dc.attempts > 0,
                _dc.last_attempt_at >= since,
            )
            .order_by(_dc.id)
            .limit(limit)
        )
        return list((await self._s.execute(stmt)).scalars().all())

    def _alertable(self, failing_before: datetime) -> tuple[sa.ColumnElement[bool], ...]:
        return (
            _ec.enabled.is_(True),
            _ec.deleted_at.is_(None),
            _ec.failing_since.is_not(None),
            _ec.failing_since <= failing_before,
            sa.or_(_ec.failing_notified_at.is_(None), _ec.failing_notified_at < _ec.failing_since),
        )

    async def endpoints_to_alert(self, failing_before: datetime, limit: int) -> Sequence[WebhookEndpoint]:
        stmt = sa.select(_endpoints).where(*self._alertable(failing_before)).order_by(_ec.id).limit(limit)
        return [_endpoint(r) for r in (await self._s.execute(stmt)).mappings().all()]

    async def mark_alerted(self, endpoint_id: str, failing_before: datetime, at: datetime) -> bool:
        stmt = (
            sa.update(_endpoints)
            .where(_ec.id == endpoint_id, *self._alertable(failing_before))
            .values(failing_notified_at=at)
        )
        result = await self._s.execute(stmt)
        return bool(getattr(result, "rowcount", 0) == 1)


class SqlWebhookUnitOfWork:
    """A `Database` unit of work with the webhook repository on its connection."""

    webhooks: SqlWebhookRepository

    def __init__(self, inner: SqlReadUnitOfWork | SqlUnitOfWork, *, postgres: bool, lock: bool) -> None:
        self._inner = inner
        self._postgres = postgres
        self._lock = lock

    async def __aenter__(self) -> Self:
        await self._inner.__aenter__()
        events = self._inner.events if isinstance(self._inner.events, SqlEventRepository) else None
        self.webhooks = SqlWebhookRepository(
            self._inner.connection, postgres=self._postgres, lock=self._lock, events=events
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._inner.__aexit__(exc_type, exc, tb)


class WebhookStorage:
    """Units of work for the webhook use cases (`core.webhooks.ports.WebhookUnitOfWorkFactory`)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def write(self) -> SqlWebhookUnitOfWork:
        return SqlWebhookUnitOfWork(self._db.write(), postgres=not self._db.sqlite, lock=not self._db.sqlite)

    def read(self) -> SqlWebhookUnitOfWork:
        return SqlWebhookUnitOfWork(self._db.read(), postgres=not self._db.sqlite, lock=False)
