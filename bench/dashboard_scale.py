"""The dashboard's payments list and export at 10^6 rows, on SQLite and PostgreSQL (issue 11).

    .venv/bin/python -m bench.dashboard_scale                      # 10^6 rows, both engines
    .venv/bin/python -m bench.dashboard_scale --rows 20000 --engines sqlite   # a quick look

Not part of `make bench`. For each engine it migrates a new database (a SQLite file in a temporary
folder; a PostgreSQL database created and dropped on `MPESA_BRIDGE_BENCH_POSTGRES_URL`'s server),
seeds one project's test mode with `--rows` payments over 180 days (plus 5 % as many in a second
project, so tenant scoping is exercised), runs ANALYZE, then times with `SqlPaymentSearch`:

- the first page (50, newest first), a deep page (a cursor ~90 % of the way down), a filtered search
  (two statuses + an amount range + a 30-day window), a receipt typed into the search box, the first
  and a deep page sorted by amount;
- the same queries with the two indexes of migration 0011 dropped (`--no-compare` skips this), and
  the query plan of each, to justify those indexes;
- a CSV and an XLSX export of every row of the project, each in a separate process that reports its
  peak RSS (VmHWM) once its imports are done and after the export, its wall time and the bytes
  written (to a file in the temporary folder, deleted afterwards).

Each query figure is the median of 5 runs after one warm-up run, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa

from bench.harness import seed_rows
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.search import PaymentSearch, encode_cursor
from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.dashboard.export import csv_chunks, xlsx_chunks
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.db import Database
from mpesa_bridge.storage.migrate import upgrade
from mpesa_bridge.storage.payment_search import SqlPaymentSearch, _statement

SHOP, OTHER = "prj_01benchdash", "prj_01benchother"
END = datetime(2026, 12, 1, tzinfo=UTC)
DAYS = 180
POSTGRES = os.environ.get("MPESA_BRIDGE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
NEW_INDEXES = {
    "ix_payments_tenant_amount_id": ["project_id", "mode", "amount", "id"],
    "ix_payments_mpesa_receipt_number": ["mpesa_receipt_number"],
}
_CHUNK = 10_000
_STATUSES = [
    (PaymentStatus.SUCCEEDED, 70),
    (PaymentStatus.FAILED, 12),
    (PaymentStatus.CANCELLED, 10),
    (PaymentStatus.EXPIRED, 5),
    (PaymentStatus.PENDING, 2),
    (PaymentStatus.UNKNOWN, 1),
]


def _rows(project_id: str, first: int, count: int, total: int, rng: random.Random) -> list[dict[str, Any]]:
    """Rows `first`..`first + count` of `total`, oldest first: row n falls in the n-th slice of the
    180 days, so chunks are seeded in time order, as payments arrive (and memory stays small)."""
    statuses = rng.choices([s for s, _ in _STATUSES], [w for _, w in _STATUSES], k=count)
    slice_ = DAYS * 86400 / total
    start = END - timedelta(days=DAYS)
    times = sorted(start + timedelta(seconds=(first + rng.random() * count) * slice_) for _ in range(count))
    rows = []
    for n, (at, status) in enumerate(zip(times, statuses, strict=True), first):
        token = hashlib.sha256(f"{project_id}:{n}".encode()).hexdigest()
        rows.append(
            {
                "id": new_id("pay", at),
                "project_id": project_id,
                "mode": "test",
                "status": status,
                "amount": int(rng.lognormvariate(6.5, 1.4)) % 150_000 + 1,
                "phone": f"2547{rng.randrange(10**8):08d}",
                "account_reference": f"INV{n:08d}",
                "description": "Goods",
                "metadata": {},
                "business_short_code": "174379",
                "party_b": "174379",
                "transaction_type": "CustomerPayBillOnline",
                "daraja_environment": "sandbox",
                "callback_token_hash": token,
                "created_at": at,
                "updated_at": at,
                "result_code": "0" if status is PaymentStatus.SUCCEEDED else None,
                "result_desc": "The service request is processed successfully."
                if status is PaymentStatus.SUCCEEDED
                else None,
                "mpesa_receipt_number": f"T{token[:9].upper()}" if status is PaymentStatus.SUCCEEDED else None,
                "completed_at": at + timedelta(seconds=9) if status is not PaymentStatus.PENDING else None,
                "needs_attention": rng.random() < 0.005,
                "query_attempts": 0,
            }
        )
    return rows


async def _seed(url: str, count: int) -> None:
    db = Database(url)
    rng = random.Random(11)
    try:
        async with db.write() as uow:
            for project_id in (SHOP, OTHER):
                await uow.connection.execute(
                    sa.insert(tables.projects), {"id": project_id, "name": project_id, "created_at": END}
                )
        for project_id, total in ((SHOP, count), (OTHER, max(1, count // 20))):
            for first in range(0, total, _CHUNK):
                rows = _rows(project_id, first, min(_CHUNK, total - first), total, rng)
                async with db.write() as uow:
                    await uow.connection.execute(sa.insert(tables.payments), seed_rows(tables.payments, rows))
        async with db.write() as uow:
            await uow.connection.execute(sa.text("ANALYZE"))
    finally:
        await db.dispose()


def _queries(ids: dict[str, Any]) -> dict[str, PaymentSearch]:
    base: dict[str, Any] = {"project_id": SHOP, "mode": "test", "limit": 50}
    return {
        "first page": PaymentSearch(**base),
        "deep page (cursor at 90%)": PaymentSearch(**base, cursor=encode_cursor("-created", (ids["deep_id"],))),
        "filtered: 2 statuses + amount + 30 days": PaymentSearch(
            **base,
            statuses=(PaymentStatus.FAILED, PaymentStatus.CANCELLED),
            amount_min=500,
            amount_max=5000,
            created_from=END - timedelta(days=60),
            created_before=END - timedelta(days=30),
        ),
        "text: receipt (lower case)": PaymentSearch(**base, text=ids["receipt"].lower()),
        "text: reference prefix": PaymentSearch(**base, text=ids["reference"][:-2]),
        "by amount: first page": PaymentSearch(**base, sort="-amount"),
        "by amount: deep page": PaymentSearch(
            **base, sort="-amount", cursor=encode_cursor("-amount", (ids["deep_amount"], ids["deep_amount_id"]))
        ),
        "needs attention": PaymentSearch(**base, needs_attention=True),
    }


async def _probe(db: Database, count: int) -> dict[str, Any]:
    c = tables.payments.c
    tenant = (c.project_id == SHOP, c.mode == "test")
    deep = int(count * 0.9)
    async with db.read() as uow:
        conn = uow.connection
        deep_id = (
            await conn.execute(sa.select(c.id).where(*tenant).order_by(c.id.desc()).offset(deep).limit(1))
        ).scalar_one()
        amount_row = (
            await conn.execute(
                sa.select(c.amount, c.id).where(*tenant).order_by(c.amount.desc(), c.id.desc()).offset(deep).limit(1)
            )
        ).one()
        middle = (
            await conn.execute(
                sa.select(c.mpesa_receipt_number, c.account_reference)
                .where(*tenant, c.id < deep_id, c.mpesa_receipt_number.is_not(None))
                .order_by(c.id.desc())
                .limit(1)
            )
        ).one()
    return {
        "deep_id": deep_id,
        "deep_amount": amount_row[0],
        "deep_amount_id": amount_row[1],
        "receipt": middle[0],
        "reference": middle[1],
    }


async def _plan(db: Database, q: PaymentSearch, tag: str) -> str:
    stmt = _statement(q, q.after, q.limit + 1)
    async with db.read() as uow:
        conn = uow.connection
        compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        # A comment of its own per index set: sqlite3 caches statements by their text, and a cached
        # EXPLAIN keeps the plan of the schema it was prepared on (it never re-checks the schema).
        sql = f"{compiled} /* {tag} */"
        if db.sqlite:
            rows = (await conn.execute(sa.text(f"EXPLAIN QUERY PLAN {sql}"))).all()
            return "\n".join(f"  {row[3]}" for row in rows)
        rows = (await conn.execute(sa.text(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}"))).all()
        return "\n".join(f"  {row[0]}" for row in rows)


async def _time(run: Callable[[], Awaitable[Any]], reps: int = 5) -> float:
    await run()
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        await run()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


async def _measure_queries(db: Database, queries: dict[str, PaymentSearch], tag: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, q in queries.items():
        rows: list[int] = []

        async def run(q: PaymentSearch = q, rows: list[int] = rows) -> None:
            async with db.read() as uow:
                page = await SqlPaymentSearch(uow.connection).search(q)
            rows[:] = [len(page.items)]

        ms = await _time(run)
        out[name] = {"ms": round(ms, 2), "rows": rows[0]}
        out[name]["plan"] = await _plan(db, q, tag)
    return out


async def _indexes(db: Database, create: bool) -> None:
    async with db.write() as uow:
        for name, columns in NEW_INDEXES.items():
            if create:
                await uow.connection.execute(sa.text(f"CREATE INDEX {name} ON payments ({', '.join(columns)})"))
            else:
                await uow.connection.execute(sa.text(f"DROP INDEX {name}"))
        await uow.connection.execute(sa.text("ANALYZE payments"))


def _high_water_kib() -> int:
    """This process's peak RSS (VmHWM). Not `ru_maxrss`: Linux carries that over an exec from the
    process that forked us (here the seeding parent, ~120 MiB), which would hide a smaller peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: the best there is


