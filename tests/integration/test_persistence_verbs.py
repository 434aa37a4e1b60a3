"""Explicit persistence (issue 10 part 1): lookups return values, Daraja's ids are adopted by one
conditional UPDATE, and a read unit of work refuses to write. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from mpesa_bridge.core.callbacks.stk import StkHandler
from mpesa_bridge.core.clock import ManualClock
from mpesa_bridge.core.payments.entity import EventType, InboundCallback, Payment
from mpesa_bridge.core.payments.outcomes import write_event
from mpesa_bridge.core.payments.policy import ReconcilePolicy
from mpesa_bridge.core.payments.status import Evidence, PaymentStatus
from mpesa_bridge.core.payments.stk import PaymentService
from mpesa_bridge.core.ports import PushAccepted
from mpesa_bridge.core.projects import Project
from mpesa_bridge.storage.db import Database, ReadOnlyTransaction
from tests.integration.test_callbacks_inbox import success_body

T0 = datetime(2026, 11, 26, 7, 20, tzinfo=UTC)
PHONE = "254708374149"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _payment(n: int, **overrides: object) -> Payment:
    fields: dict[str, object] = {
        "id": f"pay_01persist{n:04d}",
        "project_id": "prj_01persist",
        "mode": "test",
        "status": PaymentStatus.PENDING,
        "amount": 500,
        "phone": PHONE,
        "account_reference": "INV1",
        "description": "Payment",
        "metadata": {},
        "business_short_code": "174379",
        "party_b": "174379",
        "transaction_type": "CustomerPayBillOnline",
        "daraja_environment": "sandbox",
        "callback_token_hash": _hash(f"tok_{n}"),
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(overrides)
    return Payment(**fields)  # type: ignore[arg-type]


async def _seed(db: Database, *payments: Payment) -> None:
    async with db.write() as uow:
        await uow.projects.add(Project(id="prj_01persist", name="Shop", created_at=T0))
        for payment in payments:
            await uow.payments.add(payment)


async def _current(db: Database, payment_id: str) -> Payment:
    async with db.read() as uow:
        payment = await uow.payments.find(payment_id)
    assert payment is not None
    return payment


async def test_lock_by_callback_tokens_returns_the_payments_by_token(database: Database) -> None:
    one, two = _payment(1), _payment(2)
    await _seed(database, one, two)

    async with database.write() as uow:
        found = await uow.payments.lock_by_callback_tokens([_hash("tok_2"), _hash("tok_1"), _hash("tok_x")])

    assert {token: payment.id for token, payment in found.items()} == {
        _hash("tok_1"): one.id,
        _hash("tok_2"): two.id,
    }


async def test_adopt_daraja_ids_fills_what_the_push_answer_brings(database: Database) -> None:
    await _seed(database, _payment(1))
    at = T0 + timedelta(seconds=2)

    async with database.write() as uow:
        adopted = await uow.payments.adopt_daraja_ids("pay_01persist0001", "m-push", "ws_CO_push", at)

    assert adopted is not None
    assert (adopted.merchant_request_id, adopted.checkout_request_id, adopted.updated_at) == (
        "m-push",
        "ws_CO_push",
        at,
    )
    stored = await _current(database, "pay_01persist0001")
    assert (stored.merchant_request_id, stored.checkout_request_id) == ("m-push", "ws_CO_push")
    assert stored.status is PaymentStatus.PENDING


async def test_adopt_daraja_ids_of_no_payment_is_none(database: Database) -> None:
    async with database.write() as uow:
        assert await uow.payments.adopt_daraja_ids("pay_01nobody", "m", "ws_CO", T0) is None


async def test_a_callback_applied_before_the_push_answer_keeps_its_ids_and_status(database: Database) -> None:
    """The callback can land (and be applied) before `_after_push` records Daraja's answer: the
    answer then fills nothing in and changes no status."""
    await _seed(database, _payment(1))
    callback = InboundCallback(
        id="cb_01persist0001",
        kind="stk",
        received_at=T0 + timedelta(seconds=5),
        body=success_body("ws_CO_from_callback", amount=500.0),
        token_hash=_hash("tok_1"),
    )
    async with database.write() as uow:
        await uow.callbacks.add_many([callback])
    async with database.write() as uow:
        [locked] = await uow.callbacks.lock_many([callback.id])
        await StkHandler(ReconcilePolicy()).apply(uow, [locked], T0 + timedelta(seconds=6))

    service = PaymentService(
        database,
        daraja=None,  # type: ignore[arg-type]
        projects=None,  # type: ignore[arg-type]
        clock=ManualClock(T0 + timedelta(seconds=7)),
        callback_url=lambda token: token,
    )
    answered = await service._after_push(
        "pay_01persist0001", accepted=PushAccepted(merchant_request_id="m-late", checkout_request_id="ws_CO_late")
    )

    for payment in (answered, await _current(database, "pay_01persist0001")):
        assert payment.checkout_request_id == "ws_CO_from_callback"
        assert payment.merchant_request_id == "29115-34620561-1"
        assert payment.status is PaymentStatus.SUCCEEDED
        assert payment.evidence is Evidence.CALLBACK
        assert payment.mpesa_receipt_number == "SKL4X9Q2ZB"


@pytest.mark.parametrize("verb", ["payments.add", "projects.add", "callbacks.add_many", "an outbox event"])
async def test_a_read_unit_of_work_refuses_to_write(database: Database, verb: str) -> None:
    payment = _payment(1)
    await _seed(database)
    callback = InboundCallback(id="cb_01readonly", kind="stk", received_at=T0, body=b"{}", token_hash="x")
    with pytest.raises(ReadOnlyTransaction):
        async with database.read() as uow:
            if verb == "payments.add":
                await uow.payments.add(payment)  # type: ignore[attr-defined]
            elif verb == "projects.add":
                await uow.projects.add(Project(id="prj_01other", name="Other", created_at=T0))  # type: ignore[attr-defined]
            elif verb == "callbacks.add_many":
                await uow.callbacks.add_many([callback])  # type: ignore[attr-defined]
            else:  # added to the session, never flushed: it would vanish with the rollback
                await write_event(uow, payment, EventType.CREATED, T0)  # type: ignore[arg-type]

    async with database.read() as uow:
        assert await uow.payments.find(payment.id) is None
        assert await uow.projects.get("prj_01other") is None
        assert await uow.events.for_payment(payment.id) == []
