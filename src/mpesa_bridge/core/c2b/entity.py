"""The C2B entities: settings per project mode, URL registrations per short code, validation
decisions, incoming payments (`c2b_…`) and the payments a merchant expects (`exp_…`).

An incoming payment's status (docs/c2b.md, "States"):

    unmatched ──► matched     (the matching engine, or a person from the review queue)
        │
        └──────► dismissed    (a person decided it needs no match: a tip, a test, refunded by hand)

A payment is never deleted and never merged: a customer who pays twice for one reference makes two
payments, the second `unmatched` with `duplicate_of` naming the first, so a person sees it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

C2B_PAYMENT = "c2b_payment"
PAYMENT_PREFIX = "c2b"
EXPECTED_PREFIX = "exp"
REGISTRATION_PREFIX = "c2breg"
VALIDATION_PREFIX = "c2bv"


class ValidationRule(StrEnum):
    """How the bridge answers Daraja's validation call for a project mode."""

    ACCEPT_ALL = "accept_all"
    KNOWN_REFERENCES = "known_references"  # an open expected payment, checkout session or active link
    MERCHANT = "merchant"  # ask the merchant's server, signed, within the deadline


class DefaultAction(StrEnum):
    """What the bridge answers when the merchant's server is late, errs or cannot be asked."""

    ACCEPT = "accept"
    REJECT = "reject"


class C2BStatus(StrEnum):
    UNMATCHED = "unmatched"
    MATCHED = "matched"
    DISMISSED = "dismissed"


class ExpectedStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    CANCELLED = "cancelled"


class MatchTarget(StrEnum):
    EXPECTED_PAYMENT = "expected_payment"
    CHECKOUT_SESSION = "checkout_session"
    PAYMENT_LINK = "payment_link"


class C2BEventType:
    RECEIVED = "c2b_payment.received"
    MATCHED = "c2b_payment.matched"
    DISMISSED = "c2b_payment.dismissed"
    ALL = (RECEIVED, MATCHED, DISMISSED)


# Which path decided a validation answer (`C2BValidation.decided_by`).
class DecidedBy(StrEnum):
    ACCEPT_ALL = "accept_all"
    KNOWN_ACCOUNT = "known_account"
    UNKNOWN_ACCOUNT = "unknown_account"
    MERCHANT = "merchant"
    MERCHANT_LATE = "merchant_late"  # no answer within the deadline: the project's default
    MERCHANT_ERROR = "merchant_error"  # an error, a refused URL or an unreadable answer: the default
    VALIDATION_OFF = "validation_off"  # the registration has validation switched off
    UNKNOWN_TOKEN = "unknown_token"  # no registration has this URL token: refused
    MALFORMED = "malformed"  # a body that is no C2B payload: refused
    SOURCE_REFUSED = "source_refused"  # not from an allowed address: refused


@dataclass(eq=False)
class C2BSettings:
    """A project mode's C2B rules. `secret_sealed` signs the requests to `merchant_url`."""

    project_id: str
    mode: str
    validation_rule: ValidationRule
    merchant_url: str | None
    default_action: DefaultAction
    secret_sealed: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(eq=False)
class C2BRegistration:
    """The URLs registered with Daraja for one short code. `token_hash` is the SHA-256 of the token
    in both URLs; `validation` False registers with validation answered "accept" at once."""

    id: str
    project_id: str
    mode: str
    short_code: str
    response_type: str  # Completed | Cancelled: what Daraja does when our answer is late
    validation: bool
    api_version: int
    token_hash: str
    validation_url: str
    confirmation_url: str
    status: str  # registered | failed
    failure: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(eq=False)
class C2BValidation:
    """One validation call and how it was answered (and by which path)."""

    id: str
    project_id: str | None
    mode: str | None
    registration_id: str | None
    callback_id: str
    trans_id: str | None
    short_code: str | None
    amount: int | None
    bill_ref_number: str | None
    accepted: bool
    result_code: str
    decided_by: DecidedBy
    latency_ms: int
    created_at: datetime


@dataclass(eq=False)
class C2BPayment:
    """A customer's payment to a till or paybill, from Daraja's confirmation. Terminal money."""

    id: str
    project_id: str
    mode: str
    registration_id: str
    callback_id: str
    trans_id: str
    transaction_type: str
    trans_time: datetime
    amount: int
    short_code: str
    bill_ref_number: str
    reference_key: str  # bill_ref_number normalised for matching
    invoice_number: str
    org_account_balance: str | None
    third_party_trans_id: str
    msisdn: str  # as Daraja sent it: masked (v2) or SHA-256 hex (v1)
    msisdn_kind: str
    customer_name: str
    status: C2BStatus
    matched_type: MatchTarget | None
    matched_id: str | None
    matched_by: str | None  # auto | manual
    matched_at: datetime | None
    duplicate_of: str | None  # an earlier payment for the same reference that was already matched
    note: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(eq=False)
class ExpectedPayment:
    """A payment the merchant tells the bridge to expect: matched by reference, amount and phone."""

    id: str
    project_id: str
    mode: str
    reference: str
    reference_key: str
    amount: int
    phone: str | None
    description: str
    metadata: dict[str, Any]
    status: ExpectedStatus
    c2b_payment_id: str | None
    paid_at: datetime | None
    cancelled_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Candidate:
    """Something a C2B payment may pay: an open expected payment, checkout session or active link."""

    type: MatchTarget
    id: str
    reference: str
    amount: int | None  # None: a range
    amount_min: int | None = None
    amount_max: int | None = None
    phone: str | None = None
    paid_by: str | None = None  # an expected payment or session already paid: the C2B payment that did
    created_at: datetime | None = None

    def takes(self, amount: int) -> bool:
        if self.amount is not None:
            return amount == self.amount
        return (self.amount_min or 1) <= amount <= (self.amount_max or amount)


@dataclass(frozen=True)
class Suggestion:
    candidate: Candidate
    score: int
    reasons: tuple[str, ...] = field(default_factory=tuple)
