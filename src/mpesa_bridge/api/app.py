"""The composition root of the HTTP server: `create_app(settings)`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from starlette.responses import RedirectResponse

from mpesa_bridge import __version__
from mpesa_bridge.api import admin, callbacks, health, legacy
from mpesa_bridge.api.callbacks import CallbackFastPath
from mpesa_bridge.api.demo import install_demo
from mpesa_bridge.api.docs import install_docs
from mpesa_bridge.api.errors import install_error_handlers
from mpesa_bridge.api.metrics import MetricsAccess, MetricsMiddleware
from mpesa_bridge.api.middleware import BridgeMiddleware
from mpesa_bridge.api.net import networks_from
from mpesa_bridge.api.parts import build_http_parts
from mpesa_bridge.api.ratelimit import RateLimitMiddleware, SocketConnectBudget
from mpesa_bridge.api.routing import add_routes
from mpesa_bridge.api.v1 import (
    balance_queries,
    c2b,
    checkout_sessions,
    events,
    expected_payments,
    keys,
    payment_links,
    payments,
    payouts,
    project,
    qr_codes,
    reversals,
    stream,
    transaction_status_queries,
    webhooks,
)
from mpesa_bridge.checkout.app import checkout_router
from mpesa_bridge.checkout.cors import ClientSecretCors
from mpesa_bridge.config import SANDBOX_PASSKEY, SANDBOX_SHORTCODE, Settings
from mpesa_bridge.core.clock import Clock
from mpesa_bridge.dashboard.app import create_dashboard
from mpesa_bridge.logging import configure_logging, get_logger
from mpesa_bridge.observability.errors import configure_error_reporting
from mpesa_bridge.observability.multiprocess import process_stopping
from mpesa_bridge.realtime.socketio import SocketAuthorizer, SocketGateway
from mpesa_bridge.routes import CALLBACK_PATH
from mpesa_bridge.runtime import build_runtime
from mpesa_bridge.simulator import Simulator, SimulatorConfig

log = get_logger("mpesa_bridge.app")

DESCRIPTION = """
Collect money by M-Pesa STK Push through Safaricom's Daraja API.

