"""The matching engine: which open expected payment, checkout session or payment link a C2B
payment pays. Pure functions over values; the service reads the candidates and saves the result.

Rules (docs/c2b.md, "Matching"):
- The reference is the customer's typed `BillRefNumber`, compared normalised: case, spaces and the
  separators - _ . / # ignored ("inv 001" and "INV-001" pay "INV001").
- A match needs the same reference and an amount the candidate takes (its fixed amount, or within
  its range). An expected payment with a phone also needs a compatible payer: Daraja sends no
  number, only a masked one (v2, `2547 ***** 126`: its first and last digits must agree) or its
  SHA-256 (v1: the hash must be the phone's).
- Expected payments come first (oldest first), then checkout sessions, then payment links.
- No match, and the reference was already paid (an expected payment or checkout session of the same
  reference already paid by a C2B payment): the payment is a duplicate of that earlier one, left
  unmatched for a person to see.
- The unmatched go to the review queue, with suggestions: candidates that agree on the reference
  but not the amount or phone, or on the amount with a reference a typo away.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from mpesa_bridge.core.c2b.entity import Candidate, MatchTarget, Suggestion

_IGNORED = re.compile(r"[\s\-_./#]+")
_ORDER = {MatchTarget.EXPECTED_PAYMENT: 0, MatchTarget.CHECKOUT_SESSION: 1, MatchTarget.PAYMENT_LINK: 2}
SUGGESTIONS_MAX = 5


def normalise_reference(reference: str) -> str:
    """The form references are compared in: upper case, without whitespace and the separators
    customers drop or add when typing an account number (- _ . / #)."""
    return _IGNORED.sub("", reference).upper()


def phone_compatible(phone: str | None, msisdn: str, msisdn_kind: str) -> bool:
    """Whether the payer Daraja describes may be `phone` (254…); True when either is unknown."""
    if not phone or not msisdn or msisdn_kind == "empty":
        return True
    if msisdn_kind == "hashed":
        return hashlib.sha256(phone.encode()).hexdigest() == msisdn.lower()
    if msisdn_kind == "plain":
        return phone == msisdn
    parts = [p for p in re.split(r"[^0-9]+", msisdn) if p]
    if not parts:
        return True
    head, tail = parts[0], parts[-1] if len(parts) > 1 else ""
    return phone.startswith(head) and phone.endswith(tail)


@dataclass(frozen=True)
class PaymentFacts:
    """What matching knows of a C2B payment."""

    reference_key: str
    amount: int
    msisdn: str
    msisdn_kind: str


@dataclass(frozen=True)
class MatchResult:
    candidate: Candidate | None
    duplicate_of: str | None = None  # the earlier C2B payment that already paid this reference


def find_match(payment: PaymentFacts, candidates: Iterable[Candidate]) -> MatchResult:
    """The candidate `payment` pays, else whether it repeats a reference already paid."""
    same_reference = [c for c in candidates if normalise_reference(c.reference) == payment.reference_key]
    if not payment.reference_key:
        return MatchResult(None)
    open_ones = sorted(
        (c for c in same_reference if c.paid_by is None),
        key=lambda c: (_ORDER[c.type], c.created_at is None, c.created_at, c.id),
    )
    for candidate in open_ones:
        if candidate.takes(payment.amount) and phone_compatible(candidate.phone, payment.msisdn, payment.msisdn_kind):
            return MatchResult(candidate)
    paid = sorted((c for c in same_reference if c.paid_by is not None), key=lambda c: c.paid_by or "")
    return MatchResult(None, duplicate_of=paid[0].paid_by if paid else None)


def suggest(payment: PaymentFacts, candidates: Iterable[Candidate], limit: int = SUGGESTIONS_MAX) -> list[Suggestion]:
    """Near matches for the review queue, best first: never a candidate already paid."""
    found: list[Suggestion] = []
    for candidate in candidates:
        if candidate.paid_by is not None:
            continue
        reasons: list[str] = []
        score = 0
        key = normalise_reference(candidate.reference)
        if key == payment.reference_key and key:
            score += 50
            reasons.append("same_reference")
        elif _near(key, payment.reference_key):
            score += 30
            reasons.append("similar_reference")
        if candidate.takes(payment.amount):
            score += 40
            reasons.append("same_amount")
        if candidate.phone and phone_compatible(candidate.phone, payment.msisdn, payment.msisdn_kind):
            score += 10
            reasons.append("same_phone")
        if reasons and reasons != ["same_phone"]:
            found.append(Suggestion(candidate, score, tuple(reasons)))
    found.sort(key=lambda s: (-s.score, _ORDER[s.candidate.type], s.candidate.id))
    return found[:limit]


def _near(a: str, b: str) -> bool:
    """A typo away: edit distance at most 2 (references are at most 20 characters)."""
    if not a or not b or abs(len(a) - len(b)) > 2:
        return False
    return _distance(a, b) <= 2


def _distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]
