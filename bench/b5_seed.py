"""B5's helpers: pending payments whose callbacks were lost, made due at one instant, watched settling.

Seeding goes around the bridge, because creating 10,000 payments through `POST /v1/payments` takes
minutes on a small machine and is not what B5 measures (B2 does):

1. real STK pushes to the simulator, over raw keep-alive HTTP/1.1 (a Python HTTP client would cost
   more CPU than the simulator), so the simulator knows every CheckoutRequestID the reconciler
   will ask about. The simulator runs with `--lose-callbacks`: the customer pays, the callback
   never comes (and the CallBackURL points at a port nobody listens on anyway);
2. the matching payments, written with the bridge's own entity and repository, `pending` and not
   yet due;
3. one UPDATE making every first STK Query due at the same instant: the clock starts there.

The bridge's own table definitions and types are used throughout, so rows and timestamps are
stored exactly as the bridge stores them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import Payment
from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.daraja._security import stk_password, stk_timestamp
from mpesa_bridge.simulator.config import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, SANDBOX_PASSKEY
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.db import Database, normalise_url
from mpesa_bridge.storage.payments import PAYMENTS

PENDING = "pending"
SHORT_CODE = "174379"  # the test-mode project's shortcode: the simulator knows its passkey
PUSH_PATH = "/mpesa/stkpush/v1/processrequest"
AMOUNT = 10


def phone(n: int) -> str:
    """A distinct MSISDN per payment (Daraja and the bridge refuse a second open push to a phone),
    outside the simulator's magic numbers (2547000…, 254708374149): the customer pays."""
    return f"25471{n:07d}"


# --- 1. pushes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Push:
    phone: str
    merchant_request_id: str
    checkout_request_id: str


