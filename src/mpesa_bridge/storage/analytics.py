"""The analytics reads (`core.analytics.AnalyticsReader`) on SQLAlchemy Core, same answers on both engines.

`slot_totals` groups by the UTC slot of `created_at` (its Unix time divided by the slot length) and
status: on PostgreSQL an index-only scan of `ix_payments_tenant_created`, which holds every column
it reads; on SQLite a search of the same index. The other reads need columns the index lacks
(phone, failure and result codes, completed_at) and read the range's rows through it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from mpesa_bridge.core.analytics import (
    FAILED_STATUSES,
    DurationCount,
    PhoneTotal,
    ReasonCount,
    Scope,
    SlotTotal,
)
from mpesa_bridge.core.payments.status import FINAL_STATUSES, PaymentStatus
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.db import Database

UNSPECIFIED = "unspecified"  # a failure with neither a failure_code nor a result_code
_SLOTS = (900, 3600)


class UtcSlot(FunctionElement[int]):
    """The number of the UTC slot (of `seconds` seconds, counted from the Unix epoch) a timestamp is in."""

    type = sa.BigInteger()
    inherit_cache = True

    def __init__(self, column: Any, seconds: int) -> None:
        if seconds not in _SLOTS:
            raise ValueError(f"a slot is 900 or 3600 seconds, not {seconds}")
        # The length is written into the SQL (not bound): GROUP BY must repeat the very expression.
        super().__init__(column, sa.literal_column(str(int(seconds))))


@compiles(UtcSlot, "postgresql")
def _slot_postgresql(element: UtcSlot, compiler: SQLCompiler, **kw: Any) -> str:
    column, seconds = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(floor(extract(epoch FROM {column}) / {seconds}) AS BIGINT)"


@compiles(UtcSlot, "sqlite")
def _slot_sqlite(element: UtcSlot, compiler: SQLCompiler, **kw: Any) -> str:
    column, seconds = (compiler.process(c, **kw) for c in element.clauses)
    return f"({_sqlite_unix_seconds(column)} / {seconds})"


def _sqlite_unix_seconds(column: str) -> str:
    # SQLite keeps naive UTC text 'YYYY-MM-DD HH:MM:SS.ffffff' (types.UTCDateTime). Its date
    # functions round to the millisecond, so 20:59:59.9999995 would become 21:00:00: the whole
    # seconds are read from the text without its fraction, which floors as PostgreSQL does.
    return f"CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER)"


class SecondsBetween(FunctionElement[int]):
    """Whole seconds (floored) from the first timestamp to the second; 0 if the second is earlier
    (a clock that ran back: core.analytics counts it as 0 s too). Clamped, not branched: on SQLite
    a CASE would compute the difference three times a row."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(SecondsBetween, "postgresql")
def _seconds_postgresql(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    start, stop = (compiler.process(c, **kw) for c in element.clauses)
    return f"GREATEST(CAST(floor(extract(epoch FROM ({stop} - {start}))) AS BIGINT), 0)"


@compiles(SecondsBetween, "sqlite")
def _seconds_sqlite(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    # In microseconds from the text (see _sqlite_unix_seconds); integer division floors what is >= 0.
    start, stop = (compiler.process(c, **kw) for c in element.clauses)
    micros = (
        f"(({_sqlite_unix_seconds(stop)} - {_sqlite_unix_seconds(start)}) * 1000000"
        f" + CAST(substr({stop}, 21, 6) AS INTEGER) - CAST(substr({start}, 21, 6) AS INTEGER))"
    )
    return f"(max({micros}, 0) / 1000000)"


_c = tables.payments.c
_FAILED = sorted(FAILED_STATUSES)
_FINAL = sorted(FINAL_STATUSES)


def _in_scope(scope: Scope) -> list[sa.ColumnElement[bool]]:
    return [
        _c.project_id == scope.project_id,
        _c.mode == scope.mode,
        _c.created_at >= scope.since,
        _c.created_at < scope.before,
    ]


class SqlAnalyticsReader:
    """`core.analytics.AnalyticsReader` over one connection (a read unit of work's)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def slot_totals(self, scope: Scope, slot_seconds: int) -> Sequence[SlotTotal]:
        slot = UtcSlot(_c.created_at, slot_seconds)
        stmt = (
            sa.select(slot, _c.status, sa.func.count(), sa.func.coalesce(sa.func.sum(_c.amount), 0))
            .where(*_in_scope(scope))
            .group_by(slot, _c.status)
        )
        rows = (await self._c.execute(stmt)).all()
        return [
            SlotTotal(datetime.fromtimestamp(int(r[0]) * slot_seconds, UTC), PaymentStatus(r[1]), int(r[2]), int(r[3]))
            for r in rows
        ]

    async def failure_reasons(self, scope: Scope, limit: int) -> Sequence[ReasonCount]:
        reason = sa.func.coalesce(_c.failure_code, _c.result_code, UNSPECIFIED).label("reason")
        n = sa.func.count().label("n")
        stmt = (
            sa.select(reason, n)
            .where(*_in_scope(scope), _c.status.in_(_FAILED))
            .group_by(reason)
            .order_by(n.desc(), reason)
            .limit(limit)
        )
        return [ReasonCount(str(r[0]), int(r[1])) for r in await self._c.execute(stmt)]

    async def top_payers(self, scope: Scope, limit: int) -> Sequence[PhoneTotal]:
        amount, n = sa.func.sum(_c.amount).label("amount"), sa.func.count().label("n")
        stmt = (
            sa.select(_c.phone, amount, n)
            .where(*_in_scope(scope), _c.status == PaymentStatus.SUCCEEDED)
            .group_by(_c.phone)
            .order_by(amount.desc(), n.desc(), _c.phone)
            .limit(limit)
        )
        return [PhoneTotal(str(r[0]), int(r[1]), int(r[2])) for r in await self._c.execute(stmt)]

    async def settle_durations(self, scope: Scope) -> Sequence[DurationCount]:
        seconds = SecondsBetween(_c.created_at, _c.completed_at)
        stmt = (
            sa.select(seconds, sa.func.count())
            .where(*_in_scope(scope), _c.status.in_(_FINAL), _c.completed_at.is_not(None))
            .group_by(seconds)
        )
        return [DurationCount(int(r[0]), int(r[1])) for r in await self._c.execute(stmt)]


@asynccontextmanager
async def analytics_reader(db: Database) -> AsyncIterator[SqlAnalyticsReader]:
    """A reader in a read-only transaction of its own: `AnalyticsService(lambda: analytics_reader(db), clock)`."""
    async with db.read() as uow:
        yield SqlAnalyticsReader(uow.connection)
