"""Every FastAPI dependency of every route is a coroutine function: FastAPI runs a plain `def`
dependency in a worker thread, a thread hop per request (measured on POST /v1/payments)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from mpesa_bridge.api.app import create_app
from tests.fixtures.bridge import make_settings


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)  # FastAPI keeps an included router whole
        if included is not None:
            yield from api_routes(included.routes)


def dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from dependencies(sub)


def test_no_route_dependency_runs_in_a_thread(tmp_path: Path) -> None:
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", tmp_path))
    routes = list(api_routes(app.routes))
    assert any(route.path == "/v1/payments" for route in routes)
    threaded = {
        f"{route.path}: {sub.call.__qualname__}"
        for route in routes
        for sub in dependencies(route.dependant)
        if sub.call is not None and not inspect.iscoroutinefunction(sub.call)
    }
    assert threaded == set()
