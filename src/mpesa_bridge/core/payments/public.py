"""The payment as the API returns it — and as webhooks and live events carry it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mpesa_bridge.core.payments.entity import OutboxEvent, Payment


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def payment_public(p: Payment) -> dict[str, Any]:
    shown = _payment_fields(p)
    if p.client_secret is not None:  # only on the answer to POST /v1/payments (see Payment.client_secret)
        shown["client_secret"] = p.client_secret
    return shown


def _payment_fields(p: Payment) -> dict[str, Any]:
    return {
        "id": p.id,
        "object": "payment",
        "mode": p.mode,
        "status": str(p.status),
        "amount": p.amount,
        "currency": "KES",
        "phone": p.phone,
        "account_reference": p.account_reference,
        "description": p.description,
        "metadata": p.metadata,
        "failure_code": p.failure_code,
        "failure_message": p.failure_message,
        "result_code": p.result_code,
        "result_desc": p.result_desc,
        "mpesa_receipt_number": p.mpesa_receipt_number,
        "merchant_request_id": p.merchant_request_id,
        "checkout_request_id": p.checkout_request_id,
        "business_short_code": p.business_short_code,
        "needs_attention": p.needs_attention,
        "attention_reason": p.attention_reason,
        "checkout_session_id": p.checkout_session_id,
        "reversal_id": p.reversal_id,
        "reversed_at": iso(p.reversed_at),
        "transaction_date": iso(p.transaction_date),
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
        "completed_at": iso(p.completed_at),
    }


def event_public(event: OutboxEvent) -> dict[str, Any]:
    """An event as webhooks, the events API and live streams carry it."""
    return {
        "id": event.id,
        "object": "event",
        "type": event.type,
        "created": iso(event.created_at),
        "mode": event.mode,
        "late_correction": event.late_correction,
        "data": event.data,
    }
