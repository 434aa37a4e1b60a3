"""B3 — callback → live client, and idle SSE streams, on one bridge process (SQLite).

One freshly started bridge, one client process (`bench.realtime_clients`: every subscriber and
the callback sender, so both ends of a latency read the same clock), in this order:

1. warm-up: 100 SSE streams opened and closed (what the first stream loads once is not counted);
2. 1,000 SSE streams, each on its own pending payment, authenticated with its client secret;
3. more SSE streams (each on its own payment, in another project) towards 10,000 open at once,
   none started after IDLE_DEADLINE s: the bridge opens a stream with three database reads and
   cannot open 10,000 within a short run. Resident memory before/after → KB per stream; server
   CPU over 2 s with all of them open and quiet → idle CPU per 1,000 streams. Then closed;
4. 1,000 Socket.IO sockets, each on its own payment (client secret in the connect `auth`);
5. with all 2,000 open: a few warm-up callbacks, then `reps` rounds of SAMPLE SSE payments' then
   SAMPLE Socket.IO payments' Daraja success callbacks, paced at RATE/s, each payment once. Per
   payment: from reading the callback's `200` to the subscriber reading `payment.succeeded`;
   p50/p99 per round, the median over rounds. Server CPU per event is the bridge's CPU over the
   phase divided by the events delivered (it includes what the open subscribers cost meanwhile:
   `detail.of_which_background_ms_per_event`).

The bare figures: `bench.realtime_bare` (same uvicorn/uvloop/httptools and python-socketio; it
answers the callback, then pushes a same-sized event, with no database and no checks), put
through the same steps, one round, as many idle streams as the bridge held.

Payments are seeded straight into the bridge's database with its own tables: a pending STK payment
with its callback token, CheckoutRequestID, client secret and `payment.created` event (marked
dispatched, as it would long be), as `PaymentService.create` and Daraja's answer leave it.
Creating thousands through the API would take as many simulated pushes, and the simulator would
send callbacks of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

from bench.context import Context, Figure
from bench.harness import (
    ROOT,
    Server,
    admin_create_project,
    bridge_server,
    free_port,
    median,
    percentile,
    python,
    seed_rows,
)

CASE = "B3"
NEVER = 1e12  # ms: what a missing delivery counts as
TARGET_MS = 50.0
TARGET_KB = 50.0
RATE = 20  # callbacks/s: one bridge process with 2,000 subscribers open is already half busy at this
SAMPLE = 60  # callbacks per kind per round (each to its own subscriber; every subscriber stays open)
IDLE_DEADLINE = 10  # seconds to open the extra idle streams in (the full run must stay short)
PHONE = "254708374149"
AMOUNT = 10
SHORT_CODE = "174379"


# What a pending payment has not got yet (read by `payment_public`).
UNSET = dict.fromkeys(
    (
        "failure_code",
        "failure_message",
        "result_code",
        "result_desc",
        "mpesa_receipt_number",
        "attention_reason",
        "transaction_date",
        "completed_at",
        "client_secret",
        "checkout_session_id",
        "reversal_id",
        "reversed_at",
    ),
)


@dataclass(frozen=True)
class Seeded:
    payment_id: str
    client_secret: str
    token: str  # the callback URL's token (the bridge keeps its SHA-256)
    checkout_request_id: str
    merchant_request_id: str


# --- payments ------------------------------------------------------------------------------------


async def _seed(database_url: str, project_id: str, count: int, chunk: int = 2000) -> list[Seeded]:
    from mpesa_bridge.core.ids import new_id
    from mpesa_bridge.core.payments.entity import EventType
    from mpesa_bridge.core.payments.public import payment_public
    from mpesa_bridge.core.payments.status import PaymentStatus
    from mpesa_bridge.core.payments.stk import new_client_secret, token_hash
    from mpesa_bridge.storage import tables
    from mpesa_bridge.storage.db import Database

    db = Database(database_url)
    seeded: list[Seeded] = []
    try:
        for start in range(0, count, chunk):
            now = datetime.now(UTC)
            payments, events = [], []
            for _ in range(min(chunk, count - start)):
                token, payment_id = secrets.token_urlsafe(24), new_id("pay", now)
                secret = new_client_secret(payment_id)
                item = Seeded(payment_id, secret, token, f"ws_CO_{secrets.token_hex(12)}", secrets.token_hex(8))
                payment = {
                    "id": payment_id,
                    "project_id": project_id,
                    "mode": "test",
                    "status": PaymentStatus.PENDING,
                    "amount": AMOUNT,
                    "phone": PHONE,
                    "account_reference": "B3",
                    "description": "bench",
                    "metadata": {},
                    "business_short_code": SHORT_CODE,
                    "party_b": SHORT_CODE,
                    "transaction_type": "CustomerPayBillOnline",
                    "daraja_environment": "simulator",
                    "callback_token_hash": token_hash(token),
                    "created_at": now,
                    "updated_at": now,
                    "checkout_request_id": item.checkout_request_id,
                    "merchant_request_id": item.merchant_request_id,
                    "needs_attention": False,
                    "query_attempts": 0,
                    "next_query_at": now + timedelta(days=1),  # the reconciler leaves them alone meanwhile
                    "awaiting_confirmation": False,
                    "client_secret_hash": token_hash(secret),
                }
                payments.append(payment)
                events.append(
                    {
                        "id": new_id("evt", now),
                        "project_id": project_id,
                        "mode": "test",
                        "type": EventType.CREATED,
                        "subject_type": "payment",  # what the event is about (migration 0008)
                        "subject_id": payment_id,
                        "data": {"object": payment_public(SimpleNamespace(**UNSET, **payment))},  # type: ignore[arg-type]
                        "created_at": now,
                        "late_correction": False,
                        # Long dispatched, as for any payment created earlier: no webhook backlog.
                        "dispatched_at": now,
                    }
                )
                seeded.append(item)
            async with db.write_engine.begin() as conn:  # positions come from the database's trigger
                await conn.execute(tables.payments.insert(), seed_rows(tables.payments, payments))
                await conn.execute(tables.outbox_events.insert(), seed_rows(tables.outbox_events, events))
    finally:
        await db.dispose()
    return seeded


def seed(database_url: str, project_id: str, count: int) -> list[Seeded]:
    return asyncio.run(_seed(database_url, project_id, count))


def callback_body(item: Seeded, number: int) -> str:
    """Daraja's success callback for the payment (daraja.md 4.1; simulator.callbacks.callback_body)."""
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    items = [
        {"Name": "Amount", "Value": float(AMOUNT)},
        {"Name": "MpesaReceiptNumber", "Value": f"TB3{number:06d}K"},
        {"Name": "Balance"},
        {"Name": "TransactionDate", "Value": int(stamp)},
        {"Name": "PhoneNumber", "Value": int(PHONE)},
    ]
    callback = {
        "MerchantRequestID": item.merchant_request_id,
        "CheckoutRequestID": item.checkout_request_id,
        "ResultCode": 0,
        "ResultDesc": "The service request is processed successfully.",
        "CallbackMetadata": {"Item": items},
    }
    return json.dumps({"Body": {"stkCallback": callback}})


