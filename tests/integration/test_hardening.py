"""Hardening of the HTTP surface: no CORS, security headers on every answer, no stack traces,
JSON-only bodies (415) within a size limit (413), and logs that never hold a secret or a phone number.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mpesa_bridge.api.app import create_app, simulator_config
from mpesa_bridge.config import SANDBOX_PASSKEY, SANDBOX_SHORTCODE, SIMULATOR_CONSUMER_KEY, Settings
from mpesa_bridge.core.phone import mask_phone
from mpesa_bridge.logging import configure_logging
from mpesa_bridge.simulator import Simulator
from mpesa_bridge.storage.db import Database
from tests.fixtures.bridge import ADMIN_TOKEN, InProcessBridge, Tenant, make_settings, wait_until
from tests.fixtures.realtime import live_settings
from tests.fixtures.servers import free_port

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
PAYMENT = {"phone": "0708374149", "amount": 100, "account_reference": "INV001"}
EVIL = "https://evil.example"


@pytest.fixture
def bridge_settings(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """The usual test settings, with overrides from `@pytest.mark.parametrize(..., indirect=True)`."""
    return make_settings(db_url, tmp_path, **getattr(request, "param", {}))


def assert_hardened(response: httpx.Response, what: str = "") -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (what, response.status_code, name, dict(response.headers))
    assert response.headers.get("x-request-id", "").startswith("req_"), (what, dict(response.headers))
    assert not [h for h in response.headers if h.startswith("access-control-")], (what, dict(response.headers))
    if response.headers.get("content-type", "").startswith("application/json") and response.status_code >= 400:
        assert response.json()["error"]["request_id"] == response.headers["x-request-id"], what


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert list(body) == ["error"] and set(body["error"]) == {"type", "code", "message", "param", "request_id"}
    assert body["error"]["code"] == code, body
    assert_hardened(response)
    return body


# --- CORS -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/v1/payments", "/v1/payments/pay_x", "/v1/keys", "/v1/admin/projects", "/healthz", "/openapi.json"]
)
async def test_cors_is_off_on_every_route(bridge: InProcessBridge, path: str) -> None:
    """Secret keys belong on servers: a browser page on another origin gets no CORS grant, ever."""
    shop = await bridge.create_project()
    headers = {**shop.headers(), **(ADMIN if "/admin/" in path else {})}
    preflight = await bridge.client.options(
        path,
        headers={
            "Origin": EVIL,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    simple = await bridge.client.get(path, headers={**headers, "Origin": EVIL})
    assert preflight.status_code not in (200, 204), preflight.text  # no preflight is ever approved
    assert_hardened(preflight, f"OPTIONS {path}")
    assert_hardened(simple, f"GET {path}")
    assert "origin" not in simple.headers.get("vary", "").lower()


def test_no_cors_middleware_is_installed(bridge: InProcessBridge) -> None:
    # The one exception answers only the client-secret checkout routes (tests/integration/test_checkout_cors.py).
    found = [m for m in bridge.app.user_middleware if "cors" in str(m.cls).lower()]
    assert [m.cls.__name__ for m in found] == ["ClientSecretCors"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("bridge_settings", [{"sse_max_connection_age": 0.3}], indirect=True)
async def test_the_secret_key_event_stream_grants_no_cors(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    request = bridge.client.get("/v1/events/stream", headers={**shop.headers(), "Origin": EVIL})
    response = await asyncio.wait_for(request, timeout=10)  # the stream ends at its (short) maximum age
    assert response.status_code == 200, response.text
    assert "access-control-allow-origin" not in response.headers, dict(response.headers)


# --- security headers on every kind of answer -------------------------------------------------------------


@pytest.mark.parametrize("bridge_settings", [{"rate_limit_key": "20/minute"}], indirect=True)
async def test_security_headers_on_every_kind_of_response(
    bridge: InProcessBridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = await bridge.create_project()
    busy = await bridge.create_project("Busy")
    client, auth = bridge.client, shop.headers()
    created = await client.post("/v1/payments", json=PAYMENT, headers=auth)
    seen = {
        "201 created": created,
        "200 read": await client.get(f"/v1/payments/{created.json()['id']}", headers=auth),
        "400 bad field": await client.post("/v1/payments", json={**PAYMENT, "amount": 0}, headers=auth),
        "400 broken json": await client.post("/v1/payments", content=b"{", headers=_json(auth)),
        "401 no key": await client.get("/v1/payments"),
        "404 unknown payment": await client.get("/v1/payments/pay_nope", headers=auth),
        "404 unknown route": await client.get("/v1/nowhere", headers=auth),
        "405 wrong method": await client.delete("/v1/payments", headers=auth),
        "413 too large": await client.post("/v1/payments", content=b"x" * 70_000, headers=_json(ADMIN)),
        "415 not json": await client.post("/v1/payments", content=b"a=1", headers={"Content-Type": "text/plain"}),
        "200 health": await client.get("/healthz"),
        "200 readiness": await client.get("/readyz"),
        "200 openapi": await client.get("/openapi.json"),
        "200 docs": await client.get("/docs"),
        "200 docs asset": await client.get("/docs/assets/swagger-ui.css"),
        "200 callback": await client.post("/v1/callbacks/daraja/stk/tok", content=b"{}", headers=_json({})),
    }
    for _ in range(21):
        limited = await client.get("/v1/keys", headers=busy.headers())
    seen["429 rate limited"] = limited

    async def boom(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom secret")

    monkeypatch.setattr(bridge.runtime.payments, "list", boom)
    seen["500 internal"] = await client.get("/v1/payments", headers=auth)

    for what, response in seen.items():
        assert response.status_code == int(what.split()[0]), (what, response.status_code, response.text)
        assert_hardened(response, what)


def _json(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Content-Type": "application/json"}


# --- internal errors -----------------------------------------------------------------------------------

# (service, method, request): a runtime service made to fail under one route.
FAILURES = [
    ("payments", "get", "GET", "/v1/payments/pay_x"),
    ("payments", "list", "GET", "/v1/payments"),
    ("payments", "create", "POST", "/v1/payments"),
    ("payments", "refresh", "POST", "/v1/payments/pay_x/refresh"),
    ("projects", "list_keys", "GET", "/v1/keys"),
    ("projects", "list_projects", "GET", "/v1/admin/projects"),
]


class JsonLogs:
    """JSON logs, as in production, into the captured stderr."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def start(self) -> None:
        """Call in the test itself: pytest gives capsys a new stream for each phase (setup, call, teardown)."""
        configure_logging("DEBUG", json=True)
        self.capsys.readouterr()

    def read(self) -> tuple[str, list[dict[str, Any]]]:
        captured = self.capsys.readouterr()
        records = [json.loads(line) for line in captured.err.splitlines() if line.startswith("{")]
        return captured.out + captured.err, records


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[JsonLogs]:
    saved = structlog.get_config()
    yield JsonLogs(capsys)
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    structlog.configure(**saved)


