"""The two reads every "ask Daraja later" aggregate shares (payouts, reversals, status and balance
queries): claim the rows whose next question is due, and find the ones still waiting past a cut-off.

Written once here so that each repository states only what is its own: which statuses qualify and
any further condition.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection


async def claim_due(
    conn: AsyncConnection,
    table: sa.Table,
    conditions: Sequence[sa.ColumnElement[bool]],
    now: datetime,
    limit: int,
    hold_until: datetime,
    *,
    lock: bool,
) -> list[str]:
    """Ids of `table`'s rows meeting `conditions` whose `next_query_at` has come, oldest due first;
    their `next_query_at` moved to `hold_until` in the caller's transaction, so that no other pass
    takes them meanwhile. With `lock` (PostgreSQL) rows another transaction holds are skipped."""
    c = table.c
    stmt = (
        sa.select(c.id)
        .where(*conditions, c.next_query_at.is_not(None), c.next_query_at <= now)
        .order_by(c.next_query_at)
        .limit(limit)
    )
    if lock:
        stmt = stmt.with_for_update(skip_locked=True)
    ids = [row[0] for row in await conn.execute(stmt)]
    if ids:
        await conn.execute(sa.update(table).where(c.id.in_(ids)).values(next_query_at=hold_until))
    return ids


async def created_before(
    conn: AsyncConnection, table: sa.Table, status: Any, before: datetime, limit: int
) -> list[str]:
    """Ids of `table`'s rows in `status` created before `before`, oldest first (index on status, created_at)."""
    c = table.c
    stmt = sa.select(c.id).where(c.status == status, c.created_at < before).order_by(c.created_at, c.id).limit(limit)
    return [row[0] for row in await conn.execute(stmt)]
