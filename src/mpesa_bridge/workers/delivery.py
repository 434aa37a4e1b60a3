"""The webhook delivery worker: dispatch outbox events, send due deliveries, prune old events.

`DeliveryLoop.run_once()` is one pass: dispatch, then rounds of claim → send → record until
nothing is due, then (hourly) pruning. The loop holds a lock during each step, so `stop()` waits
for the batch in hand to be sent and recorded instead of cancelling it mid-transaction.

`HttpSender` is the one place webhooks touch the network: one keep-alive `httpx.AsyncClient` per
mode, explicit timeouts, never a redirect, at most the first 1 KB of an answer read — and kept
only when the connection went to a public address. Its connection pool connects through
`GuardedBackend`, which resolves the host, refuses the whole host if any address breaks the mode's
address rule (`core.webhooks.destinations`), and connects to an address it checked — so a DNS
answer that changed since the endpoint was created (or since the check) cannot steer a delivery
into the private network.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import httpcore
import httpx

from mpesa_bridge import __version__
from mpesa_bridge.config import Settings
from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.crypto import SecretBox
from mpesa_bridge.core.errors import BridgeError
from mpesa_bridge.core.projects import Mode
from mpesa_bridge.core.webhooks.delivery import DeliveryReport, DeliveryService
from mpesa_bridge.core.webhooks.destinations import AddressRule, Resolver, is_public_address, vetted_addresses
from mpesa_bridge.core.webhooks.entity import RESPONSE_BODY_LIMIT
from mpesa_bridge.core.webhooks.ports import SendResult, WebhookUnitOfWorkFactory
from mpesa_bridge.core.webhooks.retry import RetryPolicy
from mpesa_bridge.logging import get_logger
from mpesa_bridge.tls import client_ssl_context
from mpesa_bridge.workers.loop import WorkerLoop

log = get_logger("mpesa_bridge.webhooks")

USER_AGENT = f"mpesa-bridge-webhooks/{__version__}"
MAX_ROUNDS = 20  # claim → send → record rounds per pass (a later event of a payment waits one round)
PRUNE_EVERY = timedelta(hours=1)
LEASE_MARGIN = 60.0  # seconds a lease outlasts the HTTP timeout: time to record the attempt


class SystemResolver:
    """The operating system's resolver (getaddrinfo), without blocking the event loop."""

    async def resolve(self, host: str, port: int) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses `rule` allows, and only to the address it checked."""

    def __init__(self, rule: AddressRule, resolver: Resolver) -> None:
        self._rule = rule
        self._resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await vetted_addresses(host, port, self._rule, self._resolver)
        failure: Exception | None = None
        for address in addresses:  # e.g. ::1 then 127.0.0.1 for localhost
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:  # pragma: no cover - webhooks never use Unix sockets
        raise httpcore.ConnectError("webhooks are sent over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _client(rule: AddressRule, resolver: Resolver, timeout: float, limits: httpx.Limits) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False, verify=client_ssl_context())
    # httpx takes no network backend; its httpcore pool does. Replace the pool with one that
    # connects through the guard (same limits, same TLS verification).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=client_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(rule, resolver),
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )


class HttpSender:
    """POSTs signed webhooks (`core.webhooks.ports.Sender`); every outcome is a `SendResult`."""

    def __init__(
        self,
        *,
        timeout: float,
        allow_private: bool,
        test_loopback: bool,
        resolver: Resolver,
        max_connections: int = 100,
    ) -> None:
        self._timeout = timeout
        # Every connection stays alive between batches: a dropped one costs a new TCP (and TLS)
        # handshake on the next batch to the same receiver.
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._clients = {
            mode: _client(
                AddressRule.for_mode(mode, allow_private=allow_private, test_loopback=test_loopback),
                resolver,
                timeout,
                limits,
            )
            for mode in Mode
        }

    async def post(self, url: str, mode: str, headers: dict[str, str], body: bytes) -> SendResult:
        client = self._clients[Mode(mode)]
        started = time.monotonic()
        headers = {**headers, "Content-Type": "application/json"}
        status: int | None = None
        head = b""
        try:
            # httpx's timeouts bound each step; this bounds the whole exchange (a slow-dripping answer).
            async with asyncio.timeout(self._timeout):
                async with client.stream("POST", url, content=body, headers=headers) as response:
                    status = response.status_code
                    public = from_public_address(response)
                    head = await _read_head(response)  # read even when not kept: the connection stays reusable
        except (httpx.HTTPError, TimeoutError, BridgeError, OSError) as exc:
            reason = _describe(exc, self._timeout)
            log.info("webhook.delivery.failed", host=httpx.URL(url).host, status=status, error=reason)
            return SendResult(latency_ms=_ms(started), status_code=status, error=reason)
        # What a private service answers (loopback in test mode, a neighbour behind ALLOW_PRIVATE_URLS)
        # is never kept: whoever holds a key could otherwise read it through the events API.
        text = kept_answer(head, public=public)
        error = None
        if 300 <= status < 400:
            location = response.headers.get("location", "")[:200] if public else "not kept: a non-public address"
            error = f"redirect not followed (Location: {location})"
        if not 200 <= status < 300:
            log.info("webhook.delivery.failed", host=httpx.URL(url).host, status=status, error=error)
        return SendResult(latency_ms=_ms(started), status_code=status, body=text, error=error)

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()


def kept_answer(head: bytes, *, public: bool) -> str | None:
    """What an attempt keeps of the answer: its first 1 KB, decoded leniently — from a public address only."""
    return head[:RESPONSE_BODY_LIMIT].decode("utf-8", errors="replace") if public else None


def from_public_address(response: httpx.Response) -> bool:
    """Whether the connection that carried `response` goes to a public address (unknown: no)."""
    stream = response.extensions.get("network_stream")
    peer: Any = stream.get_extra_info("server_addr") if stream is not None else None
    return bool(peer) and is_public_address(str(peer[0]))


async def _read_head(response: httpx.Response) -> bytes:
    """The first RESPONSE_BODY_LIMIT bytes of the answer; the rest is never read."""
    head = b""
    async for chunk in response.aiter_bytes():
        head += chunk
        if len(head) >= RESPONSE_BODY_LIMIT:
            break
    return head


def _describe(exc: BaseException, timeout: float) -> str:
    """The one place a network failure becomes the attempt's error text."""
    if isinstance(exc, BridgeError):
        return f"{exc.code}: {exc.message}"[:500]
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f"timeout: no complete answer within {timeout:g} s"
    if isinstance(exc, httpx.ConnectError):
        return f"connect_error: {exc}"[:500] if str(exc) else "connect_error"
    if isinstance(exc, httpx.ProtocolError):
        # h11 quotes what the peer sent (an SSH or Redis banner): never kept, like a private answer.
        return "protocol_error: the answer is not valid HTTP/1.1"
    name = type(exc).__name__
    return f"{name}: {exc}"[:500] if str(exc) else name


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


