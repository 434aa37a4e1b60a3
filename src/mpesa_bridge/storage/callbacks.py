"""The inbox's repository: callbacks exactly as they arrived, then what their handler made of them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mpesa_bridge.core.payments.entity import InboundCallback
from mpesa_bridge.core.projects import Tenant
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.rows import EntityRows, Loaded

CALLBACKS = EntityRows(tables.inbound_callbacks, InboundCallback)
_c = tables.inbound_callbacks.c
_BY_IDS = CALLBACKS.select().where(_c.id.in_(sa.bindparam("ids", expanding=True))).order_by(_c.id)
_BY_IDS_LOCKED = _BY_IDS.with_for_update(skip_locked=True)  # another worker's rows are skipped
_p = tables.payments.c
NEEDS_REVIEW = ("flagged", "failed")  # states a person should look at (the attention queue)


# Callback kinds whose token names a row of these tables (the token's SHA-256 in the column given):
# a callback about a payout, a reversal, a status or balance query, or a C2B registration belongs
# to that row's tenant, whatever its handler made of it (a flagged one is shown in that attention queue).
_TOKEN_OWNERS = (
    (tables.payouts, tables.payouts.c.callback_token_hash),
    (tables.reversals, tables.reversals.c.callback_token_hash),
    (tables.status_queries, tables.status_queries.c.callback_token_hash),
    (tables.balance_queries, tables.balance_queries.c.callback_token_hash),
    (tables.c2b_registrations, tables.c2b_registrations.c.token_hash),
)


def _of_tenant(tenant: Tenant) -> sa.ColumnElement[bool]:
    """Tied to something of the tenant: a payment (the one the handler found, or by the callback
    token), or the payout, reversal, query or C2B registration whose callback token it carries. A
    token nobody issued (a spoofed callback) belongs to no tenant."""
    payment = sa.or_(_p.id == _c.payment_id, _p.callback_token_hash == _c.token_hash)
    owners = [sa.exists().where(payment, _p.project_id == tenant.project_id, _p.mode == tenant.mode.value)]
    for table, token in _TOKEN_OWNERS:
        owners.append(
            sa.exists().where(
                token == _c.token_hash, table.c.project_id == tenant.project_id, table.c.mode == tenant.mode.value
            )
        )
    return sa.or_(*owners)


class SqlCallbackReader:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def unprocessed(self, due_by: datetime, limit: int) -> Sequence[str]:
        c = tables.inbound_callbacks.c
        due = sa.or_(c.next_attempt_at.is_(None), c.next_attempt_at <= due_by)
        stmt = sa.select(c.id).where(c.state == "received", due).order_by(c.received_at).limit(limit)
        return (await self._c.execute(stmt)).scalars().all()

    async def needing_review(self, tenant: Tenant, limit: int) -> Sequence[InboundCallback]:
        stmt = (
            CALLBACKS.select()
            .where(_c.state.in_(NEEDS_REVIEW), _of_tenant(tenant))
            .order_by(_c.received_at.desc(), _c.id.desc())
            .limit(limit)
        )
        return [CALLBACKS.build(row) for row in await self._c.execute(stmt)]

    async def get(self, tenant: Tenant, callback_id: str) -> InboundCallback | None:
        stmt = CALLBACKS.select().where(_c.id == callback_id, _of_tenant(tenant))
        found = [CALLBACKS.build(row) for row in await self._c.execute(stmt)]
        return found[0] if found else None

    async def for_payment(self, payment_id: str) -> Sequence[InboundCallback]:
        stmt = CALLBACKS.select().where(_c.payment_id == payment_id).order_by(_c.received_at, _c.id)
        return [CALLBACKS.build(row) for row in await self._c.execute(stmt)]


class SqlCallbackRepository(SqlCallbackReader):
    def __init__(self, conn: AsyncConnection, *, lock: bool) -> None:
        super().__init__(conn)
        self._lock = lock
        self._loaded = Loaded(CALLBACKS)

    async def add_many(self, callbacks: Sequence[InboundCallback]) -> None:
        await CALLBACKS.insert(self._c, callbacks)  # one multi-row INSERT
        for callback in callbacks:
            self._loaded.remember(callback)

    async def lock_many(self, callback_ids: Sequence[str]) -> Sequence[InboundCallback]:
        stmt = _BY_IDS_LOCKED if self._lock else _BY_IDS
        return self._loaded.build(await self._c.execute(stmt, {"ids": list(callback_ids)}))

    async def save_many(self, callbacks: Sequence[InboundCallback]) -> None:
        await self._loaded.save(self._c, callbacks)
