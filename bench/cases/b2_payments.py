"""B2 — `POST /v1/payments` against the Daraja simulator running as its own process.

The bridge validates, guards (duplicate, phone busy), stores the payment and its event, asks the
simulator for an OAuth token (once: it is cached) and pushes, then stores Daraja's answer. The
simulator's customer answers after a long delay, so no callback lands while we measure: this is
the cost of starting a payment. Each payment has its own phone. Measured: payments/s, latency,
the bridge's CPU per payment (the simulator's excluded), and OAuth calls seen by the simulator.
"""

from __future__ import annotations

import json

import httpx

from bench.context import Context, Figure
from bench.harness import Load, Server, admin_create_project, bridge_server, free_port, median, python, run_load

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
    assert ctx.baseline is not None
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
    url = ctx.fresh_database("sqlite", "b2")
    env = {
        "MPESA_BRIDGE_SIMULATOR_ENABLED": "false",
        "MPESA_BRIDGE_SIMULATOR_URL": simulator.url,
        "MPESA_BRIDGE_RECONCILE_QUERY_DELAY": "3600",
        "MPESA_BRIDGE_RECONCILE_PUSH_GRACE": "3600",
    }
    loads: list[Load] = []
    with simulator.start(), bridge_server(ctx.log_dir, ctx.work / "data", url, name="b2", **env).start() as bridge:
        key = admin_create_project(bridge)["secret_keys"]["test"]
        warm_load = run_load(bridge.port, _requests(key, 0, warm))
        if warm_load.ok(201) != warm:
            raise AssertionError(f"B2 warm-up: {warm_load.statuses} {bridge.tail()}")
        for rep in range(ctx.reps):
            load = run_load(bridge.port, _requests(key, warm + rep * n, n), measured=[bridge])
            if load.ok(201) != n:
                raise AssertionError(f"B2: expected {n} responses 201, got {load.statuses}")
            loads.append(load)
        oauth = _oauth_calls(simulator)
    bare = ctx.baseline.post
    rate = median([load.rate for load in loads])
    cpu = median([load.cpu_per_op_ms for load in loads])
    detail = {
        "payments_per_rep": n,
        "rates": [round(load.rate) for load in loads],
        "p50_ms": [round(load.p(0.5) * 1000, 2) for load in loads],
        "p99_ms": [round(load.p(0.99) * 1000, 2) for load in loads],
        "cpu_ms": [round(load.cpu_per_op_ms, 4) for load in loads],
        "oauth_calls": oauth,
        "payments_total": warm + n * ctx.reps,
    }
    ctx.add(
        Figure(
            "B2",
            "payments created (STK Push accepted)",
            rate,
            "/s",
            "sqlite",
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
            "bridge CPU per payment",
            cpu,
            "ms CPU",
            "sqlite",
            f"≤ {CPU_TARGET_MS} ms",
            cpu <= CPU_TARGET_MS,
            bare=bare.cpu_per_op_ms,
        )
    )
    ctx.add(
        Figure(
            "B2",
            "latency p99",
            median([load.p(0.99) * 1000 for load in loads]),
            "ms",
            "sqlite",
            bare=bare.p(0.99) * 1000,
        )
    )
    ctx.add(
        Figure(
            "B2",
            "OAuth calls for the whole run (one credential set)",
            oauth,
            "calls",
            "sqlite",
            "= 1 per token lifetime",
            oauth == 1,
        )
    )
