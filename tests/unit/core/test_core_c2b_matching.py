"""The C2B matching engine (`core.c2b.matching`): pure rules over values."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from mpesa_bridge.core.c2b.entity import Candidate, MatchTarget
from mpesa_bridge.core.c2b.matching import PaymentFacts, find_match, normalise_reference, phone_compatible, suggest

T0 = datetime(2026, 12, 5, 12, tzinfo=UTC)
PHONE = "254712345678"


def facts(reference: str, amount: int, msisdn: str = "2547 ***** 678", kind: str = "masked") -> PaymentFacts:
    return PaymentFacts(normalise_reference(reference), amount, msisdn, kind)


def expected(cid: str, reference: str, amount: int, **kw: object) -> Candidate:
    return Candidate(MatchTarget.EXPECTED_PAYMENT, cid, reference, amount, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("typed", "key"),
    [("inv 001", "INV001"), ("INV-001", "INV001"), (" Inv_0.01/#", "INV001"), ("", ""), ("a\tb", "AB")],
)
def test_references_are_compared_without_case_spaces_and_separators(typed: str, key: str) -> None:
    assert normalise_reference(typed) == key


def test_masked_hashed_and_plain_numbers_are_checked_against_the_phone() -> None:
    assert phone_compatible(PHONE, "2547 ***** 678", "masked")
    assert not phone_compatible(PHONE, "2547 ***** 679", "masked")
    assert not phone_compatible(PHONE, "2541 ***** 678", "masked")
    assert phone_compatible(PHONE, hashlib.sha256(PHONE.encode()).hexdigest(), "hashed")
    assert not phone_compatible(PHONE, hashlib.sha256(b"254700000000").hexdigest(), "hashed")
    assert phone_compatible(PHONE, PHONE, "plain") and not phone_compatible(PHONE, "254700000000", "plain")
    assert phone_compatible(None, "2547 ***** 000", "masked")  # no phone expected: anyone
    assert phone_compatible(PHONE, "", "empty")  # Daraja sent nothing: unknown, not a mismatch


def test_reference_and_amount_must_agree_and_expected_payments_come_first() -> None:
    session = Candidate(MatchTarget.CHECKOUT_SESSION, "cs_1", "INV-9", None, 100, 500)
    link = Candidate(MatchTarget.PAYMENT_LINK, "plink_1", "inv9", 300)
    first = expected("exp_1", "INV9", 300, created_at=T0)
    later = expected("exp_2", "inv 9", 300, created_at=T0 + timedelta(hours=1))
    assert find_match(facts("inv-9", 300), [link, session, later, first]).candidate == first
    assert find_match(facts("inv-9", 200), [link, session, first]).candidate == session  # in its range
    assert find_match(facts("inv-9", 600), [link, session, first]).candidate is None
    assert find_match(facts("INV-10", 300), [first]).candidate is None
    assert find_match(facts("", 300), [expected("exp_3", "", 300)]).candidate is None  # a till: no reference


def test_an_expected_phone_must_fit_the_payer() -> None:
    mine = expected("exp_1", "A1", 50, phone=PHONE)
    assert find_match(facts("A1", 50), [mine]).candidate == mine
    assert find_match(facts("A1", 50, "2547 ***** 111"), [mine]).candidate is None


def test_a_second_payment_for_a_reference_already_paid_is_a_duplicate_of_the_first() -> None:
    paid = expected("exp_1", "FEES", 1500, paid_by="c2b_first")
    result = find_match(facts("fees", 1500), [paid])
    assert result.candidate is None and result.duplicate_of == "c2b_first"
    # Another open expectation of the same reference takes it instead: not a duplicate then.
    again = expected("exp_2", "FEES", 1500)
    assert find_match(facts("fees", 1500), [paid, again]).candidate == again


def test_suggestions_rank_near_matches_and_skip_what_is_paid() -> None:
    same_ref = expected("exp_1", "ORDER-7", 900)
    typo = expected("exp_2", "ORDER-1", 500)
    same_amount = expected("exp_3", "ZZZ", 500)
    unrelated = expected("exp_4", "QQQ", 1)
    paid = expected("exp_5", "ORDER-7", 500, paid_by="c2b_x")
    found = suggest(facts("order-7", 500), [unrelated, same_amount, typo, same_ref, paid])
    assert [(s.candidate.id, s.reasons) for s in found] == [
        ("exp_2", ("similar_reference", "same_amount")),
        ("exp_1", ("same_reference",)),
        ("exp_3", ("same_amount",)),
    ]
    assert len(suggest(facts("X", 1), [expected(f"exp_{i}", "X", 2) for i in range(9)], limit=3)) == 3
