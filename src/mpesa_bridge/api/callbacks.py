"""Daraja's callback route, `POST /v1/callbacks/daraja/{kind}/{token}`: HTTP only.

Every kind of callback Daraja sends (STK today; B2C results, reversals, C2B… as their handlers are
registered, `core.callbacks.handlers`) comes in here. A kind the inbox has no handler for is refused
with 404 before anything is stored. Otherwise the row is built and handed to `Inbox.receive`, which
returns once it is durable (group commit) and has it applied by its kind's handler; then Daraja is
answered. The STK URLs already handed to Safaricom, `/v1/callbacks/daraja/stk/{token}`, are this
route with kind `stk`, byte for byte.

This is the hot path of a payment burst. `CallbackFastPath` answers it in plain ASGI, ahead of
FastAPI's routing and dependency machinery. The FastAPI route below does the same work through
`ingest()`; it documents the endpoint in the OpenAPI schema and serves the rare request the fast
path leaves to it (a GET, a path with extra segments). The token in the path is the one generated
for the payment (or payout…); we keep only its SHA-256.
"""

from __future__ import annotations

import secrets
from typing import Annotated

import orjson
import structlog
from fastapi import APIRouter, Path, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mpesa_bridge import routes
from mpesa_bridge.api.errors import RAW_SECURITY_HEADERS, error_reply
from mpesa_bridge.api.middleware import INTERNAL_ERROR, too_large
from mpesa_bridge.api.net import Networks, client_ip, ip_allowed
from mpesa_bridge.core.callbacks.handlers import C2B_VALIDATION
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import InboundCallback
from mpesa_bridge.core.payments.stk import token_hash
from mpesa_bridge.logging import get_logger
from mpesa_bridge.runtime import Runtime

log = get_logger("mpesa_bridge.callbacks")

ACK = b'{"ResultCode":0,"ResultDesc":"Accepted"}'
FORBIDDEN = b'{"ResultCode":1,"ResultDesc":"Rejected"}'
_KEPT_HEADERS = ("content-type", "user-agent", "x-forwarded-for", "x-real-ip")
_KEPT_RAW = tuple(name.encode() for name in _KEPT_HEADERS)
_RESPONSE_HEADERS = [(b"content-type", b"application/json"), *RAW_SECURITY_HEADERS]

CALLBACKS_PREFIX = routes.CALLBACKS_PREFIX  # then {kind}/{token}; routes.CALLBACK_PATH is the `stk` one
NOT_FOUND = (404, "resource_missing", "Unrecognized request URL.")  # as for any unknown URL

router = APIRouter(tags=["daraja callbacks"])


def _networks(scope: Scope) -> Networks:
    """The address lists the app parsed at start (`api/parts.py`)."""
    networks: Networks = scope["app"].state.http.networks
    return networks


def _source_allowed(runtime: Runtime, networks: Networks, source: str | None) -> bool:
    """Safaricom's published addresses (reference §17) — defence in depth, not authentication."""
    if not runtime.settings.callback_allowlist_on:
        return True
    return ip_allowed(source, networks.callback_allowed)


async def ingest(
    runtime: Runtime, kind: str, token: str, body: bytes, headers: dict[str, str], scope: Scope
) -> tuple[int, bytes]:
    """Hand one callback to the inbox (durable once this returns): the status and body to answer."""
    now = runtime.clock.now()
    networks = _networks(scope)
    source = client_ip(scope, networks.trusted_proxies)
    callback = InboundCallback(
        id=new_id("cb", now),
        kind=kind,
        received_at=now,
        body=body,
        token_hash=token_hash(token),
        source_ip=source,
        headers=headers,
    )
    allowed = _source_allowed(runtime, networks, source)
    if not allowed:
        # Kept (nothing is lost, and an operator can replay it), but never applied.
        callback.state, callback.flag_reason, callback.processed_at = "flagged", "source_not_allowed", now
    if kind == C2B_VALIDATION:
        return await _validate(runtime, callback, allowed)
    await runtime.inbox.receive(callback)
    if not allowed:
        log.warning("callback.source_refused", callback_id=callback.id, source_ip=source)
        if runtime.settings.callback_allowlist_action == "reject":
            return 403, FORBIDDEN
    return 200, ACK


