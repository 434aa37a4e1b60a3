"""CORS for the routes a browser may call from a merchant's site — what a checkout session's client
secret opens, and what a publishable key opens — by the origins of the project concerned:

    GET     /v1/checkout_sessions/{id}         read the session (client secret)
    POST    /v1/checkout_sessions/{id}/pay     start the STK push (JSON: always preflighted)
    GET     /v1/checkout_sessions/{id}/events  its SSE stream (answered by api/v1/stream.py)
    POST    /v1/checkout_sessions              open a session with a publishable key (client-side amounts)

**Which origins.** The project's `allowed_origins` (`core/browser.py`); a project with an empty list
falls back to the server-wide `MPESA_BRIDGE_REALTIME_CORS_ORIGINS` (default `*`, so a project that
set nothing behaves as before). For the session routes the project is the session's, found from the
id in the path, so their preflights are decided by it too. A request or preflight from an origin
the project does not allow is refused with 403 `origin_not_allowed` before routing: the browser
never sends the push, and nothing is opened or pushed.

**The publishable-key route.** Its preflight carries no key, so the project is not known yet: every
origin's preflight is answered (it says only which methods and headers the route takes), and the
request itself is refused with 403 before anything is created when its key's project does not allow
the page's origin. A secret-key request there gets no CORS headers (secret keys stay on servers).

Requests without an `Origin` (servers, curl) pass untouched, and so do requests with a secret key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mpesa_bridge.core.browser import origin_allowed
from mpesa_bridge.core.errors import AuthenticationFailed
from mpesa_bridge.core.projects import Project

CLIENT_SECRET_ROUTES = re.compile(r"^/v1/checkout_sessions/(cs_[A-Za-z0-9]+)(?:/pay|/events)?$")
PUBLISHABLE_KEY_ROUTE = "/v1/checkout_sessions"
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, X-Api-Key",
    "Access-Control-Max-Age": "600",
}


class ClientSecretCors:
    """The middleware. `origins` is the server-wide fallback list; projects come from the app's
    runtime (`scope["app"].state.runtime`, built by the lifespan after this middleware)."""

    def __init__(self, app: ASGIApp, *, origins: Sequence[str]) -> None:
        self.app = app
        self.fallback = tuple(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        session = CLIENT_SECRET_ROUTES.match(path)
        if session is None and path != PUBLISHABLE_KEY_ROUTE:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        preflight = scope["method"] == "OPTIONS" and "access-control-request-method" in headers
        if session is None:
            await self._publishable_route(scope, receive, send, headers, origin, preflight)
            return
        found = await _runtime_call(scope, "project_of_session", session.group(1))
        if not self._allows(found if isinstance(found, Project) else None, origin):
            await refusal(origin)(scope, receive, send)
            return
        if preflight:
            await _preflight(origin)(scope, receive, send)
            return
        if headers.get("authorization", "").lower().startswith("bearer sk_"):
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _with_cors(send, origin))

    async def _publishable_route(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers, origin: str, preflight: bool
    ) -> None:
        if preflight:  # no key yet: the request itself is checked
            await _preflight(origin)(scope, receive, send)
            return
        key = _bearer(headers.get("authorization")) or headers.get("x-api-key", "").strip()
        if scope["method"] != "POST" or not key.startswith("pk_"):
            await self.app(scope, receive, send)  # a secret key or none: no CORS, as before
            return
        caller = await _runtime_call(scope, "authenticate_publishable", key)
        project = getattr(caller, "project", None)
        if not self._allows(project if isinstance(project, Project) else None, origin):
            await refusal(origin)(scope, receive, send)
            return
        await self.app(scope, receive, _with_cors(send, origin))

    def _allows(self, project: Project | None, origin: str) -> bool:
        own = project.allowed_origins if project is not None else []
        return origin_allowed(own, self.fallback, origin)


async def _runtime_call(scope: Scope, name: str, argument: str) -> object | None:
    """`runtime.projects.<name>(argument)`, or None before the lifespan ran or for a key that fails."""
    runtime = getattr(getattr(scope.get("app"), "state", None), "runtime", None)
    if runtime is None:
        return None
    try:
        result: object | None = await getattr(runtime.projects, name)(argument)
    except AuthenticationFailed:
        return None  # the route answers 401 (with CORS headers if the fallback list allows the origin)
    return result


def _bearer(header: str | None) -> str | None:
    # api/bearer.py's reading (this package does not import the API adapter).
    scheme, _, value = (header or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _with_cors(send: Send, origin: str) -> Send:
    async def send_with_cors(message: Message) -> None:
        if message["type"] == "http.response.start":
            extra = MutableHeaders(scope=message)
            # The SSE route sets its own from the server-wide list ("*" by default): the origin was
            # checked here already, so a header the route chose is kept.
            if "access-control-allow-origin" not in extra:
                extra["Access-Control-Allow-Origin"] = origin
            extra.add_vary_header("Origin")
        await send(message)

    return send_with_cors


def _preflight(origin: str) -> Response:
    return Response(
        status_code=204, headers={"Access-Control-Allow-Origin": origin, "Vary": "Origin", **PREFLIGHT_HEADERS}
    )


def refusal(origin: str) -> Response:
    body = {
        "error": {
            "type": "invalid_request_error",
            "code": "origin_not_allowed",
            "message": f"Requests from {origin[:100]} are not allowed: add it to the project's allowed origins "
            "(dashboard settings, or PATCH /v1/project).",
            "param": None,
            "request_id": None,
        }
    }
    return JSONResponse(body, status_code=403, headers={"Vary": "Origin"})