def simulator_token(url: str) -> str:
    response = httpx.get(
        f"{url}/oauth/v1/generate",
        params={"grant_type": "client_credentials"},
        auth=(SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET),
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _push_request(host: str, token: str, n: int, callback_url: str) -> bytes:
    timestamp = stk_timestamp(datetime.now(UTC))
    body = json.dumps(
        {
            "BusinessShortCode": int(SHORT_CODE),
            "Password": stk_password(SHORT_CODE, SANDBOX_PASSKEY, timestamp),
            "Timestamp": timestamp,
            "TransactionType": "CustomerPayBillOnline",
            "Amount": AMOUNT,
            "PartyA": int(phone(n)),
            "PartyB": int(SHORT_CODE),
            "PhoneNumber": int(phone(n)),
            "CallBackURL": callback_url,
            "AccountReference": f"B5-{n}",
            "TransactionDesc": "B5",
        }
    ).encode()
    head = (
        f"POST {PUSH_PATH} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_json(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b"{}"
    return status, json.loads(body)


async def _push_all(host: str, port: int, token: str, count: int, callback_url: str, connections: int) -> list[Push]:
    todo = list(range(count - 1, -1, -1))
    done: dict[int, Push] = {}
    failures: list[str] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while todo and not failures:
                n = todo.pop()
                writer.write(_push_request(f"{host}:{port}", token, n, f"{callback_url}{n}"))
                status, reply = await _read_json(reader)
                if status != 200:
                    failures.append(f"push {n}: {status} {reply}")
                    return
                done[n] = Push(phone(n), reply["MerchantRequestID"], reply["CheckoutRequestID"])
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    if failures:
        raise RuntimeError(failures[0])
    return [done[n] for n in range(count)]


def push_all(simulator_url: str, count: int, callback_url: str, connections: int = 8) -> list[Push]:
    """`count` accepted STK pushes, one per phone; each push's CallBackURL is `callback_url` + its number."""
    token = simulator_token(simulator_url)
    host, port = simulator_url.removeprefix("http://").rsplit(":", 1)
    return asyncio.run(_push_all(host, int(port), token, count, callback_url, connections))


# --- 2. payments ------------------------------------------------------------------------------


async def _insert(url: str, project_id: str, pushes: Sequence[Push], chunk: int) -> None:
    db = Database(url)
    try:
        for start in range(0, len(pushes), chunk):
            async with db.write() as uow:  # one INSERT … VALUES batch per chunk, not a flush per row
                rows = [_payment(project_id, n, p) for n, p in enumerate(pushes[start : start + chunk], start)]
                await PAYMENTS.insert(uow.connection, rows)
    finally:
        await db.dispose()


def _payment(project_id: str, n: int, push: Push) -> Payment:
    now = datetime.now(UTC)
    return Payment(
        id=new_id("pay", now),
        project_id=project_id,
        mode="test",
        status=PaymentStatus.PENDING,
        amount=AMOUNT,
        phone=push.phone,
        account_reference=f"B5-{n}",
        description="B5",
        metadata={},
        business_short_code=SHORT_CODE,
        party_b=SHORT_CODE,
        transaction_type="CustomerPayBillOnline",
        daraja_environment="simulator",
        callback_token_hash=hashlib.sha256(secrets.token_bytes(16)).hexdigest(),
        created_at=now,
        updated_at=now,
        merchant_request_id=push.merchant_request_id,
        checkout_request_id=push.checkout_request_id,
        next_query_at=None,  # not due until `make_due`
    )


def insert_payments(url: str, project_id: str, pushes: Sequence[Push], chunk: int = 1000) -> None:
    """One pending test-mode payment per push, with the push's ids, not yet due for a query."""
    asyncio.run(_insert(url, project_id, pushes, chunk))


def _engine(url: str) -> AsyncEngine:
    return create_async_engine(normalise_url(url))


async def _make_due(url: str) -> tuple[int, datetime]:
    engine = _engine(url)
    c = tables.payments.c
    try:
        async with engine.begin() as conn:
            now = datetime.now(UTC)
            result = await conn.execute(
                sa.update(tables.payments)
                .where(c.status == PENDING, c.checkout_request_id.is_not(None))
                .values(next_query_at=now)
            )
            return int(result.rowcount), now
    finally:
        await engine.dispose()


def make_due(url: str) -> tuple[int, float]:
    """Every pending payment's first STK Query becomes due now: (how many, the wall-clock instant)."""
    count, now = asyncio.run(_make_due(url))
    return count, now.timestamp()


async def _counts(url: str) -> dict[str, int]:
    engine = _engine(url)
    c = tables.payments.c
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(sa.select(c.status, sa.func.count()).group_by(c.status))
            return {str(status): int(n) for status, n in rows.all()}
    finally:
        await engine.dispose()


def counts(url: str) -> dict[str, int]:
    """Payments by status."""
    return asyncio.run(_counts(url))


@dataclass
class Watch:
    """What `watch` saw: (wall time, process CPU seconds, payments still pending) every poll."""

    samples: list[tuple[float, float, int]] = field(default_factory=list)
    finished: bool = False

    def cpu_at(self, moment: float) -> float:
        """The CPU reading of the last poll at or before `moment` (the first one if none was)."""
        before = [cpu for at, cpu, _ in self.samples if at <= moment]
        return before[-1] if before else self.samples[0][1]


async def _watch(url: str, cpu: Callable[[], float], limit: float, interval: float) -> Watch:
    engine = _engine(url)
    c = tables.payments.c
    seen = Watch()
    deadline = time.monotonic() + limit
    try:
        async with engine.connect() as conn:
            while time.monotonic() < deadline:
                reading = cpu()
                at = time.time()
                pending = (await conn.execute(sa.select(sa.func.count()).where(c.status == PENDING))).scalar_one()
                await conn.rollback()  # end the read transaction: the next poll sees new commits
                seen.samples.append((at, reading, int(pending)))
                if pending == 0:
                    seen.finished = True
                    break
                await asyncio.sleep(interval)
    finally:
        await engine.dispose()
    return seen


def watch(url: str, cpu: Callable[[], float], timeout: float, interval: float = 0.05) -> Watch:
    """Poll until no payment is pending (or `timeout`), reading the bridge's CPU at each poll."""
    return asyncio.run(_watch(url, cpu, timeout, interval))


@dataclass
class Settled:
    """When the payments were settled, by the bridge's own `completed_at`, and how they were settled."""

    first: float
    last: float
    statuses: dict[str, int]
    query_evidence: int  # evidence rows written by STK Query answers: one per query that was answered
    sources: dict[str, int]


async def _settled(url: str) -> Settled:
    engine = _engine(url)
    c, e = tables.payments.c, tables.payment_evidence.c
    try:
        async with engine.connect() as conn:
            first, last = (
                await conn.execute(sa.select(sa.func.min(c.completed_at), sa.func.max(c.completed_at)))
            ).one()
            statuses = dict((await conn.execute(sa.select(c.status, sa.func.count()).group_by(c.status))).all())
            sources = dict((await conn.execute(sa.select(e.source, sa.func.count()).group_by(e.source))).all())
    finally:
        await engine.dispose()
    return Settled(
        first=_timestamp(first),
        last=_timestamp(last),
        statuses={str(k): int(v) for k, v in statuses.items()},
        query_evidence=int(sources.get("query", 0)),
        sources={str(k): int(v) for k, v in sources.items()},
    )


def _timestamp(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else float("nan")


def settled(url: str) -> Settled:
    return asyncio.run(_settled(url))
