"""All SQL lives here. Every tenant-facing query is scoped by project and mode."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from mpesa_bridge.core.ids import id_ceiling, id_floor
from mpesa_bridge.core.payments.entity import (
    PAYMENT,
    InboundCallback,
    OutboxEvent,
    Payment,
    PaymentEvidence,
    Subject,
)
from mpesa_bridge.core.payments.status import Evidence, PaymentStatus
from mpesa_bridge.core.ports import DayStatusTotal, PaymentFilter, QueryClaim
from mpesa_bridge.core.projects import ApiKey, DarajaConfig, Mode, Project, Tenant
from mpesa_bridge.storage import tables

PAYMENT_ID_PREFIX = "pay"  # core.payments.stk: new_id("pay", created_at)


class NairobiDate(FunctionElement[date]):
    """The Africa/Nairobi calendar date of an aware UTC timestamp column."""

    type = sa.Date()
    inherit_cache = True


@compiles(NairobiDate, "postgresql")
def _nairobi_date_postgresql(element: NairobiDate, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(({compiler.process(element.clauses, **kw)} AT TIME ZONE 'Africa/Nairobi') AS DATE)"


@compiles(NairobiDate, "sqlite")
def _nairobi_date_sqlite(element: NairobiDate, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps naive UTC text (types.UTCDateTime). Kenya has been UTC+3 all year since 1942.
    return f"date({compiler.process(element.clauses, **kw)}, '+3 hours')"


class SqlPaymentRepository:
    def __init__(self, session: AsyncSession, *, lock: bool) -> None:
        self._s = session
        self._lock = lock

    async def add(self, payment: Payment) -> None:
        self._s.add(payment)
        await self._s.flush()

    async def get(self, tenant: Tenant, payment_id: str) -> Payment | None:
        stmt = sa.select(Payment).where(
            tables.payments.c.id == payment_id,
            tables.payments.c.project_id == tenant.project_id,
            tables.payments.c.mode == tenant.mode.value,
        )
        return (await self._s.execute(stmt)).scalar_one_or_none()

    async def find(self, payment_id: str) -> Payment | None:
        return await self._s.get(Payment, payment_id)

    async def lock(self, payment_id: str) -> Payment | None:
        stmt = sa.select(Payment).where(tables.payments.c.id == payment_id)
        return await self._one(stmt)

    async def lock_many(self, payment_ids: Sequence[str]) -> Sequence[Payment]:
        """The payments with these ids, locked in id order (two lockers of overlapping sets cannot deadlock)."""
        c = tables.payments.c
        stmt = sa.select(Payment).where(c.id.in_(list(payment_ids))).order_by(c.id)
        if self._lock:
            stmt = stmt.with_for_update()
        return (await self._s.execute(stmt)).scalars().all()

    async def lock_by_callback_tokens(self, token_hashes: Sequence[str]) -> Mapping[str, Payment]:
        c = tables.payments.c
        stmt = sa.select(Payment).where(c.callback_token_hash.in_(sorted(set(token_hashes)))).order_by(c.id)
        if self._lock:
            stmt = stmt.with_for_update()
        return {p.callback_token_hash: p for p in (await self._s.execute(stmt)).scalars().all()}

    async def adopt_daraja_ids(
        self, payment_id: str, merchant_request_id: str, checkout_request_id: str, at: datetime
    ) -> Payment | None:
        # COALESCE in the statement, not in Python: on PostgreSQL a callback applied meanwhile holds
        # the row, and the UPDATE re-reads the committed row before deciding (READ COMMITTED).
        c = tables.payments.c
        stmt = (
            sa.update(Payment)
            .where(c.id == payment_id)
            .values(
                checkout_request_id=sa.func.coalesce(c.checkout_request_id, checkout_request_id),
                merchant_request_id=sa.func.coalesce(c.merchant_request_id, merchant_request_id),
                updated_at=at,
            )
            .returning(Payment)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        payment: Payment | None = (await self._s.execute(stmt)).scalar_one_or_none()
        return payment

    async def by_checkout_request_id(self, checkout_request_id: str) -> Payment | None:
        stmt = sa.select(Payment).where(tables.payments.c.checkout_request_id == checkout_request_id)
        payment: Payment | None = (await self._s.execute(stmt)).scalar_one_or_none()
        return payment

    async def lock_phone(self, short_code: str, phone: str) -> None:
        """Serialise pushes to one phone. PostgreSQL: a transaction-scoped advisory lock; SQLite
        has a single writer already."""
        if self._lock:
            key = int.from_bytes(hashlib.sha256(f"{short_code}:{phone}".encode()).digest()[:8], "big", signed=True)
            await self._s.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    async def open_twin(self, payment: Payment, since: datetime) -> Payment | None:
        c = tables.payments.c
        stmt = sa.select(Payment).where(
            c.project_id == payment.project_id,
            c.mode == payment.mode,
            c.phone == payment.phone,
            c.amount == payment.amount,
            c.account_reference == payment.account_reference,
            c.status.in_([PaymentStatus.PENDING, PaymentStatus.UNKNOWN]),
            c.created_at >= since,
        )
        twin: Payment | None = (await self._s.execute(stmt.limit(1))).scalar_one_or_none()
        return twin

    async def open_for_phone(self, short_code: str, phone: str, since: datetime) -> Payment | None:
        c = tables.payments.c
        stmt = sa.select(Payment).where(
            c.phone == phone,
            c.business_short_code == short_code,
            c.status.in_([PaymentStatus.PENDING, PaymentStatus.UNKNOWN]),
            c.created_at >= since,
        )
        found: Payment | None = (await self._s.execute(stmt.limit(1))).scalar_one_or_none()
        return found

    async def list(self, tenant: Tenant, query: PaymentFilter) -> Sequence[Payment]:
        c = tables.payments.c
        stmt = sa.select(Payment).where(c.project_id == tenant.project_id, c.mode == tenant.mode.value)
        if query.status is not None:
            stmt = stmt.where(c.status == query.status)
        if query.phone is not None:
            stmt = stmt.where(c.phone == query.phone)
        if query.account_reference is not None:
            stmt = stmt.where(c.account_reference == query.account_reference)
        # A time bound is also an id bound (ids begin with their creation time, core.ids): with it
        # the (tenant[, status], id) indexes stop at the window's edge instead of reading every
        # older payment of the tenant to learn that none matches (the last page of a window).
        if query.created_gte is not None:
            stmt = stmt.where(c.created_at >= query.created_gte, c.id >= id_floor(PAYMENT_ID_PREFIX, query.created_gte))
        if query.created_lte is not None:
            stmt = stmt.where(
                c.created_at <= query.created_lte, c.id < id_ceiling(PAYMENT_ID_PREFIX, query.created_lte)
            )
        if query.starting_after is not None:
            stmt = stmt.where(c.id < query.starting_after)
        stmt = stmt.order_by(c.id.desc()).limit(query.limit + 1)
        return (await self._s.execute(stmt)).scalars().all()

    async def day_totals(self, tenant: Tenant, since: datetime, before: datetime) -> Sequence[DayStatusTotal]:
        # Served by ix_payments_tenant_created alone (it holds status and amount): no table reads.
        c = tables.payments.c
        day = NairobiDate(c.created_at)
        stmt = (
            sa.select(day, c.status, sa.func.count(), sa.func.coalesce(sa.func.sum(c.amount), 0))
            .where(
                c.project_id == tenant.project_id,
                c.mode == tenant.mode.value,
                c.created_at >= since,
                c.created_at < before,
            )
            .group_by(day, c.status)
        )
        rows = (await self._s.execute(stmt)).all()
        return [DayStatusTotal(row[0], PaymentStatus(row[1]), int(row[2]), int(row[3])) for row in rows]

    async def claim_due_for_query(self, now: datetime, limit: int, hold_until: datetime) -> Sequence[QueryClaim]:
        """Take the due payments and move their next query to `hold_until`, in the caller's transaction.

        PostgreSQL: rows another transaction holds (another worker's claim, a callback being applied)
        are skipped, and a row another worker claimed meanwhile no longer matches once its claim is
        committed (READ COMMITTED re-checks the WHERE on the newer row). SQLite: writes are serial."""
        c = tables.payments.c
        stmt = (
            sa.select(c.id, c.project_id, c.mode, c.checkout_request_id)
            .where(
                c.next_query_at <= now,
                sa.or_(
                    c.status.in_([PaymentStatus.PENDING, PaymentStatus.UNKNOWN]),
                    # status.query_may_correct: an expiry on our own timeout is re-checked a while.
                    sa.and_(c.status == PaymentStatus.EXPIRED, c.evidence == Evidence.OWN_TIMEOUT),
                ),
                c.checkout_request_id.is_not(None),
            )
            .order_by(c.next_query_at)
            .limit(limit)
        )
        if self._lock:
            stmt = stmt.with_for_update(skip_locked=True)
        rows = (await self._s.execute(stmt)).all()
        if not rows:
            return []
        ids = [row.id for row in rows]
        await self._s.execute(sa.update(tables.payments).where(c.id.in_(ids)).values(next_query_at=hold_until))
        return [QueryClaim(row.id, row.project_id, row.mode, row.checkout_request_id) for row in rows]

    async def stranded(self, before: datetime, limit: int) -> Sequence[str]:
        c = tables.payments.c
        stmt = (
            sa.select(c.id)
            .where(
                c.status == PaymentStatus.PENDING,
                c.checkout_request_id.is_(None),
                c.created_at <= before,
            )
            .limit(limit)
        )
        return (await self._s.execute(stmt)).scalars().all()

    async def _one(self, stmt: sa.Select[Any]) -> Payment | None:
        if self._lock:
            stmt = stmt.with_for_update()
        payment: Payment | None = (await self._s.execute(stmt)).scalar_one_or_none()
        return payment


class SqlEventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add(self, event: OutboxEvent) -> None:
        self._s.add(event)  # written by the next flush (at the latest the commit's), with its siblings

    async def for_payment(self, payment_id: str) -> Sequence[OutboxEvent]:
        return await self.for_subject(Subject(PAYMENT, payment_id))

    async def for_subject(self, subject: Subject) -> Sequence[OutboxEvent]:
        c = tables.outbox_events.c
        stmt = sa.select(OutboxEvent).where(c.subject_type == subject.type, c.subject_id == subject.id)
        return (await self._s.execute(stmt.order_by(c.id))).scalars().all()

    # --- live streams (realtime.sse): a project mode's events by `position`, their commit order ---

    async def stream_position(
        self, project_id: str, mode: str, event_id: str, *, subject: Subject | None = None
    ) -> int | None:
        """The position of `event_id` in the tenant's (or the subject's) stream; None if it is not in it."""
        c = tables.outbox_events.c
        stmt = sa.select(c.position).where(
            c.id == event_id, c.project_id == project_id, c.mode == mode, c.position.is_not(None)
        )
        if subject is not None:
            stmt = stmt.where(c.subject_type == subject.type, c.subject_id == subject.id)
        position: int | None = (await self._s.execute(stmt)).scalar_one_or_none()
        return position

    async def stream_tail(self, project_id: str, mode: str) -> int:
        """The tenant's last committed position (0: none yet): a stream starting there gets what comes next."""
        c = tables.outbox_events.c
        stmt = sa.select(sa.func.max(c.position)).where(c.project_id == project_id, c.mode == mode)
        return int((await self._s.execute(stmt)).scalar() or 0)

    async def stream_after(
        self, project_id: str, mode: str, position: int, *, subject: Subject | None = None, limit: int = 100
    ) -> list[tuple[OutboxEvent, int]]:
        """The events after `position`, in commit order, each with its position.

        Positions become visible in order and without gaps (migration 0004), so a reader that has
        seen position n has seen everything before it, whatever the events' ids."""
        c = tables.outbox_events.c
        if subject is not None:
            # By the subject's own index: with the tenant in the WHERE clause the planners walk the
            # tenant's whole history after `position` (ix_outbox_events_tenant_position). The tenant
            # is still checked, on the few rows found.
            stmt = sa.select(OutboxEvent, c.position).where(
                c.subject_type == subject.type, c.subject_id == subject.id, c.position > position
            )
            rows = (await self._s.execute(stmt.order_by(c.position).limit(limit))).all()
            return [(e, int(at)) for e, at in rows if e.project_id == project_id and e.mode == mode]
        stmt = sa.select(OutboxEvent, c.position).where(
            c.project_id == project_id, c.mode == mode, c.position > position
        )
        rows = (await self._s.execute(stmt.order_by(c.position).limit(limit))).all()
        return [(event, int(at)) for event, at in rows]


class SqlEvidenceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add(self, evidence: PaymentEvidence) -> None:
        self._s.add(evidence)  # written by the next flush (at the latest the commit's)

    async def for_payment(self, payment_id: str) -> Sequence[PaymentEvidence]:
        stmt = sa.select(PaymentEvidence).where(tables.payment_evidence.c.payment_id == payment_id)
        return (await self._s.execute(stmt.order_by(tables.payment_evidence.c.id))).scalars().all()


class SqlCallbackRepository:
    def __init__(self, session: AsyncSession, *, lock: bool) -> None:
        self._s = session
        self._lock = lock

    async def add_many(self, callbacks: Sequence[InboundCallback]) -> None:
        self._s.add_all(callbacks)  # flushed as one multi-row INSERT
        await self._s.flush()

    async def lock_many(self, callback_ids: Sequence[str]) -> Sequence[InboundCallback]:
        c = tables.inbound_callbacks.c
        stmt = sa.select(InboundCallback).where(c.id.in_(list(callback_ids))).order_by(c.id)
        if self._lock:
            stmt = stmt.with_for_update(skip_locked=True)
        return (await self._s.execute(stmt)).scalars().all()

    async def unprocessed(self, due_by: datetime, limit: int) -> Sequence[str]:
        c = tables.inbound_callbacks.c
        due = sa.or_(c.next_attempt_at.is_(None), c.next_attempt_at <= due_by)
        stmt = sa.select(c.id).where(c.state == "received", due).order_by(c.received_at).limit(limit)
        return (await self._s.execute(stmt)).scalars().all()


class SqlProjectRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add(self, project: Project) -> None:
        self._s.add(project)
        await self._s.flush()

    async def get(self, project_id: str) -> Project | None:
        return await self._s.get(Project, project_id)

    async def list(self) -> Sequence[Project]:
        stmt = sa.select(Project).order_by(tables.projects.c.created_at)
        return (await self._s.execute(stmt)).scalars().all()

    async def put_daraja_config(self, config: DarajaConfig) -> None:
        await self._s.merge(config)
        await self._s.flush()

    async def daraja_config(self, project_id: str, mode: Mode) -> DarajaConfig | None:
        return await self._s.get(DarajaConfig, (project_id, mode))

    async def all_daraja_configs(self) -> Sequence[DarajaConfig]:
        return (await self._s.execute(sa.select(DarajaConfig))).scalars().all()

    async def add_key(self, key: ApiKey) -> None:
        self._s.add(key)
        await self._s.flush()

    async def key_with_project(self, key_hash: str) -> tuple[ApiKey, Project] | None:
        stmt = (
            sa.select(ApiKey, Project)
            .join_from(ApiKey, Project, tables.api_keys.c.project_id == tables.projects.c.id)
            .where(tables.api_keys.c.key_hash == key_hash)
        )
        row = (await self._s.execute(stmt)).first()
        return (row[0], row[1]) if row is not None else None

    async def key(self, key_id: str) -> ApiKey | None:
        return await self._s.get(ApiKey, key_id)

    async def keys(self, project_id: str) -> Sequence[ApiKey]:
        stmt = sa.select(ApiKey).where(tables.api_keys.c.project_id == project_id)
        return (await self._s.execute(stmt.order_by(tables.api_keys.c.created_at))).scalars().all()

    async def touch_key(self, key_id: str, at: datetime) -> None:
        await self._s.execute(sa.update(tables.api_keys).where(tables.api_keys.c.id == key_id).values(last_used_at=at))
