"""The reconciliation loop around `core.payments.reconcile.Reconciler`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from mpesa_bridge.core.payments.reconcile import Reconciler
from mpesa_bridge.logging import get_logger

log = get_logger("mpesa_bridge.reconciler")


class ReconcileLoop:
    """Runs a pass, then waits `interval` — unless the pass was full: then more is due, and the
    next pass starts at once (the reconciler's pacer, not this loop, sets the query rate)."""

    def __init__(
        self, reconciler: Reconciler, interval: float, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        self._reconciler = reconciler
        self._interval = interval
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self._busy = asyncio.Lock()  # stop() waits for a pass in progress instead of cancelling it

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="reconcile")

    async def stop(self) -> None:
        if self._task is not None:
            async with self._busy:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            more = False
            try:
                async with self._busy:
                    report = await self._reconciler.run_once()
                for failure in report.failures:
                    log.error("reconcile.query_crashed", exc_info=failure)
                if report.queried or report.marked_unknown or report.errors:
                    log.info("reconcile.pass", **report.counts())
                more = report.full
            except Exception:
                log.exception("reconcile.pass_failed")
            if more:
                await asyncio.sleep(0)  # a full pass: go on at once, but let stop() take the lock
            else:
                await self._sleep(self._interval)