# --- the client process --------------------------------------------------------------------------


class Clients:
    """`bench.realtime_clients` as a child process, driven one line at a time."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-b3-")
        spec_path = Path(self._tmp.name) / "spec.json"
        self._out = Path(self._tmp.name) / "out.json"
        spec_path.write_text(json.dumps(spec))
        self.process = subprocess.Popen(
            python("bench.realtime_clients", str(spec_path), str(self._out)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )

    def _ask(self, line: str, word: str) -> list[str]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().split()
        if not answer or answer[0] != word:
            self.process.kill()
            raise RuntimeError(f"realtime clients: {line!r} got {answer!r} (exit {self.process.wait()})")
        return answer[1:]

    def open(self, group: str) -> int:
        """Open a group's connections; how many are ready."""
        return int(self._ask(f"open {group}", "opened")[0])

    def drop(self, group: str) -> None:
        self._ask(f"drop {group}", "dropped")

    def phase(self, name: str) -> None:
        self._ask(f"phase {name}", "done")

    def count(self) -> int:
        return int(self._ask("count", "open")[0])

    def exit(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write("exit\n")
        self.process.stdin.flush()
        self.process.wait(60)
        result: dict[str, Any] = json.loads(self._out.read_text())
        return result

    def __enter__(self) -> Clients:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._tmp.cleanup()


# --- servers -------------------------------------------------------------------------------------


def bare_realtime_server(log_dir: Path) -> Server:
    port = free_port()
    return Server("bare-realtime", python("bench.realtime_bare", "--port", str(port)), {}, port, log_dir, health="/")


def wait_healthy(server: Server, timeout: float = 120.0) -> Server:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.process is not None
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}: {server.tail()}")
        try:
            if httpx.get(server.url + server.health, timeout=2.0).status_code < 500:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not start in {timeout}s: {server.tail()}")


