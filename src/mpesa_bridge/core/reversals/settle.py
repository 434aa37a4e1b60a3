"""Settling a reversal: the one place its status becomes final, with the payment and the event.

Callers hold the reversal's lock (and this function locks the payment); they save the reversal.
A Result (`core.reversals.results`) settles it; so may a Transaction Status answer for an
`unknown` one, by calling `settle_reversal` with `source="status_query"` — the hook left for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import PAYMENT, OutboxEvent, PaymentEvidence
from mpesa_bridge.core.payments.public import payment_public
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
    """sending/sent -> unknown: we cannot tell whether the money moved. Never re-sent."""
    if reversal.status not in (ReversalStatus.SENDING, ReversalStatus.SENT):
        return False
    reversal.status = ReversalStatus.UNKNOWN
    reversal.failure_code = reason
    reversal.updated_at = at
    return True
