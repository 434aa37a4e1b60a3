"""ASGI middleware: request ids, body size limit, JSON-only bodies, storable input, security headers.

Pure ASGI (no BaseHTTPMiddleware) so that streaming and the callback hot path stay cheap.
"""

from __future__ import annotations

import secrets
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mpesa_bridge.api.errors import RAW_SECURITY_HEADERS, error_reply
from mpesa_bridge.api.inputs import UNPARSED, Refusal, path_refusal, query_refusal, read_json
from mpesa_bridge.api.routing import PARSED_JSON
from mpesa_bridge.logging import get_logger
from mpesa_bridge.observability.errors import report_exception

log = get_logger("mpesa_bridge.api")
INTERNAL_ERROR = "Something went wrong on our end."

_BODY_METHODS = {"POST", "PUT", "PATCH"}


def too_large(limit: int) -> tuple[int, str, str]:
    return 413, "body_too_large", f"request body is larger than {limit} bytes"


class ClientDisconnected(Exception):
    """The client went away before its body was complete: what arrived is not a request."""


async def _refuse(send: Send, refusal: Refusal, request_id: str) -> None:
    for message in error_reply(refusal.status, refusal.code, refusal.message, request_id, param=refusal.param):
        await send(message)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect, as the server would

    return replay


class BridgeMiddleware:
    """Assigns a request id; before routing, refuses oversized (413) and non-JSON (415) bodies, and
    input no database could store (NUL and the like, see `api/inputs.py`); drops truncated requests."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        json_only_prefixes: tuple[str, ...],
        any_body_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.json_only_prefixes = json_only_prefixes
        # Daraja's callbacks are stored whatever their content type: refusing one would lose it.
        self.any_body_prefixes = any_body_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(12)
        scope.setdefault("state", {})["request_id"] = request_id
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _refuse(send, refusal, request_id)
            return
        if scope.get("method") in _BODY_METHODS:
            try:
                body = await self._take_body(scope, receive)
            except ClientDisconnected:
                log.info("api.request.truncated", method=scope.get("method"), request_id=request_id)
                return  # nobody to answer, and the handler must not act on a part of a request
            if isinstance(body, Refusal):
                await _refuse(send, body, request_id)
                return
            receive = _replay(body, receive)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = False
        stamped = self._stamped(send, request_id)

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await stamped(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            # Answered here, not by Starlette's outermost error middleware: that one runs outside this
            # middleware, so its 500 would lack the request id and the security headers.
            if started:
                raise
            log.exception("api.unhandled", path=scope.get("path", ""))
            report_exception()  # to Sentry when configured: the one place an unexpected error is answered
            for message in error_reply(500, "internal_error", INTERNAL_ERROR, request_id, "api_error"):
                await send(message)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")

    async def _take_body(self, scope: Scope, receive: Receive) -> bytes | Refusal:
        body = await self._read_body(receive)
        if body is None:
            return Refusal(*too_large(self.max_body_bytes))
        return self._body_refusal(scope, body) or body

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body (bounded), or None once it passes the limit: 413 before any parsing.
        Raises ClientDisconnected when the client leaves before the last chunk."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect
                raise ClientDisconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> Refusal | None:
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return Refusal(*too_large(self.max_body_bytes))
        path: str = scope.get("path", "")
        if path.startswith(self.any_body_prefixes):
            return None
        return (
            path_refusal(path)
            or query_refusal(scope.get("query_string", b""))
            or self._media_refusal(scope, path, headers)
        )

    def _media_refusal(self, scope: Scope, path: str, headers: dict[str, str]) -> Refusal | None:
        if scope.get("method") in _BODY_METHODS and path.startswith(self.json_only_prefixes):
            declared = headers.get("content-length")
            has_body = declared not in (None, "0") or "transfer-encoding" in headers
            media = headers.get("content-type", "").split(";")[0].strip().lower()
            if has_body and media != "application/json":
                return Refusal(415, "unsupported_media_type", "request body must be application/json")
        return None

    def _body_refusal(self, scope: Scope, body: bytes) -> Refusal | None:
        path: str = scope.get("path", "")
        if not body or path.startswith(self.any_body_prefixes) or not path.startswith(self.json_only_prefixes):
            return None
        refusal, document = read_json(body)  # JSON only by now: anything else under these prefixes was a 415
        if document is not UNPARSED:
            scope[PARSED_JSON] = document  # the route validates it, never parsing the body again
        return refusal

    def _stamped(self, send: Send, request_id: str) -> Send:
        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                if b"x-request-id" not in present:  # an error_reply from further in carries it already
                    headers.append((b"x-request-id", request_id.encode()))
                headers.extend(h for h in RAW_SECURITY_HEADERS if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        return stamped
