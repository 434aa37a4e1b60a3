"""B1 — STK callbacks ingested durably: raw body stored, payment updated, outbox event written.

Per engine, one bridge process with its in-process inbox worker, N pending payments seeded, and
N success callbacks POSTed by the load generator over 64 connections. Measured: acknowledged
callbacks per second, acknowledgement latency (load generator), callback-to-applied lag
(`processed_at - received_at`, from the database), and the bridge's CPU from the first callback
until the last one is applied, per callback. Checked: every payment succeeded once, one
`payment.succeeded` event each, nothing left unprocessed.

On PostgreSQL it runs again with `serve --workers 2`; CPU is then summed over the supervisor and its
processes, and the scaling (2 processes ÷ 1) is reported beside the figures.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from bench import cross_check
from bench.context import Context, Figure, add_scaling, processes_suffix
from bench.harness import Load, Server, bridge_server, median, percentile, processes_env, run_load, wait_until
from bench.stk_seed import Pending, rows, scalar, seed_pending
from mpesa_bridge.storage import tables

RATE_TARGET = 4000
CPU_TARGET_MS = 0.25
ACK_P99_TARGET_MS = 50
LAG_P99_TARGET_MS = 200


def _callbacks(batch: list[Pending]) -> list[list[object]]:
    now = datetime.now(UTC)
    return [p.callback_request(now) for p in batch]


def _unprocessed(url: str) -> int:
    return int(scalar(url, "SELECT count(*) FROM inbound_callbacks WHERE state = 'received'"))


def _lags_ms(url: str, ids: list[str]) -> list[float]:
    c = tables.inbound_callbacks.c
    found = rows(url, sa.select(c.received_at, c.processed_at).where(c.payment_id.in_(ids)))
    return [(processed - received).total_seconds() * 1000 for received, processed in found if processed]


def _counts(url: str) -> dict[str, int]:
    return {
        "succeeded": int(scalar(url, "SELECT count(*) FROM payments WHERE status = 'succeeded'")),
        "events": int(scalar(url, "SELECT count(*) FROM outbox_events WHERE type = 'payment.succeeded'")),
        "callbacks": int(scalar(url, "SELECT count(*) FROM inbound_callbacks")),
        "applied": int(scalar(url, "SELECT count(*) FROM inbound_callbacks WHERE state = 'applied'")),
    }


def _check(url: str, expected: int) -> dict[str, int]:
    counts = _counts(url)
    if any(value != expected for value in counts.values()):
        raise AssertionError(f"B1 expected {expected} of each, found {counts}")
    return counts


def _one_engine(ctx: Context, engine: str, processes: int = 1) -> list[Load]:
    n = ctx.scale(6_000, 100)
    warm = ctx.scale(1_000, 20)
    url = ctx.fresh_database(engine, f"b1-{engine}-{processes}")
    env = {"MPESA_BRIDGE_RECONCILE_QUERY_DELAY": "3600", "MPESA_BRIDGE_INBOX_POLL_INTERVAL": "1"}
    if engine == "postgres":  # compared with 1 and 2 processes: the same settings for both
        env |= processes_env(processes)
    name = f"b1-{engine}-{processes}"
    with bridge_server(ctx.log_dir, ctx.work / "data", url, name=name, **env).start() as bridge:
        from bench.harness import admin_create_project

        bridge.wait_processes(processes)
        project = admin_create_project(bridge)
        payments = seed_pending(url, project["id"], warm + n * ctx.reps)
        run_load(bridge.port, _callbacks(payments[:warm]))
        if not wait_until(lambda: _unprocessed(url) == 0, 60):
            raise AssertionError("B1 warm-up callbacks were not applied")
        loads: list[Load] = []
        lags: list[list[float]] = []
        for rep in range(ctx.reps):
            batch = payments[warm + rep * n : warm + (rep + 1) * n]
            load = _measure(bridge, url, batch)
            loads.append(load)
            lags.append(_lags_ms(url, [p.id for p in batch]))
        counts = _check(url, warm + n * ctx.reps)
        witness: list[Figure] = []
        if processes == 1:  # the second witness, on the same bridge (bench/cross_check.py)
            pending, counted = (lambda: _unprocessed(url)), (lambda: _counts(url))
            witness = cross_check.b1(ctx, bridge, url, project["id"], engine, loads, pending, counted)
    _figures(ctx, engine, loads, lags, counts, processes)
    for figure in witness:
        ctx.add(figure)
    return loads


def _measure(bridge: Server, url: str, batch: list[Pending]) -> Load:
    requests = _callbacks(batch)
    cpu0 = bridge.cpu()
    load = run_load(bridge.port, requests)
    if not wait_until(lambda: _unprocessed(url) == 0, 120, interval=0.02):
        raise AssertionError("B1 callbacks were not applied within 120 s")
    load.cpu = bridge.cpu() - cpu0
    if load.ok(200) != len(batch):
        raise AssertionError(f"B1 expected {len(batch)} acknowledgements, got {load.statuses}")
    return load


def _figures(
    ctx: Context, engine: str, loads: list[Load], lags: list[list[float]], counts: dict[str, int], processes: int
) -> None:
    assert ctx.baseline is not None
    suffix = processes_suffix(processes)
    bare = ctx.baseline.post
    rate = median([load.rate for load in loads])
    cpu = median([load.cpu_per_op_ms for load in loads])
    ack = median([load.p(0.99) * 1000 for load in loads])
    lag = median([percentile(lag, 0.99) for lag in lags])
    detail = {
        "callbacks_per_rep": loads[0].count,
        "rates": [round(load.rate) for load in loads],
        "ack_p50_ms": [round(load.p(0.5) * 1000, 2) for load in loads],
        "ack_p99_ms": [round(load.p(0.99) * 1000, 2) for load in loads],
        "lag_p50_ms": [round(percentile(lag, 0.5), 2) for lag in lags],
        "lag_p99_ms": [round(percentile(lag, 0.99), 2) for lag in lags],
        "cpu_ms": [round(load.cpu_per_op_ms, 4) for load in loads],
        "checked": counts,
    }
    ctx.add(
        Figure(
            "B1",
            "callbacks ingested" + suffix,
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
            "B1",
            "bridge CPU per callback (stored + applied)" + suffix,
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
            "B1",
            "acknowledgement p99" + suffix,
            ack,
            "ms",
            engine,
            f"≤ {ACK_P99_TARGET_MS} ms",
            ack <= ACK_P99_TARGET_MS,
            bare=bare.p(0.99) * 1000,
        )
    )
    ctx.add(
        Figure(
            "B1",
            "callback-to-applied lag p99" + suffix,
            lag,
            "ms",
            engine,
            f"≤ {LAG_P99_TARGET_MS} ms",
            lag <= LAG_P99_TARGET_MS,
        )
    )


def run(ctx: Context) -> None:
    for engine in ctx.engines():
        one = _one_engine(ctx, engine)
        if engine == "postgres":
            add_scaling(ctx, "B1", engine, "callbacks", one, _one_engine(ctx, engine, processes=2))