# --- what one server is put through -----------------------------------------------------------


@dataclass
class Plan:
    per_kind: int  # SSE subscribers, and Socket.IO subscribers, open during delivery
    idle: int  # SSE streams wanted open at once (the delivery's SSE subscribers count among them)
    idle_deadline: float  # seconds to open the extra idle streams in
    warm: int  # payments of each kind whose callbacks warm the server up (not measured)
    sample: int  # callbacks per kind per round
    reps: int
    rate: float  # callbacks/s
    timeout: float  # seconds to wait for the last event of a round
    settle: float  # seconds to let the server settle before reading its memory


@dataclass
class Listeners:
    """One server's subscribers: `sse` and `sio` (one payment each, with its callback) and `idle`
    SSE streams (their payments get no callback)."""

    sse: list[dict[str, Any]]
    sio: list[dict[str, Any]]
    idle: list[dict[str, Any]]
    callbacks: list[list[Any]]  # [subscriber number, path, body]: SSE ones first, then Socket.IO ones

    @classmethod
    def bridge(cls, live: list[Seeded], idle: list[Seeded], per_kind: int) -> Listeners:
        def stream(p: Seeded) -> dict[str, Any]:
            return {"kind": "sse", "path": f"/v1/payments/{p.payment_id}/events?client_secret={p.client_secret}"}

        sse, sio = live[:per_kind], live[per_kind : 2 * per_kind]
        path = "/v1/callbacks/daraja/stk/"
        return cls(
            [stream(p) for p in sse],
            [{"kind": "sio", "path": "/socket.io/", "auth": {"client_secret": p.client_secret}} for p in sio],
            [stream(p) for p in idle],
            [[i, path + p.token, callback_body(p, i)] for i, p in enumerate(sse + sio)],
        )

    @classmethod
    def bare(cls, live: list[Seeded], per_kind: int, idle: int) -> Listeners:
        keys = [f"k{i}-{secrets.token_hex(4)}" for i in range(2 * per_kind)]
        return cls(
            [{"kind": "sse", "path": f"/sse/{k}"} for k in keys[:per_kind]],
            [{"kind": "sio", "path": "/socket.io/", "auth": {"client_secret": k}} for k in keys[per_kind:]],
            [{"kind": "sse", "path": f"/sse/idle{i}"} for i in range(idle)],
            [[i, f"/cb/{k}", callback_body(live[i % len(live)], i)] for i, k in enumerate(keys)],
        )


@dataclass
class Round:
    """One round of one kind: delivery latencies (ms), server CPU per event (ms), the client's record."""

    latencies: list[float]
    cpu_ms: float
    phase: dict[str, Any]

    @property
    def p50(self) -> float:
        return percentile([v for v in self.latencies if v == v], 0.50)

    @property
    def p99(self) -> float:
        # A delivery that never came counts as infinitely late: p99 is then honest about losses.
        value = percentile([v if v == v else NEVER for v in self.latencies], 0.99)
        return float("inf") if value >= NEVER else value

    def summary(self) -> dict[str, Any]:
        got = [v for v in self.latencies if v == v]
        acks = self.phase["ack_latencies"]
        return {
            "events": len(self.latencies),
            "delivered": len(got),
            "missing": len(self.latencies) - len(got),
            "p50_ms": round(percentile(got, 0.50), 2),
            "p90_ms": round(percentile(got, 0.90), 2),
            "p99_ms": round(percentile(got, 0.99), 2),
            "max_ms": round(max(got), 2) if got else None,
            "min_ms": round(min(got), 2) if got else None,
            "callback_ack_p50_ms": round(1000 * percentile(acks, 0.50), 2),
            "callback_ack_p99_ms": round(1000 * percentile(acks, 0.99), 2),
            "callback_errors": self.phase["error_count"],
            "send_seconds": round(self.phase["send_elapsed"], 2),
            "cpu_ms_per_event": round(self.cpu_ms, 2),
        }