Authenticate with `Authorization: Bearer sk_test_…` (or `sk_live_…`): the key's mode decides
whether the request goes to the simulator/sandbox or to production. Every error has the shape
`{"error": {"type", "code", "message", "param", "request_id"}}`.
"""


def simulator_config(settings: Settings) -> SimulatorConfig:
    return SimulatorConfig(
        credentials={settings.simulator_consumer_key: settings.simulator_consumer_secret.get_secret_value()},
        shortcodes={SANDBOX_SHORTCODE: SANDBOX_PASSKEY},
        callback_delay=settings.simulator_callback_delay,
        late_callback_delay=settings.simulator_late_callback_delay,
        result_delay=settings.simulator_result_delay,
    )


def simulator_for(settings: Settings) -> Simulator:
    return Simulator(simulator_config(settings))


def install_dashboard(app: FastAPI) -> None:
    """The dashboard at /dashboard/ (its own app: HTML errors, sessions; `dashboard/app.py`)."""

    @app.get("/dashboard", include_in_schema=False)
    async def dashboard_home() -> RedirectResponse:
        return RedirectResponse("/dashboard/", status_code=308)

    app.mount("/dashboard", create_dashboard(lambda: app.state.runtime))


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    daraja_transport: httpx.AsyncBaseTransport | None = None,
    simulator: Simulator | None = None,
) -> FastAPI:
    """Build the bridge. The lifespan wires storage, Daraja, the workers and the simulator, then the
    HTTP-only parts (`api/parts.py`)."""
    configure_logging(settings.log_level, json=settings.json_logs)
    configure_error_reporting(settings)  # Sentry when MPESA_BRIDGE_SENTRY_DSN is set (observability/errors.py)
    metrics_access = MetricsAccess(settings)
    networks = networks_from(settings)  # a typo in an address list stops the start
    if simulator is None and settings.mount_simulator:
        simulator = simulator_for(settings)
    origins = settings.realtime_origins
    sockets = SocketGateway(
        redis_url=settings.redis_url,
        cors_origins="*" if "*" in origins else origins,
        key_recheck_interval=settings.realtime_key_recheck_interval,
        join_timeout=settings.realtime_join_timeout,
        max_connect_failures=settings.realtime_max_connect_failures,
        max_message_bytes=settings.max_body_bytes,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await build_runtime(settings, clock=clock, daraja_transport=daraja_transport)
        app.state.runtime = runtime
        try:  # a bad rate limit is a ConfigError: the runtime built so far is closed, not leaked
            parts = app.state.http = build_http_parts(runtime, networks)
        except BaseException:
            await runtime.aclose()
            raise
        budget = SocketConnectBudget(parts.rate_limiter, networks.trusted_proxies)
        sockets.bind(SocketAuthorizer(runtime.projects, runtime.payments), budget)
        await runtime.realtime.use_sockets(sockets)  # closed with the runtime
        if simulator is not None:
            await simulator.start()
        if settings.reconcile_enabled:
            await runtime.start_workers()
        log.info("bridge.started", env=settings.env, database=runtime.db.dialect, simulator=simulator is not None)
        if metrics_access.refusal_reason():
            log.warning("metrics.unavailable", detail=metrics_access.refusal_reason())
        try:
            yield
        finally:
            if simulator is not None:
                await simulator.aclose()
            await parts.aclose()
            await runtime.aclose()
            process_stopping()  # this process's open connections stop counting (multiprocess metrics)
            log.info("bridge.stopped")

    app = FastAPI(
        title="mpesa-bridge",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        # A stray slash is an unknown URL: Starlette's redirect would build its Location from the
        # client's Host header (an open redirect for whoever controls it), and a client following a
        # 307 sends its key and body twice. The bridge's URLs come only from PUBLIC_BASE_URL.
        redirect_slashes=False,
    )
    install_error_handlers(app)
    # stream first: /v1/events/stream before events' /v1/events/{event_id}
    add_routes(app, stream.router, payments.router, keys.router, webhooks.router, events.router)
    add_routes(app, qr_codes.router)
    add_routes(app, checkout_sessions.router, project.router)
    add_routes(app, payment_links.router)
    add_routes(app, c2b.router, expected_payments.router)
    add_routes(app, reversals.router, balance_queries.router)
    add_routes(app, payouts.router, transaction_status_queries.router)
    app.include_router(
        checkout_router(lambda: app.state.http.rate_limiter)
    )  # the hosted page /pay/{id}, links /l/{slug}
    add_routes(app, callbacks.router, admin.router, health.router, legacy.router)
    install_docs(app)
    if not settings.production:
        install_demo(app)
    if settings.dashboard_enabled:
        install_dashboard(app)
    if simulator is not None:
        app.mount("/simulator", simulator.app)
    app.mount("/socket.io", sockets.app)
    app.add_middleware(ClientSecretCors, origins=origins)  # the widget's calls from merchants' sites
    if settings.rate_limit_enabled:  # added first so it runs after BridgeMiddleware (request id, 413/415)
        app.add_middleware(RateLimitMiddleware, trusted_proxies=networks.trusted_proxies)
    app.add_middleware(
        BridgeMiddleware,
        max_body_bytes=settings.max_body_bytes,
        json_only_prefixes=("/v1/", legacy.PREFIX + "/"),
        any_body_prefixes=(CALLBACK_PATH,),
    )
    # Added last, so it runs first: Daraja's callbacks skip routing (see api/callbacks.py).
    app.add_middleware(CallbackFastPath, max_body_bytes=settings.max_body_bytes)
    # Outermost: every request timed by route template, /metrics answered (api/metrics.py).
    app.add_middleware(MetricsMiddleware, access=metrics_access, runtime=lambda: app.state.runtime)
    return app
