"""The payment link as the API returns it."""

from __future__ import annotations

from typing import Any

from mpesa_bridge.core.links.entity import LinkTotals, PaymentLink
from mpesa_bridge.core.payments.public import iso


def link_public(link: PaymentLink, totals: LinkTotals | None = None) -> dict[str, Any]:
    """What the merchant's server (secret key) sees; `totals` on a single link's answers only
    (a list would need one sum per link)."""
    shown: dict[str, Any] = {
        "id": link.id,
        "object": "payment_link",
        "mode": link.mode,
        "slug": link.slug,
        "url": link.url,
        "title": link.title,
        "description": link.description,
        "amount": link.amount,
        "amount_min": link.amount_min,
        "amount_max": link.amount_max,
        "currency": "KES",
        "active": link.active,
        "expires_at": iso(link.expires_at),
        "max_payments": link.max_payments,
        "collect": list(link.collect),
        "metadata": link.metadata,
        "created_at": iso(link.created_at),
        "updated_at": iso(link.updated_at),
    }
    if totals is not None:
        shown["payments_succeeded"] = totals.payments
        shown["amount_collected"] = totals.amount
    return shown
