"""How the app takes its routers' routes (as they are, built once per process), and the route
class that validates the JSON body the middleware parsed, so a body is parsed once."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from mpesa_bridge.api.inputs import UNPARSED


def add_routes(app: FastAPI, *routers: APIRouter) -> None:
    """The routers' routes, in order, as they are.

    `app.include_router` keeps a router whole and has FastAPI build each of its routes again for
    every app, lazily, on the app's first request: ~45-60 ms of CPU per app, a third of an
    in-process integration test (each builds an app). A router's own routes are complete already —
    full paths, tags, responses, router-level dependencies such as the admin check — and nothing in
    them belongs to one app, so every app can share them. (`app.dependency_overrides` does not reach
    them; nothing here uses it.)"""
    for router in routers:
        if router.on_startup or router.on_shutdown:
            raise ValueError("a router with event handlers needs app.include_router")
        app.router.routes.extend(router.routes)


PARSED_JSON = "mpesa_bridge.parsed_json"
"""The ASGI scope key under which `api/middleware.py` leaves the JSON body it parsed."""


class _ParsedBody(Request):
    """A request whose JSON is the document the middleware parsed (the body read once)."""

    async def json(self) -> Any:
        document = self.scope.get(PARSED_JSON, UNPARSED)
        if document is UNPARSED:  # not parsed at the edge (see `api/inputs.read_json`): as before
            return await super().json()
        return document


class ParsedBodyRoute(APIRoute):
    """A route that validates the body the middleware parsed instead of parsing it again: FastAPI
    validates it with the route's model as before (same errors, same OpenAPI), only without a
    second `json.loads` of the bytes. FastAPI's documented way to change the request a route sees."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def parsed_once(request: Request) -> Response:
            return await handler(_ParsedBody(request.scope, request.receive))

        return parsed_once
