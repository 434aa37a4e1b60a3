"""The outbox's repository: events by subject, and the live streams' reads by position.

Events are written beside the state change that caused them, in its transaction: `add` queues the
event with the unit of work's other new rows (one multi-row INSERT at commit, `storage.pending`),
and the unit of work announces what it wrote once the commit succeeded (`Database.on_commit`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mpesa_bridge.core.payments.entity import PAYMENT, OutboxEvent, Subject
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.pending import PendingRows
from mpesa_bridge.storage.rows import EntityRows

EVENTS = EntityRows(tables.outbox_events, OutboxEvent)


def build_events(result: Any) -> list[OutboxEvent]:
    return [EVENTS.build(row) for row in result]


class SqlEventReader:
    """Reads of the outbox (`core.ports.EventReader`, and `realtime.sse`'s stream reads)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._c = conn

    async def _flushed(self) -> None:
        """A read unit of work adds nothing: nothing to write before reading."""

    async def for_payment(self, payment_id: str) -> Sequence[OutboxEvent]:
        return await self.for_subject(Subject(PAYMENT, payment_id))

    async def for_subject(self, subject: Subject) -> Sequence[OutboxEvent]:
        await self._flushed()
        c = tables.outbox_events.c
        stmt = EVENTS.select().where(c.subject_type == subject.type, c.subject_id == subject.id)
        return build_events(await self._c.execute(stmt.order_by(c.id)))

    # --- live streams (realtime.sse): a project mode's events by `position`, their commit order ---

    async def stream_position(
        self, project_id: str, mode: str, event_id: str, *, subject: Subject | None = None
    ) -> int | None:
        """The position of `event_id` in the tenant's (or the subject's) stream; None if it is not in it."""
        c = tables.outbox_events.c
        stmt = sa.select(c.position).where(
            c.id == event_id, c.project_id == project_id, c.mode == mode, c.position.is_not(None)
        )
        if subject is not None:
            stmt = stmt.where(c.subject_type == subject.type, c.subject_id == subject.id)
        position: int | None = (await self._c.execute(stmt)).scalar_one_or_none()
        return position

    async def stream_tail(self, project_id: str, mode: str) -> int:
        """The tenant's last committed position (0: none yet): a stream starting there gets what comes next."""
        c = tables.outbox_events.c
        stmt = sa.select(sa.func.max(c.position)).where(c.project_id == project_id, c.mode == mode)
        return int((await self._c.execute(stmt)).scalar() or 0)

    async def stream_after(
        self, project_id: str, mode: str, position: int, *, subject: Subject | None = None, limit: int = 100
    ) -> list[tuple[OutboxEvent, int]]:
        """The events after `position`, in commit order, each with its position.

        Positions become visible in order and without gaps (migration 0004), so a reader that has
        seen position n has seen everything before it, whatever the events' ids."""
        c = tables.outbox_events.c
        columns = (*EVENTS.columns, c.position)
        width = len(EVENTS.columns)
        if subject is not None:
            # By the subject's own index: with the tenant in the WHERE clause the planners walk the
            # tenant's whole history after `position` (ix_outbox_events_tenant_position). The tenant
            # is still checked, on the few rows found.
            stmt = sa.select(*columns).where(
                c.subject_type == subject.type, c.subject_id == subject.id, c.position > position
            )
            rows = await self._c.execute(stmt.order_by(c.position).limit(limit))
            found = [(EVENTS.build(row[:width]), int(row[width])) for row in rows]
            return [(e, at) for e, at in found if e.project_id == project_id and e.mode == mode]
        stmt = sa.select(*columns).where(c.project_id == project_id, c.mode == mode, c.position > position)
        rows = await self._c.execute(stmt.order_by(c.position).limit(limit))
        return [(EVENTS.build(row[:width]), int(row[width])) for row in rows]


class SqlEventRepository(SqlEventReader):
    """The outbox in a write unit of work (`core.ports.EventRepository`)."""

    def __init__(self, conn: AsyncConnection, pending: PendingRows) -> None:
        super().__init__(conn)
        self._queue = pending

    async def _flushed(self) -> None:
        await self._queue.flush()  # what this unit of work added is among what it reads

    async def add(self, event: OutboxEvent) -> None:
        self._queue.add(EVENTS, event)

    async def add_now(self, event: OutboxEvent) -> None:
        """Write it at once (with anything queued before it): a row that references it follows."""
        self._queue.add(EVENTS, event)
        await self._queue.flush()
