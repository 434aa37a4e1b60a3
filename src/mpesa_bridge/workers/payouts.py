"""The payout reconciliation loop around `core.payouts.reconcile.PayoutReconciler`; each pass also
asks Transaction Status about reversals whose outcome is unknown (`core.reversals.reconcile`)."""

from __future__ import annotations

import asyncio

from mpesa_bridge.core.payouts.reconcile import PayoutReconciler
from mpesa_bridge.core.reversals.reconcile import ReversalReconciler
from mpesa_bridge.logging import get_logger
from mpesa_bridge.workers.loop import Sleep, WorkerLoop

log = get_logger("mpesa_bridge.payouts")


class PayoutReconcileLoop(WorkerLoop):
    """Runs a pass, then waits `interval` — unless the pass was full: then the next starts at once."""

    name = "payout-reconcile"
    failure_event = "payouts.reconcile_failed"
    log = log

    def __init__(
        self,
        reconciler: PayoutReconciler,
        interval: float,
        *,
        reversals: ReversalReconciler | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(interval, sleep=sleep)
        self._reconciler = reconciler
        self._reversals = reversals

    async def pass_once(self) -> bool:
        async with self.busy:  # stop() waits for a pass in progress instead of cancelling it
            report = await self._reconciler.run_once()
            asked = await self._reversals.run_once() if self._reversals is not None else 0
        for failure in report.failures:
            log.error("payouts.reconcile_crashed", exc_info=failure)
        if report.stranded or report.sent or report.queried:
            log.info("payouts.reconcile_pass", **report.counts())
        if asked:
            log.info("reversals.reconcile_pass", asked=asked)
        return report.full or (self._reversals is not None and asked >= self._reversals.batch)
