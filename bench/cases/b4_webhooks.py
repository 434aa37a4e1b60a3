"""B4 — signed webhook deliveries per second by one `mpesa-bridge worker`, to a local receiver.

A receiver process (`bench.receiver`) answers 200 on `/ok/…` and 500 on `/fail/…`. Per engine, a
bridge (`serve` with MPESA_BRIDGE_RECONCILE_ENABLED=false, so it runs no workers of its own) makes
the projects and webhook endpoints through the API, and exactly one `mpesa-bridge worker` process
does all the delivery work.

The events are real outbox events: one `payment.created` event is made through the API (a payment
in a project without endpoints), and E copies of it — each its own event id and payment id, so that
no delivery waits for an earlier one of the same payment — are written to the outbox in one
transaction, as the payment services write them. The worker dispatches them (one delivery per
endpoint), then claims, signs, sends and records each delivery.

Two scenarios, each on a project of its own with 10 endpoints (the same for every repetition):

- all healthy: deliveries/s is the 10·E receipts over the time from the first to the last receipt;
- 3 of 10 answering 500: successful deliveries/s (7·E over the first to the last successful receipt)
  as a share of the healthy rate of the same repetition.

Checked every time: every (endpoint, event) pair arrives exactly once at a healthy endpoint (count,
no duplicates, and an order-independent digest of the ids equal to the seeded ids'), every delivery
is recorded in the database (succeeded on its first attempt), and a sample of the requests verifies
with the `standardwebhooks` library against the endpoint's secret. The worker's CPU per delivery
attempt is read from /proc around each run (dispatch, claim, sign, send and record, plus the
worker's idle polling while the bench waits).
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa
from standardwebhooks import Webhook

from bench.context import Context, Figure
from bench.harness import (
    Server,
    admin_create_project,
    bridge_env,
    bridge_server,
    free_port,
    median,
    python,
    seed_rows,
    wait_until,
)
from bench.receiver import id_digest

T = TypeVar("T")

TARGET_RATE = 1_000.0  # signed deliveries/s per worker
TARGET_SHARE = 70.0  # % of the healthy rate kept with 30 % of receivers failing
ENDPOINTS = 10
FAILING = 3
# How the measured worker runs. Concurrency stays at its default (10): more in flight costs more CPU
# per delivery (httpcore scans its whole pool per request, and the pool keeps only half of its
# connections alive) and was slower on two cores. The poll interval is cut from 1 s to 0.1 s: a pass
# sends at most MAX_ROUNDS x concurrency = 200 deliveries and then sleeps the interval, which alone
# would cap a worker below 200/s.
WORKER_SETTINGS = {
    "MPESA_BRIDGE_WEBHOOK_CONCURRENCY": "10",
    "MPESA_BRIDGE_WEBHOOK_POLL_INTERVAL": "0.1",
    "MPESA_BRIDGE_MIGRATE_ON_START": "false",  # the bridge has migrated the database
}
# Full runs are sized from a warm-up run so that each takes about RUN_SECONDS of delivering,
# whatever the machine does (the case stays near a minute on two shared cores).
WARMUP_EVENTS = 10
RUN_SECONDS = 1.0
MIN_EVENTS, MAX_EVENTS = 10, 300
SMOKE_EVENTS = 3
START_TIMEOUT = 90.0


@dataclass
class Run:
    """One scenario's measurements."""

    events: int
    healthy: int  # healthy endpoints
    attempts: int  # attempts recorded (successes + failures)
    rate: float  # successful deliveries/s, first to last successful receipt
    cpu: float  # worker CPU seconds over the run
    first_after: float  # seconds from the outbox commit to the first receipt (dispatch + first claim)
    end_to_end: float  # successful deliveries/s from the outbox commit to the last successful receipt
    verified: int  # signatures checked with standardwebhooks

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.attempts if self.attempts else float("nan")

    @property
    def success_cpu_ms(self) -> float:
        """Worker CPU per successful delivery (failed attempts' cost included)."""
        successes = self.events * self.healthy
        return 1000 * self.cpu / successes if successes else float("nan")


