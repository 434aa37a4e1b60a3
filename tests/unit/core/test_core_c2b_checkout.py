"""A C2B payment matched to a checkout session completes it, over the shared in-memory ports: in the
matching transaction, with `checkout_session.completed`, once; the amount rules hold; an STK success
that comes after is flagged paid twice, as when two STK payments race."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from mpesa_bridge.core.c2b.entity import C2BStatus, MatchTarget
from mpesa_bridge.core.checkout.entity import CheckoutSession, CheckoutStatus
from mpesa_bridge.core.checkout.payments import PAID_TWICE
from mpesa_bridge.core.payments.outcomes import record_outcome
from mpesa_bridge.core.projects import Mode, Tenant
from tests.fixtures.memory import MemoryDatabase
from tests.unit.core.test_core_c2b_rules import MODE, PROJECT, T0, apply, body, callback, expect, setup
from tests.unit.core.test_core_checkout_payments import SUCCESS, session, start


def open_session(db: MemoryDatabase, **changes: Any) -> CheckoutSession:
    opened = session(**{"project_id": PROJECT, "mode": MODE, "reference": "ORDER-7", "amount": 500, **changes})
    db.committed.checkout_sessions[opened.id] = opened
    return opened


def paid(amount: int, reference: str, trans_id: str) -> Any:
    return callback(body(amount, reference, trans_id), kind="c2b_confirmation")


def by_trans_id(db: MemoryDatabase) -> dict[str, Any]:
    return {p.trans_id: p for p in db.committed.c2b_payments.values()}


def session_events(db: MemoryDatabase) -> list[str]:
    return [e.type for e in db.committed.events if e.subject_id == "cs_1"]


async def test_a_paybill_payment_with_the_reference_completes_the_session_once() -> None:
    db, _ = setup()
    open_session(db)
    await apply(db, paid(500, "order 7", "TX00000001"))
    await apply(db, paid(500, "ORDER7", "TX00000002"), at=T0 + timedelta(minutes=1))

    first, second = by_trans_id(db)["TX00000001"], by_trans_id(db)["TX00000002"]
    done = db.committed.checkout_sessions["cs_1"]
    assert done.status is CheckoutStatus.COMPLETE and done.completed_at == T0
    assert done.paid_c2b_payment_id == first.id and done.paid_payment_id is None
    assert (first.status, first.matched_type, first.matched_id) == (
        C2BStatus.MATCHED,
        MatchTarget.CHECKOUT_SESSION,
        "cs_1",
    )
    # The second payment of the reference: shown as a second payment, left for a person.
    assert second.status is C2BStatus.UNMATCHED and second.duplicate_of == first.id
    assert session_events(db) == ["checkout_session.completed"]
    [completed] = [e for e in db.committed.events if e.type == "checkout_session.completed"]
    assert completed.data["object"]["paid_c2b_payment_id"] == first.id
    assert completed.data["object"]["status"] == "complete"


async def test_the_amount_rules_hold() -> None:
    db, _ = setup()
    open_session(db)
    await apply(db, paid(499, "ORDER-7", "TX00000001"))
    assert by_trans_id(db)["TX00000001"].status is C2BStatus.UNMATCHED
    assert db.committed.checkout_sessions["cs_1"].status is CheckoutStatus.OPEN

    ranged = open_session(db, id="cs_2", amount=None, amount_min=100, amount_max=300, reference="GIFT")
    await apply(db, paid(301, "gift", "TX00000002"))
    await apply(db, paid(250, "gift", "TX00000003"))
    assert by_trans_id(db)["TX00000002"].status is C2BStatus.UNMATCHED
    assert db.committed.checkout_sessions[ranged.id].paid_c2b_payment_id == by_trans_id(db)["TX00000003"].id
    assert session_events(db) == []


async def test_an_expired_session_is_not_completed() -> None:
    db, _ = setup()
    open_session(db, expires_at=T0)
    await apply(db, paid(500, "ORDER-7", "TX00000001"))
    assert by_trans_id(db)["TX00000001"].status is C2BStatus.UNMATCHED
    assert db.committed.checkout_sessions["cs_1"].status is CheckoutStatus.OPEN and db.committed.events[-1].type == (
        "c2b_payment.received"
    )


async def test_an_expected_payment_of_the_same_reference_comes_first() -> None:
    db, _ = setup()
    open_session(db)
    expect(db, "exp_1", "ORDER-7", 500)
    await apply(db, paid(500, "ORDER-7", "TX00000001"))
    assert by_trans_id(db)["TX00000001"].matched_id == "exp_1"
    assert db.committed.checkout_sessions["cs_1"].status is CheckoutStatus.OPEN


async def test_a_session_with_a_payment_in_flight_is_completed_and_that_payments_success_is_flagged() -> None:
    db, _ = setup()
    open_session(db)
    in_flight = await start(db, 1)  # claims cs_1: an STK prompt on the customer's phone
    await apply(db, paid(500, "ORDER-7", "TX00000001"))
    done = db.committed.checkout_sessions["cs_1"]
    assert done.status is CheckoutStatus.COMPLETE and done.active_payment_id is None

    async with db.write() as uow:  # the customer also entered the PIN: the money moved twice
        payment = await uow.payments.lock(in_flight.id)
        assert payment is not None
        await record_outcome(uow, payment, SUCCESS, T0 + timedelta(minutes=1))
        await uow.payments.save(payment)
    late = db.payment(in_flight.id)
    assert late.needs_attention and late.attention_reason == PAID_TWICE
    assert session_events(db) == ["checkout_session.completed"]


async def test_a_link_opened_session_is_not_a_candidate() -> None:
    """A link's sessions all carry its slug: a payment of it pays the link, not a visitor's session."""
    db, _ = setup()
    open_session(db, payment_link_id="plink_1")
    async with db.read() as uow:
        assert await uow.c2b.candidates(Tenant(PROJECT, Mode(MODE)), "ORDER7", T0) == []
