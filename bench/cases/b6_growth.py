"""B6 — growth: the payments list and the daily totals as one database grows 10⁴ → 10⁵ → 10⁶ payments.

One database per engine, grown in place: bench/seed.py writes 90 days of settled payments shared by
five tenants (the measured project's test mode 40 %, its live mode, three other projects). One bridge
serves it throughout and stays up while a batch is seeded. At each size a separate process loads it,
CONNECTIONS requests at a time:

- first page: GET /v1/payments?status=succeeded&created_gte=<30 days ago>&limit=20
- deep page: the same with starting_after = a real id 10 rows from the end of that result set, so
  the page is the window's last one and the database has to find where the window stops;
- at the largest size, GET /v1/payments/totals (30 Nairobi days), a few requests one after another.

Each figure keeps in its detail the plans the engine picks for these queries (EXPLAIN). "Bare app"
is the bare ASGI app under the same load shape. Server CPU is the bridge process's: on PostgreSQL the
database's own work happens in its backends, outside that figure.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from bench import cross_check
from bench.context import Context, Figure
from bench.harness import Load, Server, admin_create_project, bare_server, bridge_server, median, run_load
from bench.seed import Share, explain, query, seed_history
from mpesa_bridge.core.ids import id_floor

CASE = "B6"
# A handful of clients paging at once: the latency a caller sees. (At the harness's 64 connections
# the p99 is the queue in front of one server process, 64 times the CPU of a request, for the bare
# app as for the bridge, and says nothing about the database.)
CONNECTIONS = 4
LIST_TARGET_MS = 50.0
TOTALS_TARGET_MS = 1000.0
WINDOW = timedelta(days=30)
SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _size(count: int) -> str:
    exponent = len(str(count)) - 1
    return f"10{str(exponent).translate(SUPERSCRIPTS)}" if count == 10**exponent else f"{count:,}"


def run(ctx: Context) -> None:
    bare = _bare_load(ctx)
    for engine in ctx.engines():
        _grow(ctx, engine, bare)


def _grow(ctx: Context, engine: str, bare: Load) -> None:
    sizes = [100, 1_000] if ctx.smoke else [10_000, 100_000, 1_000_000]
    requests = ctx.scale(250, 40)
    url = ctx.fresh_database(engine, "b6")
    now = datetime.now(UTC)
    since = now - WINDOW
    first_path = "/v1/payments?" + urlencode({"status": "succeeded", "created_gte": _iso(since), "limit": 20})
    # One bridge for the whole growth (a start costs seconds of CPU): it stays up while batches are seeded.
    with bridge_server(ctx.log_dir, ctx.work / f"b6-{engine}", url, name=f"b6-{engine}").start() as bridge:
        projects = [admin_create_project(bridge, name=f"b6-{i}") for i in range(4)]
        main = projects[0]
        shares = [Share(main["id"], "test", 0.40), Share(main["id"], "live", 0.10)]
        shares += [Share(p["id"], "test", 0.50 / 3) for p in projects[1:]]
        headers = {"Authorization": f"Bearer {main['secret_keys']['test']}"}
        seeded = 0
        for size in sizes:
            started = time.monotonic()
            seed_history(url, shares, size - seeded, now=now, serial=seeded)
            seed_seconds, seeded = time.monotonic() - started, size
            cursor, matching = _deep_cursor(url, main["id"], since)
            deep_path = first_path + "&" + urlencode({"starting_after": cursor})
            plans = _plans(url, main["id"], since, cursor)
            # Warm-up: both query shapes once compiled and cached, the pages read, the connections open.
            run_load(bridge.port, [["GET", first_path, headers, ""], ["GET", deep_path, headers, ""]] * 15)
            first = run_load(bridge.port, [["GET", first_path, headers, ""]] * requests, **_load(bridge))
            deep = run_load(bridge.port, [["GET", deep_path, headers, ""]] * requests, **_load(bridge))
            totals = _totals(bridge, headers, ctx.scale(5, 3)) if size == sizes[-1] else []
            common = {"payments": size, "matching_first_page_filter": matching, "seed_s": round(seed_seconds, 1)}
            for label, load, path in (("first page", first, first_path), ("deep cursor page", deep, deep_path)):
                detail = {**common, "path": path, "explain": plans}
                ctx.add(_list_figure(ctx, engine, size, label, load, bare, detail))
            if totals:
                ctx.add(_totals_figure(engine, size, totals, {**common, "explain": plans}))
            if size == sizes[-1]:  # the second witness, on the same bridge (bench/cross_check.py)
                name = _list_name("first page", size)
                for figure in cross_check.b6(ctx, bridge, engine, name, first_path, headers, CONNECTIONS, first):
                    ctx.add(figure)


def _load(bridge: Server) -> dict[str, Any]:
    return {"connections": CONNECTIONS, "measured": [bridge]}


def _bare_load(ctx: Context) -> Load:
    """The bare app under the same load shape as the list (CONNECTIONS connections)."""
    with bare_server(ctx.log_dir).start() as bare:
        run_load(bare.port, request=("GET", "/", {}, ""), count=200, connections=CONNECTIONS)
        return run_load(
            bare.port,
            request=("GET", "/", {}, ""),
            count=ctx.scale(2000, 200),
            connections=CONNECTIONS,
            measured=[bare],
        )


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _deep_cursor(url: str, project_id: str, since: datetime) -> tuple[str, int]:
    """A real payment id 10 rows before the end of the first-page filter's result set, and its size."""
    sqlite = url.startswith("sqlite")
    bound: Any = since.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else since
    p = ("?", "?", "?") if sqlite else ("$1", "$2", "$3")
    where = f"project_id = {p[0]} AND mode = 'test' AND status = 'succeeded' AND created_at >= {p[1]}"
    count = int(query(url, f"SELECT count(*) FROM payments WHERE {where}", project_id, bound)[0][0])
    if count == 0:  # nothing in the window (a tiny smoke size): then the deep page is the first
        return "pay_zzzzzzzzzz", 0
    offset = min(10, count - 1)
    rows = query(
        url, f"SELECT id FROM payments WHERE {where} ORDER BY id LIMIT 1 OFFSET {p[2]}", project_id, bound, offset
    )
    return str(rows[0][0]), count


