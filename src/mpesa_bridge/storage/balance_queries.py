"""The balance query aggregate's repositories (SQLAlchemy Core); tenant queries scoped by project
and mode, the inbox's look-up by the SHA-256 of the callback token."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mpesa_bridge.core.balances.entity import BalanceQuery, BalanceQueryStatus
from mpesa_bridge.core.projects import Tenant
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.due import created_before
from mpesa_bridge.storage.rows import EntityRows, Loaded

QUERIES = EntityRows(tables.balance_queries, BalanceQuery)
_c = tables.balance_queries.c
_BY_ID = QUERIES.select().where(_c.id == sa.bindparam("id"))
_BY_TENANT_ID = _BY_ID.where(_c.project_id == sa.bindparam("project_id"), _c.mode == sa.bindparam("mode"))


class SqlBalanceQueryReader:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def get(self, tenant: Tenant, query_id: str) -> BalanceQuery | None:
        params = {"id": query_id, "project_id": tenant.project_id, "mode": tenant.mode.value}
        row = (await self._c.execute(_BY_TENANT_ID, params)).first()
        return QUERIES.build(row) if row is not None else None

    async def list(self, tenant: Tenant, starting_after: str | None, limit: int) -> Sequence[BalanceQuery]:
        stmt = QUERIES.select().where(_c.project_id == tenant.project_id, _c.mode == tenant.mode.value)
        if starting_after is not None:
            stmt = stmt.where(_c.id < starting_after)
        stmt = stmt.order_by(_c.id.desc()).limit(limit + 1)
        return [QUERIES.build(row) for row in await self._c.execute(stmt)]


class SqlBalanceQueryRepository(SqlBalanceQueryReader):
    def __init__(self, conn: AsyncConnection, *, lock: bool) -> None:
        super().__init__(conn)
        self._lock = lock
        self._loaded = Loaded(QUERIES)

    async def add(self, query: BalanceQuery) -> None:
        await QUERIES.insert(self._c, [query])
        self._loaded.remember(query)

    async def save(self, query: BalanceQuery) -> None:
        await self._loaded.save(self._c, [query])

    async def lock(self, query_id: str) -> BalanceQuery | None:
        stmt = _BY_ID.with_for_update() if self._lock else _BY_ID
        found = self._loaded.build(await self._c.execute(stmt, {"id": query_id}))
        return found[0] if found else None

    async def lock_by_callback_tokens(self, token_hashes: Sequence[str]) -> Mapping[str, BalanceQuery]:
        if not token_hashes:
            return {}
        stmt = QUERIES.select().where(_c.callback_token_hash.in_(sorted(set(token_hashes)))).order_by(_c.id)
        if self._lock:
            stmt = stmt.with_for_update()
        return {q.callback_token_hash: q for q in self._loaded.build(await self._c.execute(stmt))}

    async def stale_pending(self, before: datetime, limit: int) -> Sequence[str]:
        return await created_before(self._c, tables.balance_queries, BalanceQueryStatus.PENDING, before, limit)
