"""A checkout session's payments: the claim a new payment takes, and what its outcome does.

A session is paid at most once by construction. A payment of a session is inserted in the same
transaction as a conditional UPDATE that makes it the session's one payment in flight
(`claim_for_payment`); the UPDATE fails when another payment holds the session, so two browsers
racing make one payment and one STK prompt. When a payment's status changes
(`core.payments.outcomes`, the one place that happens), `follow_payment` runs in that same
transaction: a success completes the session (`checkout_session.completed`), any other final
status frees it for a retry. A success for a session that is no longer open — another payment
completed it, or it expired meanwhile — is kept and flagged: money that moved twice is never hidden.
"""

from __future__ import annotations

from datetime import datetime

from mpesa_bridge.core.checkout.entity import CHECKOUT_SESSION, CheckoutEventType, CheckoutSession, CheckoutStatus
from mpesa_bridge.core.checkout.public import session_public
from mpesa_bridge.core.errors import Conflict, NotFound
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import OutboxEvent, Payment
from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.core.ports import UnitOfWork

PAID_TWICE = "checkout_session_paid_twice"
PAID_AFTER_EXPIRY = "checkout_session_expired"


async def claim_for_payment(uow: UnitOfWork, session_id: str, payment: Payment) -> None:
    """Make `payment` the session's payment in flight, inside the transaction that inserts it, or
    refuse (409) with why: a payment in flight, the session complete, or expired."""
    payment.checkout_session_id = session_id
    if await uow.checkout_sessions.claim(session_id, payment.id, payment.created_at):
        return
    session = await uow.checkout_sessions.find(session_id)
    if session is None:  # pragma: no cover - the caller read it a moment ago
        raise NotFound(f"No such checkout session: '{session_id}'", param="id")
    raise refusal(session, payment.created_at)


def refusal(session: CheckoutSession, now: datetime) -> Conflict:
    """Why this session takes no payment now (its state as read)."""
    if session.status is CheckoutStatus.COMPLETE:
        return Conflict("This checkout session is already paid.", code="checkout_session_complete")
    if session.status is CheckoutStatus.EXPIRED or session.expires_at <= now:
        return Conflict("This checkout session has expired.", code="checkout_session_expired")
    return Conflict(
        "A payment for this checkout session is in progress; wait for it to finish.",
        code="checkout_session_payment_in_progress",
    )


async def follow_payment(uow: UnitOfWork, payment: Payment, at: datetime) -> None:
    """A payment's status just changed (in this transaction): complete or free its session."""
    session_id = payment.checkout_session_id
    if session_id is None or not payment.status.is_final:
        return  # unknown keeps the claim: the money may have moved, so no second prompt yet
    if payment.status is not PaymentStatus.SUCCEEDED:
        await uow.checkout_sessions.release(session_id, payment.id, at)
        return
    session = await uow.checkout_sessions.complete(session_id, payment.id, at)
    if session is not None:
        await uow.events.add(session_event(session, CheckoutEventType.COMPLETED, at))
        return
    current = await uow.checkout_sessions.find(session_id)
    expired = current is not None and current.status is CheckoutStatus.EXPIRED
    payment.needs_attention = True
    payment.attention_reason = PAID_AFTER_EXPIRY if expired else PAID_TWICE
    payment.updated_at = at


def session_event(session: CheckoutSession, event_type: str, at: datetime) -> OutboxEvent:
    return OutboxEvent(
        id=new_id("evt", at),
        project_id=session.project_id,
        mode=session.mode,
        type=event_type,
        subject_type=CHECKOUT_SESSION,
        subject_id=session.id,
        data={"object": session_public(session)},
        created_at=at,
    )
