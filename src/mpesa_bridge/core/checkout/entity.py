"""The checkout session entity: one payment a browser may take, with a client secret.

    open ──► complete   (a payment of the session succeeded: at most one, by construction; or a C2B
      │                 payment to the paybill/till with its reference was matched to it)
      │
      └──► expired      (its time ran out, or the merchant expired it, with no payment in flight)

A session holds at most one payment in flight (`active_payment_id`): the database takes that
claim with one conditional UPDATE, so two browsers racing start one STK push, not two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

CHECKOUT_SESSION = "checkout_session"
ID_PREFIX = "cs"


class CheckoutStatus(StrEnum):
    OPEN = "open"
    COMPLETE = "complete"
    EXPIRED = "expired"


class CheckoutEventType:
    COMPLETED = "checkout_session.completed"
    EXPIRED = "checkout_session.expired"

    ALL = (COMPLETED, EXPIRED)


@dataclass(eq=False)
class CheckoutSession:
    """A fixed `amount`, or None with `amount_min`..`amount_max` for an amount the customer chooses."""

    id: str
    project_id: str
    mode: str
    status: CheckoutStatus
    amount: int | None
    amount_min: int | None
    amount_max: int | None
    reference: str
    description: str
    metadata: dict[str, Any]
    success_url: str | None
    cancel_url: str | None
    url: str  # the hosted payment page (`/pay/{id}` under the bridge's public URL)
    expires_at: datetime
    client_secret_hash: str
    created_at: datetime
    updated_at: datetime
    active_payment_id: str | None = None  # the payment in flight: the session's claim
    last_payment_id: str | None = None  # the latest payment started, whatever became of it
    paid_payment_id: str | None = None  # the payment that completed the session
    completed_at: datetime | None = None
    payment_link_id: str | None = None  # the payment link that opened it (migration 0015)
    client_side: bool = False  # opened with a publishable key, for an amount the browser chose (0016)
    # The C2B payment (`c2b_…`, paybill or till) that completed it instead of a payment (0023).
    paid_c2b_payment_id: str | None = None
    # In clear only on the answer that creates the session: never stored, never loaded.
    client_secret: str | None = field(default=None, repr=False, compare=False)

    @property
    def customer_chooses_amount(self) -> bool:
        return self.amount is None
