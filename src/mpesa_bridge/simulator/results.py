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

from .config import SimulatorConfig
from .initiator import ResultDelivery
from .outbound import Outbound

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

    def __init__(self, config: SimulatorConfig, http: httpx.AsyncClient | None = None) -> None:
        self._config = config
        self._out = Outbound(config.callback_timeout, http)
        self.attempts: list[ResultAttempt] = []

    def schedule(self, delivery: ResultDelivery) -> None:
        self._out.spawn(self._deliver(delivery), "simulator-result")

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - the public test API takes seconds
        await self._out.drain(timeout)

    async def aclose(self) -> None:
        await self._out.aclose()

    async def _deliver(self, delivery: ResultDelivery) -> None:
        await asyncio.sleep(self._config.result_delay)
        extra = {"url": delivery.url, "timed_out": delivery.timed_out}
        try:
            response = await self._out.http.post(
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
