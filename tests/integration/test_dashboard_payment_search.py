"""The dashboard's payment search (storage/payment_search.py) on SQLite and PostgreSQL: every filter
and sort against a plain-Python reference, keyset pages that neither skip nor repeat rows whose
sort keys are equal, and one tenant's search never showing another project's or mode's payments."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import Payment
from mpesa_bridge.core.payments.search import PaymentSearch
from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.core.projects import Project
from mpesa_bridge.storage.db import Database
from mpesa_bridge.storage.payment_search import SqlPaymentSearch
from mpesa_bridge.storage.payments import PAYMENTS

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
SHOP, OTHER = "prj_01dashsearch", "prj_01dashother"
STATUSES = list(PaymentStatus)
PHONES = ["254708374149", "254711000001", "254722000002"]


def make_payment(
    n: int, *, project_id: str = SHOP, mode: str = "test", at: datetime | None = None, **over: Any
) -> Payment:
    created = at if at is not None else T0 + timedelta(minutes=37 * (n // 3))  # three share each instant
    status = STATUSES[n % len(STATUSES)]
    fields: dict[str, Any] = {
        "id": new_id("pay", created),
        "project_id": project_id,
        "mode": mode,
        "status": status,
        "amount": [10, 250, 250, 1000, 5][n % 5],  # equal amounts on purpose: the id breaks ties
        "phone": PHONES[n % 3],
        "account_reference": f"INV{n:03d}" if n % 4 else f"ORD{n:03d}",
        "description": "Goods",
        "metadata": {},
        "business_short_code": "174379",
        "party_b": "174379",
        "transaction_type": "CustomerPayBillOnline",
        "daraja_environment": "sandbox",
        "callback_token_hash": hashlib.sha256(f"{project_id}{mode}{n}".encode()).hexdigest(),
        "created_at": created,
        "updated_at": created,
        "mpesa_receipt_number": f"QK{n:08d}" if status is PaymentStatus.SUCCEEDED else None,
        "needs_attention": n % 7 == 0,
    }
    fields.update(over)
    return Payment(**fields)


async def seed(db: Database, payments: list[Payment]) -> None:
    async with db.write() as uow:
        for project_id in (SHOP, OTHER):
            await uow.projects.add(Project(id=project_id, name=project_id, created_at=T0))
        await PAYMENTS.insert(uow.connection, payments)


def shop_payments() -> list[Payment]:
    mine = [make_payment(n) for n in range(60)]
    # The same references, phones, receipts and amounts elsewhere: another project, another mode.
    others = [make_payment(n, project_id=OTHER, mpesa_receipt_number=f"QX{n:08d}") for n in range(15)]
    live = [make_payment(n, mode="live", mpesa_receipt_number=f"QL{n:08d}") for n in range(15)]
    return mine + others + live


async def collect(db: Database, q: PaymentSearch) -> list[str]:
    """Every page of `q`, following the cursors: the ids in the order shown."""
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(100):
        async with db.read() as uow:
            page = await SqlPaymentSearch(uow.connection).search(_with(q, cursor=cursor))
        assert len(page.items) <= q.limit
        seen += [p.id for p in page.items]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor
    raise AssertionError("the cursors never ended")


def _with(q: PaymentSearch, **changes: Any) -> PaymentSearch:
    fields = {name: getattr(q, name) for name in PaymentSearch.__dataclass_fields__ if name != "after"}
    fields.update(changes)
    return PaymentSearch(**fields)


def expected(payments: list[Payment], q: PaymentSearch, match: Callable[[Payment], bool]) -> list[str]:
    mine = [p for p in payments if p.project_id == q.project_id and p.mode == q.mode and match(p)]
    key: Callable[[Payment], Any] = (lambda p: (p.amount, p.id)) if q.by_amount else (lambda p: p.id)
    return [p.id for p in sorted(mine, key=key, reverse=q.descending)]


T_MID = T0 + timedelta(hours=6)
T_END = T0 + timedelta(hours=9)
CASES: dict[str, tuple[dict[str, Any], Callable[[Payment], bool]]] = {
    "everything": ({}, lambda p: True),
    "one status": ({"statuses": ("succeeded",)}, lambda p: p.status is PaymentStatus.SUCCEEDED),
    "statuses": (
        {"statuses": ("failed", "pending", "unknown")},
        lambda p: p.status in (PaymentStatus.FAILED, PaymentStatus.PENDING, PaymentStatus.UNKNOWN),
    ),
    "all statuses": ({"statuses": tuple(STATUSES)}, lambda p: True),
    "created from": ({"created_from": T_MID}, lambda p: p.created_at >= T_MID),
    "created before": ({"created_before": T_MID}, lambda p: p.created_at < T_MID),
    "created window": (
        {"created_from": T0 + timedelta(hours=2), "created_before": T_END},
        lambda p: T0 + timedelta(hours=2) <= p.created_at < T_END,
    ),
    "phone": ({"phone": "0711 000 001"}, lambda p: p.phone == "254711000001"),
    "amount min": ({"amount_min": 250}, lambda p: p.amount >= 250),
    "amount max": ({"amount_max": 250}, lambda p: p.amount <= 250),
    "amount range": ({"amount_min": 10, "amount_max": 250}, lambda p: 10 <= p.amount <= 250),
    "attention": ({"needs_attention": True}, lambda p: p.needs_attention),
    "no attention": ({"needs_attention": False}, lambda p: not p.needs_attention),
    "reference prefix": ({"text": "ORD"}, lambda p: p.account_reference.startswith("ORD")),
    "reference prefix narrow": ({"text": "INV01"}, lambda p: p.account_reference.startswith("INV01")),
    "receipt any case": ({"text": "qk00000002"}, lambda p: p.mpesa_receipt_number == "QK00000002"),
    "combined": (
        {
            "statuses": ("succeeded", "failed", "expired"),
            "amount_min": 10,
            "amount_max": 1000,
            "created_from": T0 + timedelta(hours=1),
            "created_before": T_END,
        },
        lambda p: (
            p.status in (PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.EXPIRED)
            and 10 <= p.amount <= 1000
            and T0 + timedelta(hours=1) <= p.created_at < T_END
        ),
    ),
}


@pytest.mark.parametrize("sort", ["-created", "created", "-amount", "amount"])
async def test_every_filter_and_sort_pages_through_exactly_the_matching_rows(database: Database, sort: str) -> None:
    payments = shop_payments()
    await seed(database, payments)

    for name, (filters, match) in CASES.items():
        q = PaymentSearch(project_id=SHOP, mode="test", sort=sort, limit=4, **filters)
        want = expected(payments, q, match)
        got = await collect(database, q)
        assert got == want, name
        assert want or name in {"receipt any case"}, f"{name}: the case matches nothing"


async def test_text_finds_a_payment_by_its_id(database: Database) -> None:
    payments = shop_payments()
    await seed(database, payments)
    target = payments[17]

    assert await collect(database, PaymentSearch(project_id=SHOP, mode="test", text=target.id)) == [target.id]
    # Another tenant's id names nothing here.
    foreign = payments[61]
    assert await collect(database, PaymentSearch(project_id=SHOP, mode="test", text=foreign.id)) == []


async def test_equal_sort_keys_are_neither_skipped_nor_repeated(database: Database) -> None:
    # 25 payments created at one instant with one amount: only the id orders them.
    same = [make_payment(n, at=T0, amount=100) for n in range(25)]
    await seed(database, same)
    ids = sorted(p.id for p in same)

    for sort in ("-created", "created", "-amount", "amount"):
        got = await collect(database, PaymentSearch(project_id=SHOP, mode="test", sort=sort, limit=3))
        assert got == (ids[::-1] if sort.startswith("-") else ids), sort
        # A batch size that divides the count exactly ends on a full batch and one empty read.
        async with database.read() as uow:
            reader = SqlPaymentSearch(uow.connection)
            streamed = [p.id async for p in reader.iter_all(PaymentSearch(project_id=SHOP, mode="test", sort=sort), 5)]
        assert streamed == got, sort


async def test_iter_all_streams_every_match_in_order(database: Database) -> None:
    payments = shop_payments()
    await seed(database, payments)
    q = PaymentSearch(project_id=SHOP, mode="test", sort="-amount", statuses=("succeeded", "failed"), limit=2)

    async with database.read() as uow:
        got = [p async for p in SqlPaymentSearch(uow.connection).iter_all(q, batch=7)]

    want = expected(payments, q, lambda p: p.status in (PaymentStatus.SUCCEEDED, PaymentStatus.FAILED))
    assert [p.id for p in got] == want
    assert all(isinstance(p, Payment) and p.project_id == SHOP for p in got)


async def test_another_project_or_mode_never_appears(database: Database) -> None:
    payments = shop_payments()
    await seed(database, payments)

    for project_id, mode, count in ((SHOP, "test", 60), (OTHER, "test", 15), (SHOP, "live", 15), (OTHER, "live", 0)):
        got = await collect(database, PaymentSearch(project_id=project_id, mode=mode, limit=50))
        found = {p.id: p for p in payments if p.id in set(got)}
        assert len(got) == count
        assert {(p.project_id, p.mode) for p in found.values()} <= {(project_id, mode)}

    # The other tenants' receipts, by text, find nothing here; their own tenant finds them.
    assert await collect(database, PaymentSearch(project_id=SHOP, mode="test", text="QX00000002")) == []
    assert await collect(database, PaymentSearch(project_id=SHOP, mode="test", text="QL00000002")) == []
    assert len(await collect(database, PaymentSearch(project_id=OTHER, mode="test", text="QX00000002"))) == 1


async def test_a_cursor_of_another_sort_is_refused(database: Database) -> None:
    await seed(database, [make_payment(n) for n in range(5)])
    async with database.read() as uow:
        page = await SqlPaymentSearch(uow.connection).search(PaymentSearch(project_id=SHOP, mode="test", limit=2))
    assert page.next_cursor is not None
    PaymentSearch(project_id=SHOP, mode="test", cursor=page.next_cursor)  # valid for its own sort
    with pytest.raises(InvalidRequest) as refused:
        PaymentSearch(project_id=SHOP, mode="test", sort="amount", cursor=page.next_cursor)
    assert refused.value.param == "cursor"
