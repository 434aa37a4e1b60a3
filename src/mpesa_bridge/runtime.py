"""The composition root shared by the server, the worker and the CLI: builds and closes the core,
storage, Daraja, realtime and the background loops. What only the HTTP app needs (rate limiter,
replay guard, address lists, SSE tails) is built by the app's lifespan (`api/parts.py`)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

import httpx

from mpesa_bridge.config import (
    SANDBOX_INITIATOR,
    SANDBOX_INITIATOR_PASSWORD,
    SANDBOX_PASSKEY,
    SANDBOX_SHORTCODE,
    ConfigError,
    Settings,
)
from mpesa_bridge.core.accounts import ProjectService
from mpesa_bridge.core.analytics import AnalyticsService
from mpesa_bridge.core.balances.results import BalanceResultHandler, BalanceTimeoutHandler
from mpesa_bridge.core.balances.service import BalanceQueryService
from mpesa_bridge.core.c2b.confirmation import C2BConfirmationHandler, C2BValidationRecorder
from mpesa_bridge.core.c2b.service import C2BService
from mpesa_bridge.core.c2b.validation import C2BValidator
from mpesa_bridge.core.callbacks.handlers import (
    BALANCE_RESULT,
    BALANCE_TIMEOUT,
    C2B_CONFIRMATION,
    C2B_VALIDATION,
    REVERSAL_RESULT,
    REVERSAL_TIMEOUT,
    register_payout_handlers,
)
from mpesa_bridge.core.callbacks.retry import InboxRetryPolicy
from mpesa_bridge.core.checkout.service import CheckoutService
from mpesa_bridge.core.clock import Clock, SystemClock
from mpesa_bridge.core.crypto import SecretBox
from mpesa_bridge.core.links.service import PaymentLinkService
from mpesa_bridge.core.payments.pacing import Pacer
from mpesa_bridge.core.payments.policy import GuardPolicy, ReconcilePolicy
from mpesa_bridge.core.payments.reconcile import Reconciler
from mpesa_bridge.core.payments.stk import PaymentService
from mpesa_bridge.core.payments.validation import PaymentLimits
from mpesa_bridge.core.payouts.policy import PayoutPolicy
from mpesa_bridge.core.payouts.reconcile import PayoutReconciler
from mpesa_bridge.core.payouts.service import PayoutService
from mpesa_bridge.core.people.passwords import PasswordHasher
from mpesa_bridge.core.people.service import PeoplePolicy, PeopleService
from mpesa_bridge.core.projects import DarajaEnvironment, DarajaSettingsInput
from mpesa_bridge.core.reversals.reconcile import ReversalReconciler
from mpesa_bridge.core.reversals.results import ReversalResultHandler, ReversalTimeoutHandler
from mpesa_bridge.core.reversals.service import ReversalService
from mpesa_bridge.core.status_queries.service import StatusQueryService
from mpesa_bridge.core.webhooks.alerts import FailingEndpointAlerts
from mpesa_bridge.core.webhooks.endpoints import EndpointService
from mpesa_bridge.core.webhooks.events import EventService
from mpesa_bridge.daraja import DarajaValidationError, load_certificate_key
from mpesa_bridge.daraja.gateway import DarajaGatewayAdapter, read_c2b_body
from mpesa_bridge.daraja.initiator_results import DarajaResultReader
from mpesa_bridge.daraja.payouts import PayoutGateway, ResultReader
from mpesa_bridge.daraja.pool import HttpClient, close_http, open_daraja_http
from mpesa_bridge.logging import get_logger
from mpesa_bridge.mail import mailer_for
from mpesa_bridge.realtime.hub import Realtime, realtime_for
from mpesa_bridge.realtime.sse import StreamOptions
from mpesa_bridge.routes import CALLBACK_PATH, CALLBACKS_PREFIX
from mpesa_bridge.storage import idempotency
from mpesa_bridge.storage.analytics import analytics_reader
from mpesa_bridge.storage.db import Database
from mpesa_bridge.storage.migrate import upgrade_at_start
from mpesa_bridge.storage.people import PeopleStorage
from mpesa_bridge.storage.sealed import check_master_keys
from mpesa_bridge.storage.webhooks import WebhookStorage
from mpesa_bridge.tls import client_ssl_context
from mpesa_bridge.workers.c2b_asker import HttpMerchantAsker
from mpesa_bridge.workers.delivery import DeliveryLoop, SystemResolver, build_delivery
from mpesa_bridge.workers.inbox import Inbox
from mpesa_bridge.workers.maintenance import MaintenanceLoop
from mpesa_bridge.workers.payouts import PayoutReconcileLoop
from mpesa_bridge.workers.reconciler import ReconcileLoop

log = get_logger("mpesa_bridge.runtime")


class _Loop(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


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
    limits: PaymentLimits
    inbox: Inbox
    reconciler: Reconciler
    webhook_endpoints: EndpointService
    events: EventService
    delivery: DeliveryLoop
    # Live updates (SSE, Socket.IO): announced by the database after each commit that wrote events.
    realtime: Realtime
    people: PeopleService  # the dashboard's accounts, sessions and invitations
    analytics: AnalyticsService  # the dashboard's figures and charts
    checkout: CheckoutService  # checkout sessions: one payment a browser may take
    links: PaymentLinkService  # payment links: a public URL whose form opens a checkout session per customer
    c2b: C2BService  # C2B: registrations, incoming payments, review queue, expected payments
    c2b_validator: C2BValidator  # answers Daraja's C2B validation calls synchronously
    reversals: ReversalService  # reversals of succeeded payments (core.reversals)
    balance_queries: BalanceQueryService  # Account Balance queries (core.balances)
    payouts: PayoutService  # B2C payouts (core/payouts/)
    status_queries: StatusQueryService  # Transaction Status queries (core/status_queries/)
    payout_reconciler: PayoutReconciler  # settles sending/unknown payouts by Transaction Status
    reversal_reconciler: ReversalReconciler  # asks Transaction Status about unknown reversals
    # The outgoing HTTP clients (Daraja's, the webhook sender's): held only to be closed.
    clients: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    loops: list[_Loop] = field(default_factory=list)
    webhook_alerts: FailingEndpointAlerts | None = None  # owners told of a day-old failure streak

    async def start_workers(self, *, timed: bool = True) -> None:
        """Start the background loops. `timed=False` leaves out the loops that act when the clock
        says so (reconciliation, webhook delivery): tests on a manual clock run those by hand."""
        loops: list[_Loop] = [self.inbox]
        if timed:
            loops += [ReconcileLoop(self.reconciler, self.settings.reconcile_interval), self.delivery]
            loops.append(
                PayoutReconcileLoop(
                    self.payout_reconciler, self.settings.reconcile_interval, reversals=self.reversal_reconciler
                )
            )
        tasks: list[Callable[[], Awaitable[int]]] = [
            lambda: idempotency.prune(self.db, self.clock.now()),
            self.people.prune_sessions,
            self.reversals.sweep_stranded,  # a reversal left `sending` by a crash becomes unknown
        ]
        if timed:
            tasks.append(self.checkout.expire_due)  # checkout sessions past their expiry
            tasks.append(lambda: self.status_queries.give_up_unanswered(self.settings.query_result_deadline))
            tasks.append(lambda: self.balance_queries.give_up_unanswered(self.settings.query_result_deadline))
        if timed and self.webhook_alerts is not None:
            tasks.append(self.webhook_alerts.run)
        loops.append(MaintenanceLoop(tasks))
        for loop in loops:
            await loop.start()
            self.loops.append(loop)

    async def aclose(self) -> None:
        for loop in self.loops:
            await loop.stop()
        self.loops = []
        for close in self.clients:
            await close()
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


def simulator_daraja(settings: Settings) -> DarajaSettingsInput:
    """Test-mode defaults: the built-in simulator with Safaricom's public sandbox shortcode."""
    return DarajaSettingsInput(
        environment=DarajaEnvironment.SIMULATOR,
        consumer_key=settings.simulator_consumer_key,
        consumer_secret=settings.simulator_consumer_secret.get_secret_value(),
        short_code=SANDBOX_SHORTCODE,
        passkey=SANDBOX_PASSKEY,
        initiator_name=SANDBOX_INITIATOR,
        initiator_password=SANDBOX_INITIATOR_PASSWORD,
    )


