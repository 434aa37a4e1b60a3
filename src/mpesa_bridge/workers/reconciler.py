"""The reconciliation loop around `core.payments.reconcile.Reconciler`."""

from __future__ import annotations

import asyncio
import contextlib

from mpesa_bridge.core.payments.reconcile import Reconciler
from mpesa_bridge.logging import get_logger

log = get_logger("mpesa_bridge.reconciler")


class ReconcileLoop:
    def __init__(self, reconciler: Reconciler, interval: float) -> None:
        self._reconciler = reconciler
        self._interval = interval
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
            try:
                async with self._busy:
                    report = await self._reconciler.run_once()
                if report.queried or report.marked_unknown:
                    log.info("reconcile.pass", **vars(report))
            except Exception:
                log.exception("reconcile.pass_failed")
            await asyncio.sleep(self._interval)
