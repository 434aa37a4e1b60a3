"""api/metrics.py without I/O: who may read /metrics, and the route label of a request."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.routing import Mount

from mpesa_bridge.api.metrics import CALLBACK_ROUTE, UNMATCHED, MetricsAccess, MetricsMiddleware, route_template
from mpesa_bridge.config import Settings
from mpesa_bridge.observability.instruments import COUNTED, HTTP_REQUESTS_IN_PROGRESS, status_class

PRODUCTION = {
    "env": "production",
    "master_key": "dGVzdC1tYXN0ZXIta2V5LTMyLWJ5dGVzLWxvbmchISE",
    "public_base_url": "https://bridge.example",
}


def access(**values: Any) -> MetricsAccess:
    return MetricsAccess(Settings(data_dir=Path("/nonexistent"), **values))


def scope(token: str | None = None) -> dict[str, Any]:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    return {"type": "http", "headers": headers}


def test_development_is_open_on_the_main_port() -> None:
    gate = access()
    assert gate.allowed(scope(), on_metrics_port=False) is True
    assert gate.refusal_reason() is None


def test_a_token_is_needed_once_set_even_in_development() -> None:
    gate = access(metrics_token="t0ken")
    assert gate.allowed(scope(), on_metrics_port=False) is False
    assert gate.allowed(scope("nope"), on_metrics_port=False) is False
    assert gate.allowed(scope("t0ken"), on_metrics_port=False) is True


def test_production_without_token_or_port_is_refused_and_says_why() -> None:
    gate = access(**PRODUCTION)
    assert gate.allowed(scope("anything"), on_metrics_port=False) is None  # 404
    assert "MPESA_BRIDGE_METRICS_TOKEN" in (gate.refusal_reason() or "")


def test_production_with_a_port_serves_there_only() -> None:
    gate = access(**PRODUCTION, metrics_port=9464)
    assert gate.allowed(scope(), on_metrics_port=True) is True
    assert gate.allowed(scope(), on_metrics_port=False) is None
    assert gate.refusal_reason() is None


def test_the_metrics_port_cannot_be_the_main_port() -> None:
    with pytest.raises(ValueError, match="MPESA_BRIDGE_METRICS_PORT"):
        Settings(data_dir=Path("/nonexistent"), port=8000, metrics_port=8000)


def test_route_templates_never_carry_the_raw_path() -> None:
    app = FastAPI()

    @app.get("/v1/payments/{payment_id}")
    async def read() -> None: ...

    route = next(r for r in app.routes if getattr(r, "path", "") == "/v1/payments/{payment_id}")
    mount = Mount("/socket.io", app=app)
    assert route_template({"route": route, "root_path": ""}, "") == "/v1/payments/{payment_id}"
    assert route_template({"route": route, "root_path": "/dashboard"}, "") == "/dashboard/v1/payments/{payment_id}"
    assert route_template({"route": mount, "root_path": "/socket.io"}, "") == "/socket.io/*"
    assert route_template({"path": "/v1/callbacks/daraja/stk/abc", "root_path": ""}, "") == CALLBACK_ROUTE
    assert route_template({"path": "/nothing/254712345678", "root_path": ""}, "") == UNMATCHED


def test_status_classes_and_instrument_names() -> None:
    assert [status_class(s) for s in (200, 302, 404, 503)] == ["2xx", "3xx", "4xx", "5xx"]
    assert all(metric._name.startswith("mpesa_bridge_") for metric in COUNTED)


async def test_a_request_is_in_progress_until_the_app_has_finished_it() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        started.set()
        await release.wait()  # still storing a callback after its client left, say
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Any) -> None:
        return None

    middleware = MetricsMiddleware(slow_app, access=access(), runtime=lambda: None)
    before = HTTP_REQUESTS_IN_PROGRESS.labels("POST")._value.get()
    request = {"type": "http", "path": "/v1/payments", "method": "POST", "headers": [], "root_path": ""}
    task = asyncio.create_task(middleware(request, None, send))
    await asyncio.wait_for(started.wait(), 5)
    assert HTTP_REQUESTS_IN_PROGRESS.labels("POST")._value.get() == before + 1
    release.set()
    await asyncio.wait_for(task, 5)
    assert HTTP_REQUESTS_IN_PROGRESS.labels("POST")._value.get() == before