@dataclass
class Measured:
    rounds: dict[str, list[Round]]  # "sse" / "sio"
    opened: dict[str, dict[str, Any]]  # per group: wanted, ready, skipped, seconds, errors
    memory: dict[str, int]  # RSS (bytes) at each step
    open_cpu: dict[str, float]  # server CPU (s) spent opening each group
    idle_streams: int  # SSE streams open while idle CPU was read
    idle_cpu_per_s: float
    quiet_cpu_per_s: float  # with the delivery's subscribers open, before any callback
    errors: list[str]

    def kb_per(self, before: str, after: str, count: int) -> float:
        return (self.memory[after] - self.memory[before]) / 1024 / count if count else float("nan")

    @property
    def sse_streams(self) -> int:
        return self.opened["sse"]["ready"] + self.opened["idle"]["ready"]


def put_through(server: Server, who: Listeners, plan: Plan, reps: int) -> Measured:
    """On one server, in one client process: a warm-up; the delivery's SSE subscribers, then idle
    SSE streams up to `plan.idle` (memory and idle CPU read with all of them open); the idle ones
    closed; the Socket.IO subscribers; then the callbacks, `reps` rounds of `plan.sample` per kind."""
    warm_streams = who.idle[-min(100, len(who.idle) // 5 or 1) :]
    idle = who.idle[: max(0, plan.idle - len(who.sse))]
    groups = [
        {"name": "warm", "concurrency": 50, "subscribers": warm_streams},
        {"name": "sse", "concurrency": 50, "subscribers": who.sse},
        {"name": "idle", "concurrency": 50, "deadline": plan.idle_deadline, "subscribers": idle},
        {"name": "sio", "concurrency": 50, "subscribers": who.sio},
    ]
    offset = {"sse": len(warm_streams), "sio": len(warm_streams) + len(who.sse) + len(idle)}

    def callbacks(kind: str, start: int, count: int) -> list[list[Any]]:
        base = 0 if kind == "sse" else plan.per_kind
        chosen = who.callbacks[base + start : base + start + count]
        return [[offset[kind] + number - base, path, body] for number, path, body in chosen]

    def phase(chosen: list[list[Any]]) -> dict[str, Any]:
        return {"rate": plan.rate, "timeout": plan.timeout, "callbacks": chosen}

    warm_up = [
        c for pair in zip(callbacks("sse", 0, plan.warm), callbacks("sio", 0, plan.warm), strict=True) for c in pair
    ]
    phases = {"warm": phase(warm_up)}
    for rep in range(reps):
        for kind in ("sse", "sio"):
            phases[f"{kind}-{rep}"] = phase(callbacks(kind, plan.warm + rep * plan.sample, plan.sample))
    spec = {"host": "127.0.0.1", "port": server.port, "senders": 16, "groups": groups, "phases": phases}
    memory: dict[str, int] = {}
    open_cpu: dict[str, float] = {}
    cpu: dict[str, float] = {}
    with Clients(spec) as clients:
        clients.open("warm")
        clients.drop("warm")
        time.sleep(plan.settle)
        memory["start"] = server.rss()
        for group in ("sse", "idle"):
            before = server.cpu()
            clients.open(group)
            open_cpu[group] = server.cpu() - before
            time.sleep(plan.settle)
            memory[group] = server.rss()
        idle_streams = clients.count()
        before, t0 = server.cpu(), time.monotonic()
        time.sleep(max(2.0, 2 * plan.settle))
        idle_cpu = (server.cpu() - before) / (time.monotonic() - t0)
        clients.drop("idle")
        time.sleep(plan.settle)
        memory["idle dropped"] = server.rss()
        before = server.cpu()
        clients.open("sio")
        open_cpu["sio"] = server.cpu() - before
        time.sleep(plan.settle)
        memory["sio"] = server.rss()
        before, t0 = server.cpu(), time.monotonic()
        time.sleep(max(2.0, 2 * plan.settle))
        quiet_cpu = (server.cpu() - before) / (time.monotonic() - t0)
        for name in phases:
            before = server.cpu()
            clients.phase(name)
            cpu[name] = server.cpu() - before
        result = clients.exit()
    rounds: dict[str, list[Round]] = {"sse": [], "sio": []}
    errors: list[str] = []
    for name, record in result["phases"].items():
        errors += record["errors"]
        if name != "warm":
            latencies = [1000 * v for v in record["latencies"]]
            rounds[name.split("-")[0]].append(Round(latencies, 1000 * cpu[name] / max(1, record["delivered"]), record))
    return Measured(rounds, result["groups"], memory, open_cpu, idle_streams, idle_cpu, quiet_cpu, errors)


# --- the case ------------------------------------------------------------------------------------


def run(ctx: Context) -> None:
    started = time.monotonic()

    def step(what: str) -> None:
        print(f"  B3 {time.monotonic() - started:5.1f} s  {what}", flush=True)

    per_kind, warm = ctx.scale(1000, 20), ctx.scale(10, 2)
    plan = Plan(
        per_kind=per_kind,
        idle=ctx.scale(10_000, 50),
        idle_deadline=float(ctx.scale(IDLE_DEADLINE, 20)),
        warm=warm,
        sample=min(ctx.scale(SAMPLE, 10), (per_kind - warm) // ctx.reps),
        reps=ctx.reps,
        rate=float(RATE),
        timeout=float(ctx.scale(10, 5)),
        settle=0.3 if ctx.smoke else 1.0,
    )
    load = os.getloadavg()
    url = ctx.fresh_database("sqlite", "b3")
    bridge = bridge_server(ctx.log_dir, ctx.work / "b3-data", url, name="b3")
    bare = bare_realtime_server(ctx.log_dir)
    try:
        for server in (bridge, bare):  # side by side: a bridge takes seconds to start on a busy machine
            server.start(wait=False)
        for server in (bridge, bare):
            wait_healthy(server)
        live_project = admin_create_project(bridge, "b3-live")
        idle_project = admin_create_project(bridge, "b3-idle")
        live = seed(url, live_project["id"], 2 * per_kind)
        idle = seed(url, idle_project["id"], max(0, plan.idle - per_kind) + min(100, plan.idle // 5))
        step(f"servers up, {len(live) + len(idle):,} payments seeded")
        measured = put_through(bridge, Listeners.bridge(live, idle, per_kind), plan, ctx.reps)
        bridge.stop()
        step(
            f"bridge: {measured.sse_streams:,} SSE streams held, {ctx.reps} rounds of {plan.sample} callbacks per kind"
        )
        # The bare app holds as many idle streams as the bridge did (it opens them far faster).
        bare_plan = Plan(
            **{**plan.__dict__, "idle": measured.sse_streams, "idle_deadline": 60.0, "sample": min(30, plan.sample)}
        )
        baseline = put_through(bare, Listeners.bare(live, per_kind, measured.sse_streams + 100), bare_plan, 1)
        step("bare app: the same, one round")
    finally:
        for server in (bridge, bare):
            server.stop()
    context = {"load_average_at_start": [round(v, 2) for v in load], "cores": os.cpu_count()}
    add_delivery_figures(ctx, measured, baseline, plan, context)
    add_idle_figures(ctx, measured, baseline, plan, context)


def add_delivery_figures(ctx: Context, live: Measured, bare: Measured, plan: Plan, context: dict[str, Any]) -> None:
    label = {"sse": "SSE", "sio": "Socket.IO"}
    for kind in ("sse", "sio"):
        rounds, bare_rounds = live.rounds[kind], bare.rounds[kind]
        cpu = median([r.cpu_ms for r in rounds])
        detail = {
            "measured": "callback's 200 read by the sender → payment.succeeded read by the subscriber (same process)",
            "subscribers_open": {"sse": live.opened["sse"]["ready"], "socket.io": live.opened["sio"]["ready"]},
            "callback_rate_per_s": plan.rate,
            "events_per_round": plan.sample,
            "bridge_cpu_share_of_one_core": round(cpu * plan.rate / 1000, 2),
            "bridge_cpu_ms_per_s_before_callbacks": round(1000 * live.quiet_cpu_per_s, 1),
            "of_which_background_ms_per_event": round(1000 * live.quiet_cpu_per_s / plan.rate, 1),
            "rounds": [r.summary() for r in rounds],
            "bare_rounds": [r.summary() for r in bare_rounds],
            "open_seconds": {g: round(v["seconds"], 1) for g, v in live.opened.items()},
            "open_errors": [e for v in live.opened.values() for e in v["errors"]][:5],
            "callback_errors": live.errors[:5],
            **context,
        }
        p50, p99 = median([r.p50 for r in rounds]), median([r.p99 for r in rounds])
        name = f"{label[kind]}: callback → subscriber, {plan.per_kind:,}+{plan.per_kind:,} open, {plan.rate:.0f}/s"
        common = {
            "engine": "sqlite",
            "cpu_ms": cpu,
            "bare_cpu_ms": median([r.cpu_ms for r in bare_rounds]),
            "detail": detail,
        }
        ctx.add(Figure(CASE, f"{name}, p50", p50, "ms", bare=median([r.p50 for r in bare_rounds]), **common))
        ctx.add(
            Figure(
                CASE,
                f"{name}, p99",
                p99,
                "ms",
                target=f"≤ {TARGET_MS:.0f} ms",
                met=p99 <= TARGET_MS,
                bare=median([r.p99 for r in bare_rounds]),
                **common,
            )
        )


def add_idle_figures(ctx: Context, live: Measured, bare: Measured, plan: Plan, context: dict[str, Any]) -> None:
    held, bare_held = live.sse_streams, bare.sse_streams
    value = live.kb_per("start", "idle", held)
    open_ms = 1000 * (live.open_cpu["sse"] + live.open_cpu["idle"]) / held if held else float("nan")
    bare_open_ms = 1000 * (bare.open_cpu["sse"] + bare.open_cpu["idle"]) / bare_held if bare_held else float("nan")
    detail = {
        "wanted": plan.idle,
        "held": held,
        "not_tried_before_deadline": live.opened["idle"]["skipped"],
        "open_deadline_s": plan.idle_deadline,
        "open_seconds": round(live.opened["sse"]["seconds"] + live.opened["idle"]["seconds"], 1),
        "open_errors": (live.opened["sse"]["errors"] + live.opened["idle"]["errors"])[:5],
        "rss_mb": {k: round(v / 2**20, 1) for k, v in live.memory.items()},
        "kb_per_stream_first_group": round(live.kb_per("start", "sse", live.opened["sse"]["ready"]), 1),
        "bare_held": bare_held,
        "bare_rss_mb": {k: round(v / 2**20, 1) for k, v in bare.memory.items()},
        "cpu_ms_is": "server CPU per stream opened (three database reads each on the bridge)",
        **context,
    }
    ctx.add(
        Figure(
            CASE,
            f"idle SSE streams ({plan.idle:,} wanted open): memory per connection",
            value,
            "KB",
            engine="sqlite",
            target=f"{plan.idle:,} open, ≤ {TARGET_KB:.0f} KB each",
            met=held >= plan.idle and value <= TARGET_KB,
            bare=bare.kb_per("start", "idle", bare_held),
            cpu_ms=open_ms,
            bare_cpu_ms=bare_open_ms,
            detail=detail,
        )
    )
    per_1000 = 1e6 * live.idle_cpu_per_s / live.idle_streams if live.idle_streams else float("nan")
    bare_per_1000 = 1e6 * bare.idle_cpu_per_s / bare.idle_streams if bare.idle_streams else float("nan")
    ctx.add(
        Figure(
            CASE,
            "idle SSE streams: server CPU per second, per 1,000 streams",
            per_1000,
            "ms CPU",
            engine="sqlite",
            bare=bare_per_1000,
            detail={
                "streams": live.idle_streams,
                "bare_streams": bare.idle_streams,
                "cores_needed_for_wanted": round(per_1000 * plan.idle / 1e6, 2),
                **context,
            },
        )
    )
