"""The payment aggregate's repositories: payments and their evidence log (SQLAlchemy Core).

Every tenant-facing query is scoped by project and mode. Reads return plain values; writes are
explicit verbs (`add`, `save`, `save_many`, the conditional `adopt_daraja_ids`), and evidence is
written with the unit of work's other new rows, as one multi-row INSERT before it commits."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from mpesa_bridge.core.ids import id_ceiling, id_floor
from mpesa_bridge.core.payments.entity import Payment, PaymentEvidence
from mpesa_bridge.core.payments.status import Evidence, PaymentStatus
from mpesa_bridge.core.ports import DayStatusTotal, PaymentFilter, QueryClaim
from mpesa_bridge.core.projects import Tenant
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.pending import PendingRows
from mpesa_bridge.storage.rows import EntityRows, Loaded

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


PAYMENTS = EntityRows(tables.payments, Payment)
EVIDENCE = EntityRows(tables.payment_evidence, PaymentEvidence)
_OPEN = (PaymentStatus.PENDING, PaymentStatus.UNKNOWN)

# The hot paths' statements, built once with bound parameters: building a statement and its cache
# key costs more CPU than running it (`make bench`, B1/B2).
_c = tables.payments.c
_BY_ID = PAYMENTS.select().where(_c.id == sa.bindparam("id"))
_BY_TENANT_ID = _BY_ID.where(_c.project_id == sa.bindparam("project_id"), _c.mode == sa.bindparam("mode"))
_BY_CHECKOUT = PAYMENTS.select().where(_c.checkout_request_id == sa.bindparam("checkout_request_id"))
_OPEN_FOR_PHONE = PAYMENTS.select().where(
    _c.phone == sa.bindparam("phone"), _c.status.in_(_OPEN), _c.created_at >= sa.bindparam("since")
)
_BY_IDS = PAYMENTS.select().where(_c.id.in_(sa.bindparam("ids", expanding=True))).order_by(_c.id)
_BY_TOKENS = PAYMENTS.select().where(_c.callback_token_hash.in_(sa.bindparam("tokens", expanding=True))).order_by(_c.id)
_ADOPT = (
    sa.update(tables.payments)
    .where(_c.id == sa.bindparam("payment_id"))
    .values(
        # COALESCE in the statement, not in Python: on PostgreSQL a callback applied meanwhile holds
        # the row, and the UPDATE re-reads the committed row before deciding (READ COMMITTED).
        checkout_request_id=sa.func.coalesce(_c.checkout_request_id, sa.bindparam("checkout")),
        merchant_request_id=sa.func.coalesce(_c.merchant_request_id, sa.bindparam("merchant")),
        updated_at=sa.bindparam("at", type_=tables.payments.c.updated_at.type),
    )
    .returning(*PAYMENTS.columns)
)


class SqlPaymentReader:
    """Payments as values; no lock, no write (`core.ports.PaymentReader`)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def _all(self, stmt: sa.Executable, params: dict[str, Any] | None = None) -> list[Payment]:
        return [PAYMENTS.build(row) for row in await self._c.execute(stmt, params)]

    async def _first(self, stmt: sa.Executable, params: dict[str, Any] | None = None) -> Payment | None:
        found = await self._all(stmt, params)
        return found[0] if found else None

    async def get(self, tenant: Tenant, payment_id: str) -> Payment | None:
        params = {"id": payment_id, "project_id": tenant.project_id, "mode": tenant.mode.value}
        return await self._first(_BY_TENANT_ID, params)

    async def find(self, payment_id: str) -> Payment | None:
        return await self._first(_BY_ID, {"id": payment_id})

    async def by_checkout_request_id(self, checkout_request_id: str) -> Payment | None:
        return await self._first(_BY_CHECKOUT, {"checkout_request_id": checkout_request_id})

    async def open_for_phone(self, phone: str, since: datetime) -> Sequence[Payment]:
        return await self._all(_OPEN_FOR_PHONE, {"phone": phone, "since": since})

    async def list(self, tenant: Tenant, query: PaymentFilter) -> Sequence[Payment]:
        params: dict[str, Any] = {"project_id": tenant.project_id, "mode": tenant.mode.value, "limit": query.limit + 1}
        if query.status is not None:
            params["status"] = query.status
        if query.phone is not None:
            params["phone"] = query.phone
        if query.account_reference is not None:
            params["reference"] = query.account_reference
        if query.created_gte is not None:
            params["gte"], params["id_floor"] = query.created_gte, id_floor(PAYMENT_ID_PREFIX, query.created_gte)
        if query.created_lte is not None:
            params["lte"], params["id_ceiling"] = query.created_lte, id_ceiling(PAYMENT_ID_PREFIX, query.created_lte)
        if query.starting_after is not None:
            params["starting_after"] = query.starting_after
        return await self._all(_list_statement(frozenset(params)), params)

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
        rows = (await self._c.execute(stmt)).all()
        return [DayStatusTotal(row[0], PaymentStatus(row[1]), int(row[2]), int(row[3])) for row in rows]

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
        return (await self._c.execute(stmt)).scalars().all()


