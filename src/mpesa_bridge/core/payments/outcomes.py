"""Applying an outcome report to a payment: the one place a payment's status changes.

Every report is run through `status.decide`, written to the evidence log, and — when the
status changes — written as an outbox event in the same transaction. These functions change the
payment they are given; the use case that loaded it saves it (`uow.payments.save`) once it has
made all its changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mpesa_bridge.core.checkout.payments import follow_payment
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import (
    PAYMENT,
    STATUS_EVENT,
    EventType,
    OutboxEvent,
    Payment,
    PaymentEvidence,
)
from mpesa_bridge.core.payments.public import payment_public
from mpesa_bridge.core.payments.status import Evidence, Observation, PaymentStatus, Verdict, decide
from mpesa_bridge.core.ports import UnitOfWork

EVIDENCE_SOURCE = {
    Evidence.CALLBACK: "callback",
    Evidence.DARAJA_ANSWER: "query",
    Evidence.OWN_TIMEOUT: "timeout",
}


@dataclass(frozen=True)
class Outcome:
    """What one report says happened, with Daraja's details."""

    status: PaymentStatus
    evidence: Evidence
    reason: str
    result_code: str | None = None
    result_desc: str | None = None
    receipt: str | None = None
    transaction_date: datetime | None = None
    source: str | None = None  # overrides the evidence's default source name (e.g. "push")
    callback_id: str | None = None


async def write_event(
    uow: UnitOfWork, payment: Payment, event_type: str, at: datetime, *, late_correction: bool = False
) -> OutboxEvent:
    event = OutboxEvent(
        id=new_id("evt", at),
        project_id=payment.project_id,
        mode=payment.mode,
        type=event_type,
        subject_type=PAYMENT,
        subject_id=payment.id,
        data={"object": payment_public(payment)},
        created_at=at,
        late_correction=late_correction,
    )
    await uow.events.add(event)
    return event


async def record_outcome(uow: UnitOfWork, payment: Payment, outcome: Outcome, at: datetime) -> Verdict:
    """Decide, apply, log and announce one outcome report. The caller holds the payment's lock."""
    verdict = decide(payment.status, payment.evidence, Observation(outcome.status, outcome.evidence))
    note = None
    if verdict in (Verdict.APPLY, Verdict.CORRECT):
        _settle(payment, outcome, at)
        if verdict is Verdict.CORRECT:
            note = "late correction: stronger evidence shows the money moved"
            _flag(payment, "late_success", at)
        await write_event(uow, payment, STATUS_EVENT[payment.status], at, late_correction=verdict is Verdict.CORRECT)
        await follow_payment(uow, payment, at)  # its checkout session, if any: completed or freed
    elif verdict is Verdict.CONFIRM:
        payment.evidence = outcome.evidence
        payment.mpesa_receipt_number = payment.mpesa_receipt_number or outcome.receipt
        payment.transaction_date = payment.transaction_date or outcome.transaction_date
        payment.updated_at = at
    elif verdict is Verdict.CONFLICT:
        note = f"contradicts {payment.status} set by {EVIDENCE_SOURCE[payment.evidence or Evidence.OWN_TIMEOUT]}"
        _flag(payment, f"contradicting_{EVIDENCE_SOURCE[outcome.evidence]}", at)
    if payment.status.is_final and outcome.evidence > Evidence.OWN_TIMEOUT:
        # Daraja has answered for a final payment: nothing is left to ask it (ends the re-checks
        # of an expiry on our own timeout, core.payments.reconcile).
        payment.next_query_at = None
    await uow.evidence.add(
        PaymentEvidence(
            id=new_id("evd", at),
            payment_id=payment.id,
            source=outcome.source or EVIDENCE_SOURCE[outcome.evidence],
            created_at=at,
            verdict=str(verdict),
            result_code=outcome.result_code,
            result_desc=outcome.result_desc,
            callback_id=outcome.callback_id,
            note=note,
        )
    )
    return verdict


def _settle(payment: Payment, outcome: Outcome, at: datetime) -> None:
    payment.status = outcome.status
    payment.evidence = outcome.evidence
    payment.result_code = outcome.result_code
    payment.result_desc = outcome.result_desc
    succeeded = outcome.status is PaymentStatus.SUCCEEDED
    payment.failure_code = None if succeeded else outcome.reason
    payment.failure_message = None if succeeded else (outcome.result_desc or outcome.reason)
    payment.mpesa_receipt_number = outcome.receipt or payment.mpesa_receipt_number
    payment.transaction_date = outcome.transaction_date or payment.transaction_date
    payment.completed_at = at
    payment.next_query_at = None
    payment.updated_at = at


def _flag(payment: Payment, reason: str, at: datetime) -> None:
    payment.needs_attention = True
    payment.attention_reason = reason
    payment.updated_at = at


def flag_payment(payment: Payment, reason: str, at: datetime) -> None:
    _flag(payment, reason, at)


async def mark_unknown(uow: UnitOfWork, payment: Payment, reason: str, at: datetime) -> bool:
    """pending -> unknown: we could not learn Daraja's answer. Announced, then reconciled."""
    if payment.status is not PaymentStatus.PENDING:
        return False
    payment.status = PaymentStatus.UNKNOWN
    payment.failure_code = reason
    payment.query_attempts = 0  # unknown payments follow their own, slower schedule from its start
    payment.updated_at = at
    if payment.checkout_request_id is None:
        # Nothing to query: only a late callback (matched through its token) or a person settles it.
        _flag(payment, "outcome_unknown", at)
    await write_event(uow, payment, EventType.UNKNOWN, at)
    return True
