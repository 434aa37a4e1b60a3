"""The reversal aggregate's repositories (SQLAlchemy Core). Tenant queries are scoped by project
and mode; the inbox finds a reversal by the SHA-256 of its callback token."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mpesa_bridge.core.projects import Tenant
from mpesa_bridge.core.reversals.entity import Reversal, ReversalStatus
from mpesa_bridge.core.reversals.ports import ReversalFilter
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.due import claim_due
from mpesa_bridge.storage.rows import EntityRows, Loaded

REVERSALS = EntityRows(tables.reversals, Reversal)
_c = tables.reversals.c
_BY_ID = REVERSALS.select().where(_c.id == sa.bindparam("id"))
_BY_TENANT_ID = _BY_ID.where(_c.project_id == sa.bindparam("project_id"), _c.mode == sa.bindparam("mode"))
_QUERYABLE = [ReversalStatus.SENT, ReversalStatus.UNKNOWN]
_FOR_PAYMENT = REVERSALS.select().where(_c.payment_id == sa.bindparam("payment_id")).order_by(_c.id)


class SqlReversalReader:
    """Reversals as values; no lock, no write (`core.reversals.ports.ReversalReader`)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def get(self, tenant: Tenant, reversal_id: str) -> Reversal | None:
        params = {"id": reversal_id, "project_id": tenant.project_id, "mode": tenant.mode.value}
        row = (await self._c.execute(_BY_TENANT_ID, params)).first()
        return REVERSALS.build(row) if row is not None else None

    async def list(self, tenant: Tenant, query: ReversalFilter) -> Sequence[Reversal]:
        stmt = REVERSALS.select().where(_c.project_id == tenant.project_id, _c.mode == tenant.mode.value)
        if query.payment_id is not None:
            stmt = stmt.where(_c.payment_id == query.payment_id)
        if query.starting_after is not None:
            stmt = stmt.where(_c.id < query.starting_after)
        stmt = stmt.order_by(_c.id.desc()).limit(query.limit + 1)
        return [REVERSALS.build(row) for row in await self._c.execute(stmt)]

    async def for_payment(self, payment_id: str) -> Sequence[Reversal]:
        return [REVERSALS.build(row) for row in await self._c.execute(_FOR_PAYMENT, {"payment_id": payment_id})]

    async def find(self, reversal_id: str) -> Reversal | None:
        """Any tenant's reversal by id (the reconciler's read)."""
        row = (await self._c.execute(_BY_ID, {"id": reversal_id})).first()
        return REVERSALS.build(row) if row is not None else None


class SqlReversalRepository(SqlReversalReader):
    """Reversals in a write unit of work: what `lock` loads it remembers; `save` writes the changes."""

    def __init__(self, conn: AsyncConnection, *, lock: bool) -> None:
        super().__init__(conn)
        self._lock = lock
        self._loaded = Loaded(REVERSALS)

    def _locked(self, stmt: sa.Select[tuple[object, ...]]) -> sa.Select[tuple[object, ...]]:
        return stmt.with_for_update() if self._lock else stmt

    async def add(self, reversal: Reversal) -> None:
        await REVERSALS.insert(self._c, [reversal])
        self._loaded.remember(reversal)

    async def save(self, reversal: Reversal) -> None:
        await self._loaded.save(self._c, [reversal])

    async def lock(self, reversal_id: str) -> Reversal | None:
        found = self._loaded.build(await self._c.execute(self._locked(_BY_ID), {"id": reversal_id}))
        return found[0] if found else None

    async def lock_by_callback_tokens(self, token_hashes: Sequence[str]) -> Mapping[str, Reversal]:
        if not token_hashes:
            return {}
        stmt = REVERSALS.select().where(_c.callback_token_hash.in_(sorted(set(token_hashes)))).order_by(_c.id)
        found = self._loaded.build(await self._c.execute(self._locked(stmt)))
        return {r.callback_token_hash: r for r in found}

    async def claim_due_for_query(self, now: datetime, limit: int, hold_until: datetime) -> Sequence[str]:
        """Reversals to ask Transaction Status about now, their `next_query_at` moved to `hold_until`."""
        conditions = [_c.status.in_(_QUERYABLE), _c.originator_conversation_id.is_not(None)]
        return await claim_due(self._c, tables.reversals, conditions, now, limit, hold_until, lock=self._lock)

    async def stranded(self, before: datetime, limit: int) -> Sequence[str]:
        stmt = (
            sa.select(_c.id)
            .where(_c.status == ReversalStatus.SENDING, _c.created_at < before)
            .order_by(_c.created_at)
            .limit(limit)
        )
        return [row[0] for row in await self._c.execute(stmt)]
