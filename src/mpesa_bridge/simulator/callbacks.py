"""The simulated customer: after a delay the push is decided and the result POSTed to CallBackURL.

Each accepted push gets one asyncio task. A failed POST (refused connection, timeout, non-2xx) is
logged and not retried, because Safaricom does not promise retries (daraja.md section 4.4).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import ssl
from typing import Any

import httpx

from . import ids
from .config import SimulatorConfig
from .scenarios import Delivery
from .state import CallbackAttempt, PushLedger, PushRecord

logger = logging.getLogger(__name__)


@functools.cache
def _tls() -> ssl.SSLContext:
    """One CA bundle load per process, shared by every simulator's callback client."""
    return httpx.create_ssl_context(trust_env=False)


def callback_body(record: PushRecord) -> dict[str, Any]:
    """The STK callback exactly as Daraja shapes it (daraja.md sections 4.1 and 4.2)."""
    callback: dict[str, Any] = {
        "MerchantRequestID": record.merchant_request_id,
        "CheckoutRequestID": record.checkout_request_id,
        "ResultCode": record.result_code,
        "ResultDesc": record.result_desc,
    }
    if record.scenario.succeeded and record.decided_at is not None:
        callback["CallbackMetadata"] = {
            "Item": [
                {"Name": "Amount", "Value": float(record.amount)},
                {"Name": "MpesaReceiptNumber", "Value": record.receipt_number},
                {"Name": "Balance"},
                {"Name": "TransactionDate", "Value": int(ids.nairobi_stamp(record.decided_at))},
                {"Name": "PhoneNumber", "Value": int(record.party_a)},
            ]
        }
    return {"Body": {"stkCallback": callback}}


def contradicting_body(record: PushRecord) -> dict[str, Any]:
    """A failure callback for a push that already succeeded (seen in the wild as duplicates that disagree)."""
    callback = {
        "MerchantRequestID": record.merchant_request_id,
        "CheckoutRequestID": record.checkout_request_id,
        "ResultCode": 1032,
        "ResultDesc": "Request cancelled by user",
    }
    return {"Body": {"stkCallback": callback}}


def mask_phone(phone: str) -> str:
    return f"{phone[:4]}****{phone[-4:]}" if len(phone) > 8 else "****"


class CallbackSender:
    """Runs one task per accepted push: wait, decide the outcome, deliver the callback(s)."""

    def __init__(self, config: SimulatorConfig, ledger: PushLedger, http: httpx.AsyncClient | None) -> None:
        self._config = config
        self._ledger = ledger
        self._http = http
        self._owns_http = http is None
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        if self._http is None:
            # No proxies from the environment: Safaricom posts straight to the merchant.
            self._http = httpx.AsyncClient(timeout=self._config.callback_timeout, trust_env=False, verify=_tls())

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    def schedule(self, record: PushRecord) -> None:
        self.start()  # a push may arrive before start(), e.g. when the app is mounted elsewhere
        task = asyncio.get_running_loop().create_task(self._act(record), name=f"stk:{record.checkout_request_id}")
        self._tasks.add(task)
        task.add_done_callback(self._forget)

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - the public test API takes seconds
        """Wait until every scheduled task has finished; TimeoutError after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while pending := [task for task in self._tasks if not task.done()]:
                await asyncio.wait(pending)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("simulator.callback.crashed", exc_info=error)

    async def _act(self, record: PushRecord) -> None:
        delivery = record.scenario.delivery
        late = delivery is Delivery.LATE
        await asyncio.sleep(self._config.late_callback_delay if late else self._config.callback_delay)
        self._ledger.decide(record, self._config.now())
        logger.info(
            "simulator.stk.decided",
            extra={
                "checkout_request_id": record.checkout_request_id,
                "phone": mask_phone(record.phone_number),
                "result_code": record.result_code,
            },
        )
        if delivery is Delivery.NEVER or self._config.lose_callbacks:
            return
        body = callback_body(record)
        await self._post(record, body)
        if delivery is Delivery.TWICE:
            await asyncio.sleep(self._config.duplicate_callback_gap)
            await self._post(record, body)
        elif delivery is Delivery.CONTRADICTING:
            await asyncio.sleep(self._config.duplicate_callback_gap)
            await self._post(record, contradicting_body(record))

    async def _post(self, record: PushRecord, body: dict[str, Any]) -> None:
        assert self._http is not None
        content = json.dumps(body, separators=(",", ":")).encode()
        extra = {"checkout_request_id": record.checkout_request_id, "url": record.callback_url}
        try:
            response = await self._http.post(
                record.callback_url,
                content=content,
                headers={"Content-Type": "application/json"},
                timeout=self._config.callback_timeout,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            record.callbacks.append(CallbackAttempt(self._config.now(), body, error=repr(exc)))
            logger.warning("simulator.callback.failed", extra={**extra, "error": repr(exc)})
            return
        attempt = CallbackAttempt(self._config.now(), body, status_code=response.status_code)
        record.callbacks.append(attempt)
        if attempt.delivered:
            logger.info("simulator.callback.sent", extra={**extra, "status_code": response.status_code})
        else:
            logger.warning("simulator.callback.rejected", extra={**extra, "status_code": response.status_code})