@pytest.mark.parametrize(("service", "method", "verb", "path"), FAILURES)
async def test_an_internal_error_is_a_generic_500_without_a_trace(
    bridge: InProcessBridge,
    monkeypatch: pytest.MonkeyPatch,
    json_logs: JsonLogs,
    service: str,
    method: str,
    verb: str,
    path: str,
) -> None:
    json_logs.start()
    shop = await bridge.create_project()

    async def boom(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom secret 0708374149")

    monkeypatch.setattr(getattr(bridge.runtime, service), method, boom)
    headers = ADMIN if "/admin/" in path else shop.headers()
    # The default client re-raises an exception that escapes the app: getting a response proves none did.
    response = await bridge.client.request(verb, path, json=PAYMENT if verb == "POST" else None, headers=headers)

    body = error(response, 500, "internal_error")
    assert body["error"] == {
        "type": "api_error",
        "code": "internal_error",
        "message": "Something went wrong on our end.",
        "param": None,
        "request_id": response.headers["x-request-id"],
    }
    for leak in ("Traceback", "boom", "secret", "RuntimeError", "0708374149", 'File "', ".py"):
        assert leak not in response.text, leak
    # The operator gets the detail, under the request id (and still without the phone number).
    _, records = json_logs.read()
    (logged,) = [r for r in records if r.get("event") == "api.unhandled"]
    assert logged["request_id"] == response.headers["x-request-id"] and logged["level"] == "error"
    assert "boom secret" in logged["exception"] and "0708374149" not in logged["exception"]


# --- JSON only, size-limited bodies ---------------------------------------------------------------------


def _body_routes(bridge: InProcessBridge) -> list[tuple[str, str]]:
    """Every /v1 route taking a body (POST/PUT/PATCH), its path parameters filled in."""
    try:
        from fastapi.routing import iter_route_contexts  # FastAPI ≥ 0.16x keeps included routers lazy
    except ImportError:
        found = [(getattr(r, "path", ""), getattr(r, "methods", None)) for r in bridge.app.routes]
    else:
        found = [(rc.path or "", rc.methods) for rc in iter_route_contexts(bridge.app.routes)]
    routes = []
    for path, methods in found:
        for method in sorted((methods or set()) & {"POST", "PUT", "PATCH"}):
            if path.startswith("/v1/") and "/callbacks/" not in path:
                routes.append((method, path.replace("{mode}", "test").replace("{", "").replace("}", "")))
    assert len(routes) >= 9, routes
    return routes


NOT_JSON = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "text/json",
    "application/jsonp",
    "application/json-patch+json",
    None,  # a body with no Content-Type at all
]


