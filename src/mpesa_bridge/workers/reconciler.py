"""The reconciliation loop around `core.payments.reconcile.Reconciler`."""

from __future__ import annotations

import asyncio

from mpesa_bridge.core.payments.reconcile import Reconciler
from mpesa_bridge.logging import get_logger
from mpesa_bridge.workers.loop import Sleep, WorkerLoop

log = get_logger("mpesa_bridge.reconciler")


class ReconcileLoop(WorkerLoop):
    """Runs a pass, then waits `interval` — unless the pass was full: then more is due, and the
    next pass starts at once (the reconciler's pacer, not this loop, sets the query rate)."""

    name = "reconcile"
    failure_event = "reconcile.pass_failed"
    log = log

    def __init__(self, reconciler: Reconciler, interval: float, *, sleep: Sleep = asyncio.sleep) -> None:
        super().__init__(interval, sleep=sleep)
        self._reconciler = reconciler

    async def pass_once(self) -> bool:
        async with self.busy:  # stop() waits for a pass in progress instead of cancelling it
            report = await self._reconciler.run_once()
        for failure in report.failures:
            log.error("reconcile.query_crashed", exc_info=failure)
        if report.queried or report.marked_unknown or report.errors:
            log.info("reconcile.pass", **report.counts())
        return report.full