@dataclass
class Endpoint:
    id: str
    secret: str
    path: str
    ok: bool


@dataclass
class Setup:
    """A project and its endpoints, made through the API before the runs that use them."""

    label: str
    key: str
    project_id: str
    endpoints: list[Endpoint]
    used: bool = False

    @property
    def failing(self) -> list[Endpoint]:
        return [e for e in self.endpoints if not e.ok]

    @property
    def healthy(self) -> list[Endpoint]:
        return [e for e in self.endpoints if e.ok]


class Database:
    """The bench's own connection to the bridge's database: seeds the outbox, reads the results."""

    def __init__(self, url: str) -> None:
        self._runner = asyncio.Runner()
        self._url = url
        self._db: Any = None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    def _database(self) -> Any:
        if self._db is None:
            from mpesa_bridge.storage.db import Database as BridgeDatabase

            self._db = BridgeDatabase(self._url, pool_size=2)
        return self._db

    def seed(self, rows: list[dict[str, Any]]) -> None:
        from mpesa_bridge.storage import tables

        async def _seed() -> None:
            async with self._database().write() as uow:
                await uow.connection.execute(sa.insert(tables.outbox_events), seed_rows(tables.outbox_events, rows))

        self.run(_seed())

    def event_dispatched(self, event_id: str) -> bool:
        from mpesa_bridge.storage import tables

        async def _check() -> bool:
            c = tables.outbox_events.c
            async with self._database().read() as uow:
                value = await uow.connection.scalar(sa.select(c.dispatched_at).where(c.id == event_id))
            return value is not None

        return self.run(_check())

    def deliveries(self, endpoint_ids: list[str], event_ids: list[str]) -> dict[str, Any]:
        """Of these events, per endpoint: deliveries made, attempted, succeeded at the first attempt;
        and the number of attempts."""
        from mpesa_bridge.storage import tables

        async def _count() -> dict[str, Any]:
            d, a = tables.webhook_deliveries.c, tables.webhook_attempts.c
            first_try = sa.and_(d.status == "succeeded", d.attempts == 1)
            per_endpoint = (
                sa.select(
                    d.endpoint_id,
                    sa.func.count(),
                    sa.func.sum(sa.case((d.attempts > 0, 1), else_=0)),
                    sa.func.sum(sa.case((first_try, 1), else_=0)),
                )
                .where(d.endpoint_id.in_(endpoint_ids), d.event_id.in_(event_ids))
                .group_by(d.endpoint_id)
            )
            attempts = (
                sa.select(sa.func.count())
                .select_from(tables.webhook_attempts.join(tables.webhook_deliveries, a.delivery_id == d.id))
                .where(d.endpoint_id.in_(endpoint_ids), d.event_id.in_(event_ids))
            )
            async with self._database().read() as uow:
                rows = (await uow.connection.execute(per_endpoint)).all()
                total = await uow.connection.scalar(attempts)
            per = {r[0]: {"made": r[1], "attempted": int(r[2] or 0), "first_try": int(r[3] or 0)} for r in rows}
            attempted = sum(p["attempted"] for p in per.values())
            return {"endpoints": per, "attempts": int(total or 0), "attempted": attempted}

        return self.run(_count())

    def close(self) -> None:
        if self._db is not None:
            self.run(self._db.dispose())
        self._runner.close()


