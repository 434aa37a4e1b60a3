"""Group commit for Daraja callbacks: many requests, one transaction, each acknowledged once durable.

Every callback request hands its row to `CallbackStore.store` and waits. One flush runs at a time;
whatever arrived while it ran goes into the next flush, as one multi-row INSERT in one transaction.
Under no load a flush holds one row and starts at once (no timer, no added latency); in a burst,
one commit (one fsync on SQLite, one round of WAL flush on PostgreSQL) serves dozens of callbacks.
A request returns only after the transaction holding its row committed: nothing is acknowledged
before it is durable. If a batch fails, its rows are retried one per transaction, so one bad row
fails only its own request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from mpesa_bridge.core.payments.entity import InboundCallback
from mpesa_bridge.core.ports import UnitOfWorkFactory
from mpesa_bridge.logging import get_logger

log = get_logger("mpesa_bridge.ingest")

Pending = tuple[InboundCallback, "asyncio.Future[None]"]


class CallbackStore:
    def __init__(self, db: UnitOfWorkFactory, max_batch: int = 500) -> None:
        self._db = db
        self._max_batch = max_batch
        self._waiting: list[Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self.batches = 0  # for tests and the benchmarks: how many transactions stored callbacks

    async def store(self, callback: InboundCallback) -> None:
        """Return once `callback` is committed; raise what its transaction raised."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((callback, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="callback-group-commit")
        # shield: a client that hangs up must not cancel the row's fate (it is stored either way).
        await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
            try:
                await self._write([callback for callback, _ in batch])
            except Exception:
                log.warning("ingest.batch_failed", size=len(batch), exc_info=True)
                await self._one_by_one(batch)
            else:
                self.batches += 1
                _settle(batch, None)

    async def _write(self, callbacks: Sequence[InboundCallback]) -> None:
        async with self._db.write() as uow:
            await uow.callbacks.add_many(callbacks)

    async def _one_by_one(self, batch: list[Pending]) -> None:
        for callback, future in batch:
            try:
                await self._write([callback])
            except Exception as exc:
                _settle([(callback, future)], exc)
            else:
                self.batches += 1
                _settle([(callback, future)], None)


def _settle(batch: Sequence[Pending], error: BaseException | None) -> None:
    for _, future in batch:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