def _export_child(url: str, fmt: str, out: str) -> dict[str, Any]:
    before = _high_water_kib()  # after the imports: what any process of the bridge holds anyway

    async def main() -> int:
        db = Database(url)
        written = 0
        try:
            async with db.read() as uow:
                payments: AsyncIterator[Any] = SqlPaymentSearch(uow.connection).iter_all(
                    PaymentSearch(project_id=SHOP, mode="test")
                )
                chunks = csv_chunks(payments) if fmt == "csv" else xlsx_chunks(payments, tmp_dir=str(Path(out).parent))
                with open(out, "wb") as file:  # noqa: ASYNC230 — the file's writes are part of what is measured
                    async for chunk in chunks:
                        file.write(chunk)
                        written += len(chunk)
        finally:
            await db.dispose()
        return written

    start = time.perf_counter()
    written = asyncio.run(main())
    wall = time.perf_counter() - start
    after = _high_water_kib()
    return {
        "format": fmt,
        "seconds": round(wall, 1),
        "bytes": written,
        "peak_rss_before_mib": round(before / 1024, 1),
        "peak_rss_after_mib": round(after / 1024, 1),
    }


def _export(url: str, fmt: str, folder: Path) -> dict[str, Any]:
    out = folder / f"export.{fmt}"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.dashboard_scale", "--export-child", fmt, "--url", url, "--out", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    out.unlink(missing_ok=True)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


