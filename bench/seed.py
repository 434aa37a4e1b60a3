"""A payments history written in bulk straight into the bridge's database (case B6).

The rows are what the bridge leaves behind after months of traffic: settled payments (70 %
succeeded, the rest failed, cancelled, expired, 1 % unknown) spread over several tenants, with ids
whose time part is the row's `created_at`, as `core.ids.new_id` makes them (the bridge relies on
it). 10⁶ pushes through the API would take hours, and 10⁶ rows built in Python take a minute on two
busy cores, so `INSERT … SELECT` makes them inside the database.

Cheaply: time is cut into windows of 2²⁵ ms (9 h 19 min), the unit of the fifth digit of an id's
time part. A block of rows is made once — offsets in the window, the id's five low time digits,
tenant, status, amount, phone — from integer hashes of the row number (the same history on both
engines), and repeated in every window of the 90 days that end at the last window boundary before
`now` (up to 9 h earlier): a row then costs the database little more than its timestamps and its
insertion. (Each window has the same mix, which none of the measured queries can tell.)

The bridge may keep running while it seeds. The payments table's secondary indexes are dropped for
the load and built again after it (one sort each, much cheaper than 10⁶ updates of each); the
constraint indexes stay. On SQLite each step is a transaction of its own, a few seconds at most, so
the bridge's workers never wait long for the write lock. PostgreSQL does it all in one transaction,
then `VACUUM ANALYZE` as autovacuum would after a bulk insert. SQLite gets no statistics: the bridge
never gathers any.

Simplifications that do not touch the queries measured: callback token hashes and receipt numbers
are row numbers written out (unique, in row order), and every client secret hash is the same.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import make_url

from mpesa_bridge.core.payments.status import Evidence, PaymentStatus

SHORT_CODE = "174379"
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # core.ids: Crockford base32, in ASCII order
WINDOW_BITS = 25  # five base32 digits
WINDOW_MS = 1 << WINDOW_BITS
SQLITE_CHUNK = 100_000  # rows per SQLite transaction: a second or two each
# status, share, failure_code, result_code, result_desc, evidence
OUTCOMES: list[tuple[PaymentStatus, float, str | None, str | None, str | None, Evidence | None]] = [
    (PaymentStatus.SUCCEEDED, 0.70, None, "0", "The service request is processed successfully.", Evidence.CALLBACK),
    (PaymentStatus.FAILED, 0.12, "insufficient_funds", "1", "The balance is insufficient.", Evidence.CALLBACK),
    (PaymentStatus.CANCELLED, 0.12, "user_cancelled", "1032", "Request cancelled by user", Evidence.CALLBACK),
    (PaymentStatus.EXPIRED, 0.05, "timeout", "1037", "DS timeout user cannot be reached", Evidence.CALLBACK),
    (PaymentStatus.UNKNOWN, 0.01, "daraja_no_answer", None, None, None),
]
UNKNOWN = len(OUTCOMES) - 1
# Odd multipliers: frac(n · M / 2³²) for n = 0, 1, 2… is an evenly spread sequence in [0, 1).
_STREAMS = {
    "jitter": 2654435761,
    "status": 2246822519,
    "tenant": 3266489917,
    "amount1": 668265263,
    "amount2": 374761393,
    "phone": 1181783497,
    "settle": 2869860233,
    "merchant": 3575866163,
}


@dataclass(frozen=True)
class Share:
    """One tenant (a project and a mode) and its share of the payments."""

    project_id: str
    mode: str
    weight: float


@dataclass(frozen=True)
class _Dialect:
    sequence: str  # a CTE `{name}({column})` counting {first} … {last}
    padded: str  # the integer {x} written with {width} digits
    timestamp: str  # milliseconds since the epoch {ms} -> the column's stored value
    clamp: str  # least(greatest(x, lo), hi)
    fence: str  # keeps a subquery from being merged into its query (its columns computed once a row)
    json: str
    false: str


_SQLITE = _Dialect(
    sequence="{name}({column}) AS (SELECT {first} UNION ALL SELECT {column} + 1 FROM {name} WHERE {column} < {last})",
    padded="printf('%0{width}d', {x})",
    # What UTCDateTime stores on SQLite: naive UTC text with six decimals (SQLite counts in ms).
    timestamp="(strftime('%Y-%m-%d %H:%M:%f', ({ms}) / 1000.0, 'unixepoch') || '000')",
    clamp="min(max({x}, {lo}), {hi})",
    fence="LIMIT -1 OFFSET 0",
    json="'{}'",
    false="0",
)
_POSTGRES = _Dialect(
    sequence="{name}({column}) AS (SELECT generate_series({first}, {last})::bigint)",
    padded="lpad(CAST({x} AS TEXT), {width}, '0')",
    timestamp="(timestamptz 'epoch' + ({ms}) * interval '1 millisecond')",
    clamp="least(greatest({x}, {lo}), {hi})",
    fence="OFFSET 0",
    json="'{}'::jsonb",
    false="false",
)


def _literal(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_ .\-]*", value):
        raise ValueError(f"not a plain literal: {value!r}")
    return f"'{value}'"


def _sql_value(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(int(value))
    return _literal(str(value))


@dataclass(frozen=True)
class Batch:
    """`count` payments over `windows` windows ending at `end_ms` (a multiple of WINDOW_MS): the same
    block of rows in each window, one row more in `count % windows` of them, evenly spread."""

    shares: Sequence[Share]
    count: int
    end_ms: int
    windows: int
    serial: int  # rows seeded before this batch: row numbers stay unique across batches

    @property
    def block(self) -> int:
        return self.count // self.windows

    def sql(self, dialect: _Dialect, first: int, last: int) -> str:
        """The statement adding the rows of windows first … last."""
        return _insert_sql(dialect, self, first, last)


def _base32(value: str, digits: int) -> str:
    return " || ".join(
        f"substr('{ALPHABET}', CAST((({value}) >> {5 * (digits - 1 - d)}) & 31 AS INTEGER) + 1, 1)"
        for d in range(digits)
    )


def _insert_sql(d: _Dialect, batch: Batch, first: int, last: int) -> str:
    number = f"(j + {int(batch.serial) + 1})"  # a block row's number (from 1): unique over every batch

    def u(stream: str) -> str:
        return f"(CAST(({number} * {_STREAMS[stream]}) % 4294967296 AS DOUBLE PRECISION) / 4294967296)"

    def pick(stream: str, weights: Sequence[float]) -> str:
        total, bound, whens = sum(weights), 0.0, []
        for k, weight in enumerate(weights[:-1]):
            bound += weight / total
            whens.append(f"WHEN {u(stream)} < {bound!r} THEN {k}")
        return f"CASE {' '.join(whens)} ELSE {len(weights) - 1} END" if whens else "0"

    rows_per_window = batch.block + 1  # the last one only in some windows
    slot = WINDOW_MS // rows_per_window
    start_ms = int(batch.end_ms) - int(batch.windows) * WINDOW_MS
    extra = int(batch.count) % int(batch.windows)
    tenants = ", ".join(f"({k}, {_literal(s.project_id)}, {_literal(s.mode)})" for k, s in enumerate(batch.shares))
    outcomes = ", ".join(
        f"({k}, {_sql_value(status.value)}, {_sql_value(code)}, {_sql_value(result)}, {_sql_value(desc)}, "
        f"{_sql_value(None if evidence is None else int(evidence))})"
        for k, (status, _, code, result, desc, evidence) in enumerate(OUTCOMES)
    )
    lognormal = f"exp(6.0 + 1.3 * sqrt(-2.0 * ln({u('amount1')} + 1e-9)) * cos(2 * pi() * {u('amount2')}))"
    at, settled = "x.created_at", "x.settled_at"
    columns = {
        "id": "'pay_' || x.top5 || x.low5 || x.kn || x.jn",
        "project_id": "x.project_id",
        "mode": "x.mode",
        "status": "x.status",
        "amount": "x.amount",
        "phone": "x.phone",
        "account_reference": "x.account_reference",
        "description": "'Payment'",
        "metadata": d.json,
        "business_short_code": f"'{SHORT_CODE}'",
        "party_b": f"'{SHORT_CODE}'",
        "transaction_type": "'CustomerPayBillOnline'",
        "daraja_environment": "'simulator'",
        "callback_token_hash": f"x.kn || x.jn || '{'0' * 48}'",  # unique from the first characters
        "created_at": at,
        "updated_at": f"CASE WHEN x.outcome = {UNKNOWN} THEN {at} ELSE {settled} END",
        "evidence": "x.evidence",
        "failure_code": "x.failure_code",
        "failure_message": "CASE WHEN x.failure_code IS NULL THEN NULL ELSE x.result_desc END",
        "result_code": "x.result_code",
        "result_desc": "x.result_desc",
        "mpesa_receipt_number": "CASE WHEN x.outcome = 0 THEN 'T' || x.kn || substr(x.jn, 8) END",
        "merchant_request_id": "x.merchant || '-' || x.kn || x.jn || '-1'",
        "checkout_request_id": "'ws_CO_' || x.kn || x.jn",
        "transaction_date": f"CASE WHEN x.outcome = 0 THEN {settled} END",
        "completed_at": f"CASE WHEN x.outcome = {UNKNOWN} THEN NULL ELSE {settled} END",
        "needs_attention": f"(x.outcome = {UNKNOWN})",
        "attention_reason": f"CASE WHEN x.outcome = {UNKNOWN} THEN 'outcome_unknown' END",
        "query_attempts": f"CASE WHEN x.outcome = {UNKNOWN} THEN 1 ELSE 0 END",
        "next_query_at": "NULL",  # reconciliation leaves the history alone
        "awaiting_confirmation": d.false,
        "client_secret_hash": f"'{'c' * 64}'",
    }
    block_sequence = d.sequence.format(name="js", column="j", first=0, last=rows_per_window - 1)
    window_sequence = d.sequence.format(name="ks", column="k", first=int(first), last=int(last))
    return f"""
