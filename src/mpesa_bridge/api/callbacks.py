"""Daraja's callback routes: store the raw body first, answer at once, apply afterwards.

This is the hot path of a payment burst, so it is a plain Starlette route: no body model, no
dependency injection, one insert. The token in the path is the one generated for the payment;
we keep only its SHA-256.
"""

from __future__ import annotations

import functools
import hashlib
import os

from fastapi import APIRouter, Request
from starlette.responses import Response

from mpesa_bridge.api.net import IPNetwork, client_ip, ip_allowed, parse_networks
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import InboundCallback
from mpesa_bridge.logging import get_logger
from mpesa_bridge.runtime import CALLBACK_PATH, Runtime

log = get_logger("mpesa_bridge.callbacks")

ACK = b'{"ResultCode":0,"ResultDesc":"Accepted"}'
_KEPT_HEADERS = ("content-type", "user-agent", "x-forwarded-for", "x-real-ip")

FORBIDDEN = b'{"ResultCode":1,"ResultDesc":"Rejected"}'

router = APIRouter(tags=["daraja callbacks"])


@functools.lru_cache(maxsize=8)
def _networks(text: str) -> list[IPNetwork]:
    return parse_networks(part.strip() for part in text.split(",") if part.strip())


def _source_allowed(runtime: Runtime, source: str | None) -> bool:
    """Safaricom's published addresses (reference §17) — defence in depth, not authentication."""
    settings = runtime.settings
    if not settings.callback_allowlist_on:
        return True
    return ip_allowed(source, _networks(settings.callback_allowed_ips))


@router.post(
    CALLBACK_PATH + "{token}",
    summary="Safaricom's STK callback (Daraja calls this, not you)",
    responses={
        200: {"content": {"application/json": {"example": {"ResultCode": 0, "ResultDesc": "Accepted"}}}},
        403: {
            "description": "the source address is not on the callback allow-list (the body is still stored)",
            "content": {"application/json": {"example": {"ResultCode": 1, "ResultDesc": "Rejected"}}},
        },
    },
)
async def stk_callback(token: str, request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    body = await request.body()
    now = runtime.clock.now()
    source = client_ip(request.scope, _networks(runtime.settings.trusted_proxies))
    callback = InboundCallback(
        id=new_id("cb", now),
        kind="stk",
        received_at=now,
        body=body,
        token_hash=hashlib.sha256(token.encode()).hexdigest(),
        source_ip=source,
        headers={k: v for k, v in request.headers.items() if k in _KEPT_HEADERS},
    )
    allowed = _source_allowed(runtime, source)
    if not allowed:
        # Kept (nothing is lost, and an operator can replay it), but never applied.
        callback.state, callback.flag_reason, callback.processed_at = "flagged", "source_not_allowed", now
    async with runtime.db.write() as uow:
        await uow.callbacks.add(callback)
    if not allowed:
        log.warning("callback.source_refused", callback_id=callback.id, source_ip=source)
        if runtime.settings.callback_allowlist_action == "reject":
            return Response(FORBIDDEN, status_code=403, media_type="application/json")
        return Response(ACK, media_type="application/json")
    if runtime.settings.fault_injection == "crash_after_callback_stored":
        # Test hook (refused in production): die between storing and applying, like a power cut.
        log.warning("fault_injection.crash", callback_id=callback.id)
        os._exit(70)
    runtime.inbox.submit(callback.id)
    log.info("callback.received", callback_id=callback.id, bytes=len(body))
    return Response(ACK, media_type="application/json")
