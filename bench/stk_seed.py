"""Pending STK payments written straight into the bridge's database, and their Daraja callbacks.

Used by the cases that need many payments waiting for a callback without a push each: the rows are
what `PaymentService.create` leaves after Daraja accepted the push (status pending, CheckoutRequestID
known, callback token hashed), so the callback route and the inbox treat them as real.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.routes import CALLBACK_PATH
from mpesa_bridge.simulator.ids import nairobi_stamp
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.db import normalise_url

SHORT_CODE = "174379"


@dataclass(frozen=True)
class Pending:
    id: str
    token: str
    checkout_request_id: str
    merchant_request_id: str
    amount: int
    phone: str

    @property
    def callback_path(self) -> str:
        return f"{CALLBACK_PATH}{self.token}"

    def success_body(self, at: datetime) -> str:
        receipt = "TK" + secrets.token_hex(4).upper()
        callback: dict[str, Any] = {
            "MerchantRequestID": self.merchant_request_id,
            "CheckoutRequestID": self.checkout_request_id,
            "ResultCode": 0,
            "ResultDesc": "The service request is processed successfully.",
            "CallbackMetadata": {
                "Item": [
                    {"Name": "Amount", "Value": float(self.amount)},
                    {"Name": "MpesaReceiptNumber", "Value": receipt},
                    {"Name": "Balance"},
                    {"Name": "TransactionDate", "Value": int(nairobi_stamp(at))},
                    {"Name": "PhoneNumber", "Value": int(self.phone)},
                ]
            },
        }
        return json.dumps({"Body": {"stkCallback": callback}})

    def callback_request(self, at: datetime) -> list[Any]:
        return ["POST", self.callback_path, {"Content-Type": "application/json"}, self.success_body(at)]


def _row(project_id: str, index: int, now: datetime) -> tuple[Pending, dict[str, Any]]:
    token = secrets.token_urlsafe(24)
    stamp = nairobi_stamp(now)
    pending = Pending(
        id=new_id("pay", now),
        token=token,
        checkout_request_id=f"ws_CO_{stamp}{index:08d}{secrets.token_hex(3)}",
        merchant_request_id=f"{secrets.randbelow(90000) + 10000}-{index}-1",
        amount=1 + index % 500,
        phone=f"2547{index:08d}",
    )
    row = {
        "id": pending.id,
        "project_id": project_id,
        "mode": "test",
        "status": PaymentStatus.PENDING,
        "amount": pending.amount,
        "phone": pending.phone,
        "account_reference": f"INV{index}",
        "description": "bench",
        "metadata": {},
        "business_short_code": SHORT_CODE,
        "party_b": SHORT_CODE,
        "transaction_type": "CustomerPayBillOnline",
        "daraja_environment": "simulator",
        "callback_token_hash": hashlib.sha256(token.encode()).hexdigest(),
        "created_at": now,
        "updated_at": now,
        "merchant_request_id": pending.merchant_request_id,
        "checkout_request_id": pending.checkout_request_id,
        "needs_attention": False,
        "query_attempts": 0,
        "next_query_at": None,  # reconciliation leaves them alone while the case runs
        "awaiting_confirmation": False,
    }
    return pending, row


async def _insert(url: str, rows: list[dict[str, Any]]) -> None:
    engine = create_async_engine(normalise_url(url))
    try:
        async with engine.begin() as conn:
            for start in range(0, len(rows), 5000):
                await conn.execute(sa.insert(tables.payments), rows[start : start + 5000])
    finally:
        await engine.dispose()


def seed_pending(url: str, project_id: str, count: int, *, offset: int = 0) -> list[Pending]:
    """`count` pending payments of `project_id` (test mode), phones numbered from `offset`."""
    now = datetime.now(UTC)
    pairs = [_row(project_id, offset + i, now) for i in range(count)]
    asyncio.run(_insert(url, [row for _, row in pairs]))
    return [pending for pending, _ in pairs]


async def _scalar(url: str, query: str) -> Any:
    engine = create_async_engine(normalise_url(url))
    try:
        async with engine.connect() as conn:
            return (await conn.execute(sa.text(query))).scalar()
    finally:
        await engine.dispose()


def scalar(url: str, query: str) -> Any:
    return asyncio.run(_scalar(url, query))


async def _rows(url: str, query: sa.Select[Any]) -> list[Any]:
    engine = create_async_engine(normalise_url(url))
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(query)).all())
    finally:
        await engine.dispose()


def rows(url: str, query: sa.Select[Any]) -> list[Any]:
    """Rows of a Core select, with the bridge's column types (aware datetimes)."""
    return asyncio.run(_rows(url, query))
