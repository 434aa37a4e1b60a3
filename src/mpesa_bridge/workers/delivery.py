"""The webhook delivery worker: dispatch outbox events, send due deliveries, prune old events.

`DeliveryLoop.run_once()` is one pass: dispatch, then rounds of claim → send → record until
nothing is due, then (hourly) pruning. The loop holds a lock during each step, so `stop()` waits
for the batch in hand to be sent and recorded instead of cancelling it mid-transaction.

`HttpSender` is the one place webhooks touch the network: one keep-alive `aiohttp.ClientSession`
per mode (aiohttp costs a fraction of httpx's CPU per POST), explicit timeouts, never a redirect,
no cookies, at most the first 1 KB of an answer read — and kept only when the connection went to a
public address. Its connector resolves host names through `GuardedResolver`, which refuses the
whole host if any address breaks the mode's address rule (`core.webhooks.destinations`) and hands
aiohttp only the addresses it checked; an IP literal (which aiohttp connects to without asking a
resolver) is checked by the same rule just before the request. So a DNS answer that changed since
the endpoint was created (or since the check) cannot steer a delivery into the private network.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.connector import Connection

from mpesa_bridge import __version__
from mpesa_bridge.config import Settings
from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.crypto import SecretBox
from mpesa_bridge.core.errors import BridgeError
from mpesa_bridge.core.projects import Mode
from mpesa_bridge.core.webhooks.delivery import DeliveryReport, DeliveryService
from mpesa_bridge.core.webhooks.destinations import AddressRule, Resolver, is_public_address, vetted_addresses
from mpesa_bridge.core.webhooks.entity import RESPONSE_BODY_LIMIT, ClaimedDelivery, DeliveryStatus, WebhookAttempt
from mpesa_bridge.core.webhooks.ports import SendResult, WebhookUnitOfWorkFactory
from mpesa_bridge.core.webhooks.retry import RetryPolicy
from mpesa_bridge.logging import get_logger
from mpesa_bridge.observability.instruments import WEBHOOK_DELIVERIES, WEBHOOK_DELIVERY_LAG
from mpesa_bridge.tls import client_ssl_context
from mpesa_bridge.workers.loop import WorkerLoop

log = get_logger("mpesa_bridge.webhooks")

USER_AGENT = f"mpesa-bridge-webhooks/{__version__}"
MAX_ROUNDS = 20  # claim → send → record rounds per pass (a later event of a payment waits one round)
PRUNE_EVERY = timedelta(hours=1)
LEASE_MARGIN = 60.0  # seconds a lease outlasts the HTTP timeout: time to record the attempt
KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection to a receiver is kept, as httpx's default was


class SystemResolver:
    """The operating system's resolver (getaddrinfo), without blocking the event loop."""

    async def resolve(self, host: str, port: int) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver for webhooks: only addresses `rule` allows, and only the ones it checked."""

    def __init__(self, rule: AddressRule, resolver: Resolver) -> None:
        self._rule = rule
        self._resolver = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await vetted_addresses(host, port, self._rule, self._resolver)
        return [_resolved(host, address, port) for address in addresses]  # e.g. ::1 then 127.0.0.1

    async def close(self) -> None:
        pass


def _resolved(host: str, address: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
    return {"hostname": host, "host": address, "port": port, "family": family, "proto": 0, "flags": flags}


def _looks_like_ip(host: str) -> bool:
    # aiohttp's own test (helpers.is_ip_address): such hosts are connected to without a resolver.
    return ":" in host or host.replace(".", "").isdigit()


class PeerResponse(aiohttp.ClientResponse):
    """Remembers the address its connection goes to before aiohttp can release the connection
    (it does so as the response starts when the answer has no body)."""

    peer: Any = None

    async def start(self, connection: Connection) -> aiohttp.ClientResponse:
        transport = connection.transport
        self.peer = transport.get_extra_info("peername") if transport is not None else None
        return await super().start(connection)


def _session(rule: AddressRule, resolver: Resolver, timeout: float, connections: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=connections,
        ssl=client_ssl_context(),
        resolver=GuardedResolver(rule, resolver),
        use_dns_cache=False,  # every new connection asks the guard again
        keepalive_timeout=KEEPALIVE_EXPIRY,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout, connect=timeout, sock_connect=timeout, sock_read=timeout),
        headers={"User-Agent": USER_AGENT},
        cookie_jar=aiohttp.DummyCookieJar(),  # one receiver's cookies are never sent to another
        response_class=PeerResponse,
        trust_env=False,
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
        self._resolver = resolver
        self._rules = {
            mode: AddressRule.for_mode(mode, allow_private=allow_private, test_loopback=test_loopback) for mode in Mode
        }
        # Every connection stays alive between batches: a dropped one costs a new TCP (and TLS)
        # handshake on the next batch to the same receiver.
        self._sessions = {
            mode: _session(rule, resolver, timeout, max_connections) for mode, rule in self._rules.items()
        }

    async def post(self, url: str, mode: str, headers: dict[str, str], body: bytes) -> SendResult:
        started = time.monotonic()
        headers = {**headers, "Content-Type": "application/json"}
        status: int | None = None
        host = ""
        try:
            target = yarl.URL(url)
            host = target.raw_host or ""
            if _looks_like_ip(host):
                await vetted_addresses(host, target.port or 0, self._rules[Mode(mode)], self._resolver)
            # `total` bounds the whole exchange (a slow-dripping answer); the others each step.
            async with self._sessions[Mode(mode)].post(
                target, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                public = from_public_address(getattr(response, "peer", None))
                head = await _read_head(response.content)  # read even when not kept: the connection stays reusable
                location = response.headers.get("Location", "")
        except (aiohttp.ClientError, TimeoutError, BridgeError, OSError, ValueError) as exc:
            reason = _describe(exc, self._timeout)
            log.info("webhook.delivery.failed", host=host, status=status, error=reason)
            return SendResult(latency_ms=_ms(started), status_code=status, error=reason)
        # What a private service answers (loopback in test mode, a neighbour behind ALLOW_PRIVATE_URLS)
        # is never kept: whoever holds a key could otherwise read it through the events API.
        text = kept_answer(head, public=public)
        error = None
        if 300 <= status < 400:
            shown = location[:200] if public else "not kept: a non-public address"
            error = f"redirect not followed (Location: {shown})"
        if not 200 <= status < 300:
            log.info("webhook.delivery.failed", host=host, status=status, error=error)
        return SendResult(latency_ms=_ms(started), status_code=status, body=text, error=error)

    async def aclose(self) -> None:
        for session in self._sessions.values():
            await session.close()


def kept_answer(head: bytes, *, public: bool) -> str | None:
    """What an attempt keeps of the answer: its first 1 KB, decoded leniently — from a public address only."""
    return head[:RESPONSE_BODY_LIMIT].decode("utf-8", errors="replace") if public else None


def from_public_address(peer: Any) -> bool:
    """Whether `peer` (the socket address the connection went to) is a public address (unknown: no)."""
    return bool(peer) and is_public_address(str(peer[0]))


class _Content(Protocol):
    async def read(self, n: int = -1) -> bytes: ...


async def _read_head(content: _Content) -> bytes:
    """The first RESPONSE_BODY_LIMIT bytes of the answer; the rest is never read."""
    head = b""
    while len(head) < RESPONSE_BODY_LIMIT:
        chunk = await content.read(RESPONSE_BODY_LIMIT - len(head))
        if not chunk:
            break
        head += chunk
    return head


def _describe(exc: BaseException, timeout: float) -> str:
    """The one place a network failure becomes the attempt's error text."""
    if isinstance(exc, BridgeError):
        return f"{exc.code}: {exc.message}"[:500]
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts are TimeoutErrors too
        return f"timeout: no complete answer within {timeout:g} s"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"connect_error: {exc}"[:500] if str(exc) else "connect_error"
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        # The parser quotes what the peer sent (an SSH or Redis banner): never kept, like a private answer.
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


class MeasuredDeliveryService(DeliveryService):
    """`DeliveryService` counting each attempt by result and, for a delivered one, the lag from the
    event's commit to its receiver's 2xx (the metrics are the adapter's business, not the core's)."""

    async def attempt(self, claimed: ClaimedDelivery, report: DeliveryReport | None = None) -> WebhookAttempt:
        attempt = await super().attempt(claimed, report)
        if attempt.succeeded:
            WEBHOOK_DELIVERIES.labels("succeeded").inc()
            lag = (attempt.attempted_at - claimed.event.created_at).total_seconds() + attempt.latency_ms / 1000
            WEBHOOK_DELIVERY_LAG.labels(str(claimed.endpoint.mode)).observe(max(0.0, lag))
        else:
            gave_up = claimed.delivery.status == DeliveryStatus.FAILED
            WEBHOOK_DELIVERIES.labels("gave_up" if gave_up else "failed").inc()
        return attempt


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
        # No more connections than sends at once.
        max_connections=max(settings.webhook_concurrency, 10),
    )
    extra: dict[str, Any] = {"rand": rand} if rand is not None else {}
    service = MeasuredDeliveryService(
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
