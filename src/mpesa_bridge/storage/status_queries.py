"""Transaction Status queries' repositories (SQLAlchemy Core). Tenant queries scoped by project and mode."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mpesa_bridge.core.projects import Tenant
from mpesa_bridge.core.status_queries.entity import StatusQuery, StatusQueryStatus
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.due import created_before
from mpesa_bridge.storage.rows import EntityRows, Loaded

QUERIES = EntityRows(tables.status_queries, StatusQuery)
_c = tables.status_queries.c
_BY_ID = QUERIES.select().where(_c.id == sa.bindparam("id"))


class SqlStatusQueryReader:
    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def _all(self, stmt: sa.Executable, params: dict[str, Any] | None = None) -> list[StatusQuery]:
        return [QUERIES.build(row) for row in await self._c.execute(stmt, params)]

    async def get(self, tenant: Tenant, query_id: str) -> StatusQuery | None:
        stmt = _BY_ID.where(_c.project_id == tenant.project_id, _c.mode == tenant.mode.value)
        found = await self._all(stmt, {"id": query_id})
        return found[0] if found else None

    async def list(self, tenant: Tenant, starting_after: str | None, limit: int) -> Sequence[StatusQuery]:
        stmt = QUERIES.select().where(_c.project_id == tenant.project_id, _c.mode == tenant.mode.value)
        if starting_after is not None:
            stmt = stmt.where(_c.id < starting_after)
        return await self._all(stmt.order_by(_c.id.desc()).limit(limit + 1))

    async def for_payout(self, payout_id: str) -> Sequence[StatusQuery]:
        return await self._all(QUERIES.select().where(_c.payout_id == payout_id).order_by(_c.id))


class SqlStatusQueryRepository(SqlStatusQueryReader):
    def __init__(self, conn: AsyncConnection, *, lock: bool) -> None:
        super().__init__(conn)
        self._lock = lock
        self._loaded = Loaded(QUERIES)

    async def add(self, query: StatusQuery) -> None:
        await QUERIES.insert(self._c, [query])
        self._loaded.remember(query)

    async def save(self, query: StatusQuery) -> None:
        await self._loaded.save(self._c, [query])

    async def lock(self, query_id: str) -> StatusQuery | None:
        stmt = _BY_ID.with_for_update() if self._lock else _BY_ID
        found = self._loaded.build(await self._c.execute(stmt, {"id": query_id}))
        return found[0] if found else None

    async def lock_by_callback_tokens(self, token_hashes: Sequence[str]) -> Mapping[str, StatusQuery]:
        if not token_hashes:
            return {}
        stmt = QUERIES.select().where(_c.callback_token_hash.in_(sorted(set(token_hashes)))).order_by(_c.id)
        if self._lock:
            stmt = stmt.with_for_update()
        return {q.callback_token_hash: q for q in self._loaded.build(await self._c.execute(stmt))}

    async def stale_pending(self, before: datetime, limit: int) -> Sequence[str]:
        return await created_before(self._c, tables.status_queries, StatusQueryStatus.PENDING, before, limit)
