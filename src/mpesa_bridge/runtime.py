"""The composition root shared by the server, the worker and the CLI: builds and closes everything."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx

from mpesa_bridge.api.net import parse_networks
from mpesa_bridge.api.ratelimit import RateLimiter
from mpesa_bridge.api.replay import replay_guard_for
from mpesa_bridge.config import ConfigError, Settings
from mpesa_bridge.core.accounts import ProjectService
from mpesa_bridge.core.callbacks.retry import InboxRetryPolicy
from mpesa_bridge.core.clock import Clock, SystemClock
from mpesa_bridge.core.crypto import SecretBox
from mpesa_bridge.core.payments.pacing import Pacer
from mpesa_bridge.core.payments.policy import GuardPolicy, ReconcilePolicy
from mpesa_bridge.core.payments.reconcile import Reconciler
from mpesa_bridge.core.payments.stk import PaymentService
from mpesa_bridge.core.payments.validation import PaymentLimits
from mpesa_bridge.core.projects import DarajaEnvironment
from mpesa_bridge.core.signing import ReplayGuard
from mpesa_bridge.core.webhooks.endpoints import EndpointService
from mpesa_bridge.core.webhooks.events import EventService
from mpesa_bridge.daraja.gateway import DarajaGatewayAdapter
from mpesa_bridge.daraja.pool import HttpClient, close_http, open_daraja_http
from mpesa_bridge.logging import get_logger
from mpesa_bridge.realtime.bus import MemoryBus
from mpesa_bridge.realtime.hub import Realtime, realtime_for
from mpesa_bridge.storage import idempotency
from mpesa_bridge.storage.db import Database
from mpesa_bridge.storage.migrate import upgrade
from mpesa_bridge.storage.sealed import check_master_keys
from mpesa_bridge.storage.webhooks import WebhookStorage
from mpesa_bridge.tls import client_ssl_context
from mpesa_bridge.workers.delivery import DeliveryLoop, HttpSender, SystemResolver, build_delivery
from mpesa_bridge.workers.inbox import Inbox
from mpesa_bridge.workers.ingest import CallbackStore
from mpesa_bridge.workers.maintenance import MaintenanceLoop
from mpesa_bridge.workers.reconciler import ReconcileLoop

log = get_logger("mpesa_bridge.runtime")

CALLBACK_PATH = "/v1/callbacks/daraja/stk/"


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    db: Database
    box: SecretBox
    http: HttpClient  # Daraja's pooled client (aiohttp; httpx over a test's in-process transport)
    gateway: DarajaGatewayAdapter
    projects: ProjectService
    payments: PaymentService
    policy: ReconcilePolicy
    limits: PaymentLimits
    inbox: Inbox
    callback_store: CallbackStore
    reconciler: Reconciler
    replay_guard: ReplayGuard
    rate_limiter: RateLimiter
    webhook_endpoints: EndpointService
    events: EventService
    delivery: DeliveryLoop
    webhook_sender: HttpSender
    # Live updates (SSE, Socket.IO): announced by the database after each commit that wrote events.
    realtime: Realtime = field(default_factory=lambda: Realtime(MemoryBus()))
    loops: list[Any] = field(default_factory=list)

    async def start_workers(self, *, reconcile: bool = True, deliver: bool | None = None) -> None:
        """Start the background loops. `deliver` (webhook delivery) follows `reconcile` unless given:
        tests that move a manual clock by hand drive both with `run_once()` instead."""
        await self.inbox.start()
        self.loops.append(self.inbox)
        if reconcile:
            loop = ReconcileLoop(self.reconciler, self.settings.reconcile_interval)
            await loop.start()
            self.loops.append(loop)
        if reconcile if deliver is None else deliver:
            await self.delivery.start()
            self.loops.append(self.delivery)
        housekeeping = MaintenanceLoop([lambda: idempotency.prune(self.db, self.clock.now())])
        await housekeeping.start()
        self.loops.append(housekeeping)

    async def aclose(self) -> None:
        for loop in self.loops:
            await loop.stop()
        self.loops = []
        await close_http(self.http)
        await self.webhook_sender.aclose()
        await self.rate_limiter.aclose()
        closer = getattr(self.replay_guard, "aclose", None)
        if closer is not None:
            await closer()
        await self.realtime.aclose()
        await self.db.dispose()


def policy_from(settings: Settings) -> ReconcilePolicy:
    return ReconcilePolicy(
        query_delay=settings.reconcile_query_delay,
        max_age=settings.reconcile_max_age,
        backoff=settings.backoff_steps,
        push_grace=settings.reconcile_push_grace,
        after_expiry=settings.reconcile_after_expiry,
        after_expiry_backoff=settings.after_expiry_backoff_steps,
    )


async def migrate(settings: Settings) -> None:
    await asyncio.to_thread(upgrade, settings.resolved_database_url)


def _check_networks(settings: Settings) -> None:
    """A typo in an address list must stop the start, not turn every callback into a 500."""
    for variable, items in (
        ("MPESA_BRIDGE_CALLBACK_ALLOWED_IPS", settings.callback_networks),
        ("MPESA_BRIDGE_TRUSTED_PROXIES", settings.proxy_networks),
    ):
        try:
            parse_networks(items)
        except ValueError as exc:
            raise ConfigError(f"{variable}: {exc}") from exc


async def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    daraja_transport: httpx.AsyncBaseTransport | None = None,
) -> Runtime:
    """Wire the adapters to the core. `daraja_transport` lets tests route Daraja calls in-process."""
    clock = clock or SystemClock()
    _check_networks(settings)
    if settings.should_migrate_on_start:
        await migrate(settings)
    db = Database(settings.resolved_database_url)
    realtime = realtime_for(settings.redis_url)
    db.on_commit(realtime.announce)
    box = SecretBox(settings.master_keys())
    try:  # a master key that cannot open the stored secrets is a startup error, never found mid-payment
        await check_master_keys(db, box)
    except BaseException:
        await db.dispose()
        raise
    timeout = httpx.Timeout(settings.daraja_timeout, connect=settings.daraja_connect_timeout)
    http = open_daraja_http(timeout, client_ssl_context(), transport=daraja_transport)
    gateway = DarajaGatewayAdapter(
        http,
        {
            DarajaEnvironment.SIMULATOR: settings.resolved_simulator_url,
            DarajaEnvironment.SANDBOX: settings.daraja_sandbox_url,
            DarajaEnvironment.PRODUCTION: settings.daraja_production_url,
        },
        timeout=timeout,
    )
    projects = ProjectService(db, box, clock, key_cache_ttl=settings.key_cache_ttl)
    policy = policy_from(settings)
    base = settings.resolved_public_base_url
    guards = GuardPolicy(duplicate_window=settings.duplicate_guard_window, phone_window=settings.phone_lock_window)
    payments = PaymentService(
        db, gateway, projects, clock, lambda token: f"{base}{CALLBACK_PATH}{token}", policy, guards
    )
    webhooks = WebhookStorage(db)
    resolver = SystemResolver()
    delivery, webhook_sender = build_delivery(settings, webhooks, box, clock, resolver=resolver)
    return Runtime(
        settings=settings,
        clock=clock,
        db=db,
        box=box,
        http=http,
        gateway=gateway,
        projects=projects,
        payments=payments,
        policy=policy,
        limits=PaymentLimits(max_amount=settings.max_amount, metadata_max_bytes=settings.metadata_max_bytes),
        inbox=Inbox(
            db,
            clock,
            policy,
            settings.inbox_poll_interval,
            retry=InboxRetryPolicy(settings.inbox_max_attempts, settings.inbox_retry_delay),
            sweep_batch=settings.inbox_sweep_batch,
        ),
        callback_store=CallbackStore(db),
        reconciler=Reconciler(
            db,
            gateway,
            projects,
            clock,
            policy,
            pacer=Pacer(settings.reconcile_query_rate),
            # A claimed payment is held through a token fetch and a query, each up to both timeouts.
            hold=2 * (settings.daraja_connect_timeout + settings.daraja_timeout) + 30.0,
        ),
        replay_guard=replay_guard_for(settings.redis_url),
        rate_limiter=RateLimiter.from_settings(settings),
        webhook_endpoints=EndpointService(
            webhooks,
            box,
            clock,
            resolver,
            allow_private_urls=settings.webhook_allow_private_urls,
            test_loopback=settings.webhook_test_loopback_on,
        ),
        events=EventService(webhooks, clock),
        delivery=delivery,
        webhook_sender=webhook_sender,
        realtime=realtime,
    )
