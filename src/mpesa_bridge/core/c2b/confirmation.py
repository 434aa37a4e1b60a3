"""C2B confirmations: the inbox's handler for kind `c2b_confirmation`, and matching a payment.

A confirmation is terminal money: M-Pesa has moved it and will not send it again. It is stored raw
first (the inbox); then, in the inbox's transaction, it becomes a `C2BPayment` — once per TransID
(a replay or a duplicate delivery is recorded `duplicate` and changes nothing) — and the matching
engine (`core.c2b.matching`) ties it to what it pays, in that same transaction: an expected payment
becomes paid, a checkout session complete (`checkout_session.completed`, as an STK success does),
a payment link counts it (`apply_match`). The same defences as STK callbacks hold:
- the token in its URL must be one we registered (we keep only its SHA-256): else `unknown_token`;
- the short code in the body must be the registration's: else `shortcode_mismatch`;
- a body we cannot read is `malformed`; one from an address off the allow-list is kept `flagged`
  by the route and never applied.
Flagged callbacks change nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mpesa_bridge.core.c2b.entity import (
    C2B_PAYMENT,
    PAYMENT_PREFIX,
    C2BEventType,
    C2BPayment,
    C2BStatus,
    Candidate,
    ExpectedStatus,
    MatchTarget,
)
from mpesa_bridge.core.c2b.matching import PaymentFacts, find_match, normalise_reference
from mpesa_bridge.core.c2b.ports import C2BBodyReader, IncomingC2B, MalformedC2B
from mpesa_bridge.core.c2b.public import payment_public
from mpesa_bridge.core.checkout.entity import CheckoutEventType
from mpesa_bridge.core.checkout.payments import session_event
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import InboundCallback, OutboxEvent
from mpesa_bridge.core.ports import UnitOfWork
from mpesa_bridge.core.projects import Mode, Tenant


class C2BConfirmationHandler:
    """Applies stored confirmations (`core.callbacks.handlers.CallbackHandler`)."""

    def __init__(self, read_body: C2BBodyReader) -> None:
        self._read = read_body

    async def apply(self, uow: UnitOfWork, callbacks: Sequence[InboundCallback], at: datetime) -> None:
        for callback in callbacks:
            callback.attempts += 1
            callback.processed_at = at
            callback.state, callback.flag_reason = await self._apply_one(uow, callback, at)

    async def _apply_one(self, uow: UnitOfWork, callback: InboundCallback, at: datetime) -> tuple[str, str | None]:
        try:
            body = self._read(callback.body)
        except MalformedC2B:
            return "flagged", "malformed"
        registration = await uow.c2b.registration_by_token(callback.token_hash)
        if registration is None:
            return "flagged", "unknown_token"
        if body.short_code != registration.short_code:
            return "flagged", "shortcode_mismatch"
        payment = new_payment(body, registration.project_id, registration.mode, registration.id, callback.id, at)
        if not await uow.c2b.add_payment(payment):
            return "duplicate", None
        await uow.events.add(event(payment, C2BEventType.RECEIVED, at))
        await auto_match(uow, payment, at)
        return "applied", None


class C2BValidationRecorder:
    """Kind `c2b_validation`: answered synchronously by the route (`core.c2b.validation`), which
    stores the row already settled. A row still `received` here (stored by a process that died
    before answering) only needs closing: Daraja has long since applied the ResponseType."""

    async def apply(self, uow: UnitOfWork, callbacks: Sequence[InboundCallback], at: datetime) -> None:
        for callback in callbacks:
            callback.attempts += 1
            callback.processed_at = at
            callback.state, callback.flag_reason = "recorded", "not_answered"


def new_payment(
    body: IncomingC2B, project_id: str, mode: str, registration_id: str, callback_id: str, at: datetime
) -> C2BPayment:
    return C2BPayment(
        id=new_id(PAYMENT_PREFIX, at),
        project_id=project_id,
        mode=mode,
        registration_id=registration_id,
        callback_id=callback_id,
        trans_id=body.trans_id,
        transaction_type=body.transaction_type,
        trans_time=body.trans_time,
        amount=body.amount,
        short_code=body.short_code,
        bill_ref_number=body.bill_ref_number,
        reference_key=normalise_reference(body.bill_ref_number),
        invoice_number=body.invoice_number,
        org_account_balance=body.org_account_balance,
        third_party_trans_id=body.third_party_trans_id,
        msisdn=body.msisdn,
        msisdn_kind=body.msisdn_kind,
        customer_name=body.customer_name,
        status=C2BStatus.UNMATCHED,
        matched_type=None,
        matched_id=None,
        matched_by=None,
        matched_at=None,
        duplicate_of=None,
        note=None,
        created_at=at,
        updated_at=at,
    )


def tenant_of(payment: C2BPayment) -> Tenant:
    return Tenant(payment.project_id, Mode(payment.mode))


def facts(payment: C2BPayment) -> PaymentFacts:
    return PaymentFacts(payment.reference_key, payment.amount, payment.msisdn, payment.msisdn_kind)


async def auto_match(uow: UnitOfWork, payment: C2BPayment, at: datetime) -> None:
    """Run the matching engine on a new payment (saved here either way). A candidate that stopped
    taking payments since it was read (a session completed or expired meanwhile, a link that took
    its last payment) leaves the payment unmatched, for a person to see."""
    candidates = await uow.c2b.candidates(tenant_of(payment), payment.reference_key, at)
    result = find_match(facts(payment), candidates)
    if result.candidate is not None and await apply_match(uow, payment, result.candidate, "auto", at):
        return
    payment.duplicate_of = result.duplicate_of
    await uow.c2b.save_payment(payment)


async def apply_match(uow: UnitOfWork, payment: C2BPayment, candidate: Candidate, by: str, at: datetime) -> bool:
    """Tie `payment` to `candidate`, with its events, in the caller's transaction: an expected
    payment becomes `paid`; a checkout session is completed as an STK success completes it
    (`checkout_session.completed`); a payment link counts it among its payments. False (nothing
    written) when the candidate no longer takes it: the expected payment or session is no longer
    open, or the link is inactive, expired or has all its `max_payments`."""
    tenant = tenant_of(payment)
    if candidate.type is MatchTarget.EXPECTED_PAYMENT:
        expected = await uow.c2b.lock_expected(tenant, candidate.id)
        if expected is None or expected.status is not ExpectedStatus.OPEN:
            return False
        expected.status, expected.c2b_payment_id = ExpectedStatus.PAID, payment.id
        expected.paid_at = expected.updated_at = at
        await uow.c2b.save_expected(expected)
    elif candidate.type is MatchTarget.CHECKOUT_SESSION:
        # One conditional UPDATE: a session completed (by STK or another C2B payment) or expired
        # since the candidates were read is not completed twice.
        session = await uow.checkout_sessions.complete_by_c2b(candidate.id, payment.id, at)
        if session is None:
            return False
        await uow.events.add(session_event(session, CheckoutEventType.COMPLETED, at))
    elif not await _link_takes_one_more(uow, tenant, candidate.id, at):
        return False
    payment.status = C2BStatus.MATCHED
    payment.matched_type, payment.matched_id, payment.matched_by, payment.matched_at = (
        candidate.type,
        candidate.id,
        by,
        at,
    )
    payment.updated_at = at
    await uow.c2b.save_payment(payment)
    await uow.events.add(event(payment, C2BEventType.MATCHED, at))
    return True


async def _link_takes_one_more(uow: UnitOfWork, tenant: Tenant, link_id: str, at: datetime) -> bool:
    """The rules a link's page applies before it opens a session (`PaymentLinkService`), read under
    the link's row lock so that two C2B payments racing for its last payment match one."""
    link = await uow.payment_links.lock(tenant, link_id)
    if link is None or not link.active or link.expired(at):
        return False
    if link.max_payments is None:
        return True
    return (await uow.payment_links.totals(link.id)).payments < link.max_payments


def event(payment: C2BPayment, event_type: str, at: datetime) -> OutboxEvent:
    return OutboxEvent(
        id=new_id("evt", at),
        project_id=payment.project_id,
        mode=payment.mode,
        type=event_type,
        subject_type=C2B_PAYMENT,
        subject_id=payment.id,
        data=payment_public(payment),
        created_at=at,
    )
