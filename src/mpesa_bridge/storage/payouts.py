"""The payout aggregate's repositories: payouts and their project's payout settings (SQLAlchemy Core).

Tenant queries are scoped by project and mode. Writes are explicit verbs (`add`, `save`,
`put_settings`); the reconciler's claim moves `next_query_at` in the claiming transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mpesa_bridge.core.payouts.entity import Payout, PayoutSettings
from mpesa_bridge.core.payouts.ports import PayoutFilter
from mpesa_bridge.core.payouts.status import COMMITTED, PayoutStatus
from mpesa_bridge.core.projects import Tenant
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.due import claim_due
from mpesa_bridge.storage.rows import EntityRows, Loaded

PAYOUTS = EntityRows(tables.payouts, Payout)
SETTINGS = EntityRows(tables.payout_settings, PayoutSettings, key=("project_id", "mode"))
_c = tables.payouts.c
_s = tables.payout_settings.c
_BY_ID = PAYOUTS.select().where(_c.id == sa.bindparam("id"))
_BY_ID_LOCKED = _BY_ID.with_for_update()
_LOCK_TENANT = sa.text("SELECT pg_advisory_xact_lock(:key)")
_QUERYABLE = (PayoutStatus.SENT, PayoutStatus.UNKNOWN)


def _tenant(tenant: Tenant) -> dict[str, Any]:
    return {"project_id": tenant.project_id, "mode": tenant.mode.value}


class SqlPayoutReader:
    """Payouts as values; no lock, no write (`core.payouts.ports.PayoutReader`)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def _all(self, stmt: sa.Executable, params: dict[str, Any] | None = None) -> list[Payout]:
        return [PAYOUTS.build(row) for row in await self._c.execute(stmt, params)]

    async def get(self, tenant: Tenant, payout_id: str) -> Payout | None:
        stmt = _BY_ID.where(_c.project_id == tenant.project_id, _c.mode == tenant.mode.value)
        found = await self._all(stmt, {"id": payout_id})
        return found[0] if found else None

    async def find(self, payout_id: str) -> Payout | None:
        found = await self._all(_BY_ID, {"id": payout_id})
        return found[0] if found else None

    async def list(self, tenant: Tenant, query: PayoutFilter) -> Sequence[Payout]:
        stmt = PAYOUTS.select().where(_c.project_id == tenant.project_id, _c.mode == tenant.mode.value)
        if query.status is not None:
            stmt = stmt.where(_c.status == query.status)
        if query.starting_after is not None:
            stmt = stmt.where(_c.id < query.starting_after)
        return await self._all(stmt.order_by(_c.id.desc()).limit(query.limit + 1))

    async def committed_amount(self, tenant: Tenant, since: datetime, before: datetime) -> int:
        stmt = sa.select(sa.func.coalesce(sa.func.sum(_c.amount), 0)).where(
            _c.project_id == tenant.project_id,
            _c.mode == tenant.mode.value,
            _c.created_at >= since,
            _c.created_at < before,
            _c.status.in_(sorted(COMMITTED)),
        )
        return int((await self._c.execute(stmt)).scalar_one())

    async def settings(self, tenant: Tenant) -> PayoutSettings | None:
        stmt = SETTINGS.select().where(_s.project_id == tenant.project_id, _s.mode == tenant.mode.value)
        row = (await self._c.execute(stmt)).first()
        return SETTINGS.build(row) if row is not None else None

    async def stale(self, statuses: Sequence[PayoutStatus], before: datetime, limit: int) -> Sequence[str]:
        stmt = (
            sa.select(_c.id)
            .where(_c.status.in_(list(statuses)), _c.updated_at < before)
            .order_by(_c.updated_at)
            .limit(limit)
        )
        return [row[0] for row in await self._c.execute(stmt)]


class SqlPayoutRepository(SqlPayoutReader):
    """Payouts in a write unit of work: what it loads it remembers; `save` writes the changes."""

    def __init__(self, conn: AsyncConnection, *, lock: bool) -> None:
        super().__init__(conn)
        self._lock = lock
        self._loaded = Loaded(PAYOUTS)

    async def add(self, payout: Payout) -> None:
        await PAYOUTS.insert(self._c, [payout])
        self._loaded.remember(payout)

    async def save(self, payout: Payout) -> None:
        await self._loaded.save(self._c, [payout])

    async def lock(self, payout_id: str) -> Payout | None:
        found = self._loaded.build(await self._c.execute(_BY_ID_LOCKED if self._lock else _BY_ID, {"id": payout_id}))
        return found[0] if found else None

    async def lock_by_callback_tokens(self, token_hashes: Sequence[str]) -> Mapping[str, Payout]:
        if not token_hashes:
            return {}
        stmt = PAYOUTS.select().where(_c.callback_token_hash.in_(sorted(set(token_hashes)))).order_by(_c.id)
        if self._lock:
            stmt = stmt.with_for_update()
        found = self._loaded.build(await self._c.execute(stmt))
        return {p.callback_token_hash: p for p in found if p.callback_token_hash is not None}

    async def lock_tenant(self, tenant: Tenant) -> None:
        """PostgreSQL: a transaction-scoped advisory lock; SQLite has a single writer already."""
        if self._lock:
            name = f"payouts:{tenant.project_id}:{tenant.mode.value}"
            key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
            await self._c.execute(_LOCK_TENANT, {"key": key})

    async def claim_due_for_query(self, now: datetime, limit: int, hold_until: datetime) -> Sequence[str]:
        conditions = [_c.status.in_(_QUERYABLE)]
        return await claim_due(self._c, tables.payouts, conditions, now, limit, hold_until, lock=self._lock)

    async def put_settings(self, settings: PayoutSettings) -> None:
        values = SETTINGS.values(settings)
        key = {"project_id": settings.project_id, "mode": settings.mode}
        updated = await self._c.execute(
            sa.update(tables.payout_settings)
            .where(_s.project_id == settings.project_id, _s.mode == settings.mode)
            .values({k: v for k, v in values.items() if k not in key})
        )
        if updated.rowcount == 0:
            await self._c.execute(sa.insert(tables.payout_settings).values(values))
