"""One error shape everywhere: {"error": {"type", "code", "message", "param", "request_id"}}.

`error_json` and `error_headers` render it; `error_body` (a Response, for the exception handlers)
and `error_reply` (raw ASGI messages, for the middleware and the callback fast path) both use them.

Domain errors are mapped to HTTP statuses in one table, looked up along the exception's MRO, so a
new subclass inherits its parent's status. Nothing here ever renders a stack trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Message

from mpesa_bridge.core.errors import (
    AuthenticationFailed,
    BridgeError,
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unprocessable,
    UpstreamUnavailable,
)
from mpesa_bridge.logging import get_logger

log = get_logger("mpesa_bridge.api")

STATUS_TABLE: dict[type[BaseException], tuple[int, str]] = {
    InvalidRequest: (400, "invalid_request_error"),
    AuthenticationFailed: (401, "authentication_error"),
    PermissionDenied: (403, "permission_error"),
    NotFound: (404, "invalid_request_error"),
    Conflict: (409, "invalid_request_error"),
    Unprocessable: (422, "invalid_request_error"),
    RateLimited: (429, "rate_limit_error"),
    UpstreamUnavailable: (502, "api_error"),
    BridgeError: (500, "api_error"),
}

_HTTP_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
_HTTP_CODES = {
    401: "invalid_api_key",
    403: "forbidden",
    404: "resource_missing",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    """An HTTP-level refusal raised by the adapter itself (size, media type, auth header)."""

    def __init__(self, status: int, code: str, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
RAW_SECURITY_HEADERS = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]


def request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def error_json(*, type_: str, code: str, message: str, param: str | None, request_id: str | None) -> bytes:
    error = {"type": type_, "code": code, "message": message, "param": param, "request_id": request_id}
    return orjson.dumps({"error": error})


def error_headers(status: int, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every error's headers but its length and type: the security headers, `extra` (Retry-After,
    Allow, …) and, on a 401, the scheme to authenticate with."""
    headers = {**SECURITY_HEADERS, **(extra or {})}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return headers


def error_body(
    request: Request,
    status: int,
    *,
    type_: str,
    code: str,
    message: str,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = error_json(type_=type_, code=code, message=message, param=param, request_id=request_id(request))
    return Response(body, status_code=status, media_type="application/json", headers=error_headers(status, headers))


def error_reply(
    status: int,
    code: str,
    message: str,
    request_id: str | None,
    type_: str = "invalid_request_error",
    *,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[Message, Message]:
    """The same error as `error_body`, as the two ASGI messages that send it (below routing)."""
    body = error_json(type_=type_, code=code, message=message, param=param, request_id=request_id)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if request_id is not None:
        raw.append((b"x-request-id", request_id.encode()))
    raw += [(name.lower().encode(), value.encode()) for name, value in error_headers(status, headers).items()]
    start: Message = {"type": "http.response.start", "status": status, "headers": raw}
    return start, {"type": "http.response.body", "body": body}


def rate_limit_headers(exc: RateLimited) -> dict[str, str]:
    headers = {"Retry-After": str(exc.retry_after), "RateLimit-Remaining": str(exc.remaining)}
    headers["RateLimit-Reset"] = str(exc.reset)
    if exc.limit is not None:
        headers["RateLimit-Limit"] = str(exc.limit)
    return headers


def _lookup(exc: BaseException) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in STATUS_TABLE:
            return STATUS_TABLE[cls]
    return 500, "api_error"


async def _bridge_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BridgeError)
    return render_bridge_error(request, exc)


def render_bridge_error(request: Request, exc: BridgeError) -> Response:
    status, type_ = _lookup(exc)
    if status >= 500:
        log.error("api.error", code=exc.code, error=exc.message)
    headers = rate_limit_headers(exc) if isinstance(exc, RateLimited) else None
    return error_body(
        request, status, type_=type_, code=exc.code, message=exc.message, param=exc.param, headers=headers
    )


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return render_api_error(request, exc)


def render_api_error(request: Request, exc: ApiError) -> Response:
    type_ = _HTTP_TYPES.get(exc.status, "invalid_request_error")
    return error_body(request, exc.status, type_=type_, code=exc.code, message=exc.message, param=exc.param)


def _param(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


async def render_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request", "type": ""}
    param = _param(tuple(first.get("loc", ())))
    kind = str(first.get("type", ""))
    if kind == "json_invalid":
        return error_body(request, 400, type_="invalid_request_error", code="invalid_json", message="body is not JSON")
    code = "parameter_missing" if kind == "missing" else "parameter_invalid"
    if kind == "extra_forbidden":
        code = "parameter_unknown"
    message = f"{param}: {first.get('msg', 'invalid value')}" if param else str(first.get("msg", "invalid request"))
    return error_body(request, 400, type_="invalid_request_error", code=code, message=message, param=param)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, "http_error")
    message = "Unrecognized request URL." if status == 404 else str(exc.detail)
    headers = dict(exc.headers or {})  # e.g. Allow on a 405
    return error_body(
        request,
        status,
        type_=_HTTP_TYPES.get(status, "invalid_request_error"),
        code=code,
        message=message,
        headers=headers,
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("api.unhandled", path=request.url.path)
    return error_body(
        request, 500, type_="api_error", code="internal_error", message="Something went wrong on our end."
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BridgeError, _bridge_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, render_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
