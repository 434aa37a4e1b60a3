"""The dashboard's analytics at 10⁶ payments in one project, on SQLite and PostgreSQL.

    .venv/bin/python -m bench.analytics_scale [--count 1000000] [--engines sqlite,postgres] [--repeat 5]

Not part of `make bench`. For each engine: a new database, migrated; `count` settled payments over
the last 90 days in one project (80 % test mode, 20 % live), written by bench/seed.py's
`seed_history` (as case B6 seeds its history, every row checked against the table like
`harness.seed_rows` does); then, through `AnalyticsService` over `storage.analytics`, timed
`repeat` times after one warm-up:

- the overview (today, 7 and 30 Nairobi days: one slot query over 30 days);
- a 30-day daily analytics query (slots, failure reasons, top payers, settle times), and each of
  its four reads on its own.

It prints the median and the fastest of each, and the plans the engines pick (EXPLAIN).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.context import POSTGRES_URL, _pg_admin
from bench.harness import seed_rows
from bench.seed import Share, seed_history
from mpesa_bridge.core.analytics import (
    DEFAULT_TIME_ZONE,
    HOUR,
    TOP,
    AnalyticsQuery,
    AnalyticsService,
    Scope,
    zone,
)
from mpesa_bridge.core.clock import SystemClock
from mpesa_bridge.core.projects import Mode
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.analytics import analytics_reader
from mpesa_bridge.storage.db import Database
from mpesa_bridge.storage.migrate import upgrade

PROJECT, OTHER = "proj_analytics_bench", "proj_analytics_other"


def _database(engine: str, folder: Path) -> str:
    if engine == "sqlite":
        return f"sqlite+aiosqlite:///{folder / 'analytics.db'}"
    name = f"mb_bench_analytics_{secrets.token_hex(3)}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"


async def _add_projects(url: str) -> None:
    db = Database(url)
    try:
        async with db.write_engine.begin() as conn:
            rows = [{"id": p, "name": p, "created_at": datetime.now(UTC)} for p in (PROJECT, OTHER)]
            await conn.execute(sa.insert(tables.projects), seed_rows(tables.projects, rows))
    finally:
        await db.dispose()


async def _timed(call: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, float]:
    await call()  # warm-up: statements compiled, pages read, connections open
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) * 1000, min(seconds) * 1000


async def _plans(db: Database, reads: dict[str, Callable[[], Awaitable[Any]]]) -> dict[str, list[str]]:
    """The plan the engine picks for each read's statement, exactly as the read sends it."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: object, _cursor: object, statement: str, params: Any, _ctx: object, _many: bool) -> None:
        sent.append((statement, params))

    plans: dict[str, list[str]] = {}
    prefix = "EXPLAIN QUERY PLAN " if db.sqlite else "EXPLAIN "
    for name, read in reads.items():
        sent.clear()
        sa.event.listen(db.read_engine.sync_engine, "before_cursor_execute", record)
        try:
            await read()
        finally:
            sa.event.remove(db.read_engine.sync_engine, "before_cursor_execute", record)
        statement, params = next((s, p) for s, p in sent if s.lstrip().upper().startswith("SELECT"))
        async with db.read() as uow:
            rows = (await uow.connection.exec_driver_sql(prefix + statement, params)).all()
        plans[name] = [str(row[-1]) for row in rows]
    return plans


def _reads(db: Database, scope: Scope) -> dict[str, Callable[[], Awaitable[Any]]]:
    """Each of the analytics query's four reads, in a read transaction of its own."""

    def one(name: str) -> Callable[[], Awaitable[Any]]:
        async def read() -> Any:
            async with analytics_reader(db) as reader:
                if name == "slot_totals":
                    return await reader.slot_totals(scope, HOUR)
                if name == "failure_reasons":
                    return await reader.failure_reasons(scope, TOP)
                if name == "top_payers":
                    return await reader.top_payers(scope, TOP)
                return await reader.settle_durations(scope)

        return read

    return {name: one(name) for name in ("slot_totals", "failure_reasons", "top_payers", "settle_durations")}


async def _measure(url: str, repeat: int) -> dict[str, Any]:
    db = Database(url)
    try:
        service = AnalyticsService(lambda: analytics_reader(db), SystemClock())
        now = datetime.now(UTC)
        today = now.astimezone(zone(DEFAULT_TIME_ZONE)).date()
        query = AnalyticsQuery.local_days(PROJECT, Mode.TEST, today - timedelta(days=29), today)
        scope = Scope(PROJECT, Mode.TEST.value, query.start, query.end)
        result = await service.analytics(query)
        figures: dict[str, Any] = {
            "payments in the 30 days": result.total.count,
            "overview": await _timed(lambda: service.overview(PROJECT, Mode.TEST), repeat),
            "analytics, 30 days by day": await _timed(lambda: service.analytics(query), repeat),
        }

        reads = _reads(db, scope)
        for name, read in reads.items():
            figures[f"  {name}"] = await _timed(read, repeat)
        figures["plans"] = await _plans(db, reads)
        return figures
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mb-analytics-") as folder:
        for engine in args.engines.split(","):
            url = _database(engine, Path(folder))
            try:
                upgrade(url)
                asyncio.run(_add_projects(url))
                started = time.monotonic()
                shares = [Share(PROJECT, "test", 0.8), Share(PROJECT, "live", 0.2)]
                seed_history(url, shares, args.count, now=datetime.now(UTC))
                print(f"\n== {engine}: {args.count:,} payments seeded in {time.monotonic() - started:.0f} s")
                figures = asyncio.run(_measure(url, args.repeat))
                plans = figures.pop("plans")
                for name, value in figures.items():
                    shown = (
                        f"median {value[0]:8.1f} ms   fastest {value[1]:8.1f} ms" if isinstance(value, tuple) else value
                    )
                    print(f"{name:28} {shown}")
                for name, plan in plans.items():
                    print(f"-- plan of {name}:")
                    for line in plan:
                        print(f"   {line}")
            finally:
                if engine == "postgres":
                    name = url.rsplit("/", 1)[1]
                    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