def _plans(url: str, project_id: str, since: datetime, cursor: str) -> dict[str, list[str]]:
    """The plans for the bridge's queries (SqlPaymentRepository.list and .day_totals), written out in SQL."""
    sqlite = url.startswith("sqlite")
    bound: Any = since.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else since
    p = ["?"] * 4 if sqlite else ["$1", "$2", "$3", "$4"]
    tenant = f"project_id = {p[0]} AND mode = 'test'"
    page = f"SELECT * FROM payments WHERE {tenant} AND status = 'succeeded' AND created_at >= {p[1]} AND id >= {p[2]}"
    day = "date(created_at, '+3 hours')" if sqlite else "CAST((created_at AT TIME ZONE 'Africa/Nairobi') AS DATE)"
    totals = (
        f"SELECT {day}, status, count(*), coalesce(sum(amount), 0) FROM payments "
        f"WHERE {tenant} AND created_at >= {p[1]} AND created_at < {p[2]} GROUP BY {day}, status"
    )
    floor = id_floor("pay", since)
    later = since + WINDOW + timedelta(days=1)
    later_bound: Any = later.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else later
    return {
        "first page": explain(url, f"{page} ORDER BY id DESC LIMIT 21", project_id, bound, floor),
        "deep page": explain(
            url, f"{page} AND id < {p[3]} ORDER BY id DESC LIMIT 21", project_id, bound, floor, cursor
        ),
        "totals": explain(url, totals, project_id, bound, later_bound),
    }


def _totals(bridge: Server, headers: dict[str, str], count: int) -> list[float]:
    """Seconds per GET /v1/payments/totals (30 days), one request after another."""
    seconds = []
    with httpx.Client(base_url=bridge.url, headers=headers, timeout=60) as client:
        for _ in range(count + 1):
            started = time.perf_counter()
            response = client.get("/v1/payments/totals", params={"days": 30})
            seconds.append(time.perf_counter() - started)
            response.raise_for_status()
            assert len(response.json()["data"]) == 30
    return seconds[1:]  # the first one warms the connection and the pages


def _list_figure(
    ctx: Context, engine: str, size: int, label: str, load: Load, bare: Load, detail: dict[str, Any]
) -> Figure:
    p99 = 1000 * load.p(0.99)
    baseline = ctx.baseline.get if ctx.baseline else None
    return Figure(
        CASE,
        _list_name(label, size),
        p99,
        "ms",
        engine=engine,
        target=f"≤ {LIST_TARGET_MS:.0f} ms",
        met=p99 <= LIST_TARGET_MS and load.ok() == load.count,
        bare=1000 * bare.p(0.99),
        cpu_ms=load.cpu_per_op_ms,
        bare_cpu_ms=bare.cpu_per_op_ms,
        detail={
            **detail,
            "connections": CONNECTIONS,
            "requests": load.count,
            "p50_ms": round(1000 * load.p(0.5), 2),
            "p90_ms": round(1000 * load.p(0.9), 2),
            "rate_per_s": round(load.rate, 1),
            "statuses": load.statuses,
            "connection_errors": load.error_count,
            "bare_p50_ms": round(1000 * bare.p(0.5), 3),
            "bare_64_connections_p99_ms": round(1000 * baseline.p(0.99), 2) if baseline else None,
        },
    )


def _list_name(label: str, size: int) -> str:
    return f"GET /v1/payments {label} (succeeded, last 30 days), {_size(size)} payments: p99"


def _totals_figure(engine: str, size: int, seconds: list[float], detail: dict[str, Any]) -> Figure:
    value = 1000 * median(seconds)
    return Figure(
        CASE,
        f"GET /v1/payments/totals (30 Nairobi days), {_size(size)} payments: median of {len(seconds)}",
        value,
        "ms",
        engine=engine,
        target=f"≤ {TOTALS_TARGET_MS / 1000:.0f} s",
        met=value <= TOTALS_TARGET_MS,
        detail={**detail, "samples_ms": [round(1000 * s, 1) for s in seconds]},
    )
