"""The wrk cross-check of one B1 and one B6 figure (`bench/wrk.py` runs wrk; this decides what it sends).

- B1, per engine with one bridge process: after the load generator's repetitions, fresh pending
  payments are seeded (more than wrk can send in its window at three times the load generator's
  best rate, so none is sent twice) and wrk POSTs their success callbacks, one distinct body and token
  each, over the same 64 connections. The bridge's CPU is read from wrk's start until every stored
  callback is applied, as B1 does for the load generator. wrk stops with up to one request per
  connection in flight, which the bridge still stores after wrk has gone: the settle waits for the
  bridge's own in-progress gauge to reach zero as well as for the inbox to be empty (without the
  gauge, a late one was counted stored but not yet applied: CI, 2026-12-06). Checked: no error status, every callback
  applied, one more succeeded payment and one event for each acknowledged callback.
- B6, per engine at the largest size: wrk GETs the same first page with the same key over the same
  4 connections, right after the load generator did.

Each returns figures named `… (wrk)` whose detail holds wrk's figures and the load generator's side by
side; `bench/report.py` prints them as one table below the main one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench import wrk
from bench.context import Context, Figure
from bench.harness import Load, Server, median, requests_in_progress, wait_until
from bench.stk_seed import seed_pending

B1_CONNECTIONS = 64
# Phones and CheckoutRequestIDs of the cross-check's payments start here, far from B1's own.
B1_OFFSET = 5_000_000


def available(ctx: Context) -> bool:
    """True when wrk is on the PATH; otherwise says so loudly, once per run, and records it."""
    if wrk.executable() is not None:
        return True
    if wrk.NOT_INSTALLED not in " ".join(ctx.notes):
        wrk.say_not_installed()
        ctx.note_once(f"{wrk.NOT_INSTALLED}: the B1 and B6 figures have one witness only, bench/loadgen.py.")
    return False


def seconds(ctx: Context) -> float:
    return float(ctx.scale(5, 1))


def _loadgen(loads: list[Load]) -> dict[str, Any]:
    return {
        "tool": "bench/loadgen.py",
        "repetitions": len(loads),
        "requests_per_rep": loads[0].count if loads else 0,
        "rate_per_s": round(median([load.rate for load in loads]), 1),
        "latency_ms": {
            "p50": round(median([1000 * load.p(0.5) for load in loads]), 3),
            "p90": round(median([1000 * load.p(0.9) for load in loads]), 3),
            "p99": round(median([1000 * load.p(0.99) for load in loads]), 3),
        },
        "cpu_ms_per_request": round(median([load.cpu_per_op_ms for load in loads]), 4),
    }


def b1(
    ctx: Context,
    bridge: Server,
    url: str,
    project_id: str,
    engine: str,
    loads: list[Load],
    unprocessed: Callable[[], int],
    counts: Callable[[], dict[str, int]],
) -> list[Figure]:
    """wrk POSTs fresh success callbacks to the bridge B1 just measured; its `… (wrk)` figures."""
    if not available(ctx):
        return []
    window = seconds(ctx)
    best = max(load.rate for load in loads)
    # wrk is a lighter client than bench/loadgen.py and a short load generator run reads low: room
    # for three times the best rate over the window and its last second, and a floor.
    count = int(best * (window + 1) * 3) + ctx.scale(5_000, 4_000)
    payments = seed_pending(url, project_id, count, offset=B1_OFFSET)
    now = datetime.now(UTC)
    requests = [("POST", p.callback_path, p.success_body(now)) for p in payments]
    before = counts()

    def settle() -> None:
        # In this order: once nothing is in progress no callback can be stored, so an empty inbox stays so.
        done = lambda: requests_in_progress(bridge) == 0 and unprocessed() == 0  # noqa: E731
        if not wait_until(done, 120, interval=0.02):
            raise AssertionError("B1 (wrk): callbacks were not applied within 120 s")

    run = wrk.run(
        bridge,
        requests,
        headers={"Content-Type": "application/json"},
        seconds=window,
        connections=B1_CONNECTIONS,
        measured=[bridge],
        settle=settle,
    )
    after = counts()
    _check_b1(run, before, after)
    loadgen = _loadgen(loads)
    detail = {"cross_check": True, "wrk": run.detail(), "loadgen": loadgen, "checked": after}
    return [
        Figure("B1", "callbacks ingested (wrk)", run.rate, "/s", engine, cpu_ms=run.cpu_per_op_ms, detail=detail),
        Figure("B1", "acknowledgement p99 (wrk)", run.latency_ms["p99"], "ms", engine),
    ]


def _check_b1(run: wrk.WrkRun, before: dict[str, int], after: dict[str, int]) -> None:
    if run.errors["status"] or run.requests == 0:
        raise AssertionError(f"B1 (wrk): {run.requests} answers, errors {run.errors}")
    if run.wraps:
        raise AssertionError(f"B1 (wrk): {run.requests} sent, more than the {run.unique} distinct callbacks")
    if after["applied"] != after["callbacks"] or after["succeeded"] != after["events"]:
        raise AssertionError(f"B1 (wrk): not every callback applied once: {after}")
    # Callbacks in flight when wrk stopped may have been stored without their answer being counted.
    added = after["succeeded"] - before["succeeded"]
    if not run.requests <= added <= run.requests + run.connections:
        raise AssertionError(f"B1 (wrk): {run.requests} acknowledged, {added} payments succeeded")


def b6(
    ctx: Context,
    bridge: Server,
    engine: str,
    name: str,
    path: str,
    headers: dict[str, str],
    connections: int,
    load: Load,
) -> list[Figure]:
    """wrk GETs the page B6 just measured with the load generator; its `… (wrk)` figure."""
    if not available(ctx):
        return []
    run = wrk.run(
        bridge,
        [("GET", path, "")],
        headers=headers,
        seconds=seconds(ctx),
        connections=connections,
        measured=[bridge],
    )
    if run.errors["status"] or run.requests == 0:
        raise AssertionError(f"B6 (wrk): {run.requests} answers, errors {run.errors}")
    detail = {"cross_check": True, "wrk": run.detail(), "loadgen": _loadgen([load]), "path": path}
    return [Figure("B6", f"{name} (wrk)", run.latency_ms["p99"], "ms", engine, cpu_ms=run.cpu_per_op_ms, detail=detail)]