class DeliveryLoop(WorkerLoop):
    """Runs `DeliveryService` every `interval` seconds; prunes events older than `retention` hourly."""

    name = "webhook-delivery"
    failure_event = "webhook.pass_failed"
    log = log

    def __init__(self, service: DeliveryService, clock: Clock, *, interval: float, retention: timedelta) -> None:
        super().__init__(interval)
        self.service = service
        self._clock = clock
        self._retention = retention
        self._last_prune: datetime | None = None
        self._saturated = False  # the last pass ran every round and still found work

    async def run_once(self) -> DeliveryReport:
        """One pass: dispatch new events, send what is due (again while sending unblocks more), prune."""
        report = DeliveryReport()
        async with self.busy:  # held per step: stop() waits for the batch in hand
            await self.service.dispatch(report)
        self._saturated = False
        for _ in range(MAX_ROUNDS):
            if self.stopping:
                break
            async with self.busy:
                before = report.attempted
                await self.service.deliver_due(report)
            if report.attempted == before:
                break
        else:
            self._saturated = True
        await self._prune_if_due()
        return report

    async def prune(self) -> int:
        async with self.busy:
            now = self._clock.now()
            self._last_prune = now
            removed = await self.service.prune(now - self._retention)
        if removed:
            log.info("webhook.events.pruned", removed=removed)
        return removed

    async def _prune_if_due(self) -> None:
        now = self._clock.now()
        if not self.stopping and (self._last_prune is None or now - self._last_prune >= PRUNE_EVERY):
            await self.prune()

    async def pass_once(self) -> bool:
        report = await self.run_once()
        if report:
            log.info("webhook.pass", **vars(report))
        # A backlog is worked off without pausing; an idle worker polls every interval.
        return self._saturated


def worker_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


def build_delivery(
    settings: Settings,
    db: WebhookUnitOfWorkFactory,
    box: SecretBox,
    clock: Clock,
    *,
    resolver: Resolver | None = None,
    policy: RetryPolicy | None = None,
    rand: Callable[[], float] | None = None,
    name: str | None = None,
) -> tuple[DeliveryLoop, HttpSender]:
    """A delivery loop and the sender it owns (close it with `aclose`), from the settings."""
    sender = HttpSender(
        timeout=settings.webhook_timeout,
        allow_private=settings.webhook_allow_private_urls,
        test_loopback=settings.webhook_test_loopback_on,
        resolver=resolver or SystemResolver(),
        # No more connections than sends at once: httpcore checks each pooled connection per request.
        max_connections=max(settings.webhook_concurrency, 10),
    )
    extra: dict[str, Any] = {"rand": rand} if rand is not None else {}
    service = DeliveryService(
        db,
        sender,
        box,
        clock,
        policy or RetryPolicy(),
        worker_id=name or worker_id(),
        lease=settings.webhook_timeout + LEASE_MARGIN,
        batch=settings.webhook_concurrency,
        **extra,
    )
    retention = timedelta(days=settings.event_retention_days)
    return DeliveryLoop(service, clock, interval=settings.webhook_poll_interval, retention=retention), sender