class SqlPaymentRepository(SqlPaymentReader):
    """Payments in a write unit of work (`core.ports.PaymentRepository`): what it loads it
    remembers, and `save` writes the columns the use case changed since."""

    def __init__(self, conn: AsyncConnection, *, lock: bool) -> None:
        super().__init__(conn)
        self._lock = lock
        self._loaded = Loaded(PAYMENTS)

    async def _all(self, stmt: sa.Executable, params: dict[str, Any] | None = None) -> list[Payment]:
        return self._loaded.build(await self._c.execute(stmt, params))

    async def add(self, payment: Payment) -> None:
        await PAYMENTS.insert(self._c, [payment])
        self._loaded.remember(payment)

    async def save(self, payment: Payment) -> None:
        await self._loaded.save(self._c, [payment])

    async def save_many(self, payments: Sequence[Payment]) -> None:
        await self._loaded.save(self._c, payments)

    async def lock(self, payment_id: str) -> Payment | None:
        return await self._first(_BY_ID_LOCKED if self._lock else _BY_ID, {"id": payment_id})

    async def lock_many(self, payment_ids: Sequence[str]) -> Sequence[Payment]:
        """The payments with these ids, locked in id order (two lockers of overlapping sets cannot deadlock)."""
        return await self._all(_BY_IDS_LOCKED if self._lock else _BY_IDS, {"ids": list(payment_ids)})

    async def lock_by_callback_tokens(self, token_hashes: Sequence[str]) -> Mapping[str, Payment]:
        stmt = _BY_TOKENS_LOCKED if self._lock else _BY_TOKENS
        return {p.callback_token_hash: p for p in await self._all(stmt, {"tokens": sorted(set(token_hashes))})}

    async def adopt_daraja_ids(
        self, payment_id: str, merchant_request_id: str, checkout_request_id: str, at: datetime
    ) -> Payment | None:
        params = {"payment_id": payment_id, "checkout": checkout_request_id, "merchant": merchant_request_id, "at": at}
        return await self._first(_ADOPT, params)

    async def lock_phone(self, short_code: str, phone: str) -> None:
        """Serialise pushes to one phone. PostgreSQL: a transaction-scoped advisory lock; SQLite
        has a single writer already."""
        if self._lock:
            key = int.from_bytes(hashlib.sha256(f"{short_code}:{phone}".encode()).digest()[:8], "big", signed=True)
            await self._c.execute(_LOCK_PHONE, {"key": key})

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
                    c.status.in_(_OPEN),
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
        rows = (await self._c.execute(stmt)).all()
        if not rows:
            return []
        ids = [row.id for row in rows]
        await self._c.execute(sa.update(tables.payments).where(c.id.in_(ids)).values(next_query_at=hold_until))
        return [QueryClaim(row.id, row.project_id, row.mode, row.checkout_request_id) for row in rows]


_LOCK_PHONE = sa.text("SELECT pg_advisory_xact_lock(:key)")
_BY_ID_LOCKED = _BY_ID.with_for_update()
_LISTS: dict[frozenset[str], sa.Select[Any]] = {}


def _list_statement(given: frozenset[str]) -> sa.Select[Any]:
    """The page query for the filters given (by their parameter names), built once per shape."""
    found = _LISTS.get(given)
    if found is not None:
        return found
    c = tables.payments.c
    stmt = PAYMENTS.select().where(c.project_id == sa.bindparam("project_id"), c.mode == sa.bindparam("mode"))
    if "status" in given:
        stmt = stmt.where(c.status == sa.bindparam("status", type_=c.status.type))
    if "phone" in given:
        stmt = stmt.where(c.phone == sa.bindparam("phone"))
    if "reference" in given:
        stmt = stmt.where(c.account_reference == sa.bindparam("reference"))
    # A time bound is also an id bound (ids begin with their creation time, core.ids): with it the
    # (tenant[, status], id) indexes stop at the window's edge instead of reading every older
    # payment of the tenant to learn that none matches (the last page of a window).
    if "gte" in given:
        stmt = stmt.where(
            c.created_at >= sa.bindparam("gte", type_=c.created_at.type), c.id >= sa.bindparam("id_floor")
        )
    if "lte" in given:
        stmt = stmt.where(
            c.created_at <= sa.bindparam("lte", type_=c.created_at.type), c.id < sa.bindparam("id_ceiling")
        )
    if "starting_after" in given:
        stmt = stmt.where(c.id < sa.bindparam("starting_after"))
    stmt = stmt.order_by(c.id.desc()).limit(sa.bindparam("limit", type_=sa.Integer()))
    _LISTS[given] = stmt
    return stmt


_BY_IDS_LOCKED = _BY_IDS.with_for_update()
_BY_TOKENS_LOCKED = _BY_TOKENS.with_for_update()


class SqlEvidenceReader:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def _flushed(self) -> None:
        """A read unit of work adds nothing: nothing to write before reading."""

    async def for_payment(self, payment_id: str) -> Sequence[PaymentEvidence]:
        await self._flushed()
        t = tables.payment_evidence
        stmt = EVIDENCE.select().where(t.c.payment_id == payment_id).order_by(t.c.id)
        return [EVIDENCE.build(row) for row in await self._c.execute(stmt)]


class SqlEvidenceRepository(SqlEvidenceReader):
    def __init__(self, conn: AsyncConnection, pending: PendingRows) -> None:
        super().__init__(conn)
        self._queue = pending

    async def _flushed(self) -> None:
        await self._queue.flush()  # what this unit of work added is among what it reads

    async def add(self, evidence: PaymentEvidence) -> None:
        self._queue.add(EVIDENCE, evidence)  # written with the unit of work's other new rows
