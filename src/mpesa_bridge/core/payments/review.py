"""A person's review of what the attention queue shows: "mark reviewed" with a note.

A payment flagged `needs_attention` (a late success after expiry, contradicting callbacks, an
`unknown` outcome) leaves the queue when someone marks it reviewed: the flag is cleared and a
`PaymentEvidence` row (source "review", verdict "reviewed", the reason it was flagged, who and
their note) is written in the same transaction — the payment's history keeps it for good. A
callback the inbox flagged or gave up on is reviewed the same way: its state becomes `reviewed`
(its `flag_reason` is kept), with an evidence row on its payment when it has one.

Reviewing changes no status: what the payment is stays what the evidence rules decided (ask
Daraja first, `PaymentService.refresh`, if it may be wrong).

Errors: `NotFound` (not the tenant's), `AlreadyReviewed` (nothing left to review: a second click).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.errors import BridgeError, InvalidRequest, NotFound
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import InboundCallback, Payment, PaymentEvidence
from mpesa_bridge.core.ports import UnitOfWork, UnitOfWorkFactory
from mpesa_bridge.core.projects import Tenant

REVIEW = "review"  # the evidence source
REVIEWED = "reviewed"  # the evidence verdict, and a reviewed callback's state
MAX_NOTE = 150  # the note with its author fits the evidence row's 200 characters
REVIEWABLE_CALLBACKS = ("flagged", "failed")


class AlreadyReviewed(BridgeError):
    code = "already_reviewed"


def _clean_note(note: str) -> str:
    note = " ".join(note.split())
    if not note:
        raise InvalidRequest("Say what you found or did, in a few words.", param="note")
    if len(note) > MAX_NOTE:
        raise InvalidRequest(f"Keep the note to {MAX_NOTE} characters.", param="note")
    return note


@dataclass(frozen=True)
class WhatWeKnow:
    """What the bridge holds about a flagged payment: its evidence rows and the raw callbacks."""

    evidence: Sequence[PaymentEvidence]
    callbacks: Sequence[InboundCallback]


class ReviewService:
    def __init__(self, db: UnitOfWorkFactory, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def what_we_know(self, payment_ids: Sequence[str]) -> dict[str, WhatWeKnow]:
        """Evidence and callbacks of each payment (ids the caller read from its tenant)."""
        found: dict[str, WhatWeKnow] = {}
        async with self._db.read() as uow:
            for payment_id in payment_ids:
                evidence = await uow.evidence.for_payment(payment_id)
                found[payment_id] = WhatWeKnow(evidence, await uow.callbacks.for_payment(payment_id))
        return found

    async def flagged_callbacks(self, tenant: Tenant, limit: int = 100) -> Sequence[InboundCallback]:
        async with self._db.read() as uow:
            return await uow.callbacks.needing_review(tenant, limit)

    async def review_payment(self, tenant: Tenant, payment_id: str, note: str, reviewer: str) -> Payment:
        """Clear the payment's flag and record the review, in one transaction."""
        note = _clean_note(note)
        now = self._clock.now()
        async with self._db.write() as uow:
            payment = await uow.payments.lock(payment_id)
            if payment is None or payment.project_id != tenant.project_id or payment.mode != tenant.mode.value:
                raise NotFound(f"No such payment: '{payment_id}'", param="id")
            if not payment.needs_attention:
                raise AlreadyReviewed("This payment needs no attention any more (someone reviewed it).")
            reason = payment.attention_reason
            payment.needs_attention, payment.attention_reason, payment.updated_at = False, None, now
            await uow.payments.save(payment)
            await self._evidence(uow, payment.id, reason, note, reviewer, None)
        return payment

    async def review_callback(self, tenant: Tenant, callback_id: str, note: str, reviewer: str) -> InboundCallback:
        """Take a flagged or failed callback out of the queue, with an evidence row on its payment."""
        note = _clean_note(note)
        async with self._db.read() as read:
            seen = await read.callbacks.get(tenant, callback_id)
        if seen is None:
            raise NotFound(f"No such callback: '{callback_id}'", param="id")
        async with self._db.write() as uow:
            locked = await uow.callbacks.lock_many([callback_id])
            if not locked:
                raise AlreadyReviewed("The inbox is working on this callback; try again in a moment.")
            callback = locked[0]
            if callback.state not in REVIEWABLE_CALLBACKS:
                raise AlreadyReviewed("This callback needs no attention any more (someone reviewed it).")
            reason = f"callback {callback.state}: {callback.flag_reason or callback.last_error or '?'}"
            callback.state = REVIEWED
            await uow.callbacks.save_many([callback])
            # The review is evidence on the payment it concerns; a payout's or a query's callback
            # (its `payment_id` names that subject, not a payment) is taken out of the queue only.
            if callback.payment_id is not None and await uow.payments.lock(callback.payment_id) is not None:
                await self._evidence(uow, callback.payment_id, reason, note, reviewer, callback.id)
        return callback

    async def _evidence(
        self, uow: UnitOfWork, payment_id: str, reason: str | None, note: str, reviewer: str, callback_id: str | None
    ) -> None:
        now = self._clock.now()
        await uow.evidence.add(
            PaymentEvidence(
                id=new_id("evd", now),
                payment_id=payment_id,
                source=REVIEW,
                created_at=now,
                verdict=REVIEWED,
                result_desc=reason,
                callback_id=callback_id,
                note=f"{reviewer[:48]}: {note}",
            )
        )
