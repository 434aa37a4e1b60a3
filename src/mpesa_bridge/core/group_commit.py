"""Group commit: whatever arrives while one transaction runs is written together in the next one.

One write runs at a time. Items handed over meanwhile queue up and go, at most `max_batch` at a
time, into the next write — one transaction for many. Under no load a write holds one item and
starts at once (no timer, no added latency); in a burst one commit serves dozens of items.

If a write of several items fails, each is written again in a transaction of its own, so one bad
item fails only itself; the others are not lost. A single item that fails is reported to
`on_failure` (and to its waiter, for `submit`). The callback ingest (`workers.ingest`), the inbox
(`workers.inbox`), the reconciler's answers (`core.payments.reconcile`) and the webhook attempts
(`core.webhooks.delivery`) all write this way, each with its own batch limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")

Write = Callable[[Sequence[T]], Awaitable[object]]  # what it returns is ignored
Starter = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]
_Pending = tuple[T, "asyncio.Future[None] | None"]


class GroupCommit(Generic[T]):
    """Writes items in shared transactions through `write(batch)` (one transaction per call).

    - `submit(item)` returns once the transaction holding `item` committed, and raises what it raised;
    - `put(item)` queues without waiting; `flush()` waits until everything put is written;
    - `write_now(items)` writes in the caller's task, batch by batch, with the same fallback.

    `on_failure(item, error)` hears of each item whose own transaction failed, and
    `on_batch_failure(batch, error)` of each shared one that did before its items are retried alone;
    neither may raise. `start` runs the background writer (default `asyncio.create_task`), so that
    a worker can keep hold of the task and cancel it when it stops.
    """

    def __init__(
        self,
        write: Write[T],
        *,
        max_batch: int,
        on_failure: Callable[[T, Exception], Awaitable[None]] | None = None,
        on_batch_failure: Callable[[Sequence[T], Exception], None] | None = None,
        start: Starter | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("a batch holds at least one item")
        self._write = write
        self._max_batch = max_batch
        self._on_failure = on_failure
        self._on_batch_failure = on_batch_failure
        self._start = start or asyncio.create_task
        self._queue: list[_Pending[T]] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # committed transactions, for tests and the benchmarks

    async def submit(self, item: T) -> None:
        """Return once `item` is committed; raise what its own transaction raised."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._wake()
        # shield: a caller that goes away must not cancel the item's fate (it is written either way).
        await asyncio.shield(future)

    def put(self, item: T) -> None:
        self._queue.append((item, None))
        self._wake()

    async def flush(self) -> None:
        while self._task is not None and not self._task.done():
            await asyncio.wait([self._task])

    async def write_now(self, items: Sequence[T]) -> None:
        for start in range(0, len(items), self._max_batch):
            await self._write_batch([(item, None) for item in items[start : start + self._max_batch]])

    def _wake(self) -> None:
        if self._task is None or self._task.done():
            self._task = self._start(self._drain())

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            try:
                await self._write_batch(batch)
            except asyncio.CancelledError:  # the worker stops: nobody waits for ever on a write that never ran
                for _, future in [*batch, *self._queue]:
                    if future is not None:
                        future.cancel()
                self._queue = []
                raise

    async def _write_batch(self, batch: Sequence[_Pending[T]]) -> None:
        try:
            await self._write([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                await self._failed(batch[0], exc)
                return
            if self._on_batch_failure is not None:
                self._on_batch_failure([item for item, _ in batch], exc)
            for pending in batch:  # one item's trouble must not hold back the others
                await self._write_batch([pending])
        else:
            self.batches += 1
            for _, future in batch:
                if future is not None and not future.done():
                    future.set_result(None)

    async def _failed(self, pending: _Pending[T], error: Exception) -> None:
        item, future = pending
        if future is not None and not future.done():
            future.set_exception(error)
        if self._on_failure is not None:
            await self._on_failure(item, error)
