"""New rows a write unit of work collects (outbox events, evidence) and writes together.

A use case adds events and evidence one at a time; they are written as one INSERT per table when
the unit of work commits — or earlier, before a read that must see them (`flush`). A callback
batch of 64 writes its 64 events in one statement, not 64.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from mpesa_bridge.storage.rows import EntityRows


class PendingRows:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._queued: dict[EntityRows[Any], list[Any]] = {}  # tables in the order first added
        self.written: list[Any] = []  # everything flushed, in order: announced once committed

    def add(self, rows: EntityRows[Any], entity: Any) -> None:
        self._queued.setdefault(rows, []).append(entity)

    async def flush(self) -> None:
        queued, self._queued = self._queued, {}
        for rows, entities in queued.items():
            await rows.insert(self._conn, entities)
            self.written.extend(entities)