async def _create_pg() -> str:
    name = f"mb_dash_bench_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(POSTGRES)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return POSTGRES.rsplit("/", 1)[0] + f"/{name}"


async def _drop_pg(url: str) -> None:
    conn = await asyncpg.connect(POSTGRES)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


async def _engine_run(url: str, rows: int, compare: bool, folder: Path) -> dict[str, Any]:
    started = time.perf_counter()
    await asyncio.to_thread(upgrade, url)
    await _seed(url, rows)
    result: dict[str, Any] = {"seed_seconds": round(time.perf_counter() - started, 1)}
    db = Database(url)
    try:
        queries = _queries(await _probe(db, rows))
        result["queries"] = await _measure_queries(db, queries, "with 0011")
        if compare:
            await _indexes(db, create=False)
            wanted = ("text: receipt (lower case)", "by amount: first page", "by amount: deep page")
            result["without_0011_indexes"] = await _measure_queries(db, {k: queries[k] for k in wanted}, "without 0011")
            await _indexes(db, create=True)
    finally:
        await db.dispose()
    result["exports"] = [await asyncio.to_thread(_export, url, fmt, folder) for fmt in ("csv", "xlsx")]
    return result


def _print(engine: str, result: dict[str, Any]) -> None:
    print(f"\n== {engine}: seeded in {result['seed_seconds']} s")
    for section in ("queries", "without_0011_indexes"):
        for name, figure in result.get(section, {}).items():
            label = f"{name} [without 0011]" if section != "queries" else name
            print(f"{label:48} {figure['ms']:9.2f} ms  ({figure['rows']} rows)")
            print(figure["plan"])
    for export in result["exports"]:
        print(
            f"export {export['format']:5} {export['seconds']:7.1f} s  {export['bytes'] / 2**20:8.1f} MiB  "
            f"peak RSS (VmHWM) {export['peak_rss_before_mib']} MiB after imports, "
            f"{export['peak_rss_after_mib']} MiB at the end"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--no-compare", action="store_true", help="skip the runs without migration 0011's indexes")
    parser.add_argument("--export-child", choices=("csv", "xlsx"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child:
        print(json.dumps(_export_child(args.url, args.export_child, args.out)))
        return
    with tempfile.TemporaryDirectory(prefix="dashboard-scale-") as tmp:
        folder = Path(tmp)
        results: dict[str, Any] = {"rows": args.rows}
        for engine in args.engines.split(","):
            url = f"sqlite:///{folder / 'bench.db'}" if engine == "sqlite" else asyncio.run(_create_pg())
            try:
                results[engine] = asyncio.run(_engine_run(url, args.rows, not args.no_compare, folder))
            finally:
                if engine != "sqlite":
                    asyncio.run(_drop_pg(url))
            _print(engine, results[engine])
        print(json.dumps(results, default=str), file=sys.stderr)


if __name__ == "__main__":
    main()
