"""Idempotency keys: claim, complete, release. All SQL for them lives here.

A claim is made in its own short transaction before the request runs, so a concurrent request
with the same key sees `in_progress` (409) instead of running twice; the response is stored when
the request ends. On PostgreSQL two simultaneous first claims meet the primary key: the loser
re-reads and sees the winner's row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from mpesa_bridge.storage.db import Database
from mpesa_bridge.storage.tables import idempotency_keys as t


@dataclass(frozen=True)
class Claim:
    """What a claim found: `new` (go ahead), `replay` (send the stored response), or a refusal."""

    outcome: str  # new | replay | reused | in_progress
    status: int | None = None
    body: bytes | None = None


async def claim(
    db: Database,
    scope: str,
    key: str,
    request_hash: str,
    now: datetime,
    *,
    ttl: float,
    lock_timeout: float,
) -> Claim:
    for _ in range(2):
        try:
            return await _claim_once(db, scope, key, request_hash, now, ttl=ttl, lock_timeout=lock_timeout)
        except IntegrityError:
            continue  # another request inserted the same key a moment ago: read what it wrote
    return Claim("in_progress")


async def _claim_once(
    db: Database, scope: str, key: str, request_hash: str, now: datetime, *, ttl: float, lock_timeout: float
) -> Claim:
    async with db.write() as uow:
        session = uow.session
        where = (t.c.scope == scope) & (t.c.key == key)
        stmt = sa.select(t).where(where)
        if not db.sqlite:
            stmt = stmt.with_for_update()
        row = (await session.execute(stmt)).mappings().first()
        fresh = {
            "request_hash": request_hash,
            "state": "in_progress",
            "response_status": None,
            "response_body": None,
            "created_at": now,
            "expires_at": now + timedelta(seconds=ttl),
        }
        if row is None:
            await session.execute(sa.insert(t).values(scope=scope, key=key, **fresh))
            return Claim("new")
        if row["expires_at"] <= now:
            await session.execute(sa.update(t).where(where).values(**fresh))
            return Claim("new")
        if row["request_hash"] != request_hash:
            return Claim("reused")
        if row["state"] == "completed":
            return Claim("replay", row["response_status"], bytes(row["response_body"] or b""))
        if now - row["created_at"] >= timedelta(seconds=lock_timeout):
            # The first request died without finishing (a crash): let this one take over.
            await session.execute(sa.update(t).where(where).values(**fresh))
            return Claim("new")
        return Claim("in_progress")


async def complete(db: Database, scope: str, key: str, status: int, body: bytes) -> None:
    async with db.write() as uow:
        await uow.session.execute(
            sa.update(t)
            .where((t.c.scope == scope) & (t.c.key == key))
            .values(state="completed", response_status=status, response_body=body)
        )


async def release(db: Database, scope: str, key: str) -> None:
    async with db.write() as uow:
        await uow.session.execute(sa.delete(t).where((t.c.scope == scope) & (t.c.key == key)))


async def prune(db: Database, now: datetime) -> int:
    async with db.write() as uow:
        result = await uow.session.execute(sa.delete(t).where(t.c.expires_at <= now))
        return int(getattr(result, "rowcount", 0) or 0)
