"""DarajaClient over aiohttp (the bridge's client, `daraja.pool.open_daraja_http`) against real HTTP on loopback.

The simulator is served by uvicorn on a free port; a thin ASGI wrapper in front of it counts what
arrives and, when a test asks, answers one request itself the way a broken Daraja would (HTML 503,
garbage JSON). The unit tests prove the client's logic over httpx.MockTransport; these prove that
the aiohttp transport maps real network outcomes onto the same exception tree: a push that timed
out reading is `unknown` and sent exactly once, a connect failure or a pool timeout never sent, and
TLS verified with the process's one context.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mpesa_bridge.core.ports import QueryPending, StkPushCommand
from mpesa_bridge.core.projects import DarajaAccount, DarajaEnvironment
from mpesa_bridge.daraja import (
    DarajaAuthError,
    DarajaClient,
    DarajaConnectError,
    DarajaConnectTimeout,
    DarajaCredentials,
    DarajaError,
    DarajaReadTimeout,
    DarajaServerError,
    DarajaStillProcessing,
    StkPushRequest,
    TokenCache,
)
from mpesa_bridge.daraja.pool import close_http, open_daraja_http
from mpesa_bridge.runtime import build_runtime
from mpesa_bridge.simulator import SANDBOX_PASSKEY, SANDBOX_SHORTCODE, SimulatorConfig, create_app
from mpesa_bridge.tls import client_ssl_context
from tests.fixtures.bridge import make_settings, wait_until
from tests.fixtures.servers import free_port

OAUTH = "/oauth/v1/generate"
PUSH = "/mpesa/stkpush/v1/processrequest"
QUERY = "/mpesa/stkpushquery/v1/query"
CREDENTIALS = DarajaCredentials("sim_consumer_key", "sim_consumer_secret")
TIMEOUT = httpx.Timeout(5.0, connect=2.0)

Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class Faults:
    """In front of the simulator: counts requests by path; answers the next ones of a path itself when told."""

    def __init__(self, app: Asgi) -> None:
        self.app = app
        self.seen: Counter[str] = Counter()
        self._next: dict[str, deque[tuple[int, bytes, str]]] = {}

    def answer_next(self, path: str, status: int, body: bytes, content_type: str) -> None:
        self._next.setdefault(path, deque()).append((status, body, content_type))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen[scope["path"]] += 1
            queue = self._next.get(scope["path"])
            if queue:
                status, body, content_type = queue.popleft()
                headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class Daraja:
    def __init__(self, url: str, faults: Faults, app: Any) -> None:
        self.url = url
        self.faults = faults
        self.simulator = app.state.simulator


@contextlib.asynccontextmanager
async def served(config: SimulatorConfig, **ssl_files: str) -> AsyncIterator[Daraja]:
    app = create_app(config)
    faults = Faults(app)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(faults, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **ssl_files)  # type: ignore[arg-type]
    )
    serving = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started or serving.done(), timeout=10)
        assert not serving.done(), "the simulator did not start"
        scheme = "https" if ssl_files else "http"
        yield Daraja(f"{scheme}://127.0.0.1:{port}", faults, app)
    finally:
        server.should_exit = True
        server.force_exit = True  # a push held back by the test is not waited for
        await serving


def simulator_config(**overrides: Any) -> SimulatorConfig:
    # No callback during a test unless asked: the customer answers after an hour.
    return SimulatorConfig(callback_delay=overrides.pop("callback_delay", 3600.0), **overrides)


@pytest.fixture
async def daraja() -> AsyncIterator[Daraja]:
    async with served(simulator_config(callback_delay=0.05)) as running:
        yield running


@contextlib.asynccontextmanager
async def client_for(
    url: str, timeout: httpx.Timeout = TIMEOUT, credentials: DarajaCredentials = CREDENTIALS, **kwargs: Any
) -> AsyncIterator[DarajaClient]:
    http = kwargs.pop("http", None) or open_daraja_http(timeout, client_ssl_context())
    assert isinstance(http, aiohttp.ClientSession)
    try:
        yield DarajaClient(url, credentials, http=http, token_cache=TokenCache(), timeout=timeout, **kwargs)
    finally:
        await close_http(http)


def push_request(phone: str = "254708374149") -> StkPushRequest:
    return StkPushRequest(
        business_short_code=SANDBOX_SHORTCODE,
        passkey=SANDBOX_PASSKEY,
        transaction_type="CustomerPayBillOnline",
        amount=10,
        party_a=phone,
        party_b=SANDBOX_SHORTCODE,
        phone_number=phone,
        callback_url=f"http://127.0.0.1:{free_port()}/callback",  # nobody listens: callbacks are not the point
        account_reference="INV-1",
        transaction_desc="Order 1",
    )


async def test_token_push_and_query_over_aiohttp(daraja: Daraja) -> None:
    async with client_for(daraja.url) as client:
        accepted = await client.stk_push(push_request())
        assert accepted.checkout_request_id.startswith("ws_CO_")

        async def answered() -> Any:
            with contextlib.suppress(DarajaStillProcessing):
                return await client.stk_query(SANDBOX_SHORTCODE, SANDBOX_PASSKEY, accepted.checkout_request_id)
            return None

        result = await wait_until(answered, timeout=5, interval=0.02)
    assert result.result_code == "0" and result.checkout_request_id == accepted.checkout_request_id
    assert daraja.faults.seen[OAUTH] == 1  # one token for the push and every query
    assert daraja.faults.seen[PUSH] == 1 and len(daraja.simulator.pushes()) == 1


async def test_wrong_credentials_are_an_auth_error_and_nothing_is_pushed(daraja: Daraja) -> None:
    async with client_for(daraja.url, credentials=DarajaCredentials("sim_consumer_key", "wrong-secret")) as client:
        with pytest.raises(DarajaAuthError) as caught:
            await client.stk_push(push_request())
    assert "wrong-secret" not in str(caught.value) and daraja.faults.seen[PUSH] == 0


async def token_into(cache: TokenCache, session: Any, url: str) -> None:
    """Fetch the token with generous timeouts (a busy machine must not time it out), into `cache`."""
    client = DarajaClient(url, CREDENTIALS, http=session, token_cache=cache, timeout=TIMEOUT)
    with contextlib.suppress(DarajaError):  # an unknown id: only the token matters
        await client.stk_query(SANDBOX_SHORTCODE, SANDBOX_PASSKEY, "ws_CO_none")


async def test_a_push_whose_answer_times_out_is_unknown_and_sent_exactly_once() -> None:
    async with served(simulator_config(push_answer_delay=30.0)) as daraja:
        session, cache = open_daraja_http(TIMEOUT, client_ssl_context()), TokenCache()
        try:
            await token_into(cache, session, daraja.url)
            short = httpx.Timeout(5.0, connect=2.0, read=0.3)
            client = DarajaClient(daraja.url, CREDENTIALS, http=session, token_cache=cache, timeout=short)
            with pytest.raises(DarajaReadTimeout) as caught:
                await client.stk_push(push_request())
        finally:
            await close_http(session)
        assert caught.value.outcome_unknown is True
        assert daraja.faults.seen[PUSH] == 1 and len(daraja.simulator.pushes()) == 1  # the prompt went out once


async def test_a_refused_connection_is_never_sent_and_retried_once_then_raised() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    async with client_for(closed) as client:
        with pytest.raises(DarajaConnectError) as caught:
            await client.stk_push(push_request())
    assert caught.value.outcome_unknown is False


async def test_waiting_too_long_for_a_pooled_connection_is_a_connect_timeout_never_sent() -> None:
    async with served(simulator_config(push_answer_delay=30.0)) as daraja:
        session, cache = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)), TokenCache()
        try:
            await token_into(cache, session, daraja.url)
            generous = DarajaClient(daraja.url, CREDENTIALS, http=session, token_cache=cache, timeout=TIMEOUT)
            held = asyncio.create_task(generous.stk_push(push_request()))  # holds the pool's one connection
            await wait_until(lambda: daraja.faults.seen[PUSH] == 1)
            short = httpx.Timeout(30.0, connect=0.2, pool=0.2)
            client = DarajaClient(
                daraja.url, CREDENTIALS, http=session, token_cache=cache, timeout=short, connect_retries=0
            )
            with pytest.raises(DarajaConnectTimeout) as caught:
                await client.stk_push(push_request("254708374150"))
            held.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await held
        finally:
            await session.close()
        assert caught.value.outcome_unknown is False
        assert daraja.faults.seen[PUSH] == 1  # the second push never left


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (503, b"<html><body>Service Unavailable</body></html>", "text/html"),
        (200, b'{"ResponseCode": "0", "Checkout', "application/json"),  # cut short: not JSON
        (500, b"\x00\xff not json at all", "application/json; charset=klingon"),
    ],
)
async def test_5xx_and_unreadable_answers_to_a_push_are_unknown_and_never_resent(
    daraja: Daraja, status: int, body: bytes, content_type: str
) -> None:
    daraja.faults.answer_next(PUSH, status, body, content_type)
    async with client_for(daraja.url) as client:
        with pytest.raises(DarajaServerError) as caught:
            await client.stk_push(push_request())
    assert caught.value.outcome_unknown is True and caught.value.http_status == status
    assert daraja.faults.seen[PUSH] == 1


async def test_5xx_on_a_query_is_a_server_error_and_never_unknown(daraja: Daraja) -> None:
    daraja.faults.answer_next(QUERY, 502, b"<html>Bad Gateway</html>", "text/html")
    async with client_for(daraja.url) as client:
        with pytest.raises(DarajaServerError) as caught:
            await client.stk_query(SANDBOX_SHORTCODE, SANDBOX_PASSKEY, "ws_CO_1")
    assert caught.value.outcome_unknown is False and "Bad Gateway" in caught.value.body_prefix


async def test_an_answer_that_is_not_http_after_the_push_left_is_unknown() -> None:
    pushes = 0

    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal pushes
        head = await reader.readuntil(b"\r\n\r\n")
        if head.startswith(b"GET"):
            body = b'{"access_token": "t0k3n", "expires_in": "3599"}'
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
        pushes += 1
        writer.write(b"SSH-2.0-OpenSSH_9.9\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(banner, "127.0.0.1", 0)
    try:
        async with client_for(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}") as client:
            with pytest.raises(DarajaReadTimeout) as caught:
                await client.stk_push(push_request())
    finally:
        server.close()
        await server.wait_closed()
    assert caught.value.outcome_unknown is True and pushes == 1


def self_signed(directory: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "daraja.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


async def test_tls_is_verified_with_the_processs_context(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    async with served(simulator_config(), ssl_certfile=cert, ssl_keyfile=key) as daraja:
        # The bridge's pool: the process's one context, the public CAs only — a self-signed peer is refused.
        async with client_for(daraja.url) as client:
            with pytest.raises(DarajaConnectError) as caught:
                await client.stk_push(push_request())
        assert caught.value.outcome_unknown is False and daraja.faults.seen[OAUTH] == 0
        # The same pool built with a context that trusts this certificate: the context given is the one used.
        trusting = ssl.create_default_context(cafile=cert)
        async with client_for(daraja.url, http=open_daraja_http(TIMEOUT, trusting)) as client:
            accepted = await client.stk_push(push_request())
        assert accepted.checkout_request_id.startswith("ws_CO_") and daraja.faults.seen[PUSH] == 1


async def test_the_runtime_speaks_to_daraja_over_aiohttp(database: Any, db_url: str, tmp_path: Path) -> None:
    """`build_runtime` without a test transport: the production wiring, SQLite and PostgreSQL."""
    async with served(simulator_config()) as daraja:
        runtime = await build_runtime(make_settings(db_url, tmp_path, simulator_url=daraja.url))
        try:
            assert isinstance(runtime.http, aiohttp.ClientSession)
            account = DarajaAccount(
                DarajaEnvironment.SIMULATOR,
                "sim_consumer_key",
                "sim_consumer_secret",
                SANDBOX_SHORTCODE,
                SANDBOX_PASSKEY,
            )
            command = StkPushCommand(account, 10, "254708374149", push_request().callback_url, "INV-1", "Order 1")
            accepted = await runtime.gateway.stk_push(command)
            with pytest.raises(QueryPending):  # the customer answers in an hour
                await runtime.gateway.stk_query(account, accepted.checkout_request_id)
        finally:
            await runtime.aclose()
        assert runtime.http.closed
    assert [p.checkout_request_id for p in daraja.simulator.pushes()] == [accepted.checkout_request_id]
    assert daraja.faults.seen[OAUTH] == 1
