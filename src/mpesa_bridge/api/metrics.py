"""`/metrics` (Prometheus text) and the timing of every HTTP request, in one outermost ASGI middleware.

Who may read `/metrics` (docs/operations.md, "Metrics"):

    MPESA_BRIDGE_METRICS_PORT set      -> open on that port (only /metrics answers there), and on the
                                          main port only with the token, if one is set
    MPESA_BRIDGE_METRICS_TOKEN set     -> on the main port with `Authorization: Bearer <token>` (401 without)
    development, neither set           -> open on the main port
    production, neither set            -> 404 on the main port, and a warning at start-up

Requests are timed by route template (`/v1/payments/{payment_id}`, never the raw path, so the
number of series stays bounded), method and status class. A mounted app without routes of its
own counts as its mount (`/socket.io/*`); a path no route matched as `unmatched`. The cost on the
hot path is two clock reads, a dict lookup, one histogram observation and the in-progress gauge's
two steps (docs/operations.md). `/metrics` itself is neither timed nor counted in progress.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mpesa_bridge.api.bearer import scope_bearer_token
from mpesa_bridge.api.callbacks import CALLBACKS_PREFIX
from mpesa_bridge.api.errors import error_reply
from mpesa_bridge.config import Settings
from mpesa_bridge.logging import get_logger
from mpesa_bridge.observability.instruments import (
    HTTP_REQUEST_SECONDS,
    HTTP_REQUESTS_IN_PROGRESS,
    PREFIX,
    status_class,
)
from mpesa_bridge.observability.multiprocess import render_counted
from mpesa_bridge.storage.metrics import DatabaseGauges, read_gauges

log = get_logger("mpesa_bridge.metrics")

METRICS_PATH = "/metrics"
CALLBACK_ROUTE = CALLBACKS_PREFIX + "{kind}/{token}"  # the callbacks' fast path skips routing
UNMATCHED = "unmatched"

#: The gauges read from the database at scrape time: name -> help.
GAUGES = {
    f"{PREFIX}_payments": "Payments by mode and status, read from the database at scrape time",
    f"{PREFIX}_reconciliation_backlog": "Payments pending or unknown: what reconciliation has still to settle",
    f"{PREFIX}_reconciliation_oldest_pending_seconds": "Age of the oldest payment still pending or unknown",
    f"{PREFIX}_inbox_backlog": "Stored callbacks by state: received (waiting to be applied) and failed (given up)",
    f"{PREFIX}_inbox_oldest_seconds": "Age of the oldest stored callback still waiting to be applied",
    f"{PREFIX}_webhook_deliveries_pending": "Webhook deliveries waiting for their next attempt",
    f"{PREFIX}_webhook_oldest_pending_seconds": "Age of the oldest webhook delivery still pending",
    f"{PREFIX}_metrics_database_read_seconds": "How long this scrape's database read took",
}


class _Snapshot:
    """The database gauges of one scrape, as a prometheus-client collector."""

    def __init__(self, gauges: DatabaseGauges, took: float) -> None:
        self._g = gauges
        self._took = took

    def collect(self) -> list[GaugeMetricFamily]:
        g = self._g
        payments = GaugeMetricFamily(f"{PREFIX}_payments", GAUGES[f"{PREFIX}_payments"], labels=["mode", "status"])
        for (mode, status), count in sorted(g.payments.items()):
            payments.add_metric([mode, status], count)
        inbox = GaugeMetricFamily(f"{PREFIX}_inbox_backlog", GAUGES[f"{PREFIX}_inbox_backlog"], labels=["state"])
        for state, count in sorted(g.inbox.items()):
            inbox.add_metric([state], count)
        plain = {
            f"{PREFIX}_reconciliation_backlog": g.reconcile_backlog,
            f"{PREFIX}_reconciliation_oldest_pending_seconds": g.reconcile_oldest_age,
            f"{PREFIX}_inbox_oldest_seconds": g.inbox_oldest_age,
            f"{PREFIX}_webhook_deliveries_pending": g.webhooks_pending,
            f"{PREFIX}_webhook_oldest_pending_seconds": g.webhooks_oldest_age,
            f"{PREFIX}_metrics_database_read_seconds": self._took,
        }
        return [payments, inbox, *(GaugeMetricFamily(name, GAUGES[name], value=v) for name, v in plain.items())]


async def scrape(runtime: Any) -> bytes:
    """Every process's counters (`observability/multiprocess.py`) and this moment's database gauges."""
    started = time.perf_counter()
    gauges = await read_gauges(runtime.db, runtime.clock.now())
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(gauges, time.perf_counter() - started))
    counted = await asyncio.to_thread(render_counted)  # reads N processes' files: off the loop
    return counted + generate_latest(registry)


def route_template(scope: Scope, root_path: str) -> str:
    """The template of the route that answered (`/dashboard` + `/payments/{payment_id}`, …)."""
    route = scope.get("route")
    prefix = scope.get("root_path", "")[len(root_path) :]
    if route is None:
        if scope.get("path", "").startswith(CALLBACKS_PREFIX):
            return CALLBACK_ROUTE
        return f"{prefix}/*" if prefix else UNMATCHED
    if isinstance(route, Mount):  # a mounted app that routes nothing itself (Socket.IO, static files)
        return f"{prefix}/*"
    path: str = getattr(route, "path", "") or ""
    return f"{prefix}{path}" if path else UNMATCHED


class MetricsAccess:
    """Where `/metrics` answers, from the settings (see the module's table)."""

    def __init__(self, settings: Settings) -> None:
        token = settings.metrics_token
        self.token = token.get_secret_value().encode() if token is not None else None
        self.port = settings.metrics_port
        self.open_on_main = self.token is None and self.port is None and not settings.production

    def refusal_reason(self) -> str | None:
        """Why nobody can read `/metrics` with these settings, or None."""
        if self.token is None and self.port is None and not self.open_on_main:
            return "production needs MPESA_BRIDGE_METRICS_TOKEN or MPESA_BRIDGE_METRICS_PORT: /metrics answers 404"
        return None

    def allowed(self, scope: Scope, on_metrics_port: bool) -> bool | None:
        """True: serve it; False: 401 (a token is required); None: 404 (not here)."""
        if on_metrics_port or self.open_on_main:
            return True
        if self.token is None:
            return None
        given = scope_bearer_token(scope)
        return given is not None and hmac.compare_digest(given.encode(), self.token)


class MetricsMiddleware:
    """Outermost: times each HTTP request; answers `/metrics`; on the metrics port, nothing else."""

    def __init__(self, app: ASGIApp, *, access: MetricsAccess, runtime: Callable[[], Any]) -> None:
        self.app = app
        self.access = access
        self.runtime = runtime
        # (route, method, status class) -> its histogram child: prometheus-client's own `labels()`
        # validates and locks on every call; this lookup is a dict's. Bounded: templates x methods x 5.
        self._children: dict[tuple[str, str, str], Any] = {}
        self._in_progress: dict[str, Any] = {}  # method -> its gauge child, the same way

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        server = scope.get("server")
        on_metrics_port = self.access.port is not None and server is not None and server[1] == self.access.port
        if scope["path"] == METRICS_PATH or on_metrics_port:
            await self._metrics(scope, send, on_metrics_port)
            return
        started = time.perf_counter()
        root_path = scope.get("root_path", "")
        status = 500  # an app that raised before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        method = scope["method"]
        in_progress = self._in_progress.get(method)
        if in_progress is None:
            in_progress = self._in_progress[method] = HTTP_REQUESTS_IN_PROGRESS.labels(method)
        in_progress.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            in_progress.dec()
            elapsed = time.perf_counter() - started
            key = (route_template(scope, root_path), method, status_class(status))
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = HTTP_REQUEST_SECONDS.labels(*key)
            child.observe(elapsed)

    async def _metrics(self, scope: Scope, send: Send, on_metrics_port: bool) -> None:
        allowed = self.access.allowed(scope, on_metrics_port) if scope["path"] == METRICS_PATH else None
        if allowed is None:
            await _send_all(send, error_reply(404, "not_found", "Not found.", None))
        elif not allowed:
            message = "Reading /metrics needs Authorization: Bearer <MPESA_BRIDGE_METRICS_TOKEN>."
            await _send_all(send, error_reply(401, "metrics_token_required", message, None, "authentication_error"))
        elif scope["method"] not in ("GET", "HEAD"):
            await _send_all(send, error_reply(405, "method_not_allowed", "Use GET.", None, headers={"Allow": "GET"}))
        else:
            body = await scrape(self.runtime())
            headers = [(b"content-type", CONTENT_TYPE_LATEST.encode()), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})


async def _send_all(send: Send, messages: tuple[Message, Message]) -> None:
    for message in messages:
        await send(message)
