"""Rate limits: per key, per endpoint class, per client address (behind trusted proxies only), per phone.

Callbacks are never limited. Windows are a minute or more and limits a handful of requests, so
nothing depends on timing. The Redis tests use a prefix of their own and delete only its keys.
"""

from __future__ import annotations

import hashlib
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from starlette.types import Message, Receive, Scope, Send
from structlog.testing import capture_logs

from mpesa_bridge.api.app import create_app
from mpesa_bridge.api.ratelimit import RateLimiter, RateLimitMiddleware
from mpesa_bridge.config import ConfigError, Settings
from mpesa_bridge.core.errors import RateLimited
from mpesa_bridge.routes import CALLBACK_PATH
from tests.fixtures.bridge import BRIDGE_URL, InProcessBridge, make_settings
from tests.fixtures.services import REDIS_URL, need, redis_available

KEY_LIMIT = 5
IP_LIMIT = 5
CREATE_LIMIT = 2
HANDSHAKE_LIMIT = 2


@pytest.fixture
def bridge_settings(db_url: str, tmp_path: Path) -> Settings:
    return limit_settings(db_url, tmp_path)


@pytest.fixture
def limiter_settings(tmp_path: Path) -> Settings:
    """For the limiter alone: no database is opened, so these tests run once, not per engine."""
    return limit_settings(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", tmp_path)


PeerClient = Callable[[str], httpx.AsyncClient]


def limit_settings(db_url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "rate_limit_enabled": True,
        "rate_limit_key": f"{KEY_LIMIT}/minute",
        "rate_limit_ip": f"{IP_LIMIT}/minute",
        "rate_limit_create": f"{CREATE_LIMIT}/minute",
        "rate_limit_phone": "3/10minutes",
        "rate_limit_handshake": f"{HANDSHAKE_LIMIT}/minute",
        "trusted_proxies": "10.0.0.0/8, 192.168.1.1",
        "redis_url": None,
    }
    values.update(overrides)
    return make_settings(db_url, tmp_path, **values)


@pytest.fixture
async def peer_client(bridge: InProcessBridge) -> AsyncIterator[PeerClient]:
    """A factory of clients whose requests arrive from a chosen peer address."""
    clients: list[httpx.AsyncClient] = []

    def make(peer: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=bridge.app, client=(peer, 1234))
        client = httpx.AsyncClient(transport=transport, base_url=BRIDGE_URL)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def assert_refusal(response: httpx.Response, *, limit: int, code: str = "rate_limited") -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert error["code"] == code
    assert error["message"]
    assert error["param"] is None
    assert error["request_id"] == response.headers["x-request-id"]
    assert error["request_id"].startswith("req_")
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.headers["ratelimit-limit"] == str(limit)
    assert response.headers["ratelimit-remaining"] == "0"
    assert 1 <= int(response.headers["ratelimit-reset"]) <= 60
    assert response.headers["x-content-type-options"] == "nosniff"  # still through BridgeMiddleware


async def test_per_key_limit_then_429_and_other_keys_unaffected(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project()
    other = await bridge.create_project("Other")

    for used in range(1, KEY_LIMIT + 1):
        response = await bridge.client.get("/v1/payments", headers=tenant.headers())
        assert response.status_code == 200, response.text
        assert response.headers["ratelimit-limit"] == str(KEY_LIMIT)
        assert response.headers["ratelimit-remaining"] == str(KEY_LIMIT - used)
        assert 1 <= int(response.headers["ratelimit-reset"]) <= 60

    refused = await bridge.client.get("/v1/payments", headers=tenant.headers())
    assert_refusal(refused, limit=KEY_LIMIT)

    # The same project's live key, and another project's key, count separately.
    assert (await bridge.client.get("/v1/payments", headers=tenant.headers("live"))).status_code == 200
    response = await bridge.client.get("/v1/payments", headers=other.headers())
    assert response.status_code == 200
    assert response.headers["ratelimit-remaining"] == str(KEY_LIMIT - 1)


async def test_payment_creation_has_its_own_lower_limit(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project()
    for _ in range(CREATE_LIMIT):  # counted before the body is even validated
        response = await bridge.client.post("/v1/payments", json={}, headers=tenant.headers())
        assert response.status_code == 400, response.text
        assert response.headers["ratelimit-limit"] == str(KEY_LIMIT)  # success headers: the key's limit

    refused = await bridge.client.post("/v1/payments", json={}, headers=tenant.headers())
    assert_refusal(refused, limit=CREATE_LIMIT)
    assert "payment creations" in refused.json()["error"]["message"]

    # Reading is still allowed: only the key's general limit applies (3 of 5 used so far).
    response = await bridge.client.get("/v1/payments", headers=tenant.headers())
    assert response.status_code == 200
    assert response.headers["ratelimit-remaining"] == str(KEY_LIMIT - CREATE_LIMIT - 2)


async def test_unauthenticated_requests_are_limited_per_address(
    bridge: InProcessBridge, peer_client: PeerClient
) -> None:
    for _ in range(IP_LIMIT):
        response = await bridge.client.get("/v1/payments")
        assert response.status_code == 401
        assert response.headers["ratelimit-limit"] == str(IP_LIMIT)
    assert_refusal(await bridge.client.get("/v1/payments"), limit=IP_LIMIT)
    assert_refusal(await bridge.client.get("/openapi.json"), limit=IP_LIMIT)

    # Another address is not affected.
    elsewhere = peer_client("198.51.100.20")
    assert (await elsewhere.get("/v1/payments")).status_code == 401


async def test_the_bridges_own_static_files_spend_no_address_budget(bridge: InProcessBridge) -> None:
    """A page loads its styles, scripts and icons at once: counting them let one dashboard page
    spend the address's allowance and its QR image come back 429 (seen in the links page test)."""
    files = [
        "/dashboard/static/dashboard.css",
        "/dashboard/static/dashboard.js",
        "/pay/assets/pay.css",
        "/pay/assets/pay.js",
        "/v1/widget.js",
        "/docs/assets/swagger-ui.css",
    ]
    for _ in range(IP_LIMIT + 1):
        for path in files:
            response = await bridge.client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            assert "ratelimit-limit" not in response.headers
    for _ in range(IP_LIMIT):  # the whole allowance is still there for the pages themselves
        assert (await bridge.client.get("/dashboard/signin")).status_code == 200
    assert_refusal(await bridge.client.get("/dashboard/signin"), limit=IP_LIMIT)


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(
    bridge: InProcessBridge, peer_client: PeerClient
) -> None:
    client = peer_client("203.0.113.7")
    for n in range(IP_LIMIT):  # a new forged address each time: all counted against the peer
        response = await client.get("/v1/payments", headers={"X-Forwarded-For": f"198.51.100.{n}"})
        assert response.status_code == 401
    refused = await client.get("/v1/payments", headers={"X-Forwarded-For": "198.51.100.99"})
    assert_refusal(refused, limit=IP_LIMIT)


async def test_forwarded_for_is_honoured_from_a_trusted_proxy(bridge: InProcessBridge, peer_client: PeerClient) -> None:
    proxy = peer_client("10.0.0.5")
    # Each client behind the proxy has its own allowance; the proxy's address is not the bucket.
    for _ in range(IP_LIMIT):
        response = await proxy.get("/v1/payments", headers={"X-Forwarded-For": "198.51.100.1"})
        assert response.status_code == 401
    assert_refusal(await proxy.get("/v1/payments", headers={"X-Forwarded-For": "198.51.100.1"}), limit=IP_LIMIT)
    # Through two trusted hops, with a forged entry on the left: still 198.51.100.1.
    refused = await proxy.get("/v1/payments", headers={"X-Forwarded-For": "7.7.7.7, 198.51.100.1, 192.168.1.1"})
    assert_refusal(refused, limit=IP_LIMIT)

    for _ in range(IP_LIMIT):
        response = await proxy.get("/v1/payments", headers={"X-Forwarded-For": "198.51.100.2"})
        assert response.status_code == 401
    # ::ffff: mapped addresses are the same client.
    refused = await proxy.get("/v1/payments", headers={"X-Forwarded-For": "::ffff:198.51.100.2"})
    assert_refusal(refused, limit=IP_LIMIT)


async def test_made_up_keys_do_not_escape_the_address_limit(bridge: InProcessBridge, peer_client: PeerClient) -> None:
    tenant = await bridge.create_project()
    attacker = peer_client("203.0.113.66")
    for _ in range(IP_LIMIT):
        headers = {"Authorization": f"Bearer sk_test_{secrets.token_hex(16)}"}
        assert (await attacker.get("/v1/payments", headers=headers)).status_code == 401
    headers = {"Authorization": f"Bearer sk_test_{secrets.token_hex(16)}"}
    assert_refusal(await attacker.get("/v1/payments", headers=headers), limit=IP_LIMIT)
    assert_refusal(await attacker.get("/v1/payments"), limit=IP_LIMIT)

    # A real key from another address is untouched.
    merchant = peer_client("198.51.100.30")
    assert (await merchant.get("/v1/payments", headers=tenant.headers())).status_code == 200


async def test_ipv6_addresses_of_one_64_share_an_allowance(bridge: InProcessBridge, peer_client: PeerClient) -> None:
    # One subscriber gets a whole /64 and may pick any address in it: counting each one apart would
    # give it 2^64 allowances. Made-up keys (the authentication-failure budget) count the same way.
    first = peer_client("2001:db8:1:2::1")
    for _ in range(IP_LIMIT):
        headers = {"Authorization": f"Bearer sk_test_{secrets.token_hex(16)}"}
        assert (await first.get("/v1/payments", headers=headers)).status_code == 401
    for neighbour in ("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe", "2001:db8:1:2:0:0:0:2"):
        assert_refusal(await peer_client(neighbour).get("/v1/payments"), limit=IP_LIMIT)
    # The next /64 is another client.
    assert (await peer_client("2001:db8:1:3::1").get("/v1/payments")).status_code == 401


async def test_an_ipv4_mapped_peer_shares_the_ipv4_allowance(bridge: InProcessBridge, peer_client: PeerClient) -> None:
    for _ in range(IP_LIMIT):
        assert (await peer_client("198.51.100.40").get("/v1/payments")).status_code == 401
    assert_refusal(await peer_client("::ffff:198.51.100.40").get("/v1/payments"), limit=IP_LIMIT)


async def test_the_ipv6_prefix_is_a_setting(limiter_settings: Settings) -> None:
    for prefix, shared in ((128, False), (64, True), (48, True)):
        limiter = RateLimiter.from_settings(limiter_settings.model_copy(update={"rate_limit_ipv6_prefix": prefix}))
        try:
            for _ in range(IP_LIMIT):
                await limiter.hit_address("ip", "2001:db8:1:2::1", limit=limiter.ip_limit)
            neighbour = "2001:db8:1:2::2" if prefix != 48 else "2001:db8:1:ffff::2"
            if shared:
                with pytest.raises(RateLimited):
                    await limiter.hit_address("ip", neighbour, limit=limiter.ip_limit)
            else:
                await limiter.hit_address("ip", neighbour, limit=limiter.ip_limit)
        finally:
            await limiter.aclose()


async def test_socket_handshakes_of_one_64_share_an_allowance(bridge: InProcessBridge, peer_client: PeerClient) -> None:
    opened = {"EIO": "4", "transport": "polling"}  # a new Engine.IO session over long-polling
    for peer in ("2001:db8:7:7::1", "2001:db8:7:7::2"):
        response = await peer_client(peer).get("/socket.io/", params=opened)
        assert response.status_code == 200 and response.text.startswith("0{"), response.text
    assert_refusal(await peer_client("2001:db8:7:7::3").get("/socket.io/", params=opened), limit=HANDSHAKE_LIMIT)
    assert (await peer_client("2001:db8:7:8::1").get("/socket.io/", params=opened)).status_code == 200


async def test_callbacks_are_never_limited(bridge: InProcessBridge, peer_client: PeerClient) -> None:
    safaricom = peer_client("196.201.214.200")
    for _ in range(IP_LIMIT):
        await safaricom.get("/v1/payments")
    assert_refusal(await safaricom.get("/v1/payments"), limit=IP_LIMIT)  # this address is exhausted…

    body = b'{"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_unknown", "ResultCode": 1032}}}'
    for n in range(100):  # …and its callbacks all go through
        response = await safaricom.post(
            f"{CALLBACK_PATH}tok{n}", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
        assert "ratelimit-limit" not in response.headers


async def test_health_endpoints_are_not_limited(bridge: InProcessBridge) -> None:
    for _ in range(IP_LIMIT * 3):
        for path in ("/healthz", "/readyz"):
            response = await bridge.client.get(path)
            assert response.status_code == 200
            assert "ratelimit-limit" not in response.headers


async def test_phone_guard(bridge: InProcessBridge) -> None:
    limiter = bridge.app.state.http.rate_limiter
    for n in range(3):
        quota = await limiter.hit_phone("prj_a", "test", "254708374149")
        assert (quota.limit, quota.remaining) == (3, 2 - n)
    with pytest.raises(RateLimited) as refused:
        await limiter.hit_phone("prj_a", "test", "254708374149")
    assert refused.value.code == "phone_rate_limited"
    assert refused.value.param == "phone"
    assert refused.value.limit == 3 and refused.value.remaining == 0
    assert 500 < refused.value.retry_after <= 600
    assert "254708374149" not in refused.value.message

    # Another phone, another mode, another project: separate allowances.
    await limiter.hit_phone("prj_a", "test", "254708374150")
    await limiter.hit_phone("prj_a", "live", "254708374149")
    await limiter.hit_phone("prj_b", "test", "254708374149")


# --- Redis: limits shared by instances -------------------------------------------------------------


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    need("Redis", redis_available())
    prefix = f"mpesa-bridge-test:{secrets.token_hex(6)}"
    yield prefix
    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_two_instances_share_limits_through_redis(limiter_settings: Settings, redis_prefix: str) -> None:
    settings = limiter_settings.model_copy(update={"redis_url": REDIS_URL})
    first = RateLimiter.from_settings(settings, key_prefix=redis_prefix)
    second = RateLimiter.from_settings(settings, key_prefix=redis_prefix)
    try:
        assert first.shared and second.shared
        digest = hashlib.sha256(b"sk_test_shared").hexdigest()
        for limiter in (first, second, first, second):
            await limiter.hit("key", digest, limit=first.key_limit)
        quota = await second.hit("key", digest, limit=second.key_limit)
        assert quota.remaining == 0
        for limiter in (first, second):
            with pytest.raises(RateLimited) as refused:
                await limiter.hit("key", digest, limit=limiter.key_limit)
            assert refused.value.limit == KEY_LIMIT and 1 <= refused.value.retry_after <= 60

        # The phone guard too: two pushes on one instance, one on the other, then no more anywhere.
        await first.hit_phone("prj_a", "live", "254708374149")
        await first.hit_phone("prj_a", "live", "254708374149")
        await second.hit_phone("prj_a", "live", "254708374149")
        with pytest.raises(RateLimited, match="phone"):
            await first.hit_phone("prj_a", "live", "254708374149")

        client = aioredis.from_url(REDIS_URL)
        try:
            keys = [key.decode() async for key in client.scan_iter(match=f"{redis_prefix}:*")]
        finally:
            await client.aclose()
        assert keys and all("sk_test_shared" not in key and "254708374149" not in key for key in keys)
    finally:
        await first.aclose()
        await second.aclose()


def _closed_port() -> int:
    with socket.socket() as probe:  # free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_unreachable_redis_falls_back_to_memory_and_says_so(limiter_settings: Settings) -> None:
    settings = limiter_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{_closed_port()}/15"})
    limiter = RateLimiter.from_settings(settings)
    try:
        with capture_logs() as logs:
            for _ in range(KEY_LIMIT):
                await limiter.hit("key", "abc", limit=limiter.key_limit)
            with pytest.raises(RateLimited):  # never fails open
                await limiter.hit("key", "abc", limit=limiter.key_limit)
        errors = [entry for entry in logs if entry["event"] == "ratelimit.redis_unavailable"]
        assert errors and errors[0]["log_level"] == "error"
        assert len(errors) == 1  # then Redis is left alone for a while, not retried per request
    finally:
        await limiter.aclose()


@pytest.mark.parametrize("value", ["lots", "5/fortnight", "1/second;2/minute", "0/second"])
def test_bad_limit_settings_are_configuration_errors(limiter_settings: Settings, value: str) -> None:
    with pytest.raises(ConfigError, match="MPESA_BRIDGE_RATE_LIMIT_IP"):
        RateLimiter.from_settings(limiter_settings.model_copy(update={"rate_limit_ip": value}))


def test_bad_trusted_proxies_are_configuration_errors(limiter_settings: Settings) -> None:
    settings = limiter_settings.model_copy(update={"trusted_proxies": "10.0.0.0/8, proxy.internal"})
    with pytest.raises(ConfigError, match=r"MPESA_BRIDGE_TRUSTED_PROXIES.*proxy\.internal"):
        create_app(settings)


async def test_a_routes_own_429_keeps_its_rate_limit_headers(limiter_settings: Settings) -> None:
    """The phone guard answers 429 from inside a route: its RateLimit-* must not be doubled or replaced."""

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json")]
        status = 200
        if scope["method"] == "POST":  # the guard refuses
            status, headers = 429, [*headers, (b"ratelimit-limit", b"3"), (b"retry-after", b"600")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})

    limiter = RateLimiter.from_settings(limiter_settings)
    transport = httpx.ASGITransport(app=RateLimitMiddleware(route, limiter=limiter))
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BRIDGE_URL) as client:
            response = await client.post("/v1/payments", headers={"Authorization": "Bearer sk_test_x"})
            assert response.status_code == 429
            assert response.headers.get_list("ratelimit-limit") == ["3"]
            assert "ratelimit-remaining" not in response.headers
            # An ordinary answer gets the key's numbers.
            response = await client.get("/v1/payments", headers={"Authorization": "Bearer sk_test_x"})
            assert response.headers.get_list("ratelimit-limit") == [str(KEY_LIMIT)]
            assert response.headers["ratelimit-remaining"] == str(KEY_LIMIT - 2)
    finally:
        await limiter.aclose()


async def test_a_401_has_spent_the_budget_before_its_answer_starts(limiter_settings: Settings) -> None:
    """A caller that waits for its 401 and tries again must find the failure counted: the budget is
    spent before the answer leaves (it was spent after the body once, a race a quick client won)."""
    spent_when_answered: list[bool] = []
    limiter = RateLimiter.from_settings(limiter_settings.model_copy(update={"rate_limit_ip": "1/minute"}))

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})

    middleware = RateLimitMiddleware(route, limiter=limiter)

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            try:
                await limiter.check_auth_failures("127.0.0.1")
            except RateLimited:
                spent_when_answered.append(True)
            else:
                spent_when_answered.append(False)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/payments",
        "headers": [(b"authorization", b"Bearer sk_test_made_up")],
        "client": ("127.0.0.1", 5000),
    }
    try:
        await middleware(scope, receive, send)
        assert spent_when_answered == [True]
    finally:
        await limiter.aclose()


async def test_disabled_limits_count_nothing_not_even_the_phone_guard(limiter_settings: Settings) -> None:
    limiter = RateLimiter.from_settings(limiter_settings.model_copy(update={"rate_limit_enabled": False}))
    try:
        for _ in range(10):
            await limiter.hit_phone("prj_a", "test", "254708374149")
            await limiter.hit("key", "abc", limit=limiter.key_limit)
    finally:
        await limiter.aclose()
    app = create_app(limiter_settings.model_copy(update={"rate_limit_enabled": False}))
    assert not any(m.cls is RateLimitMiddleware for m in app.user_middleware)
