"""The skeleton every background loop shares: passes on an interval, and a stop that cuts nothing off.

A loop runs `pass_once()`, then waits `interval` — or goes on at once when the pass says more is
due (a full batch), yielding first so that `stop()` can take the lock. A pass that raises is
logged (`failure_event`) and waited out like an empty one. `busy` is held by the subclass around
each step that must not be cut in half (a transaction, a batch in hand); `stop()` takes it before
cancelling, so it waits for that step instead of cancelling it. `spawn` starts further tasks that
`stop()` cancels the same way (the inbox's group-commit writer). `sleep` is injectable for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from mpesa_bridge.logging import get_logger
from mpesa_bridge.observability.errors import report_exception

Sleep = Callable[[float], Awaitable[None]]


class WorkerLoop:
    name = "worker"
    failure_event = "worker.pass_failed"
    log: Any = get_logger("mpesa_bridge.workers")

    def __init__(self, interval: float, *, sleep: Sleep = asyncio.sleep) -> None:
        self.interval = interval
        self._sleep = sleep
        self.busy = asyncio.Lock()
        self.stopping = False
        self._main: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def pass_once(self) -> bool:
        """One pass; True when more is due at once."""
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._main is not None and not self._main.done()

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._tasks.add(task)  # the event loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)
        return task

    async def start(self) -> None:
        self.stopping = False
        self._main = asyncio.create_task(self._run(), name=self.name)
        self._tasks.add(self._main)

    async def stop(self) -> None:
        self.stopping = True
        async with self.busy:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._main = None

    async def _run(self) -> None:
        while True:
            more = False
            try:
                more = await self.pass_once()
            except Exception as exc:
                self.log.exception(self.failure_event)
                report_exception(exc)  # to Sentry when it is configured (observability/errors.py)
            if more:
                await asyncio.sleep(0)  # go on at once, but let stop() take the lock
            else:
                await self._sleep(self.interval)
