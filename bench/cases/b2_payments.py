"""B2 — `POST /v1/payments` against the Daraja simulator running as its own process.

The bridge validates, guards (duplicate, phone busy), stores the payment and its event, asks the
simulator for an OAuth token (once: it is cached) and pushes, then stores Daraja's answer. The
simulator's customer answers after a long delay, so no callback lands while we measure: this is
the cost of starting a payment. Each payment has its own phone. Measured: payments/s, latency,
the bridge's CPU per payment (the simulator's excluded), and OAuth calls seen by the simulator.
Both engines; on PostgreSQL again with `serve --workers 2` (CPU summed over the supervisor and its
processes), with the scaling (2 processes ÷ 1) beside the figures.
"""

from __future__ import annotations

import json

import httpx

from bench.context import Context, Figure, add_scaling, processes_suffix
from bench.harness import (
    Load,
    Server,
    admin_create_project,
    bridge_server,
    free_port,
    median,
    processes_env,
    python,
    run_load,
)

RATE_TARGET = 1000
CPU_TARGET_MS = 0.5
OAUTH_PATH = "/oauth/v1/generate"


def _requests(key: str, start: int, count: int) -> list[list[object]]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return [
        [
            "POST",
            "/v1/payments",
            headers,
            json.dumps({"phone": f"2547{start + i:08d}", "amount": 10 + i % 90, "account_reference": f"INV{i}"}),
        ]
        for i in range(count)
    ]


def _oauth_calls(simulator: Server) -> int:
    counts = httpx.get(f"{simulator.url}/_bench/counts", timeout=10).json()
    return int(counts.get(OAUTH_PATH, 0))


def run(ctx: Context) -> None:
    for engine in ctx.engines():
        one = _one(ctx, engine)
        if engine == "postgres":
            add_scaling(ctx, "B2", engine, "payments", one, _one(ctx, engine, processes=2))


def _one(ctx: Context, engine: str, processes: int = 1) -> list[Load]:
    n = ctx.scale(1_500, 60)
    warm = ctx.scale(300, 10)
    port = free_port()
    simulator = Server(
        "simulator",
        python("bench.simulator", "--port", str(port), "--callback-delay", "3600"),
        {},
        port,
        ctx.log_dir,
        health="/_bench/counts",
    )
    url = ctx.fresh_database(engine, f"b2-{engine}-{processes}")
    env = {
        "MPESA_BRIDGE_SIMULATOR_ENABLED": "false",
        "MPESA_BRIDGE_SIMULATOR_URL": simulator.url,
        "MPESA_BRIDGE_RECONCILE_QUERY_DELAY": "3600",
        "MPESA_BRIDGE_RECONCILE_PUSH_GRACE": "3600",
        **processes_env(processes),
    }
    loads: list[Load] = []
    name = f"b2-{engine}-{processes}"
    bridge = bridge_server(ctx.log_dir, ctx.work / "data", url, name=name, **env)
    with simulator, bridge:
        for server in (simulator, bridge):  # both start at once: imports take seconds on a busy machine
            server.start(wait=False)
        for server in (simulator, bridge):
            server.wait_ready()
        bridge.wait_processes(processes)
        key = admin_create_project(bridge)["secret_keys"]["test"]
        # Enough to warm every process (connections land on either), each with its OAuth token.
        warm_load = run_load(bridge.port, _requests(key, 0, warm))
        if warm_load.ok(201) != warm:
            raise AssertionError(f"B2 warm-up: {warm_load.statuses} {bridge.tail()}")
        for rep in range(ctx.reps):
            load = run_load(bridge.port, _requests(key, warm + rep * n, n), measured=[bridge])
            if load.ok(201) != n:
                raise AssertionError(f"B2: expected {n} responses 201, got {load.statuses}")
            loads.append(load)
        oauth = _oauth_calls(simulator)
    _figures(ctx, engine, processes, loads, oauth, warm + n * ctx.reps)
    return loads


def _figures(ctx: Context, engine: str, processes: int, loads: list[Load], oauth: int, total: int) -> None:
    assert ctx.baseline is not None
    suffix = processes_suffix(processes)
    bare = ctx.baseline.post
    rate = median([load.rate for load in loads])
    cpu = median([load.cpu_per_op_ms for load in loads])
    detail = {
        "payments_per_rep": loads[0].count,
        "rates": [round(load.rate) for load in loads],
        "p50_ms": [round(load.p(0.5) * 1000, 2) for load in loads],
        "p99_ms": [round(load.p(0.99) * 1000, 2) for load in loads],
        "cpu_ms": [round(load.cpu_per_op_ms, 4) for load in loads],
        "oauth_calls": oauth,
        "payments_total": total,
    }
    ctx.add(
        Figure(
            "B2",
            "payments created (STK Push accepted)" + suffix,
            rate,
            "/s",
            engine,
            f"≥ {RATE_TARGET:,}/s",
            rate >= RATE_TARGET,
            bare=bare.rate,
            cpu_ms=cpu,
            bare_cpu_ms=bare.cpu_per_op_ms,
            detail=detail,
        )
    )
    ctx.add(
        Figure(
            "B2",
            "bridge CPU per payment" + suffix,
            cpu,
            "ms CPU",
            engine,
            f"≤ {CPU_TARGET_MS} ms",
            cpu <= CPU_TARGET_MS,
            bare=bare.cpu_per_op_ms,
        )
    )
    ctx.add(
        Figure(
            "B2",
            "latency p99" + suffix,
            median([load.p(0.99) * 1000 for load in loads]),
            "ms",
            engine,
            bare=bare.p(0.99) * 1000,
        )
    )
    # Each process caches its own token: one fetch per process per token lifetime.
    ctx.add(
        Figure(
            "B2",
            "OAuth calls for the whole run (one credential set)" + suffix,
            oauth,
            "calls",
            engine,
            f"= {processes} per token lifetime",
            oauth == processes,
        )
    )
