"""Rate limits: per API key, per client address, per endpoint class, and per phone for STK pushes.

Strategy: the moving window (`limits`' MovingWindowRateLimiter). A fixed window lets a caller
spend a whole window's allowance at the end of one window and again at the start of the next —
twice the limit in a moment. That matters most for the phone guard: "3 pushes per 10 minutes"
must never become 6 prompts on one customer's phone within a few seconds. The cost is one stored
timestamp per allowed hit (at most `limit` per key, kept atomically by a Lua script in Redis),
which is small for these limits.

Storage: in memory (one process), or Redis when `MPESA_BRIDGE_REDIS_URL` is set, so that every
bridge instance counts against the same limits. If Redis cannot be reached, a request is not let
through unlimited: the error is logged and the limits are enforced from this process's memory
instead (per instance, so looser by the number of instances, but never off). Refusing every
request instead would stop payments whenever Redis hiccups; letting everything through would
remove the protection exactly when someone may be hammering us. After a failure Redis is left
alone for a few seconds so that an outage does not add a connect timeout to every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs

import redis.asyncio as aioredis
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mpesa_bridge.api.bearer import scope_bearer_token
from mpesa_bridge.api.errors import error_reply, rate_limit_headers
from mpesa_bridge.api.net import IPNetwork, address_bucket, client_ip
from mpesa_bridge.config import ConfigError, Settings
from mpesa_bridge.core.errors import RateLimited
from mpesa_bridge.logging import get_logger
from mpesa_bridge.realtime.socketio import PATH as SOCKET_MOUNT
from mpesa_bridge.routes import CALLBACK_PATH, STATIC_PREFIXES, WIDGET_PATH

log = get_logger("mpesa_bridge.ratelimit")

T = TypeVar("T")

DEFAULT_KEY_PREFIX = "mpesa-bridge:ratelimit"
REDIS_TIMEOUT = 0.5  # seconds: a rate-limit check must never hold a payment request for long
REDIS_RETRY_INTERVAL = 5.0  # seconds after a Redis failure before it is tried again
_STORAGE_ERRORS = (StorageError, RedisError, OSError)
_REDIS_SCHEMES = {"redis": "async+redis", "rediss": "async+rediss", "unix": "async+redis+unix"}

UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", WIDGET_PATH})
CREATE_PATH = "/v1/payments"
SOCKET_PATH = "/" + SOCKET_MOUNT
AUTH_FAILURES_SPENT = "Too many requests with invalid keys from this address."


def parse_limit(value: str, variable: str) -> RateLimitItem:
    """One rate limit in `limits` notation ("100/second", "3/10minutes"), or a ConfigError naming the variable."""
    try:
        items = parse_many(value)
    except ValueError:
        items = []
    if len(items) != 1 or items[0].amount < 1:
        raise ConfigError(f"{variable}: {value!r} is not one rate limit such as '100/second' or '3/10minutes'")
    return items[0]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Quota:
    """Where a caller stands after an allowed hit: for the RateLimit-* response headers."""

    limit: int
    remaining: int
    reset: int  # seconds until the oldest hit in the window expires (a slot frees)

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset).encode()),
        ]


class RateLimiter:
    """Counts hits in moving windows, in Redis (shared by instances) or in this process's memory."""

    def __init__(
        self,
        *,
        key_limit: str = "100/second",
        ip_limit: str = "30/second",
        create_limit: str = "20/second",
        phone_limit: str = "3/10minutes",
        handshake_limit: str = "10/second",
        browser_create_limit: str = "10/minute",
        browser_phone_limit: str = "3/hour",
        ipv6_prefix: int = 64,
        redis_url: str | None = None,
        enabled: bool = True,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        redis_timeout: float = REDIS_TIMEOUT,
        redis_retry_interval: float = REDIS_RETRY_INTERVAL,
    ) -> None:
        self.key_limit = parse_limit(key_limit, "MPESA_BRIDGE_RATE_LIMIT_KEY")
        self.ip_limit = parse_limit(ip_limit, "MPESA_BRIDGE_RATE_LIMIT_IP")
        self.create_limit = parse_limit(create_limit, "MPESA_BRIDGE_RATE_LIMIT_CREATE")
        self.phone_limit = parse_limit(phone_limit, "MPESA_BRIDGE_RATE_LIMIT_PHONE")
        self.handshake_limit = parse_limit(handshake_limit, "MPESA_BRIDGE_RATE_LIMIT_HANDSHAKE")
        self.browser_create_limit = parse_limit(browser_create_limit, "MPESA_BRIDGE_RATE_LIMIT_BROWSER_CREATE")
        self.browser_phone_limit = parse_limit(browser_phone_limit, "MPESA_BRIDGE_RATE_LIMIT_BROWSER_PHONE")
        if not 1 <= ipv6_prefix <= 128:
            raise ConfigError(f"MPESA_BRIDGE_RATE_LIMIT_IPV6_PREFIX: {ipv6_prefix} is not a prefix length (1 to 128)")
        self.ipv6_prefix = ipv6_prefix
        self.redis_retry_interval = redis_retry_interval
        self.enabled = enabled  # off (MPESA_BRIDGE_RATE_LIMIT_ENABLED=false): every hit is allowed, none counted
        # Memory: the only storage without Redis, the fallback with it.
        self._memory = MemoryStorage()
        self._local = MovingWindowRateLimiter(self._memory)
        self._pool: aioredis.ConnectionPool | None = None
        self._shared: MovingWindowRateLimiter | None = None  # Redis, when configured
        self._redis_down_until = 0.0
        self._redis_failing = False
        if redis_url:
            scheme = redis_url.split("://", 1)[0].lower()
            if scheme not in _REDIS_SCHEMES:
                raise ConfigError("MPESA_BRIDGE_REDIS_URL must be a redis://, rediss:// or unix:// URL")
            # One quick retry (a pooled connection gone stale after a Redis restart), no backoff,
            # and short timeouts: redis-py's default of 10 retries would stall requests in an outage.
            self._pool = aioredis.ConnectionPool.from_url(
                redis_url,
                socket_connect_timeout=redis_timeout,
                socket_timeout=redis_timeout,
                retry=Retry(NoBackoff(), 1),
            )
            options: dict[str, Any] = {"connection_pool": self._pool}
            storage = RedisStorage(
                _REDIS_SCHEMES[scheme] + "://" + redis_url.split("://", 1)[1],
                implementation="redispy",
                key_prefix=key_prefix,
                wrap_exceptions=True,
                **options,
            )
            self._shared = MovingWindowRateLimiter(storage)

    @classmethod
    def from_settings(cls, settings: Settings, *, key_prefix: str = DEFAULT_KEY_PREFIX) -> RateLimiter:
        return cls(
            key_limit=settings.rate_limit_key,
            ip_limit=settings.rate_limit_ip,
            create_limit=settings.rate_limit_create,
            phone_limit=settings.rate_limit_phone,
            handshake_limit=settings.rate_limit_handshake,
            browser_create_limit=settings.rate_limit_browser_create,
            browser_phone_limit=settings.rate_limit_browser_phone,
            ipv6_prefix=settings.rate_limit_ipv6_prefix,
            redis_url=settings.redis_url,
            enabled=settings.rate_limit_enabled,
            key_prefix=key_prefix,
        )

    @property
    def shared(self) -> bool:
        """True when the limits live in Redis (shared by every instance)."""
        return self._shared is not None

    async def hit(
        self,
        *key_parts: str,
        limit: RateLimitItem | str,
        code: str | None = None,
        param: str | None = None,
        message: str | None = None,
    ) -> Quota:
        """Count one hit against `limit` for `key_parts`; RateLimited (nothing counted) if it is used up."""
        item = limit if isinstance(limit, RateLimitItem) else parse_limit(limit, "rate limit")
        if not self.enabled:
            return Quota(limit=item.amount, remaining=item.amount, reset=0)

        async def attempt(window: MovingWindowRateLimiter) -> tuple[bool, float, int]:
            allowed = await window.hit(item, *key_parts)
            stats = await window.get_window_stats(item, *key_parts)
            return allowed, stats.reset_time, stats.remaining

        allowed, reset_time, remaining = await self._run(attempt)
        reset = max(0, math.ceil(reset_time - time.time()))
        if not allowed:
            retry_after = max(1, reset)
            raise RateLimited(
                message or f"Too many requests: the limit is {_describe(item)}. Retry in {retry_after} s.",
                retry_after=retry_after,
                limit=item.amount,
                remaining=0,
                reset=retry_after,
                code=code,
                param=param,
            )
        return Quota(limit=item.amount, remaining=max(0, remaining), reset=reset)

    async def check(
        self,
        *key_parts: str,
        limit: RateLimitItem,
        message: str | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        """RateLimited if `limit` is used up for `key_parts`, without counting a hit."""
        if not self.enabled:
            return

        async def attempt(window: MovingWindowRateLimiter) -> tuple[bool, float]:
            if await window.test(limit, *key_parts):
                return True, 0.0
            return False, (await window.get_window_stats(limit, *key_parts)).reset_time

        allowed, reset_time = await self._run(attempt)
        if not allowed:
            retry_after = max(1, math.ceil(reset_time - time.time()))
            raise RateLimited(
                message or f"Too many requests: the limit is {_describe(limit)}. Retry in {retry_after} s.",
                retry_after=retry_after,
                limit=limit.amount,
                remaining=0,
                reset=retry_after,
                code=code,
                param=param,
            )

    def client_bucket(self, address: str) -> str:
        """What every per-address limit counts `address` as (`net.address_bucket`: IPv6 by prefix)."""
        return address_bucket(address, self.ipv6_prefix)

    async def hit_address(self, kind: str, address: str, *, limit: RateLimitItem, message: str | None = None) -> Quota:
        """`hit` for a per-address limit: every one goes through here, so that none counts an IPv6
        client's addresses apart."""
        return await self.hit(kind, self.client_bucket(address), limit=limit, message=message)

    async def check_address(self, kind: str, address: str, *, limit: RateLimitItem, message: str | None = None) -> None:
        """`check` for a per-address limit (bucketed as in `hit_address`)."""
        await self.check(kind, self.client_bucket(address), limit=limit, message=message)

    async def check_auth_failures(self, address: str) -> None:
        """RateLimited once the address's budget of failed authentications is spent: then its
        credentials are refused before any is looked up. The budget is `rate_limit_ip`, shared with
        the address's unauthenticated requests; HTTP 401s and refused Socket.IO connects spend it."""
        await self.check_address("ip", address, limit=self.ip_limit, message=AUTH_FAILURES_SPENT)

    async def count_auth_failure(self, address: str) -> None:
        """Spend one of the address's failed authentications (nothing more to count once it is spent)."""
        with contextlib.suppress(RateLimited):
            await self.hit_address("ip", address, limit=self.ip_limit)

    async def check_phone(self, project_id: str, mode: str, phone: str) -> None:
        """Refuse before pushing if this phone's allowance is used up — without counting this request:
        only pushes actually attempted count (`hit_phone` after the push), not refused requests."""
        await self.check(
            "phone",
            _digest(project_id, mode, phone),
            limit=self.phone_limit,
            code="phone_rate_limited",
            param="phone",
            message=f"Too many payment requests to this phone number: the limit is {_describe(self.phone_limit)}. "
            "Retry later.",
        )

    async def hit_phone(self, project_id: str, mode: str, phone: str) -> Quota:
        """The STK guard: at most `rate_limit_phone` pushes to one phone per project and mode.

        `phone` should be the normalised MSISDN (2547XXXXXXXX) so that 07… and 2547… count together.
        It is stored only as a SHA-256, never in clear.
        """
        return await self.hit(
            "phone",
            _digest(project_id, mode, phone),
            limit=self.phone_limit,
            code="phone_rate_limited",
            param="phone",
            message=(
                f"Too many payment requests to this phone number: the limit is {_describe(self.phone_limit)}. "
                "Retry later."
            ),
        )

    async def hit_browser_create(self, address: str) -> Quota:
        """A checkout session opened with a publishable key: `rate_limit_browser_create` per address."""
        return await self.hit_address(
            "browser-create",
            address,
            limit=self.browser_create_limit,
            message="Too many checkout sessions from this address: the limit is "
            f"{_describe(self.browser_create_limit)}.",
        )

    async def check_browser_phone(self, project_id: str, mode: str, phone: str) -> None:
        """`check_phone`'s stricter twin for sessions opened with a publishable key (not counted here)."""
        await self.check(
            "browser-phone",
            _digest(project_id, mode, phone),
            limit=self.browser_phone_limit,
            code="phone_rate_limited",
            param="phone",
            message=_browser_phone_message(self.browser_phone_limit),
        )

    async def hit_browser_phone(self, project_id: str, mode: str, phone: str) -> Quota:
        """Count a push to `phone` for a session opened with a publishable key (after it was attempted)."""
        return await self.hit(
            "browser-phone",
            _digest(project_id, mode, phone),
            limit=self.browser_phone_limit,
            code="phone_rate_limited",
            param="phone",
            message=_browser_phone_message(self.browser_phone_limit),
        )

    async def _run(self, attempt: Callable[[MovingWindowRateLimiter], Awaitable[T]]) -> T:
        if self._shared is not None and time.monotonic() >= self._redis_down_until:
            try:
                result = await attempt(self._shared)
            except _STORAGE_ERRORS as exc:
                self._redis_down_until = time.monotonic() + self.redis_retry_interval
                self._redis_failing = True
                log.error(
                    "ratelimit.redis_unavailable",
                    error=f"{type(exc).__name__}: {exc}",
                    fallback="memory (per instance)",
                    retry_in=self.redis_retry_interval,
                )
            else:
                if self._redis_failing:
                    self._redis_failing = False
                    log.info("ratelimit.redis_recovered")
                return result
        return await attempt(self._local)

    async def aclose(self) -> None:
        timer = self._memory.timer  # its expiry sweep, if one is running
        if timer is not None and not timer.done():
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        if self._pool is not None:  # the Redis client owns no connection of its own: the pool has them all
            await self._pool.aclose()


def _browser_phone_message(item: RateLimitItem) -> str:
    return (
        f"Too many payment requests to this phone number from web pages: the limit is {_describe(item)}. Retry later."
    )


def _describe(item: RateLimitItem) -> str:
    multiples = f"{item.multiples} " if item.multiples != 1 else ""
    unit = item.GRANULARITY.name + ("s" if item.multiples != 1 else "")
    return f"{item.amount} per {multiples}{unit}"


# --- the middleware ---------------------------------------------------------------------------------


def refusal_messages(exc: RateLimited, request_id: str | None) -> tuple[Message, Message]:
    """The 429 as ASGI messages: the one error envelope (`api.errors.error_reply`)."""
    headers = rate_limit_headers(exc)
    return error_reply(429, exc.code, exc.message, request_id, "rate_limit_error", param=exc.param, headers=headers)


def _opens_socket_session(scope: Scope) -> bool:
    """A request to Socket.IO without a session id: a handshake, which creates an Engine.IO session."""
    if not scope.get("path", "").startswith(SOCKET_PATH):
        return False
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return "sid" not in query


async def _refuse(scope: Scope, send: Send, exc: RateLimited) -> None:
    start, body = refusal_messages(exc, scope.get("state", {}).get("request_id"))
    if scope["type"] == "http":
        await send(start)
        await send(body)
    elif "websocket.http.response" in scope.get("extensions", {}):  # an HTTP 429 instead of the upgrade
        await send({**start, "type": "websocket.http.response.start"})
        await send({**body, "type": "websocket.http.response.body"})
    else:
        await send({"type": "websocket.close", "code": 1008})  # the server answers 403


class RateLimitMiddleware:
    """Refuses over-limit requests with 429 before routing; stamps RateLimit-* on the others.

    - Daraja's callbacks are never limited: Safaricom calls from a handful of addresses, and a
      refused callback is a payment we only learn about by polling.
    - `/healthz` and `/readyz` are not limited (load balancers and orchestrators poll them), nor
      the bridge's own static files (`routes.STATIC_PREFIXES`, `/v1/widget.js`): a page loads
      several at once, and a signed-in dashboard page counts against its address's budget.
    - `Authorization: Bearer …`: limited per key (by the SHA-256 of the value, never the value),
      and `POST /v1/payments` also by `rate_limit_create`. Because the key is not verified yet,
      made-up keys must not escape the per-address limit: a bearer request answered 401 spends the
      address's authentication-failure budget (`count_auth_failure`, shared with refused Socket.IO
      connects), and once that is spent the address's bearer requests are refused too, before any
      key is looked up.
    - No bearer: limited per client address (`client_ip`, believing only trusted proxies).
    - A Socket.IO handshake (a new Engine.IO session, over WebSocket or long-polling) is also
      limited per address by `rate_limit_handshake`; a WebSocket handshake by that alone.

    Every per-address count goes through `RateLimiter.hit_address`/`check_address`, which bucket
    IPv6 clients by prefix. The limiter is the app's (`app.state.http.rate_limiter`, see
    `api/parts.py`), looked up per request since the lifespan builds it after this middleware;
    tests may pass one directly.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter | None = None,
        trusted_proxies: Sequence[IPNetwork] = (),
        enabled: bool = True,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.trusted_proxies = list(trusted_proxies)
        self.enabled = enabled
        self.unlimited_prefixes: tuple[str, ...] = (CALLBACK_PATH, *STATIC_PREFIXES)

    def _limiter(self, scope: Scope) -> RateLimiter | None:
        if self.limiter is not None:
            return self.limiter
        parts = getattr(getattr(scope.get("app"), "state", None), "http", None)
        limiter = getattr(parts, "rate_limiter", None)
        return limiter if isinstance(limiter, RateLimiter) else None

    def _limited(self, scope: Scope) -> bool:
        path: str = scope.get("path", "")
        if scope["type"] == "websocket":
            return path.startswith(SOCKET_PATH)
        return scope["type"] == "http" and path not in UNLIMITED_PATHS and not path.startswith(self.unlimited_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limiter = self._limiter(scope) if self.enabled and self._limited(scope) else None
        if limiter is None:  # not limited, or no runtime yet (lifespan not run): nothing to count with
            await self.app(scope, receive, send)
            return
        address = client_ip(scope, self.trusted_proxies) or "unknown"
        bearer = scope_bearer_token(scope)
        try:
            quota = await self._count_request(limiter, scope, address, bearer)
            if _opens_socket_session(scope):
                await limiter.hit_address(
                    "handshake",
                    address,
                    limit=limiter.handshake_limit,
                    message=f"Too many new Socket.IO sessions from this address: the limit is "
                    f"{_describe(limiter.handshake_limit)}.",
                )
        except RateLimited as exc:
            await _refuse(scope, send, exc)
            return
        if quota is None:  # a WebSocket: no response headers to stamp
            await self.app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                # A 401 spends the address's budget before the client can see it: a caller that
                # waits for its answer and tries again (over HTTP or Socket.IO) finds it spent.
                if bearer is not None and message["status"] == 401:
                    await limiter.count_auth_failure(address)
                headers = list(message.get("headers", []))
                # A route's own 429 (the phone guard) already carries its RateLimit-* headers.
                if not any(name.lower() == b"ratelimit-limit" for name, _ in headers):
                    headers.extend(quota.headers())
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, stamped)

    async def _count_request(
        self, limiter: RateLimiter, scope: Scope, address: str, bearer: str | None
    ) -> Quota | None:
        """Count an HTTP request against its limits (RateLimited if one is spent); None for a WebSocket."""
        if scope["type"] != "http":
            return None
        if bearer is None:
            return await limiter.hit_address("ip", address, limit=limiter.ip_limit)
        digest = _digest(bearer)
        await limiter.check_auth_failures(address)
        quota = await limiter.hit("key", digest, limit=limiter.key_limit)
        if scope.get("method") == "POST" and scope.get("path", "").rstrip("/") == CREATE_PATH:
            await limiter.hit(
                "create",
                digest,
                limit=limiter.create_limit,
                message=f"Too many payment creations with this key: the limit is {_describe(limiter.create_limit)}.",
            )
        return quota


class SocketConnectBudget:
    """The authentication-failure budget as Socket.IO's gateway sees it (`realtime.socketio.ConnectBudget`):
    the same limiter and per-address budget as HTTP 401s, the address read from the connection's
    ASGI scope as for any request (`client_ip`, believing only trusted proxies)."""

    def __init__(self, limiter: RateLimiter, trusted_proxies: Sequence[IPNetwork] = ()) -> None:
        self._limiter = limiter
        self._trusted = list(trusted_proxies)

    def _address(self, scope: Scope) -> str:
        return client_ip(scope, self._trusted) or "unknown"

    async def check(self, scope: Scope) -> None:
        await self._limiter.check_auth_failures(self._address(scope))

    async def spend(self, scope: Scope) -> None:
        await self._limiter.count_auth_failure(self._address(scope))
