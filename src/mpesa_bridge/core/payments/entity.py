"""The payment entity and the outbox/evidence records written beside it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mpesa_bridge.core.c2b.entity import C2B_PAYMENT
from mpesa_bridge.core.checkout.entity import CHECKOUT_SESSION
from mpesa_bridge.core.payments.status import Evidence, PaymentStatus
from mpesa_bridge.core.payouts.entity import PAYOUT
from mpesa_bridge.core.status_queries.entity import STATUS_QUERY


@dataclass(eq=False)
class Payment:
    """One STK Push collection. Amount is whole shillings; times are aware UTC."""

    id: str
    project_id: str
    mode: str
    status: PaymentStatus
    amount: int
    phone: str
    account_reference: str
    description: str
    metadata: dict[str, Any]
    business_short_code: str
    party_b: str
    transaction_type: str
    daraja_environment: str
    callback_token_hash: str
    created_at: datetime
    updated_at: datetime
    evidence: Evidence | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    result_code: str | None = None
    result_desc: str | None = None
    mpesa_receipt_number: str | None = None
    merchant_request_id: str | None = None
    checkout_request_id: str | None = None
    transaction_date: datetime | None = None
    completed_at: datetime | None = None
    needs_attention: bool = False
    attention_reason: str | None = None
    query_attempts: int = 0
    next_query_at: datetime | None = None
    awaiting_confirmation: bool = False  # confirm-by-query: a success callback waits for STK Query
    client_secret_hash: str | None = None  # SHA-256 of the client secret; None for older payments
    checkout_session_id: str | None = None  # the checkout session that started it (core.checkout)
    reversal_id: str | None = None  # its latest reversal (core.reversals), whatever became of it
    reversed_at: datetime | None = None  # set once a reversal succeeded; the status stays `succeeded`
    # The client secret in clear: set only on the payment `PaymentService.create` returns (after its
    # events were written), never stored, never loaded — so only the creation answer carries it.
    client_secret: str | None = field(default=None, repr=False, compare=False)


class EventType:
    CREATED = "payment.created"
    SUCCEEDED = "payment.succeeded"
    FAILED = "payment.failed"
    CANCELLED = "payment.cancelled"
    EXPIRED = "payment.expired"
    UNKNOWN = "payment.unknown"

    ALL = (CREATED, SUCCEEDED, FAILED, CANCELLED, EXPIRED, UNKNOWN)


STATUS_EVENT = {
    PaymentStatus.SUCCEEDED: EventType.SUCCEEDED,
    PaymentStatus.FAILED: EventType.FAILED,
    PaymentStatus.CANCELLED: EventType.CANCELLED,
    PaymentStatus.EXPIRED: EventType.EXPIRED,
    PaymentStatus.UNKNOWN: EventType.UNKNOWN,
}


PAYMENT = "payment"
# Subject types by the prefix of their ids: a new aggregate (payouts, checkout sessions) adds
# its line here and writes events with its own type; the outbox, the delivery order, the
# realtime rooms and the events API's `subject=` filter need nothing else.
SUBJECT_TYPES = {"pay_": PAYMENT, "cs_": CHECKOUT_SESSION}
SUBJECT_TYPES["c2b_"] = C2B_PAYMENT  # customers' till and paybill payments (docs/c2b.md)
SUBJECT_TYPES["rev_"] = "reversal"  # core.reversals
SUBJECT_TYPES["bq_"] = "balance_query"  # core.balances
SUBJECT_TYPES["po_"] = PAYOUT
SUBJECT_TYPES["tsq_"] = STATUS_QUERY


@dataclass(frozen=True)
class Subject:
    """What an event is about: a type and an id ("payment", "pay_…")."""

    type: str
    id: str

    @classmethod
    def of_id(cls, subject_id: str) -> Subject | None:
        """The subject an id names, by its prefix; None for an id of no known subject type."""
        prefix, sep, _ = subject_id.partition("_")
        subject_type = SUBJECT_TYPES.get(prefix + sep) if sep else None
        return None if subject_type is None else cls(subject_type, subject_id)


@dataclass(eq=False)
class OutboxEvent:
    """An event to tell the merchant; written in the same transaction as the state change.

    Keyed by its subject (type + id): webhook deliveries go out in order per (endpoint, subject),
    and live streams and Socket.IO rooms follow one subject. Both None for events about no
    subject (webhooks' endpoint.disabled)."""

    id: str
    project_id: str
    mode: str
    type: str
    subject_type: str | None
    subject_id: str | None
    data: dict[str, Any]
    created_at: datetime
    late_correction: bool = False

    @property
    def subject(self) -> Subject | None:
        if self.subject_type is None or self.subject_id is None:
            return None
        return Subject(self.subject_type, self.subject_id)


@dataclass(eq=False)
class PaymentEvidence:
    """Every outcome report we received about a payment, applied or not: the audit trail."""

    id: str
    payment_id: str
    source: str  # "push", "callback", "query", "timeout"
    created_at: datetime
    verdict: str
    result_code: str | None = None
    result_desc: str | None = None
    callback_id: str | None = None
    note: str | None = None


@dataclass(eq=False)
class InboundCallback:
    """A callback exactly as it arrived: stored before anything else is done with it."""

    id: str
    kind: str
    received_at: datetime
    body: bytes
    token_hash: str
    source_ip: str | None = None
    # received -> applied | duplicate | recorded | flagged | confirming, or `failed` once the
    # handler has failed on it `inbox_max_attempts` times (core.callbacks.retry)
    state: str = "received"
    flag_reason: str | None = None
    payment_id: str | None = None
    checkout_request_id: str | None = None
    processed_at: datetime | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None  # None: due at once; set after a failed attempt
    last_error: str | None = None  # the class of the last failure: never its message
    headers: dict[str, str] = field(default_factory=dict)
