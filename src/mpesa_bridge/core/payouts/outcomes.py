"""Changing a payout's status: the one place it happens, through `status.can_transition`, with the
outbox event in the same transaction. These functions change the payout they are given; the use
case that locked it saves it."""

from __future__ import annotations

from datetime import datetime

from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import OutboxEvent
from mpesa_bridge.core.payouts.entity import PAYOUT, STATUS_EVENT, Payout
from mpesa_bridge.core.payouts.public import payout_public
from mpesa_bridge.core.payouts.status import PayoutStatus, can_transition, is_correction
from mpesa_bridge.core.ports import UnitOfWork


async def write_event(uow: UnitOfWork, payout: Payout, event_type: str, at: datetime, *, late: bool = False) -> None:
    await uow.events.add(
        OutboxEvent(
            id=new_id("evt", at),
            project_id=payout.project_id,
            mode=payout.mode,
            type=event_type,
            subject_type=PAYOUT,
            subject_id=payout.id,
            data={"object": payout_public(payout)},
            created_at=at,
            late_correction=late,
        )
    )


def flag(payout: Payout, reason: str, at: datetime) -> None:
    payout.needs_attention = True
    payout.attention_reason = reason
    payout.updated_at = at


async def move(
    uow: UnitOfWork,
    payout: Payout,
    new: PayoutStatus,
    at: datetime,
    *,
    code: str | None = None,
    message: str | None = None,
    result_code: str | None = None,
    result_desc: str | None = None,
    receipt: str | None = None,
    recipient_name: str | None = None,
) -> bool:
    """Move `payout` to `new` if the state machine allows it, and announce it. False: not allowed
    (nothing changed). The caller holds the payout's lock."""
    if not can_transition(payout.status, new):
        return False
    late = is_correction(payout.status, new)
    payout.status = new
    payout.updated_at = at
    if result_code is not None:
        payout.result_code, payout.result_desc = result_code, result_desc
    payout.receipt = receipt or payout.receipt
    payout.recipient_name = recipient_name or payout.recipient_name
    if new is PayoutStatus.SUCCEEDED:
        payout.failure_code = payout.failure_message = None
    elif new in (PayoutStatus.FAILED, PayoutStatus.UNKNOWN, PayoutStatus.REJECTED):
        payout.failure_code = code
        payout.failure_message = message or result_desc or code
    if new.is_final:
        payout.completed_at = at
        payout.next_query_at = None
    if late:
        flag(payout, "late_success", at)
    await write_event(uow, payout, STATUS_EVENT[new], at, late=late)
    return True
