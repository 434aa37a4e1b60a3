"""The checkout session aggregate's repositories (SQLAlchemy Core).

Every change to a session after its insert is one conditional UPDATE decided by the database —
`claim`, `release`, `complete`, `complete_by_c2b`, `expire` — so that two transactions racing cannot both win: on
PostgreSQL the second waits for the first's row lock and then re-checks its WHERE clause against
the committed row (READ COMMITTED); SQLite has one writer. Tenant queries are scoped by project
and mode."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mpesa_bridge.core.checkout.entity import CheckoutSession, CheckoutStatus
from mpesa_bridge.core.projects import Tenant
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.rows import EntityRows

SESSIONS = EntityRows(tables.checkout_sessions, CheckoutSession)
_c = tables.checkout_sessions.c
_AT = sa.bindparam("at", type_=_c.updated_at.type)
_NOW = sa.bindparam("now", type_=_c.expires_at.type)
_BY_ID = SESSIONS.select().where(_c.id == sa.bindparam("id"))
_BY_TENANT_ID = _BY_ID.where(_c.project_id == sa.bindparam("project_id"), _c.mode == sa.bindparam("mode"))
_OPEN_IDLE = sa.and_(_c.status == CheckoutStatus.OPEN, _c.active_payment_id.is_(None))

_CLAIM = (
    sa.update(tables.checkout_sessions)
    .where(_c.id == sa.bindparam("session_id"), _OPEN_IDLE, _c.expires_at > _NOW)
    .values(active_payment_id=sa.bindparam("payment_id"), last_payment_id=sa.bindparam("payment_id"), updated_at=_NOW)
)
_RELEASE = (
    sa.update(tables.checkout_sessions)
    .where(_c.id == sa.bindparam("session_id"), _c.active_payment_id == sa.bindparam("payment_id"))
    .values(active_payment_id=None, updated_at=_AT)
)
_COMPLETE = (
    sa.update(tables.checkout_sessions)
    .where(_c.id == sa.bindparam("session_id"), _c.status == CheckoutStatus.OPEN)
    .values(
        status=CheckoutStatus.COMPLETE,
        active_payment_id=None,
        paid_payment_id=sa.bindparam("payment_id"),
        completed_at=_AT,
        updated_at=_AT,
    )
    .returning(*SESSIONS.columns)
)
# A C2B payment completes only a session still open and unexpired; a payment in flight loses its
# claim (its success, if it comes, finds the session complete and is flagged paid twice).
_COMPLETE_BY_C2B = (
    sa.update(tables.checkout_sessions)
    .where(_c.id == sa.bindparam("session_id"), _c.status == CheckoutStatus.OPEN, _c.expires_at > _AT)
    .values(
        status=CheckoutStatus.COMPLETE,
        active_payment_id=None,
        paid_c2b_payment_id=sa.bindparam("c2b_payment_id"),
        completed_at=_AT,
        updated_at=_AT,
    )
    .returning(*SESSIONS.columns)
)
_EXPIRE = (
    sa.update(tables.checkout_sessions)
    .where(_c.id == sa.bindparam("session_id"), _OPEN_IDLE)
    .values(status=CheckoutStatus.EXPIRED, updated_at=_NOW)
    .returning(*SESSIONS.columns)
)
_EXPIRE_DUE = (
    sa.update(tables.checkout_sessions)
    .where(_c.id == sa.bindparam("session_id"), _OPEN_IDLE, _c.expires_at <= _NOW)
    .values(status=CheckoutStatus.EXPIRED, updated_at=_NOW)
    .returning(*SESSIONS.columns)
)
_DUE = (
    sa.select(_c.id)
    .where(_OPEN_IDLE, _c.expires_at <= _NOW)
    .order_by(_c.expires_at)
    .limit(sa.bindparam("limit", type_=sa.Integer()))
)


class SqlCheckoutSessionReader:
    """Sessions as values; no lock, no write (`core.ports.CheckoutSessionReader`)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def _first(self, stmt: sa.Executable, params: dict[str, Any]) -> CheckoutSession | None:
        row = (await self._c.execute(stmt, params)).first()
        return SESSIONS.build(row) if row is not None else None

    async def get(self, tenant: Tenant, session_id: str) -> CheckoutSession | None:
        params = {"id": session_id, "project_id": tenant.project_id, "mode": tenant.mode.value}
        return await self._first(_BY_TENANT_ID, params)

    async def find(self, session_id: str) -> CheckoutSession | None:
        return await self._first(_BY_ID, {"id": session_id})

    async def list(self, tenant: Tenant, starting_after: str | None, limit: int) -> Sequence[CheckoutSession]:
        stmt = SESSIONS.select().where(_c.project_id == tenant.project_id, _c.mode == tenant.mode.value)
        if starting_after is not None:
            stmt = stmt.where(_c.id < starting_after)
        stmt = stmt.order_by(_c.id.desc()).limit(limit + 1)
        return [SESSIONS.build(row) for row in await self._c.execute(stmt)]

    async def due_to_expire(self, now: datetime, limit: int) -> Sequence[str]:
        return (await self._c.execute(_DUE, {"now": now, "limit": limit})).scalars().all()


class SqlCheckoutSessionRepository(SqlCheckoutSessionReader):
    """Sessions in a write unit of work: an insert, then conditional UPDATEs only."""

    async def add(self, session: CheckoutSession) -> None:
        await SESSIONS.insert(self._c, [session])

    async def claim(self, session_id: str, payment_id: str, now: datetime) -> bool:
        result = await self._c.execute(_CLAIM, {"session_id": session_id, "payment_id": payment_id, "now": now})
        return result.rowcount == 1

    async def release(self, session_id: str, payment_id: str, at: datetime) -> None:
        await self._c.execute(_RELEASE, {"session_id": session_id, "payment_id": payment_id, "at": at})

    async def complete(self, session_id: str, payment_id: str, at: datetime) -> CheckoutSession | None:
        params = {"session_id": session_id, "payment_id": payment_id, "at": at}
        return await self._first(_COMPLETE, params)

    async def complete_by_c2b(self, session_id: str, c2b_payment_id: str, at: datetime) -> CheckoutSession | None:
        params = {"session_id": session_id, "c2b_payment_id": c2b_payment_id, "at": at}
        return await self._first(_COMPLETE_BY_C2B, params)

    async def expire(self, session_id: str, now: datetime, *, due_only: bool) -> CheckoutSession | None:
        return await self._first(_EXPIRE_DUE if due_only else _EXPIRE, {"session_id": session_id, "now": now})
