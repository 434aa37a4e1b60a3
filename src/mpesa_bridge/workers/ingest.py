"""Group commit for Daraja callbacks: many requests, one transaction, each acknowledged once durable.

Every callback request hands its row to `CallbackStore.store` and waits. One flush runs at a time;
whatever arrived while it ran goes into the next flush, as one multi-row INSERT in one transaction
(`core.group_commit`). Under no load a flush holds one row and starts at once (no timer, no added
latency); in a burst, one commit (one fsync on SQLite, one round of WAL flush on PostgreSQL) serves
dozens of callbacks. A request returns only after the transaction holding its row committed:
nothing is acknowledged before it is durable. If a batch fails, its rows are retried one per
transaction, so one bad row fails only its own request.
"""

from __future__ import annotations

from collections.abc import Sequence

from mpesa_bridge.core.group_commit import GroupCommit
from mpesa_bridge.core.payments.entity import InboundCallback
from mpesa_bridge.core.ports import UnitOfWorkFactory
from mpesa_bridge.logging import get_logger

log = get_logger("mpesa_bridge.ingest")


class CallbackStore:
    def __init__(self, db: UnitOfWorkFactory, max_batch: int = 500) -> None:
        self._db = db
        self._commit = GroupCommit(self._write, max_batch=max_batch, on_batch_failure=_batch_failed)

    @property
    def batches(self) -> int:
        """How many transactions stored callbacks (for tests and the benchmarks)."""
        return self._commit.batches

    async def store(self, callback: InboundCallback) -> None:
        """Return once `callback` is committed; raise what its transaction raised."""
        await self._commit.submit(callback)

    async def _write(self, callbacks: Sequence[InboundCallback]) -> None:
        async with self._db.write() as uow:
            await uow.callbacks.add_many(callbacks)


def _batch_failed(batch: Sequence[InboundCallback], error: Exception) -> None:
    log.warning("ingest.batch_failed", size=len(batch), exc_info=error)
