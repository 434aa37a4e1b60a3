"""Sentry error reporting against a local stand-in of Sentry's envelope endpoint (a loopback aiohttp
server on a free port that the DSN names), never the internet: an error raised inside a request
carrying a phone number, keys and a body reaches it with none of them."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import sentry_sdk
from aiohttp import web
from fastapi import Request

from mpesa_bridge.api.app import create_app
from mpesa_bridge.observability import errors
from tests.fixtures.bridge import BRIDGE_URL, make_settings, wait_until

PHONE = "254712345678"
SECRET_KEY = "sk_test_" + "4f9c2b7e1a6d3c8f0b5e2a9d7c1f4e6b"
PUBLISHABLE_KEY = "pk_test_" + "8b1e4c7a2f5d9e3b6c0a1f4d7e2b5c8a"
WEBHOOK_SECRET = "whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5LWZvci10ZXN0cw=="
PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"


class EnvelopeServer:
    """Sentry's ingestion endpoint as far as the SDK needs it: POST /api/<project>/envelope/."""

    def __init__(self) -> None:
        self.envelopes: list[bytes] = []
        self.paths: list[str] = []

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp already undoes a Content-Encoding it knows
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        self.paths.append(request.path)
        self.envelopes.append(body)
        return web.json_response({"id": "0" * 32})


@pytest.fixture
async def envelope_server() -> AsyncIterator[tuple[EnvelopeServer, int]]:
    server = EnvelopeServer()
    app = web.Application()
    app.router.add_post("/api/{project}/envelope/", server.receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)  # a free port, chosen by the kernel
    await site.start()
    port = runner.addresses[0][1]
    yield server, port
    await runner.cleanup()


@pytest.fixture
def sentry_closed_after() -> Iterator[None]:
    yield
    client = sentry_sdk.get_client()
    client.close(timeout=2)
    sentry_sdk.get_global_scope().set_client(None)
    errors._configured = False  # the rest of this test process reports nothing


async def test_an_error_in_a_request_reaches_sentry_scrubbed(
    database: object,
    db_url: str,
    tmp_path: Path,
    envelope_server: tuple[EnvelopeServer, int],
    sentry_closed_after: None,
) -> None:
    server, port = envelope_server
    settings = make_settings(
        db_url,
        tmp_path,
        sentry_dsn=f"http://publickey@127.0.0.1:{port}/42",
        sentry_environment="ci",
        sentry_release="mpesa-bridge@test",
    )
    app = create_app(settings)

    async def explode(request: Request) -> None:
        body = await request.json()
        passkey = body["passkey"]  # a local: never collected (include_local_variables=False)
        raise RuntimeError(
            f"could not pay {body['phone']} (0712345678) with {request.headers['authorization']} "
            f"or {PUBLISHABLE_KEY}, signing with {WEBHOOK_SECRET}, passkey {passkey}"
        )

    app.add_api_route("/v1/explode", explode, methods=["POST"])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url=BRIDGE_URL) as client:
        answer = await client.post(
            "/v1/explode?phone=254712345678",
            json={"phone": PHONE, "passkey": PASSKEY, "SecurityCredential": "c2VjcmV0"},
            headers={"Authorization": f"Bearer {SECRET_KEY}", "X-Api-Key": PUBLISHABLE_KEY, "Cookie": "s=abc"},
        )
        assert answer.status_code == 500
        await asyncio.to_thread(sentry_sdk.flush, 5)  # the stand-in answers on this loop: never block it
        await wait_until(lambda: server.envelopes, timeout=10)

    assert server.paths == ["/api/42/envelope/"]
    envelope = b"\n".join(server.envelopes).decode()
    assert "RuntimeError" in envelope and "could not pay" in envelope  # the error itself arrived
    assert '"environment":"ci"' in envelope.replace(" ", "")
    for secret in (PHONE, "712345678", SECRET_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET, PASSKEY, "c2VjcmV0"):
        assert secret not in envelope, secret
    assert "2547****5678" in envelope  # masked, as in the logs
