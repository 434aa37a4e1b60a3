"""Daraja's callback routes: store the raw body first, answer at once, apply afterwards.

This is the hot path of a payment burst, so it is a plain Starlette route: no body model, no
dependency injection, one insert. The token in the path is the one generated for the payment;
we keep only its SHA-256.
"""

from __future__ import annotations

import hashlib
import os

from fastapi import APIRouter, Request
from starlette.responses import Response

from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import InboundCallback
from mpesa_bridge.logging import get_logger
from mpesa_bridge.runtime import CALLBACK_PATH, Runtime

log = get_logger("mpesa_bridge.callbacks")

ACK = b'{"ResultCode":0,"ResultDesc":"Accepted"}'
_KEPT_HEADERS = ("content-type", "user-agent", "x-forwarded-for", "x-real-ip")

router = APIRouter(tags=["daraja callbacks"])


@router.post(
    CALLBACK_PATH + "{token}",
    summary="Safaricom's STK callback (Daraja calls this, not you)",
    responses={200: {"content": {"application/json": {"example": {"ResultCode": 0, "ResultDesc": "Accepted"}}}}},
)
async def stk_callback(token: str, request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    body = await request.body()
    callback = InboundCallback(
        id=new_id("cb", runtime.clock.now()),
        kind="stk",
        received_at=runtime.clock.now(),
        body=body,
        token_hash=hashlib.sha256(token.encode()).hexdigest(),
        source_ip=request.client.host if request.client else None,
        headers={k: v for k, v in request.headers.items() if k in _KEPT_HEADERS},
    )
    async with runtime.db.write() as uow:
        await uow.callbacks.add(callback)
    if runtime.settings.fault_injection == "crash_after_callback_stored":
        # Test hook (refused in production): die between storing and applying, like a power cut.
        log.warning("fault_injection.crash", callback_id=callback.id)
        os._exit(70)
    runtime.inbox.submit(callback.id)
    log.info("callback.received", callback_id=callback.id, bytes=len(body))
    return Response(ACK, media_type="application/json")
