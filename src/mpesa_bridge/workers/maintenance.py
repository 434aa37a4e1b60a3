"""Housekeeping on an interval: expired Idempotency-Key rows are deleted (they hold responses)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from mpesa_bridge.logging import get_logger

log = get_logger("mpesa_bridge.maintenance")


class MaintenanceLoop:
    def __init__(self, tasks: list[Callable[[], Awaitable[int]]], interval: float = 600.0) -> None:
        self._tasks = tasks
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._busy = asyncio.Lock()

    async def run_once(self) -> int:
        done = 0
        for task in self._tasks:
            try:
                done += await task()
            except Exception:
                log.exception("maintenance.task_failed")
        return done

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="maintenance")

    async def stop(self) -> None:
        if self._task is not None:
            async with self._busy:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            async with self._busy:
                removed = await self.run_once()
            if removed:
                log.info("maintenance.pruned", rows=removed)
            await asyncio.sleep(self._interval)
