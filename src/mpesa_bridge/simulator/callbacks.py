"""The simulated customer: after a delay the push is decided and the result POSTed to CallBackURL.

Each accepted push gets one asyncio task. A failed POST (refused connection, timeout, non-2xx) is
logged and not retried, because Safaricom does not promise retries (daraja.md section 4.4).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx

from . import ids
from .config import SimulatorConfig
from .outbound import Outbound
from .scenarios import Delivery
from .state import CallbackAttempt, PushLedger, PushRecord

logger = logging.getLogger(__name__)


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


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.error("simulator.callback.crashed", exc_info=error)


def mask_phone(phone: str) -> str:
    return f"{phone[:4]}****{phone[-4:]}" if len(phone) > 8 else "****"


class CallbackSender:
    """Runs one task per accepted push: wait, decide the outcome, deliver the callback(s)."""

    def __init__(self, config: SimulatorConfig, ledger: PushLedger, http: httpx.AsyncClient | None) -> None:
        self._config = config
        self._ledger = ledger
        self._out = Outbound(config.callback_timeout, http)

    def start(self) -> None:
        """Make the HTTP client now rather than at the first callback (a test may pass its own)."""
        _ = self._out.http

    async def aclose(self) -> None:
        await self._out.aclose()

    def schedule(self, record: PushRecord) -> None:
        self._out.spawn(self._act(record), f"stk:{record.checkout_request_id}", _log_crash)

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - the public test API takes seconds
        """Wait until every scheduled task has finished; TimeoutError after `timeout` seconds."""
        await self._out.drain(timeout)

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
        content = json.dumps(body, separators=(",", ":")).encode()
        extra = {"checkout_request_id": record.checkout_request_id, "url": record.callback_url}
        try:
            response = await self._out.http.post(
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
