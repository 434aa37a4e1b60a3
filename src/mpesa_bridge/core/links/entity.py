"""The payment link entity (`plink_…`): a reusable, shareable way to take payments.

A link is not paid itself: each customer who sends the form of its public page (`/l/{slug}`) gets a
checkout session for the link's amount (`core.checkout`), and that session takes one payment. The link only says
whether a new session may be opened (`active`, `expires_at`, `max_payments`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

PAYMENT_LINK = "payment_link"
ID_PREFIX = "plink"
COLLECTABLE = ("name", "reference")  # optional fields the hosted page may ask the customer for


@dataclass(eq=False)
class PaymentLink:
    """A fixed `amount`, or None with `amount_min`..`amount_max` for an amount the customer chooses."""

    id: str
    project_id: str
    mode: str
    slug: str  # unique across every project: the public URL's last part
    title: str
    description: str
    amount: int | None
    amount_min: int | None
    amount_max: int | None
    active: bool
    expires_at: datetime | None
    max_payments: int | None
    collect: list[str]
    metadata: dict[str, Any]
    url: str  # the public page (`/l/{slug}` under the bridge's public URL)
    created_at: datetime
    updated_at: datetime

    @property
    def customer_chooses_amount(self) -> bool:
        return self.amount is None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True)
class LinkTotals:
    """What a link has collected: its checkout sessions' succeeded payments, and the C2B payments
    (paybill/till, the link's slug as account number) matched to it."""

    payments: int
    amount: int


class SlugTaken(Exception):
    """`PaymentLinkRepository.add` found the new link's slug (or id) in use: draw another and retry."""
