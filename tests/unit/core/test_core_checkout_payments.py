"""A checkout session's payments over the shared in-memory ports: the claim, and what a payment's
outcome does to its session through `record_outcome` (the one place a status changes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mpesa_bridge.core.checkout.entity import CheckoutSession, CheckoutStatus
from mpesa_bridge.core.checkout.payments import PAID_AFTER_EXPIRY, PAID_TWICE, claim_for_payment
from mpesa_bridge.core.checkout.validation import check_pay_amount
from mpesa_bridge.core.errors import Conflict, InvalidRequest
from mpesa_bridge.core.payments.entity import Payment
from mpesa_bridge.core.payments.outcomes import Outcome, mark_unknown, record_outcome
from mpesa_bridge.core.payments.status import Evidence, PaymentStatus
from tests.fixtures.memory import MemoryDatabase
from tests.unit.core.test_core_reconcile_pacing import make_payment

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
SUCCESS = Outcome(PaymentStatus.SUCCEEDED, Evidence.CALLBACK, "paid", result_code="0", receipt="RCPT000001")
FAILURE = Outcome(PaymentStatus.FAILED, Evidence.CALLBACK, "insufficient_funds", result_code="1")
TIMEOUT = Outcome(PaymentStatus.EXPIRED, Evidence.OWN_TIMEOUT, "no_response")


def session(**changes: object) -> CheckoutSession:
    fields: dict[str, object] = {
        "id": "cs_1",
        "project_id": "prj_01test",
        "mode": "test",
        "status": CheckoutStatus.OPEN,
        "amount": 10,
        "amount_min": None,
        "amount_max": None,
        "reference": "INV",
        "description": "Payment",
        "metadata": {},
        "success_url": None,
        "cancel_url": None,
        "url": "http://bridge.test/pay/cs_1",
        "expires_at": T0 + timedelta(hours=1),
        "client_secret_hash": "0" * 64,
        "created_at": T0,
        "updated_at": T0,
        **changes,
    }
    return CheckoutSession(**fields)  # type: ignore[arg-type]


def new_payment(n: int) -> Payment:
    payment = make_payment(n)
    payment.created_at = payment.updated_at = T0
    return payment


async def start(db: MemoryDatabase, n: int) -> Payment:
    """What PaymentService.create does in its inserting transaction, for a session's payment."""
    payment = new_payment(n)
    async with db.write() as uow:
        await claim_for_payment(uow, "cs_1", payment)
        await uow.payments.add(payment)
    return payment


async def settle(db: MemoryDatabase, payment_id: str, outcome: Outcome) -> None:
    async with db.write() as uow:
        payment = await uow.payments.lock(payment_id)
        assert payment is not None
        await record_outcome(uow, payment, outcome, T0 + timedelta(minutes=1))
        await uow.payments.save(payment)


def session_events(db: MemoryDatabase) -> list[str]:
    return [e.type for e in db.committed.events if e.subject_id == "cs_1"]


async def test_one_payment_in_flight_then_a_retry_after_a_failure_completes_it_once() -> None:
    db = MemoryDatabase()
    db.committed.checkout_sessions["cs_1"] = session()
    first = await start(db, 1)
    assert first.checkout_session_id == "cs_1"
    with pytest.raises(Conflict) as refused:
        await start(db, 2)
    assert refused.value.code == "checkout_session_payment_in_progress"
    assert set(db.committed.payments) == {"pay_00001"}  # the refused one rolled back

    await settle(db, first.id, FAILURE)
    assert db.committed.checkout_sessions["cs_1"].active_payment_id is None
    retry = await start(db, 3)
    await settle(db, retry.id, SUCCESS)

    done = db.committed.checkout_sessions["cs_1"]
    assert done.status is CheckoutStatus.COMPLETE and done.paid_payment_id == retry.id
    assert session_events(db) == ["checkout_session.completed"]
    with pytest.raises(Conflict) as paid:
        await start(db, 4)
    assert paid.value.code == "checkout_session_complete"


async def test_a_late_success_after_another_payment_completed_the_session_is_flagged() -> None:
    db = MemoryDatabase()
    db.committed.checkout_sessions["cs_1"] = session()
    first = await start(db, 1)
    await settle(db, first.id, TIMEOUT)  # our own timeout frees the session
    second = await start(db, 2)
    await settle(db, second.id, SUCCESS)

    await settle(db, first.id, SUCCESS)  # Safaricom's callback: the money moved after all

    late = db.payment(first.id)
    assert late.status is PaymentStatus.SUCCEEDED and late.needs_attention
    assert late.attention_reason == PAID_TWICE
    assert db.committed.checkout_sessions["cs_1"].paid_payment_id == second.id
    assert session_events(db) == ["checkout_session.completed"]


async def test_a_success_for_an_expired_session_is_flagged() -> None:
    db = MemoryDatabase()
    db.committed.checkout_sessions["cs_1"] = session()
    first = await start(db, 1)
    await settle(db, first.id, TIMEOUT)
    async with db.write() as uow:
        assert await uow.checkout_sessions.expire("cs_1", T0, due_only=False) is not None
    await settle(db, first.id, SUCCESS)
    assert db.payment(first.id).attention_reason == PAID_AFTER_EXPIRY


async def test_an_unknown_payment_keeps_the_claim() -> None:
    db = MemoryDatabase()
    db.committed.checkout_sessions["cs_1"] = session()
    first = await start(db, 1)
    async with db.write() as uow:
        payment = await uow.payments.lock(first.id)
        assert payment is not None and await mark_unknown(uow, payment, "daraja_no_answer", T0)
        await uow.payments.save(payment)
    with pytest.raises(Conflict) as refused:  # the money may have moved: no second prompt yet
        await start(db, 2)
    assert refused.value.code == "checkout_session_payment_in_progress"
    assert db.committed.checkout_sessions["cs_1"].active_payment_id == first.id


async def test_a_session_past_its_expiry_takes_no_payment() -> None:
    db = MemoryDatabase()
    db.committed.checkout_sessions["cs_1"] = session(expires_at=T0 + timedelta(seconds=1))
    payment = new_payment(1)
    payment.created_at = T0 + timedelta(seconds=5)
    with pytest.raises(Conflict) as expired:
        async with db.write() as uow:
            await claim_for_payment(uow, "cs_1", payment)
    assert expired.value.code == "checkout_session_expired"


@pytest.mark.parametrize(
    ("changes", "amount", "expected"),
    [
        ({}, None, 10),
        ({}, 10, 10),
        ({"amount": None, "amount_min": 5, "amount_max": 50}, 5, 5),
        ({"amount": None, "amount_min": 5, "amount_max": 50}, 50, 50),
    ],
)
def test_the_amount_to_collect(changes: dict[str, object], amount: object, expected: int) -> None:
    assert check_pay_amount(session(**changes), amount) == expected


@pytest.mark.parametrize(
    ("changes", "amount", "code"),
    [
        ({}, 11, "amount_fixed"),
        ({"amount": None, "amount_min": 5, "amount_max": 50}, 4, "amount_out_of_range"),
        ({"amount": None, "amount_min": 5, "amount_max": 50}, 51, "amount_out_of_range"),
        ({"amount": None, "amount_min": 5, "amount_max": 50}, True, "invalid_amount"),
        ({"amount": None, "amount_min": 5, "amount_max": 50}, None, "parameter_missing"),
    ],
)
def test_amounts_a_customer_may_not_pay(changes: dict[str, object], amount: object, code: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_pay_amount(session(**changes), amount)
    assert (refused.value.code, refused.value.param) == (code, "amount")