@pytest.mark.parametrize("content_type", NOT_JSON)
async def test_every_body_route_refuses_a_body_that_is_not_json(
    bridge: InProcessBridge, content_type: str | None
) -> None:
    shop = await bridge.create_project()
    for method, path in _body_routes(bridge):
        headers = {**(ADMIN if "/admin/" in path else shop.headers())}
        if content_type is not None:
            headers["Content-Type"] = content_type
        response = await bridge.client.request(method, path, content=b'{"name": "x"}', headers=headers)
        error(response, 415, "unsupported_media_type")
        chunked = await bridge.client.request(method, path, content=_chunks(b'{"name": "x"}'), headers=headers)
        error(chunked, 415, "unsupported_media_type")


async def test_json_with_parameters_or_in_capitals_is_json(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    for content_type in ("application/json; charset=utf-8", "Application/JSON", "application/json ; charset=UTF-8"):
        headers = {**shop.headers(), "Content-Type": content_type}
        response = await bridge.client.post("/v1/payments", content=json.dumps(PAYMENT).encode(), headers=headers)
        assert response.status_code == 201, (content_type, response.text)


async def _chunks(body: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_the_body_limit_holds_declared_or_chunked_on_every_body_route(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    limit = bridge.settings.max_body_bytes
    over = b'{"metadata": "' + b"x" * limit + b'"}'
    routes = [*_body_routes(bridge), ("POST", "/v1/callbacks/daraja/stk/token")]
    for method, path in routes:
        headers = _json(ADMIN if "/admin/" in path else shop.headers())
        declared = await bridge.client.request(method, path, content=over, headers=headers)
        chunked = await bridge.client.request(method, path, content=_chunks(over), headers=headers)
        assert "content-length" not in chunked.request.headers and chunked.request.headers["transfer-encoding"]
        for response in (declared, chunked):
            body = error(response, 413, "body_too_large")
            assert str(limit) in body["error"]["message"]


async def test_a_body_right_at_the_limit_is_read(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    limit = bridge.settings.max_body_bytes
    base = {**PAYMENT, "metadata": {"pad": ""}}
    padding = limit - len(json.dumps(base, separators=(",", ":")).encode())
    body = json.dumps({**base, "metadata": {"pad": "x" * padding}}, separators=(",", ":")).encode()
    assert len(body) == limit
    for content in (body, _chunks(body)):
        response = await bridge.client.post("/v1/payments", content=content, headers=_json(shop.headers()))
        assert response.status_code == 400, response.text  # read and judged: metadata over its own 4 KB limit
        assert response.json()["error"]["code"] == "metadata_too_large"


# --- truncated bodies ----------------------------------------------------------------------------


class WatchedApp:
    """The app under uvicorn, watched from outside: what `POST /v1/payments` received, and when its
    handling ended. It changes nothing; it lets the test act at the right moment without a sleep."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.received: list[Message] = []
        self.finished = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) != ("POST", "/v1/payments"):
            await self.app(scope, receive, send)
            return

        async def watched() -> Message:
            message = await receive()
            self.received.append(message)
            return message

        try:
            await self.app(scope, watched, send)
        finally:
            self.finished.set()


@contextlib.asynccontextmanager
async def uvicorn_serving(app: ASGIApp, port: int) -> AsyncIterator[None]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started or serving.done(), timeout=10)
        assert not serving.done(), "the server did not start"
        yield
    finally:
        server.should_exit = True
        await serving


async def test_a_body_cut_short_by_a_disconnect_is_dropped_not_run(
    database: Database, db_url: str, tmp_path: Path
) -> None:
    """A client declares more body than it sends, then closes: the part that came is not a request."""
    port = free_port()
    settings = live_settings(db_url, tmp_path, port)
    simulator = Simulator(simulator_config(settings))
    app = create_app(settings, daraja_transport=httpx.ASGITransport(app=simulator.app))
    watched = WatchedApp(app)
    url = f"http://127.0.0.1:{port}"
    async with uvicorn_serving(watched, port), httpx.AsyncClient(base_url=url, timeout=5) as http:
        await simulator.start()
        created = await http.post("/v1/admin/projects", json={"name": "Shop"}, headers=ADMIN)
        key = created.json()["secret_keys"]["test"]
        body = json.dumps(PAYMENT).encode()  # a whole JSON document: only the length says it is cut
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /v1/payments HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {key}\r\nContent-Length: {len(body) + 100}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        await wait_until(lambda: [m for m in watched.received if m.get("more_body")])  # the part is in
        writer.close()
        await writer.wait_closed()
        await asyncio.wait_for(watched.finished.wait(), timeout=5)

        listed = await http.get("/v1/payments", headers={"Authorization": f"Bearer {key}"})
        assert listed.status_code == 200 and listed.json()["data"] == [], listed.text
        assert simulator.pushes() == []
        assert await reader.read() == b""  # and nothing was answered: the client is gone
    await simulator.aclose()


# --- logs --------------------------------------------------------------------------------------------


async def test_logs_hold_no_key_no_credential_and_no_full_phone_number(
    bridge: InProcessBridge, json_logs: JsonLogs
) -> None:
    """A whole payment, a query, a refused key and a failing request, at DEBUG, in JSON as in production."""
    json_logs.start()
    consumer_secret = bridge.settings.simulator_consumer_secret.get_secret_value()
    daraja = {
        "environment": "simulator",
        "consumer_key": SIMULATOR_CONSUMER_KEY,
        "consumer_secret": consumer_secret,
        "short_code": SANDBOX_SHORTCODE,
        "passkey": SANDBOX_PASSKEY,
    }
    created = await bridge.client.post("/v1/admin/projects", json={"name": "Logged", "test": daraja}, headers=ADMIN)
    assert created.status_code == 201, created.text
    keys = created.json()["secret_keys"]
    shop = Tenant(created.json()["id"], keys["test"], keys["live"])
    payment = await bridge.pay(shop, phone="0708374149")
    await bridge.wait_status(shop, payment["id"], "succeeded")
    await bridge.client.post(f"/v1/payments/{payment['id']}/refresh", headers=shop.headers())
    await bridge.client.get("/v1/payments", params={"phone": "+254708374149"}, headers=shop.headers())
    await bridge.client.get("/v1/payments", headers={"Authorization": f"Bearer {shop.test_key[:-1]}X"})
    await bridge.client.get("/v1/payments", headers={"Authorization": f"Bearer {shop.live_key}"})
    await bridge.client.post(
        "/v1/payments", json={**PAYMENT, "phone": "0722000000", "amount": 0}, headers=shop.headers()
    )

    text, records = json_logs.read()
    assert len(records) >= 4, text  # JSON lines, as in production
    assert {"daraja.stk_push.sending", "callback.received"} <= {r["event"] for r in records}
    secrets = {
        "test key": shop.test_key,
        "live key": shop.live_key,
        "a wrong key": shop.test_key[:-1] + "X",
        "admin token": ADMIN_TOKEN,
        "consumer secret": consumer_secret,
        "passkey": SANDBOX_PASSKEY,
        "STK password (base64 of shortcode+passkey+timestamp)": "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1",
    }
    for what, secret in secrets.items():
        assert secret not in text, what
    # The CheckoutRequestID holds the subscriber digits (logs mask them; the test below checks that):
    # blanked here so that this test checks everything else deterministically.
    text = text.replace(payment["checkout_request_id"], "<checkout_request_id>")
    for phone in ("0708374149", "254708374149", "+254708374149", "0722000000", "254722000000"):
        assert phone not in text, phone
    assert mask_phone("254708374149") in text  # the masked form is what operators see


async def test_logs_hold_not_even_the_subscriber_digits(bridge: InProcessBridge, json_logs: JsonLogs) -> None:
    json_logs.start()
    shop = await bridge.create_project()
    payment = await bridge.pay(shop, phone="0708374149")
    await bridge.wait_status(shop, payment["id"], "succeeded")
    assert "708374149" not in json_logs.read()[0]
