"""Housekeeping on an interval: expired Idempotency-Key rows are deleted (they hold responses)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mpesa_bridge.logging import get_logger
from mpesa_bridge.workers.loop import WorkerLoop

log = get_logger("mpesa_bridge.maintenance")


class MaintenanceLoop(WorkerLoop):
    name = "maintenance"
    failure_event = "maintenance.pass_failed"
    log = log

    def __init__(self, tasks: list[Callable[[], Awaitable[int]]], interval: float = 600.0) -> None:
        super().__init__(interval)
        self._tasks_to_run = tasks

    async def run_once(self) -> int:
        done = 0
        for task in self._tasks_to_run:
            try:
                done += await task()
            except Exception:
                log.exception("maintenance.task_failed")
        return done

    async def pass_once(self) -> bool:
        async with self.busy:
            removed = await self.run_once()
        if removed:
            log.info("maintenance.pruned", rows=removed)
        return False
