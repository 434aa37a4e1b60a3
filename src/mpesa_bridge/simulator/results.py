"""Delivers the initiator APIs' Results: after `result_delay`, one POST to ResultURL (or to
QueueTimeOutURL for a queue timeout), with a `callback_timeout`, never retried — Safaricom
documents no retries of Results (daraja.md 8). Failures are logged as `simulator.result.failed`
or `simulator.result.rejected`, like the STK callbacks.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime

import httpx

from .callbacks import _tls
from .config import SimulatorConfig
from .initiator import ResultDelivery

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResultAttempt:
    """One POST of a Result: `status_code` is None when the request itself failed."""

    at: datetime
    delivery: ResultDelivery
    status_code: int | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class ResultSender:
    """One task per Result: wait `result_delay`, POST once."""

    def __init__(self, config: SimulatorConfig) -> None:
        self._config = config
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.attempts: list[ResultAttempt] = []

    def schedule(self, delivery: ResultDelivery) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._config.callback_timeout, trust_env=False, verify=_tls())
        task = asyncio.get_running_loop().create_task(self._deliver(delivery), name="simulator-result")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - the public test API takes seconds
        async with asyncio.timeout(timeout):
            while pending := [task for task in self._tasks if not task.done()]:
                await asyncio.wait(pending)

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _deliver(self, delivery: ResultDelivery) -> None:
        await asyncio.sleep(self._config.result_delay)
        assert self._http is not None
        extra = {"url": delivery.url, "timed_out": delivery.timed_out}
        try:
            response = await self._http.post(
                delivery.url,
                content=json.dumps(delivery.body, separators=(",", ":")).encode(),
                headers={"Content-Type": "application/json"},
                timeout=self._config.callback_timeout,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            self.attempts.append(ResultAttempt(self._config.now(), delivery, error=repr(exc)))
            logger.warning("simulator.result.failed", extra={**extra, "error": repr(exc)})
            return
        attempt = ResultAttempt(self._config.now(), delivery, status_code=response.status_code)
        self.attempts.append(attempt)
        event = "simulator.result.sent" if attempt.delivered else "simulator.result.rejected"
        logger.log(logging.INFO if attempt.delivered else logging.WARNING, event, extra=extra)