def payout_policy_from(settings: Settings) -> PayoutPolicy:
    return PayoutPolicy(
        max_amount=settings.payout_max_amount,
        daily_limit=settings.payout_daily_limit,
        send_grace=settings.payout_send_grace,
        result_wait=settings.payout_result_wait,
        query_backoff=settings.payout_backoff_steps,
        not_found_limit=settings.payout_not_found_limit,
        version=settings.payout_b2c_version,
    )


def initiator_certificates(settings: Settings) -> dict[DarajaEnvironment, bytes]:
    """The certificates the settings give, each checked to hold an RSA key (a start-up error if not)."""
    out = {}
    for environment, certificate in settings.initiator_certificates().items():
        try:
            load_certificate_key(certificate)
        except DarajaValidationError as exc:
            name = f"MPESA_BRIDGE_DARAJA_CERTIFICATE_{environment.upper()}"
            raise ConfigError(f"{name}: the certificate {exc.message}") from exc
        out[DarajaEnvironment(environment)] = certificate
    return out


def stream_options(settings: Settings) -> StreamOptions:
    """The SSE streams' timings (the API's streams and the dashboard's live view alike)."""
    return StreamOptions(
        heartbeat=settings.sse_heartbeat_interval,
        max_age=settings.sse_max_connection_age,
        retry=settings.sse_retry_delay,
        poll_interval=settings.sse_poll_interval,
        key_recheck=settings.realtime_key_recheck_interval,
    )


