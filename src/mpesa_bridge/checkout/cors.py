"""CORS for the routes a checkout session's client secret opens, so the widget (`/v1/widget.js`) can
call them from the merchant's site:

    GET  /v1/checkout_sessions/{id}        read the session
    POST /v1/checkout_sessions/{id}/pay    start the STK push (JSON: always preflighted)

Origins are `MPESA_BRIDGE_REALTIME_CORS_ORIGINS`, the list that already governs the session's SSE
stream (`/events`, answered by `realtime/sse.py`). A request from another origin is refused with 403
before routing (a preflight too, so the browser never sends the push). A request with a secret key
gets no CORS headers: secret keys stay on servers. Requests without an Origin (servers, curl) pass.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CLIENT_SECRET_ROUTES = re.compile(r"^/v1/checkout_sessions/cs_[A-Za-z0-9]+(?:/pay)?$")
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST",
    "Access-Control-Allow-Headers": "Content-Type, Authorization",
    "Access-Control-Max-Age": "600",
}


class ClientSecretCors:
    def __init__(self, app: ASGIApp, *, origins: Sequence[str]) -> None:
        self.app = app
        self.any_origin = "*" in origins
        self.origins = frozenset(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not CLIENT_SECRET_ROUTES.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if not (self.any_origin or origin in self.origins):
            await refusal(origin)(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            allowed = {"Access-Control-Allow-Origin": origin, "Vary": "Origin", **PREFLIGHT_HEADERS}
            await Response(status_code=204, headers=allowed)(scope, receive, send)
            return
        if headers.get("authorization", "").lower().startswith("bearer sk_"):
            await self.app(scope, receive, send)
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = MutableHeaders(scope=message)
                extra["Access-Control-Allow-Origin"] = origin
                extra.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, with_cors)


def refusal(origin: str) -> Response:
    body = {
        "error": {
            "type": "invalid_request_error",
            "code": "origin_not_allowed",
            "message": f"Requests from {origin[:100]} are not allowed: add it to MPESA_BRIDGE_REALTIME_CORS_ORIGINS.",
            "param": None,
            "request_id": None,
        }
    }
    return JSONResponse(body, status_code=403, headers={"Vary": "Origin"})
