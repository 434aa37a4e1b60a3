"""ASGI middleware: request ids, body size limit, JSON-only bodies, security headers.

Pure ASGI (no BaseHTTPMiddleware) so that streaming and the callback hot path stay cheap.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mpesa_bridge.logging import get_logger

log = get_logger("mpesa_bridge.api")
INTERNAL_ERROR = "Something went wrong on our end."

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
_BODY_METHODS = {"POST", "PUT", "PATCH"}


def error_reply(
    status: int, code: str, message: str, request_id: str, type_: str = "invalid_request_error"
) -> tuple[Message, Message]:
    body = orjson.dumps(
        {
            "error": {
                "type": type_,
                "code": code,
                "message": message,
                "param": None,
                "request_id": request_id,
            }
        }
    )
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
            *_SECURITY_HEADERS,
        ],
    }
    return start, {"type": "http.response.body", "body": body}


def too_large(limit: int) -> tuple[int, str, str]:
    return 413, "body_too_large", f"request body is larger than {limit} bytes"


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
    """Assigns a request id; refuses oversized (413) and non-JSON (415) bodies before routing."""

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
            for message in error_reply(*refusal, request_id):
                await send(message)
            return
        if scope.get("method") in _BODY_METHODS:
            body = await self._read_body(receive)
            if body is None:
                for message in error_reply(*too_large(self.max_body_bytes), request_id):
                    await send(message)
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
            for message in error_reply(500, "internal_error", INTERNAL_ERROR, request_id, "api_error"):
                await send(message)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body (bounded), or None once it passes the limit: 413 before any parsing."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str, str] | None:
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return too_large(self.max_body_bytes)
        path: str = scope.get("path", "")
        if path.startswith(self.any_body_prefixes):
            return None
        if scope.get("method") in _BODY_METHODS and path.startswith(self.json_only_prefixes):
            has_body = declared not in (None, "0") or "transfer-encoding" in headers
            media = headers.get("content-type", "").split(";")[0].strip().lower()
            if has_body and media != "application/json":
                return 415, "unsupported_media_type", "request body must be application/json"
        return None

    def _stamped(self, send: Send, request_id: str) -> Send:
        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in _SECURITY_HEADERS if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        return stamped
