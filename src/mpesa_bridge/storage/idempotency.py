"""Idempotency keys: claim, bind, complete, release. All SQL for them lives here.

A claim is made in its own short transaction before the request runs, so a concurrent request
with the same key sees `in_progress` (409) instead of running twice. Each claim writes a random
`owner`; only that owner may bind, complete or release the key afterwards, so a request that lost
its claim to a takeover can change nothing.

Recovery points (the shape of Stripe's idempotency keys on Postgres): a request that creates a
resource binds the key to it (`SqlIdempotencyRepository.bind`) in the same transaction that
inserts the resource. From then on the key means "that resource": a retry after a crash — at any
line — answers with it (`recover`) and never runs the request again. A claim with no resource
bound can be taken over after the lock timeout: nothing was created, so nothing is done twice.

On PostgreSQL two simultaneous first claims meet the primary key: the loser re-reads and sees the
winner's row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from mpesa_bridge.core.ids import new_token
from mpesa_bridge.storage.tables import idempotency_keys as t

if TYPE_CHECKING:  # storage.db builds SqlIdempotencyRepository into its unit of work
    from mpesa_bridge.storage.db import Database

IN_PROGRESS = "in_progress"
# The owner finished without a storable answer (5xx, 409, 429, an exception) after binding a
# resource: the next request with the key recovers at once instead of waiting for the lock timeout.
UNANSWERED = "unanswered"
COMPLETED = "completed"


@dataclass(frozen=True)
class Claim:
    """What a claim found.

    - `new`: go ahead; `owner` is this request's claim token.
    - `replay`: send the stored answer (`status`, `body`).
    - `recover`: an earlier request created `resource_id` and never answered; answer with that
      resource (`resource_secret`: its sealed client secret) and complete the key as `owner`.
    - `reused` / `in_progress`: refusals.
    """

    outcome: str  # new | replay | recover | reused | in_progress
    status: int | None = None
    body: bytes | None = None
    owner: str | None = None
    resource_id: str | None = None
    resource_secret: str | None = None


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
    return Claim(IN_PROGRESS)


def _where(scope: str, key: str) -> sa.ColumnElement[bool]:
    return (t.c.scope == scope) & (t.c.key == key)


async def _claim_once(
    db: Database, scope: str, key: str, request_hash: str, now: datetime, *, ttl: float, lock_timeout: float
) -> Claim:
    async with db.write() as uow:
        conn = uow.connection
        stmt = sa.select(t).where(_where(scope, key))
        if not db.sqlite:
            stmt = stmt.with_for_update()
        row = (await conn.execute(stmt)).mappings().first()
        owner = new_token()
        if row is None:
            await conn.execute(sa.insert(t).values(scope=scope, key=key, **_fresh(request_hash, now, ttl, owner)))
            return Claim("new", owner=owner)
        if row["expires_at"] <= now:
            fresh = _fresh(request_hash, now, ttl, owner)
            await conn.execute(sa.update(t).where(_where(scope, key)).values(**fresh))
            return Claim("new", owner=owner)
        if row["request_hash"] != request_hash:
            return Claim("reused")
        if row["state"] == COMPLETED:
            return Claim("replay", row["response_status"], bytes(row["response_body"] or b""))
        abandoned = row["state"] == UNANSWERED or now - row["created_at"] >= timedelta(seconds=lock_timeout)
        if not abandoned:
            return Claim(IN_PROGRESS)
        if row["resource_id"] is not None:
            # A recovery point was passed: the resource exists, and a prompt may have been shown.
            # Never run the request again; answer with what it created.
            await conn.execute(sa.update(t).where(_where(scope, key)).values(owner=owner, state=IN_PROGRESS))
            return Claim("recover", owner=owner, resource_id=row["resource_id"], resource_secret=row["resource_secret"])
        # The first request died before creating anything: let this one run it.
        await conn.execute(sa.update(t).where(_where(scope, key)).values(**_fresh(request_hash, now, ttl, owner)))
        return Claim("new", owner=owner)


def _fresh(request_hash: str, now: datetime, ttl: float, owner: str) -> dict[str, object]:
    return {
        "request_hash": request_hash,
        "state": IN_PROGRESS,
        "response_status": None,
        "response_body": None,
        "created_at": now,
        "expires_at": now + timedelta(seconds=ttl),
        "owner": owner,
        "resource_id": None,
        "resource_secret": None,
    }


class SqlIdempotencyRepository:
    """The key's side of a creating transaction (`core.ports.IdempotencyRepository`)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def bind(self, scope: str, key: str, owner: str, resource_id: str, resource_secret: str | None) -> bool:
        """Bind the claimed key to the resource this transaction creates. False: the claim was lost
        (taken over, or the key is gone); the caller must roll back."""
        result = await self._conn.execute(
            sa.update(t)
            .where(_where(scope, key) & (t.c.owner == owner) & (t.c.resource_id.is_(None)))
            .values(resource_id=resource_id, resource_secret=resource_secret)
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1


async def complete(db: Database, scope: str, key: str, owner: str, status: int, body: bytes) -> None:
    async with db.write() as uow:
        await uow.connection.execute(
            sa.update(t)
            .where(_where(scope, key) & (t.c.owner == owner))
            .values(state=COMPLETED, response_status=status, response_body=body)
        )


async def release(db: Database, scope: str, key: str, owner: str) -> None:
    """The request ended without an answer to remember. A key bound to a resource is kept (the next
    request with it recovers the resource at once); an unbound one is forgotten (retry runs again)."""
    async with db.write() as uow:
        conn = uow.connection
        mine = _where(scope, key) & (t.c.owner == owner)
        await conn.execute(sa.delete(t).where(mine & t.c.resource_id.is_(None)))
        await conn.execute(sa.update(t).where(mine & t.c.resource_id.is_not(None)).values(state=UNANSWERED))


async def prune(db: Database, now: datetime) -> int:
    async with db.write() as uow:
        result = await uow.connection.execute(sa.delete(t).where(t.c.expires_at <= now))
        return int(getattr(result, "rowcount", 0) or 0)
