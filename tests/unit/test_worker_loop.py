"""The worker-loop base (`workers.loop.WorkerLoop`) that the inbox, reconciler, delivery and
housekeeping loops share: interval or at once, failures waited out, and a stop that cuts nothing off."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from mpesa_bridge.workers.loop import WorkerLoop
from tests.fixtures.bridge import wait_until


class Scripted(WorkerLoop):
    failure_event = "scripted.pass_failed"

    def __init__(self, *passes: bool | Exception) -> None:
        self.log_lines: list[str] = []
        self.forever = asyncio.Event()
        super().__init__(5.0, sleep=self._record_sleep)
        self._passes = list(passes)

    async def _record_sleep(self, seconds: float) -> None:
        self.log_lines.append(f"sleep {seconds}")
        if not self._passes:
            await self.forever.wait()

    async def pass_once(self) -> bool:
        self.log_lines.append("pass")
        step = self._passes.pop(0) if self._passes else False
        if isinstance(step, Exception):
            raise step
        return step


async def test_a_full_pass_is_followed_at_once_and_a_failed_one_waits_the_interval() -> None:
    loop = Scripted(True, RuntimeError("boom"), False)
    with capture_logs() as logs:
        await loop.start()
        await wait_until(lambda: loop.log_lines.count("sleep 5.0") == 2)
        await loop.stop()
    assert loop.log_lines == ["pass", "pass", "sleep 5.0", "pass", "sleep 5.0"]
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["scripted.pass_failed"]


async def test_stop_waits_for_the_step_in_hand_and_cancels_spawned_tasks() -> None:
    loop = Scripted()
    step_started, release, finished = asyncio.Event(), asyncio.Event(), []
    spawned_cancelled = asyncio.Event()

    async def step() -> None:
        async with loop.busy:
            step_started.set()
            await release.wait()
            finished.append("step")

    async def background() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            spawned_cancelled.set()
            raise

    await loop.start()
    assert loop.running
    loop.spawn(background())
    work = loop.spawn(step())
    await step_started.wait()
    stopping = asyncio.create_task(loop.stop())
    await asyncio.sleep(0)
    assert not stopping.done()  # waits for the step holding `busy`
    release.set()
    await stopping

    assert finished == ["step"] and work.done()
    assert spawned_cancelled.is_set()
    assert not loop.running
