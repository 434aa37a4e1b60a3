"""The inbox worker: applies stored callbacks, at once when they arrive and by sweeping later.

The callback route stores the raw body, answers Daraja, and hands the id here. If the process
dies in between, the sweep finds the row still `received` and applies it after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib

from mpesa_bridge.core.callbacks.stk import apply_stk_callback
from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.payments.policy import ReconcilePolicy
from mpesa_bridge.core.ports import UnitOfWorkFactory
from mpesa_bridge.logging import get_logger

log = get_logger("mpesa_bridge.inbox")

MAX_ATTEMPTS = 5


class Inbox:
    def __init__(
        self, db: UnitOfWorkFactory, clock: Clock, policy: ReconcilePolicy, sweep_interval: float = 2.0
    ) -> None:
        self._db = db
        self._clock = clock
        self._policy = policy
        self._sweep_interval = sweep_interval
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
        async with self._db.write() as uow:
            callback = await uow.callbacks.lock(callback_id)
            if callback is None or callback.state != "received":
                return False
            await apply_stk_callback(uow, callback, self._clock.now(), self._policy)
            state, reason, payment_id = callback.state, callback.flag_reason, callback.payment_id
        log.info("callback.processed", callback_id=callback_id, state=state, reason=reason, payment_id=payment_id)
        return True

    async def sweep(self) -> int:
        async with self._busy, self._db.read() as uow:
            ids = list(await uow.callbacks.unprocessed(500))
        done = 0
        for callback_id in ids:
            done += await self._safely(callback_id)
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
        try:
            async with self._busy:
                return int(await self.process(callback_id))
        except Exception:
            log.exception("callback.process_failed", callback_id=callback_id)
            return 0

    async def _consume(self) -> None:
        while True:
            callback_id = await self._queue.get()
            await self._safely(callback_id)

    async def _sweep_forever(self) -> None:
        while True:
            await self._safely_sweep()
            await asyncio.sleep(self._sweep_interval)

    async def _safely_sweep(self) -> None:
        try:
            await self.sweep()
        except Exception:
            log.exception("inbox.sweep_failed")
