"""The reconciliation loop (`workers.reconciler.ReconcileLoop`): a full pass is followed at once."""

from __future__ import annotations

import asyncio

from mpesa_bridge.core.payments.reconcile import ReconcileReport
from mpesa_bridge.workers.reconciler import ReconcileLoop
from tests.fixtures.bridge import wait_until


class ScriptedReconciler:
    """Returns (or raises) the given reports, then empty ones; records the passes in `log`."""

    def __init__(self, log: list[str], *reports: ReconcileReport | Exception) -> None:
        self._log = log
        self._reports = list(reports)

    async def run_once(self) -> ReconcileReport:
        self._log.append("pass")
        if not self._reports:
            return ReconcileReport()
        report = self._reports.pop(0)
        if isinstance(report, Exception):
            raise report
        return report


async def _loop(*reports: ReconcileReport | Exception) -> list[str]:
    log: list[str] = []
    forever = asyncio.Event()

    async def sleep(seconds: float) -> None:
        log.append(f"sleep {seconds}")
        if log.count("pass") > len(reports):
            await forever.wait()  # the scripted passes are over: park until stop()

    loop = ReconcileLoop(ScriptedReconciler(log, *reports), 5.0, sleep=sleep)  # type: ignore[arg-type]
    await loop.start()
    await wait_until(lambda: log.count("pass") > len(reports) and log[-1].startswith("sleep"))
    await loop.stop()
    return log


async def test_full_passes_are_followed_at_once_and_a_partial_one_waits_the_interval() -> None:
    full, partial = ReconcileReport(queried=500, full=True), ReconcileReport(queried=3)

    log = await _loop(full, full, partial)

    assert log == ["pass", "pass", "pass", "sleep 5.0", "pass", "sleep 5.0"]


async def test_a_failed_pass_waits_the_interval() -> None:
    log = await _loop(RuntimeError("database unreachable"))

    assert log == ["pass", "sleep 5.0", "pass", "sleep 5.0"]


async def test_stop_is_not_starved_by_full_passes() -> None:
    log: list[str] = []

    class AlwaysFull:
        async def run_once(self) -> ReconcileReport:
            log.append("pass")
            await asyncio.sleep(0)
            return ReconcileReport(queried=1, full=True)

    loop = ReconcileLoop(AlwaysFull(), 5.0)  # type: ignore[arg-type]
    await loop.start()
    await wait_until(lambda: len(log) >= 3)
    await asyncio.wait_for(loop.stop(), timeout=2.0)
