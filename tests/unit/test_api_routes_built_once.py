"""Every app shares its routers' routes, built once per process (`api/routing.py`): FastAPI's
`include_router` would have each new app build every route again on its first request (~45-60 ms
of CPU, a third of an integration test, which builds an app per test)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from mpesa_bridge.api.app import create_app
from mpesa_bridge.api.v1 import payments
from tests.fixtures.bridge import make_settings


def _app(folder: Path) -> FastAPI:
    return create_app(make_settings(f"sqlite+aiosqlite:///{folder / 'x.db'}", folder))


def test_two_apps_serve_the_same_route_objects(tmp_path: Path) -> None:
    first, second = _app(tmp_path), _app(tmp_path)
    ours = [route for route in first.routes if isinstance(route, APIRoute) and route.path.startswith("/v1/")]
    assert ours, "the /v1 routes are the app's own routes, not routers kept whole"
    assert [id(route) for route in ours] == [
        id(route) for route in second.routes if isinstance(route, APIRoute) and route.path.startswith("/v1/")
    ]
    assert all(route in first.routes for route in payments.router.routes)


def test_a_router_with_event_handlers_is_refused() -> None:
    from mpesa_bridge.api.routing import add_routes

    router = APIRouter(on_startup=[lambda: None])
    with pytest.raises(ValueError, match="include_router"):
        add_routes(FastAPI(), router)
