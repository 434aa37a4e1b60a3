"""`ReviewService` over the shared in-memory ports: what "mark reviewed" writes, that it saves what
it changes (the memory ports refuse a forgotten save), and that nothing is written when refused."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from mpesa_bridge.core.clock import ManualClock
from mpesa_bridge.core.errors import InvalidRequest, NotFound
from mpesa_bridge.core.payments.entity import InboundCallback, Payment
from mpesa_bridge.core.payments.review import AlreadyReviewed, ReviewService
from mpesa_bridge.core.projects import Mode, Tenant
from tests.fixtures.memory import MemoryDatabase
from tests.unit.core.test_core_reconcile_pacing import make_payment

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
SHOP = Tenant("prj_1", Mode.TEST)


def flagged(n: int = 1) -> Payment:
    payment = make_payment(n, project_id="prj_1")
    return dataclasses.replace(payment, mode="test", needs_attention=True, attention_reason="late_success")


def callback(payment: Payment, state: str = "flagged") -> InboundCallback:
    return InboundCallback(
        id="cb_1",
        kind="stk",
        received_at=T0,
        body=b"{}",
        token_hash=payment.callback_token_hash,
        state=state,
        flag_reason="contradicts_settled_state",
        payment_id=payment.id,
    )


async def test_a_review_clears_the_flag_and_writes_its_evidence_in_one_commit() -> None:
    payment = flagged()
    db = MemoryDatabase([payment])
    reviews = ReviewService(db, ManualClock(T0))
    await reviews.review_payment(SHOP, payment.id, "  seen in the\nstatement ", "dev@example.com")
    stored = db.payment(payment.id)
    assert not stored.needs_attention and stored.attention_reason is None and stored.updated_at == T0
    (row,) = db.evidence
    assert (row.source, row.verdict, row.result_desc) == ("review", "reviewed", "late_success")
    assert row.note == "dev@example.com: seen in the statement"
    assert db.commits == 1
    with pytest.raises(AlreadyReviewed):
        await reviews.review_payment(SHOP, payment.id, "again", "dev@example.com")
    assert len(db.evidence) == 1


@pytest.mark.parametrize(
    ("tenant", "note", "error"),
    [
        (Tenant("prj_other", Mode.TEST), "fine", NotFound),
        (Tenant("prj_1", Mode.LIVE), "fine", NotFound),
        (SHOP, "   ", InvalidRequest),
        (SHOP, "x" * 151, InvalidRequest),
    ],
)
async def test_a_refused_review_writes_nothing(tenant: Tenant, note: str, error: type[Exception]) -> None:
    payment = flagged()
    db = MemoryDatabase([payment])
    with pytest.raises(error):
        await ReviewService(db, ManualClock(T0)).review_payment(tenant, payment.id, note, "dev@example.com")
    assert db.payment(payment.id).needs_attention and db.evidence == []


async def test_a_flagged_callback_is_reviewed_with_evidence_on_its_payment() -> None:
    payment = flagged()
    db = MemoryDatabase([payment], callbacks=[callback(payment)])
    reviews = ReviewService(db, ManualClock(T0))
    assert [c.id for c in await reviews.flagged_callbacks(SHOP)] == ["cb_1"]
    assert await reviews.flagged_callbacks(Tenant("prj_other", Mode.TEST)) == []
    await reviews.review_callback(SHOP, "cb_1", "a duplicate", "dev@example.com")
    assert db.callback("cb_1").state == "reviewed" and db.callback("cb_1").flag_reason == "contradicts_settled_state"
    (row,) = db.evidence
    assert row.callback_id == "cb_1" and row.result_desc == "callback flagged: contradicts_settled_state"
    assert await reviews.flagged_callbacks(SHOP) == []
    assert db.payment(payment.id).needs_attention  # the payment's own flag is its own review
    with pytest.raises(AlreadyReviewed):
        await reviews.review_callback(SHOP, "cb_1", "again", "dev@example.com")
    with pytest.raises(NotFound):
        await reviews.review_callback(Tenant("prj_other", Mode.TEST), "cb_1", "mine?", "x@example.com")
