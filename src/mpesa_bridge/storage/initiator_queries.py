"""The repositories both initiator query aggregates share (Transaction Status `tsq_…` and Account
Balance `abq_…`): the same columns for tenant, id and callback token, the same reads and locks.
Each module names its rows and its pending status; the Transaction Status one adds `for_payout`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mpesa_bridge.core.projects import Tenant
from mpesa_bridge.storage.due import created_before
from mpesa_bridge.storage.rows import EntityRows, Loaded


class _Query(Protocol):
    callback_token_hash: str


Q = TypeVar("Q", bound=_Query)


class SqlQueryReader(Generic[Q]):
    """A tenant's queries as values; no lock, no write."""

    rows: ClassVar[EntityRows[Any]]
    _BY_ID: ClassVar[sa.Select[Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "rows" in cls.__dict__:  # built once per aggregate, as a module-level statement would be
            cls._BY_ID = cls.rows.select().where(cls.rows.table.c.id == sa.bindparam("id"))

    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn
        self._t = self.rows.table.c

    async def _all(self, stmt: sa.Executable, params: dict[str, Any] | None = None) -> list[Q]:
        return [self.rows.build(row) for row in await self._c.execute(stmt, params)]

    async def get(self, tenant: Tenant, query_id: str) -> Q | None:
        stmt = self._BY_ID.where(self._t.project_id == tenant.project_id, self._t.mode == tenant.mode.value)
        found = await self._all(stmt, {"id": query_id})
        return found[0] if found else None

    async def list(self, tenant: Tenant, starting_after: str | None, limit: int) -> Sequence[Q]:
        """Newest first, `limit + 1` at most (the extra one says there is a next page)."""
        stmt = self.rows.select().where(self._t.project_id == tenant.project_id, self._t.mode == tenant.mode.value)
        if starting_after is not None:
            stmt = stmt.where(self._t.id < starting_after)
        return await self._all(stmt.order_by(self._t.id.desc()).limit(limit + 1))


class SqlQueryRepository(SqlQueryReader[Q]):
    """Queries in a write unit of work: what `lock` loads it remembers; `save` writes the changes."""

    pending: ClassVar[Any]  # the status of a query still waiting for its Result

    def __init__(self, conn: AsyncConnection, *, lock: bool) -> None:
        super().__init__(conn)
        self._lock = lock
        self._loaded: Loaded[Any] = Loaded(self.rows)

    async def add(self, query: Q) -> None:
        await self.rows.insert(self._c, [query])
        self._loaded.remember(query)

    async def save(self, query: Q) -> None:
        await self._loaded.save(self._c, [query])

    async def lock(self, query_id: str) -> Q | None:
        stmt = self._BY_ID.with_for_update() if self._lock else self._BY_ID
        found: list[Q] = self._loaded.build(await self._c.execute(stmt, {"id": query_id}))
        return found[0] if found else None

    async def lock_by_callback_tokens(self, token_hashes: Sequence[str]) -> Mapping[str, Q]:
        if not token_hashes:
            return {}
        wanted = self._t.callback_token_hash.in_(sorted(set(token_hashes)))
        stmt = self.rows.select().where(wanted).order_by(self._t.id)
        if self._lock:
            stmt = stmt.with_for_update()
        found: list[Q] = self._loaded.build(await self._c.execute(stmt))
        return {q.callback_token_hash: q for q in found}

    async def stale_pending(self, before: datetime, limit: int) -> Sequence[str]:
        return await created_before(self._c, self.rows.table, self.pending, before, limit)
