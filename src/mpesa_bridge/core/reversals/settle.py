"""Settling a reversal: the one place its status becomes final, with the payment and the event.

Callers hold the reversal's lock (and this function locks the payment); they save the reversal.
A Result (`core.reversals.results`) settles it; so does a Transaction Status Result about an
`unknown` (or long-silent `sent`) one, through `settle_by_status`:

    Result 0, TransactionStatus Completed, same amount        -> succeeded (its receipt: ReceiptNo)
    Result 0, TransactionStatus Cancelled/Declined/Expired/…  -> failed (declined)
    Result 0, any other TransactionStatus (still in progress) -> unchanged: asked again on the backoff
    "no such transaction" (25)                                -> failed only after `not_found_limit`
                                                                 such answers, spaced by the backoff
    anything else (2001, …), another transaction, amount      -> unchanged (logged by the caller)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import PAYMENT, OutboxEvent, PaymentEvidence
from mpesa_bridge.core.payments.public import payment_public
from mpesa_bridge.core.payouts.policy import PayoutPolicy
from mpesa_bridge.core.payouts.ports import StatusResult
from mpesa_bridge.core.payouts.result_codes import NOT_FOUND_CODES
from mpesa_bridge.core.ports import UnitOfWork
from mpesa_bridge.core.reversals.entity import REVERSAL, Reversal, ReversalEventType, ReversalStatus
from mpesa_bridge.core.reversals.public import reversal_public


@dataclass(frozen=True)
class ReversalOutcome:
    succeeded: bool
    result_code: str | None
    result_desc: str | None
    failure_code: str | None = None
    receipt: str | None = None
    source: str = "result"  # "result", "status_query", "push" (refused when sent)
    callback_id: str | None = None


async def settle_reversal(uow: UnitOfWork, reversal: Reversal, outcome: ReversalOutcome, at: datetime) -> bool:
    """Make an open reversal final; False (nothing changes) when it is final already."""
    if reversal.status.is_final:
        return False
    reversal.result_code = outcome.result_code
    reversal.result_desc = outcome.result_desc
    reversal.completed_at = at
    reversal.updated_at = at
    reversal.next_query_at = None  # nothing left to ask
    if outcome.succeeded:
        reversal.status = ReversalStatus.SUCCEEDED
        reversal.receipt = outcome.receipt
        reversal.failure_code = reversal.failure_message = None
        await _payment_reversed(uow, reversal, outcome, at)
    else:
        reversal.status = ReversalStatus.FAILED
        reversal.failure_code = outcome.failure_code or "reversal_failed"
        reversal.failure_message = outcome.result_desc or reversal.failure_code
        await uow.events.add(_event(reversal, ReversalEventType.FAILED, REVERSAL, reversal.id, at))
    return True


async def _payment_reversed(uow: UnitOfWork, reversal: Reversal, outcome: ReversalOutcome, at: datetime) -> None:
    payment = await uow.payments.lock(reversal.payment_id)
    if payment is None:  # pragma: no cover - a reversal is made for an existing payment
        return
    payment.reversal_id = reversal.id
    payment.reversed_at = at
    payment.updated_at = at
    await uow.payments.save(payment)
    await uow.evidence.add(
        PaymentEvidence(
            id=new_id("evd", at),
            payment_id=payment.id,
            source="reversal",
            created_at=at,
            verdict="reversed",
            result_code=outcome.result_code,
            result_desc=outcome.result_desc,
            callback_id=outcome.callback_id,
            note=f"{reversal.id} {reversal.receipt or ''}".strip(),
        )
    )
    event = _event(reversal, ReversalEventType.PAYMENT_REVERSED, PAYMENT, payment.id, at)
    event.data = {"object": payment_public(payment), "reversal": reversal_public(reversal)}
    await uow.events.add(event)


def _event(reversal: Reversal, event_type: str, subject_type: str, subject_id: str, at: datetime) -> OutboxEvent:
    return OutboxEvent(
        id=new_id("evt", at),
        project_id=reversal.project_id,
        mode=reversal.mode,
        type=event_type,
        subject_type=subject_type,
        subject_id=subject_id,
        data={"object": reversal_public(reversal)},
        created_at=at,
    )


def mark_reversal_unknown(reversal: Reversal, reason: str, at: datetime) -> bool:
    """sending/sent -> unknown: we cannot tell whether the money moved. Never re-sent. With its
    OriginatorConversationID known, Transaction Status is asked at once (`core.reversals.reconcile`);
    without it (the answer to the request was lost) nothing can name it to Daraja: a person settles it."""
    if reversal.status not in (ReversalStatus.SENDING, ReversalStatus.SENT):
        return False
    reversal.status = ReversalStatus.UNKNOWN
    reversal.failure_code = reason
    reversal.updated_at = at
    reversal.next_query_at = at if reversal.originator_conversation_id else None
    return True


# TransactionStatus values that end a transaction without it completing (daraja.md §9).
_NOT_COMPLETED = frozenset({"cancelled", "declined", "expired", "failed"})


async def settle_by_status(
    uow: UnitOfWork, reversal: Reversal, result: StatusResult, at: datetime, policy: PayoutPolicy
) -> str:
    """Apply a Transaction Status Result to the locked reversal (see the table above); what was done."""
    if reversal.status.is_final:
        return "already_settled"
    looked_up = result.looked_up_originator_id
    if result.result_code == "0":
        if looked_up and reversal.originator_conversation_id and looked_up != reversal.originator_conversation_id:
            return "mismatch"
        status = (result.transaction_status or "").strip().lower()
        if result.completed:
            if result.amount is not None and result.amount != reversal.amount:
                return "amount_mismatch"
            outcome = ReversalOutcome(
                True, result.result_code, result.result_desc[:500], receipt=result.receipt, source="status_query"
            )
            await settle_reversal(uow, reversal, outcome, at)
            return "succeeded"
        if status in _NOT_COMPLETED:
            message = f"Transaction Status: {result.transaction_status}"
            outcome = ReversalOutcome(
                False, result.result_code, message, failure_code="declined", source="status_query"
            )
            await settle_reversal(uow, reversal, outcome, at)
            return "failed"
        return "in_progress"
    if result.result_code in NOT_FOUND_CODES:
        reversal.not_found_count += 1
        reversal.updated_at = at
        if reversal.not_found_count >= policy.not_found_limit:
            # Daraja has said, several times and over time, that it never received this request.
            message = "Daraja has no transaction with this reversal's OriginatorConversationID"
            outcome = ReversalOutcome(
                False, result.result_code, message, failure_code="not_found_at_daraja", source="status_query"
            )
            await settle_reversal(uow, reversal, outcome, at)
            return "failed_not_found"
        return "not_found"
    return "unchanged"


def next_query(reversal: Reversal, at: datetime, policy: PayoutPolicy) -> None:
    """Count a query sent about the reversal and plan the next one (if its Result never comes)."""
    reversal.query_attempts += 1
    reversal.next_query_at = at + timedelta(seconds=policy.backoff(reversal.query_attempts))
    reversal.updated_at = at
