"""The inbox worker: applies stored callbacks, at once when they arrive and by sweeping later.

The callback route stores the raw body, answers Daraja, and hands the id here. If the process
dies in between, the sweep finds the row still `received` and applies it after a restart.
In a burst, the ids that queued up while a transaction ran are applied together in the next one
(one commit for many callbacks); if that transaction fails, each is retried in one of its own.

A callback that fails on its own is recorded as failed in a transaction of its own (the failed one
is rolled back, its count with it): attempts, the error's class and when it is due again, on the
schedule of `core.callbacks.retry`. The sweep reads only rows that are due, oldest first, so rows
waiting for a retry, or left `failed` after the last one, never stand in front of newer callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

from mpesa_bridge.core.callbacks.retry import InboxRetryPolicy, record_failure
from mpesa_bridge.core.callbacks.stk import apply_stk_callback
from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.payments.entity import InboundCallback
from mpesa_bridge.core.payments.policy import ReconcilePolicy
from mpesa_bridge.core.ports import UnitOfWorkFactory
from mpesa_bridge.logging import get_logger

log = get_logger("mpesa_bridge.inbox")

MAX_BATCH = 64  # per transaction: bigger batches save little and hold the single SQLite writer longer


class Inbox:
    def __init__(
        self,
        db: UnitOfWorkFactory,
        clock: Clock,
        policy: ReconcilePolicy,
        sweep_interval: float = 2.0,
        *,
        retry: InboxRetryPolicy | None = None,
        sweep_batch: int = 500,
    ) -> None:
        self._db = db
        self._clock = clock
        self._policy = policy
        self._sweep_interval = sweep_interval
        self._retry = retry or InboxRetryPolicy()
        self.sweep_batch = sweep_batch
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        # Held while a callback is being applied, so that stopping never cancels a transaction.
        self._busy = asyncio.Lock()

    def submit(self, callback_id: str) -> None:
        """Apply soon. Without running workers the row simply waits for a worker's sweep."""
        if self._tasks:
            self._queue.put_nowait(callback_id)

    async def process(self, callback_id: str) -> bool:
        """Apply one stored callback; False if it was already processed (or is being)."""
        return await self.process_many([callback_id]) == 1

    async def process_many(self, callback_ids: list[str]) -> int:
        """Apply stored callbacks in one transaction; how many were applied by this call."""
        results = []
        async with self._db.write() as uow:
            locked = await uow.callbacks.lock_many(callback_ids)
            # Due only: an id read by a sweep may have failed meanwhile and now waits for its retry.
            callbacks = [c for c in locked if _due(c, self._clock.now())]
            await uow.payments.lock_by_callback_tokens([c.token_hash for c in callbacks])
            for callback in callbacks:
                await apply_stk_callback(uow, callback, self._clock.now(), self._policy)
                results.append(callback)
        for callback in results:
            log.info(
                "callback.processed",
                callback_id=callback.id,
                state=callback.state,
                reason=callback.flag_reason,
                payment_id=callback.payment_id,
            )
        return len(results)

    async def sweep(self) -> int:
        async with self._busy, self._db.read() as uow:
            ids = list(await uow.callbacks.unprocessed(self._clock.now(), self.sweep_batch))
        done = 0
        for start in range(0, len(ids), MAX_BATCH):
            done += await self._safely_many(ids[start : start + MAX_BATCH])
        return done

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._consume(), name="inbox-consume"),
            asyncio.create_task(self._sweep_forever(), name="inbox-sweep"),
        ]

    async def stop(self) -> None:
        async with self._busy:
            for task in self._tasks:
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _safely(self, callback_id: str) -> int:
        async with self._busy:
            try:
                return int(await self.process(callback_id))
            except Exception as exc:
                log.exception("callback.process_failed", callback_id=callback_id)
                await self._record_failure(callback_id, type(exc).__name__)
                return 0

    async def _record_failure(self, callback_id: str, error: str) -> None:
        now = self._clock.now()
        try:
            async with self._db.write() as uow:
                # Locked afresh: skipped if another worker is trying it right now (its try counts).
                callbacks = [c for c in await uow.callbacks.lock_many([callback_id]) if c.state == "received"]
                given_up = [record_failure(c, error, now, self._retry) for c in callbacks]
        except Exception:
            log.exception("callback.failure_not_recorded", callback_id=callback_id)
            return
        for callback, failed in zip(callbacks, given_up, strict=True):
            if failed:  # needs a person: see docs/payments.md, "Callbacks that keep failing"
                log.error("callback.failed", callback_id=callback.id, attempts=callback.attempts, error=error)
            else:
                log.warning(
                    "callback.retry_scheduled",
                    callback_id=callback.id,
                    attempts=callback.attempts,
                    error=error,
                    next_attempt_at=callback.next_attempt_at.isoformat() if callback.next_attempt_at else None,
                )

    async def _safely_many(self, callback_ids: list[str]) -> int:
        if len(callback_ids) == 1:
            return await self._safely(callback_ids[0])
        try:
            async with self._busy:
                return await self.process_many(callback_ids)
        except Exception:
            log.warning("callback.batch_failed", size=len(callback_ids), exc_info=True)
        return sum([await self._safely(callback_id) for callback_id in callback_ids])

    async def _consume(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._safely_many(batch)

    async def _sweep_forever(self) -> None:
        while True:
            await self._safely_sweep()
            await asyncio.sleep(self._sweep_interval)

    async def _safely_sweep(self) -> None:
        try:
            await self.sweep()
        except Exception:
            log.exception("inbox.sweep_failed")


def _due(callback: InboundCallback, now: datetime) -> bool:
    return callback.state == "received" and (callback.next_attempt_at is None or callback.next_attempt_at <= now)