def register_initiator_handlers(inbox: Inbox) -> None:
    """The Reversal and Account Balance callback kinds (ResultURL and QueueTimeOutURL of each)."""
    reader = DarajaResultReader()
    inbox.handlers.register(REVERSAL_RESULT, ReversalResultHandler(reader))
    inbox.handlers.register(REVERSAL_TIMEOUT, ReversalTimeoutHandler(reader))
    inbox.handlers.register(BALANCE_RESULT, BalanceResultHandler(reader))
    inbox.handlers.register(BALANCE_TIMEOUT, BalanceTimeoutHandler(reader))


async def migrate(settings: Settings) -> None:
    await upgrade_at_start(settings.resolved_database_url)


async def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    daraja_transport: httpx.AsyncBaseTransport | None = None,
) -> Runtime:
    """Wire the adapters to the core. `daraja_transport` lets tests route Daraja calls in-process."""
    clock = clock or SystemClock()
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
    try:
        certificates = initiator_certificates(settings)
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
        certificates=certificates,
    )
    projects = ProjectService(db, box, clock, key_cache_ttl=settings.key_cache_ttl)
    policy = policy_from(settings)
    base = settings.resolved_public_base_url
    guards = GuardPolicy(duplicate_window=settings.duplicate_guard_window, phone_window=settings.phone_lock_window)
    payments = PaymentService(
        db, gateway, projects, clock, lambda token: f"{base}{CALLBACK_PATH}{token}", policy, guards
    )
    webhooks = WebhookStorage(db)
    mailer = mailer_for(
        settings.smtp_url.get_secret_value() if settings.smtp_url else None,
        settings.smtp_from,
        production=settings.production,
    )
    people = PeopleService(
        PeopleStorage(db),
        PasswordHasher(time_cost=settings.password_hash_time_cost, memory_cost=settings.password_hash_memory_kib),
        clock,
        mailer,
        PeoplePolicy(
            idle=timedelta(seconds=settings.dashboard_session_idle),
            absolute=timedelta(seconds=settings.dashboard_session_max_age),
            signup=settings.dashboard_signup,
        ),
        link_base=base,
    )
    resolver = SystemResolver()
    delivery, webhook_sender = build_delivery(settings, webhooks, box, clock, resolver=resolver)
    checkout = CheckoutService(db, payments, clock, lambda session_id: f"{base}/pay/{session_id}")
    asker = HttpMerchantAsker(
        allow_private=settings.webhook_allow_private_urls,
        test_loopback=settings.webhook_test_loopback_on,
        resolver=resolver,
    )
    inbox = Inbox(
        db,
        clock,
        policy,
        settings.inbox_poll_interval,
        retry=InboxRetryPolicy(settings.inbox_max_attempts, settings.inbox_retry_delay),
        sweep_batch=settings.inbox_sweep_batch,
        crash_after_store=settings.fault_injection == "crash_after_callback_stored",
    )
    inbox.handlers.register(C2B_VALIDATION, C2BValidationRecorder())
    inbox.handlers.register(C2B_CONFIRMATION, C2BConfirmationHandler(read_c2b_body))
    register_initiator_handlers(inbox)

    def initiator_url(kind: str, token: str) -> str:
        return f"{base}{CALLBACKS_PREFIX}{kind}/{token}"

    payout_policy = payout_policy_from(settings)
    initiator = PayoutGateway(gateway)

    def initiator_callback_url(kind: str, token: str) -> str:
        return f"{base}{CALLBACKS_PREFIX}{kind}/{token}"

    payouts = PayoutService(db, initiator, projects, clock, initiator_callback_url, payout_policy)
    status_queries = StatusQueryService(db, initiator, projects, clock, initiator_callback_url)
    runtime = Runtime(
        settings=settings,
        clock=clock,
        db=db,
        box=box,
        http=http,
        gateway=gateway,
        projects=projects,
        payments=payments,
        limits=PaymentLimits(max_amount=settings.max_amount, metadata_max_bytes=settings.metadata_max_bytes),
        inbox=inbox,
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
        realtime=realtime,
        people=people,
        analytics=AnalyticsService(lambda: analytics_reader(db), clock),
        checkout=checkout,
        links=PaymentLinkService(db, checkout, clock, lambda slug: f"{base}/l/{slug}"),
        c2b=C2BService(
            db,
            gateway,
            projects,
            box,
            clock,
            lambda kind, token: f"{base}{CALLBACKS_PREFIX}{kind}/{token}",
            resolver,
            allow_private_urls=settings.webhook_allow_private_urls,
            test_loopback=settings.webhook_test_loopback_on,
            register_version=settings.c2b_register_version,
            max_amount=settings.max_amount,
        ),
        c2b_validator=C2BValidator(db, read_c2b_body, asker, box, clock, timeout=settings.c2b_validation_timeout),
        reversals=ReversalService(db, gateway, projects, clock, initiator_url, result_wait=payout_policy.result_wait),
        balance_queries=BalanceQueryService(db, gateway, projects, clock, initiator_url),
        payouts=payouts,
        status_queries=status_queries,
        payout_reconciler=PayoutReconciler(
            db,
            payouts,
            status_queries,
            clock,
            payout_policy,
            hold=2 * (settings.daraja_connect_timeout + settings.daraja_timeout) + 30.0,
        ),
        reversal_reconciler=ReversalReconciler(
            db,
            status_queries,
            clock,
            payout_policy,
            hold=2 * (settings.daraja_connect_timeout + settings.daraja_timeout) + 30.0,
        ),
        clients=[functools.partial(close_http, http), webhook_sender.aclose, asker.aclose],
        # Emailed only when SMTP is set; the dashboard warns either way.
        webhook_alerts=FailingEndpointAlerts(
            webhooks, PeopleStorage(db), mailer if settings.smtp_url else None, clock, link_base=base
        ),
    )
    register_payout_handlers(runtime.inbox.handlers, ResultReader(), payout_policy)
    return runtime