def _api(bridge: Server, key: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    response = httpx.request(method, bridge.url + path, headers=headers, timeout=30, **kwargs)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def _alive(worker: Server) -> bool:
    assert worker.process is not None
    if worker.process.poll() is not None:
        raise RuntimeError(f"B4: the worker exited with {worker.process.returncode}: {worker.tail()}")
    return True


def template_event(bridge: Server) -> dict[str, Any]:
    """A real `payment.created` event, made through the API in a project with no endpoints."""
    key = admin_create_project(bridge, "b4-template")["secret_keys"]["test"]
    payment = _api(
        bridge,
        key,
        "POST",
        "/v1/payments",
        json={"phone": "0708374149", "amount": 10, "account_reference": "B4", "metadata": {"order_id": "42"}},
    )
    events = _api(bridge, key, "GET", "/v1/events", params={"payment": payment["id"]})["data"]
    created = [e for e in events if e["type"] == "payment.created"]
    if not created:
        raise RuntimeError(f"no payment.created event for {payment['id']}: {events}")
    return created[0]


def event_rows(template: dict[str, Any], project_id: str, count: int) -> list[dict[str, Any]]:
    """`count` copies of the template event for `project_id`, each about a payment of its own."""
    from mpesa_bridge.core.ids import new_id

    rows = []
    for _ in range(count):
        at = datetime.now(UTC)
        payment_id = new_id("pay", at)
        data = copy.deepcopy(template["data"])
        data["object"]["id"] = payment_id
        rows.append(
            {
                "id": new_id("evt", at),
                "project_id": project_id,
                "mode": "test",
                "type": template["type"],
                "subject_type": "payment",  # what the event is about (migration 0008)
                "subject_id": payment_id,
                "data": data,
                "created_at": at,
                "late_correction": False,
            }
        )
    return rows


def make_setup(bridge: Server, receiver: Server, label: str, failing: int) -> Setup:
    project = admin_create_project(bridge, label)
    key = project["secret_keys"]["test"]
    endpoints = []
    for i in range(ENDPOINTS):
        kind = "fail" if i < failing else "ok"
        path = f"/{kind}/{label}-{i}"
        body = {"url": receiver.url + path, "enabled_events": ["*"], "description": f"B4 {label}"}
        created = _api(bridge, key, "POST", "/v1/webhook_endpoints", json=body)
        endpoints.append(Endpoint(created["id"], created["secret"], path, kind == "ok"))
    return Setup(label, key, project["id"], endpoints)


def receiver_stats(receiver: Server) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(f"{receiver.url}/__stats", timeout=30).json()["paths"]
    return stats


def receiver_counts(receiver: Server) -> dict[str, int]:
    counts: dict[str, int] = httpx.get(f"{receiver.url}/__counts", timeout=10).json()
    return counts


@dataclass
class Stack:
    """One engine's processes: the bridge (API only) and the worker under test."""

    engine: str
    bridge: Server
    worker: Server
    db: Database
    template: dict[str, Any] = field(default_factory=dict)


def measure(stack: Stack, receiver: Server, setup: Setup, events: int) -> Run:
    """Seed `events` events for `setup`'s project and measure their delivery by the worker."""
    worker, db = stack.worker, stack.db
    if setup.used:  # switched off after its last run
        for endpoint in setup.failing:
            _api(stack.bridge, setup.key, "PATCH", f"/v1/webhook_endpoints/{endpoint.id}", json={"enabled": True})
    setup.used = True
    httpx.post(f"{receiver.url}/__reset", timeout=10).raise_for_status()
    rows = event_rows(stack.template, setup.project_id, events)
    ids, event_ids = [e.id for e in setup.endpoints], [row["id"] for row in rows]

    cpu_before = worker.cpu()
    db.seed(rows)
    committed = time.monotonic()

    def all_arrived() -> bool:
        _alive(worker)
        counts = receiver_counts(receiver)  # distinct event ids per path
        return all(counts.get(e.path, 0) >= events for e in setup.endpoints)

    if not wait_until(all_arrived, 60, interval=0.05):
        raise RuntimeError(f"B4 {setup.label}: not every delivery arrived in 60 s: {receiver_counts(receiver)}")
    if not wait_until(lambda: db.deliveries(ids, event_ids)["attempted"] >= events * ENDPOINTS, 30, 0.05):
        raise RuntimeError(f"B4 {setup.label}: attempts not recorded: {db.deliveries(ids, event_ids)}")
    cpu = worker.cpu() - cpu_before
    recorded = db.deliveries(ids, event_ids)
    stats = receiver_stats(receiver)

    # Exactly once to every healthy endpoint, and recorded so; at least once to every failing one.
    digest = id_digest(event_ids)
    for endpoint in setup.endpoints:
        got, per = stats[endpoint.path], recorded["endpoints"].get(endpoint.id, {})
        if per.get("made") != events or per.get("attempted") != events:
            raise RuntimeError(f"B4 {setup.label}: {endpoint.path}: deliveries in the database {per}")
        if got["distinct"] != events or got["digest"] != digest:
            raise RuntimeError(f"B4 {setup.label}: {endpoint.path} received {got['distinct']} of {events} events")
        if endpoint.ok and (got["count"] != events or per.get("first_try") != events):
            raise RuntimeError(f"B4 {setup.label}: {endpoint.path} not exactly once: {got['count']} receipts, {per}")
    verified = 0
    for endpoint in setup.endpoints:
        hook = Webhook(endpoint.secret)
        for sample in stats[endpoint.path]["samples"]:
            hook.verify(sample["body"], sample["headers"])  # raises WebhookVerificationError
            verified += 1

    # Switch the failing endpoints off (cancels their pending retries): none may land in a later run.
    for endpoint in setup.failing:
        _api(stack.bridge, setup.key, "PATCH", f"/v1/webhook_endpoints/{endpoint.id}", json={"enabled": False})

    first = min(stats[e.path]["first"] for e in setup.healthy)
    last = max(stats[e.path]["last"] for e in setup.healthy)
    successes = events * len(setup.healthy)
    return Run(
        events=events,
        healthy=len(setup.healthy),
        attempts=recorded["attempts"],
        rate=successes / (last - first) if last > first else float("nan"),
        cpu=cpu,
        first_after=first - committed,
        end_to_end=successes / (last - committed),
        verified=verified,
    )


def run_stack(ctx: Context, stack: Stack, receiver: Server) -> tuple[list[Run], list[Run]]:
    """Start the worker, make the two projects while it starts, then the warm-up and the measured runs."""
    stack.bridge.wait_ready(START_TIMEOUT)
    stack.worker.start(wait=False)
    stack.template = template_event(stack.bridge)
    tag = stack.engine[:2]
    healthy_setup = make_setup(stack.bridge, receiver, f"{tag}-h", 0)
    failing_setup = make_setup(stack.bridge, receiver, f"{tag}-f", FAILING)
    # The worker is up when a pass has dispatched the template event (to no endpoint).
    if not wait_until(lambda: _alive(stack.worker) and stack.db.event_dispatched(stack.template["id"]), 60, 0.1):
        raise RuntimeError(f"B4: the worker did not start: {stack.worker.tail()}")
    events = SMOKE_EVENTS
    if not ctx.smoke:  # warms connections and statement caches; sizes the measured runs
        warm = measure(stack, receiver, healthy_setup, WARMUP_EVENTS)
        events = max(MIN_EVENTS, min(MAX_EVENTS, round(warm.rate * RUN_SECONDS / ENDPOINTS)))
    healthy, failing = [], []
    for _ in range(ctx.reps):
        healthy.append(measure(stack, receiver, healthy_setup, events))
        failing.append(measure(stack, receiver, failing_setup, events))
    return healthy, failing


def run(ctx: Context) -> None:
    data_dir = ctx.work / "data"
    port = free_port()
    receiver = Server("b4-receiver", python("bench.receiver", "--port", str(port)), {}, port, ctx.log_dir)
    stacks = []
    for engine in ctx.engines():
        url = ctx.fresh_database(engine, "b4")
        bridge = bridge_server(
            ctx.log_dir, data_dir, url, name=f"b4-bridge-{engine}", MPESA_BRIDGE_RECONCILE_ENABLED="false"
        )
        worker = Server(
            f"b4-worker-{engine}",
            python("mpesa_bridge", "worker"),
            bridge_env(bridge.port, data_dir, url, **WORKER_SETTINGS),
            free_port(),  # unused: the worker serves no HTTP
            ctx.log_dir,
        )
        stacks.append(Stack(engine, bridge, worker, Database(url)))
    try:
        # Every process that only serves the bench starts at once; the workers start one at a time.
        receiver.start(wait=False)
        for stack in stacks:
            stack.bridge.start(wait=False)
        receiver.wait_ready(START_TIMEOUT)
        for stack in stacks:
            try:
                healthy, failing = run_stack(ctx, stack, receiver)
            finally:
                stack.worker.stop()
                stack.bridge.stop()
            add_figures(ctx, stack.engine, healthy, failing)
    finally:
        for stack in stacks:
            stack.worker.stop()
            stack.bridge.stop()
            stack.db.close()
        receiver.stop()


def add_figures(ctx: Context, engine: str, healthy: list[Run], failing: list[Run]) -> None:
    bare = ctx.baseline.post if ctx.baseline is not None else None
    rate = median([r.rate for r in healthy])
    cpu_ms = median([r.cpu_ms for r in healthy])
    ctx.add(
        Figure(
            "B4",
            "signed deliveries/s (one worker)",
            rate,
            "/s",
            engine=engine,
            target=f"≥ {TARGET_RATE:,.0f}/s",
            met=rate >= TARGET_RATE,
            bare=bare.rate if bare is not None else None,
            cpu_ms=cpu_ms,
            bare_cpu_ms=bare.cpu_per_op_ms if bare is not None else None,
            detail={
                "worker_settings": WORKER_SETTINGS,
                "endpoints": ENDPOINTS,
                "deliveries_per_run": healthy[0].events * ENDPOINTS,
                "rates": [round(r.rate, 1) for r in healthy],
                "end_to_end_rates": [round(r.end_to_end, 1) for r in healthy],
                "first_receipt_after_s": [round(r.first_after, 3) for r in healthy],
                "cpu_ms_per_delivery": [round(r.cpu_ms, 3) for r in healthy],
                # What one worker would send with a whole core to itself (the machine is shared).
                "cpu_bound_rate": round(1000 / cpu_ms, 1),
                "signatures_verified": sum(r.verified for r in healthy),
                "bare": "the bare app's POST/s: what one Python HTTP process serves on this machine, for scale",
            },
        )
    )
    shares = [100 * f.rate / h.rate for f, h in zip(failing, healthy, strict=True)]
    share = median(shares)
    ctx.add(
        Figure(
            "B4",
            f"successful deliveries/s with {FAILING} of {ENDPOINTS} receivers failing, % of healthy",
            share,
            "%",
            engine=engine,
            target=f"≥ {TARGET_SHARE:.0f} %",
            met=share >= TARGET_SHARE,
            cpu_ms=median([r.cpu_ms for r in failing]),
            detail={
                "success_rates": [round(r.rate, 1) for r in failing],
                "healthy_rates": [round(r.rate, 1) for r in healthy],
                "shares_pct": [round(s, 1) for s in shares],
                "attempts": [r.attempts for r in failing],
                "cpu_ms_per_attempt": [round(r.cpu_ms, 3) for r in failing],
                "cpu_ms_per_success": [round(r.success_cpu_ms, 3) for r in failing],
                "cpu_share_pct": round(
                    100 * median([h.cpu_ms for h in healthy]) / median([f.success_cpu_ms for f in failing]), 1
                ),
                "signatures_verified": sum(r.verified for r in failing),
            },
        )
    )