async def _validate(runtime: Runtime, callback: InboundCallback, allowed: bool) -> tuple[int, bytes]:
    """C2B validation: Daraja waits for the answer (core.c2b.validation). Stored raw first, already
    settled (the inbox has nothing to apply), then decided and answered; a refused source is
    answered with a rejection (or 403, by the allow-list action), never asked about."""
    if allowed:
        callback.state, callback.processed_at = "recorded", callback.received_at
    await runtime.inbox.receive(callback)
    if not allowed:
        log.warning("callback.source_refused", callback_id=callback.id, source_ip=callback.source_ip)
        if runtime.settings.callback_allowlist_action == "reject":
            return 403, FORBIDDEN
    answer = await runtime.c2b_validator.answer(callback, source_allowed=allowed)
    return 200, orjson.dumps(answer)


@router.post(
    CALLBACKS_PREFIX + "{kind}/{token}",
    summary="Safaricom's callbacks (Daraja calls this, not you)",
    responses={
        200: {"content": {"application/json": {"example": {"ResultCode": 0, "ResultDesc": "Accepted"}}}},
        403: {
            "description": "the source address is not on the callback allow-list (the body is still stored)",
            "content": {"application/json": {"example": {"ResultCode": 1, "ResultDesc": "Rejected"}}},
        },
        404: {"description": "no handler for this kind of callback: nothing is stored"},
    },
)
async def daraja_callback(
    kind: Annotated[
        str,
        Path(
            description="the kind of callback: `stk` (STK Push results), `c2b_validation` (answered with "
            "accept or a C2B0001x rejection), `c2b_confirmation`",
            examples=["stk"],
        ),
    ],
    token: str,
    request: Request,
) -> Response:
    runtime: Runtime = request.app.state.runtime
    if not runtime.inbox.handles(kind):
        raise HTTPException(404)
    body = await request.body()
    headers = {k: v for k, v in request.headers.items() if k in _KEPT_HEADERS}
    status, answer = await ingest(runtime, kind, token, body, headers, request.scope)
    return Response(answer, status_code=status, media_type="application/json")


class CallbackFastPath:
    """`POST /v1/callbacks/daraja/{kind}/{token}` without routing, dependencies or a Request object.

    Installed outside the other middleware of ours, so it does their share itself: a request id
    (`x-request-id`), the security headers, the body limit (413), and never a traceback to Daraja.
    Everything else passes through untouched.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or scope.get("method") != "POST" or not path.startswith(CALLBACKS_PREFIX):
            await self.app(scope, receive, send)
            return
        kind, _, token = path[len(CALLBACKS_PREFIX) :].partition("/")
        if not kind or not token or "/" in token:
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(12)
        runtime: Runtime = scope["app"].state.runtime
        if not runtime.inbox.handles(kind):  # refused before the body is read: nothing is stored
            for message in error_reply(*NOT_FOUND, request_id):
                await send(message)
            return
        headers: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            lowered = name.lower()
            if lowered in _KEPT_RAW:
                headers[lowered.decode("latin-1")] = value.decode("latin-1")
        try:
            body = await _read_body(receive, self.max_body_bytes)
        except _Incomplete as exc:
            # Daraja went away mid-body: a prefix of a callback is not a callback. Nothing is stored
            # and nothing answered (there is nobody to answer); Daraja's own retry, if any, is whole.
            log.warning("callback.incomplete", request_id=request_id, received_bytes=exc.received)
            return
        if body is None:
            for message in error_reply(*too_large(self.max_body_bytes), request_id):
                await send(message)
            return
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            status, answer = await ingest(runtime, kind, token, body, headers, scope)
        except Exception:
            log.exception("api.unhandled", path=f"{CALLBACKS_PREFIX}{kind}/…")
            for message in error_reply(500, "internal_error", INTERNAL_ERROR, request_id, "api_error"):
                await send(message)
            return
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
        await _answer(send, status, answer, request_id)


class _Incomplete(Exception):
    """The client disconnected before the last chunk of its body (`more_body` still true)."""

    def __init__(self, received: int) -> None:
        super().__init__(f"disconnected after {received} bytes of the body")
        self.received = received


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body; None when it outgrows `limit`; `_Incomplete` when the client left before its end."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] != "http.request":  # http.disconnect: the body never ended
            raise _Incomplete(size)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(send: Send, status: int, body: bytes, request_id: str) -> None:
    headers = [*_RESPONSE_HEADERS, (b"content-length", str(len(body)).encode()), (b"x-request-id", request_id.encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
