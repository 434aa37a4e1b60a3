"""The checkout session as the API returns it, as its events carry it, and as a browser sees it."""

from __future__ import annotations

from typing import Any

from mpesa_bridge.core.checkout.entity import CheckoutSession
from mpesa_bridge.core.payments.entity import Payment
from mpesa_bridge.core.payments.public import iso
from mpesa_bridge.core.phone import mask_phone


def session_public(s: CheckoutSession, payment: Payment | None = None) -> dict[str, Any]:
    """What the merchant's server (secret key), webhooks and the events API see."""
    shown = _client_fields(s, payment)
    shown["metadata"] = s.metadata
    if s.client_secret is not None:  # only on the answer that creates the session
        shown["client_secret"] = s.client_secret
    return shown


def session_for_client(s: CheckoutSession, payment: Payment | None = None) -> dict[str, Any]:
    """What a browser holding the client secret sees: no metadata (the merchant's own data)."""
    return _client_fields(s, payment)


def event_for_client(event: dict[str, Any]) -> dict[str, Any]:
    """A session's event as a browser holding its client secret may see it: the session inside it
    without `metadata`, as `session_for_client` shows it (the stream it follows uses this)."""
    data = event.get("data")
    if not isinstance(data, dict):
        return event
    shown = data.get("object")
    if not isinstance(shown, dict) or "metadata" not in shown:
        return event
    return {**event, "data": {**data, "object": {k: v for k, v in shown.items() if k != "metadata"}}}


def _client_fields(s: CheckoutSession, payment: Payment | None) -> dict[str, Any]:
    return {
        "id": s.id,
        "object": "checkout_session",
        "mode": s.mode,
        "status": str(s.status),
        "amount": s.amount,
        "amount_min": s.amount_min,
        "amount_max": s.amount_max,
        "currency": "KES",
        "reference": s.reference,
        "description": s.description,
        "url": s.url,
        "success_url": s.success_url,
        "cancel_url": s.cancel_url,
        "payment_in_flight": s.active_payment_id is not None,
        "paid_payment_id": s.paid_payment_id,
        "paid_c2b_payment_id": s.paid_c2b_payment_id,
        "payment_link_id": s.payment_link_id,
        "payment": payment_summary(payment) if payment is not None else None,
        "expires_at": iso(s.expires_at),
        "created_at": iso(s.created_at),
        "updated_at": iso(s.updated_at),
        "completed_at": iso(s.completed_at),
    }


def payment_summary(p: Payment) -> dict[str, Any]:
    """The session's latest payment, for the customer's screen: the phone masked."""
    return {
        "id": p.id,
        "status": str(p.status),
        "amount": p.amount,
        "phone": mask_phone(p.phone),
        "failure_code": p.failure_code,
        "failure_message": p.failure_message,
        "mpesa_receipt_number": p.mpesa_receipt_number,
        "created_at": iso(p.created_at),
    }