WITH RECURSIVE {block_sequence}, {window_sequence},
t(tk, project_id, mode) AS (VALUES {tenants}),
o(ok, status, failure_code, result_code, result_desc, evidence) AS (VALUES {outcomes}),
b0 AS MATERIALIZED (
    SELECT j, (j * {WINDOW_MS}) / {rows_per_window} + CAST({u("jitter")} * {max(slot - 1, 0)} AS INTEGER) AS offset_ms,
           CAST({u("settle")} * 40000 AS INTEGER) + 5000 AS settle_ms,
           {pick("status", [o[1] for o in OUTCOMES])} AS outcome,
           {pick("tenant", [s.weight for s in batch.shares])} AS tenant,
           CAST({d.clamp.format(x=lognormal, lo="1.0", hi="250000.0")} AS INTEGER) AS amount,
           '2547' || substr(CAST(100000000 + ({number} * {_STREAMS["phone"]}) % 100000000 AS TEXT), 2, 8) AS phone,
           'INV' || CAST({number} % 100000 AS TEXT) AS account_reference,
           CAST(10000 + ({number} * {_STREAMS["merchant"]}) % 90000 AS TEXT) AS merchant,
           {d.padded.format(x=number, width=10)} AS jn
    FROM js
),
b AS MATERIALIZED (
    SELECT b0.*, {_base32("b0.offset_ms", 5)} AS low5, t.project_id, t.mode, o.status, o.failure_code,
           o.result_code, o.result_desc, o.evidence
    FROM b0 CROSS JOIN t CROSS JOIN o WHERE t.tk = b0.tenant AND o.ok = b0.outcome
),
w AS MATERIALIZED (
    SELECT k, {start_ms} + k * {WINDOW_MS} AS base_ms, {_base32(f"{start_ms >> WINDOW_BITS} + k", 5)} AS top5,
           {d.padded.format(x="k", width=6)} AS kn,
           ((k + 1) * {extra}) / {int(batch.windows)} - (k * {extra}) / {int(batch.windows)} AS extra
    FROM ks
)
INSERT INTO payments ({", ".join(columns)})
SELECT {", ".join(columns.values())}
FROM (
    SELECT w.top5, w.kn, b.*, {d.timestamp.format(ms="w.base_ms + b.offset_ms")} AS created_at,
           {d.timestamp.format(ms="w.base_ms + b.offset_ms + b.settle_ms")} AS settled_at
    FROM w CROSS JOIN b
    WHERE b.j < {rows_per_window - 1} OR w.extra = 1
    {d.fence}
) AS x
"""


def seed_history(
    url: str, shares: Sequence[Share], count: int, *, now: datetime, days: int = 90, serial: int = 0
) -> None:
    """Add `count` settled payments created over (about) the `days` before `now`, shared among
    `shares` by weight. `serial`: how many rows earlier calls added (keeps row numbers unique)."""
    end_ms = (int(now.timestamp() * 1000) >> WINDOW_BITS) << WINDOW_BITS
    windows = -(-days * 86_400_000 // WINDOW_MS)
    batch = Batch(shares, count, end_ms, windows, serial)
    if make_url(url).get_backend_name() == "sqlite":
        _seed_sqlite(url, batch)
    else:
        asyncio.run(_seed_postgres(url, batch))


def _sqlite_path(url: str) -> str:
    database = make_url(url).database
    assert database, url
    return database


def _seed_sqlite(url: str, batch: Batch) -> None:
    conn = sqlite3.connect(_sqlite_path(url), isolation_level=None, timeout=60)
    try:
        conn.execute("PRAGMA synchronous=OFF")  # this connection only: a crash would only lose the seed
        conn.execute("PRAGMA cache_size=-262144")  # 256 MiB
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'payments' AND sql IS NOT NULL"
        ).fetchall()
        steps = [f'DROP INDEX "{name}"' for name, _ in indexes]
        per_chunk = max(1, SQLITE_CHUNK // (batch.block + 1))
        for first in range(0, batch.windows, per_chunk):
            steps.append(batch.sql(_SQLITE, first, min(first + per_chunk, batch.windows) - 1))
        steps += [create for _, create in indexes]
        for statement in steps:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(statement)
            conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _pg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _seed_postgres(url: str, batch: Batch) -> None:
    import asyncpg

    conn = await asyncpg.connect(_pg_dsn(url))
    try:
        await conn.execute("SET maintenance_work_mem = '256MB'")
        await conn.execute("SET session_replication_role = replica")  # no FK trigger per row: ours are valid
        async with conn.transaction():
            # The UNIQUE constraints too (not the primary key, which foreign keys need): with a
            # non-C collation every index entry costs dozens of strcoll() calls.
            uniques = await conn.fetch(
                "SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint "
                "WHERE conrelid = 'payments'::regclass AND contype = 'u'"
            )
            indexes = await conn.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'payments' AND indexname NOT IN "
                "(SELECT conname FROM pg_constraint WHERE conrelid = 'payments'::regclass)"
            )
            for row in uniques:
                await conn.execute(f'ALTER TABLE payments DROP CONSTRAINT "{row["conname"]}"')
            for row in indexes:
                await conn.execute(f'DROP INDEX "{row["indexname"]}"')
            await conn.execute(batch.sql(_POSTGRES, 0, batch.windows - 1))
            for row in indexes:
                await conn.execute(row["indexdef"])
            for row in uniques:
                await conn.execute(f'ALTER TABLE payments ADD CONSTRAINT "{row["conname"]}" {row["definition"]}')
        await conn.execute("VACUUM (ANALYZE) payments")
    finally:
        await conn.close()


async def _pg_query(url: str, sql: str, *args: Any) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(_pg_dsn(url))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def query(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """One read query; placeholders `?` on SQLite, `$1` on PostgreSQL."""
    if make_url(url).get_backend_name() == "sqlite":
        conn = sqlite3.connect(_sqlite_path(url), timeout=60)
        try:
            return list(conn.execute(sql, args).fetchall())
        finally:
            conn.close()
    return [tuple(row) for row in asyncio.run(_pg_query(url, sql, *args))]


def explain(url: str, sql: str, *args: Any) -> list[str]:
    """The plan the engine picks (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL)."""
    if make_url(url).get_backend_name() == "sqlite":
        return [str(row[-1]) for row in query(url, "EXPLAIN QUERY PLAN " + sql, *args)]
    return [str(row[0]) for row in query(url, "EXPLAIN " + sql, *args)]
