"""The reversal as the API, webhooks and the dashboard show it."""

from __future__ import annotations

from typing import Any

from mpesa_bridge.core.payments.public import iso
from mpesa_bridge.core.reversals.entity import Reversal


def reversal_public(r: Reversal) -> dict[str, Any]:
    return {
        "id": r.id,
        "object": "reversal",
        "mode": r.mode,
        "payment_id": r.payment_id,
        "status": str(r.status),
        "amount": r.amount,
        "currency": "KES",
        "original_receipt": r.original_receipt,
        "receipt": r.receipt,
        "remarks": r.remarks,
        "failure_code": r.failure_code,
        "failure_message": r.failure_message,
        "result_code": r.result_code,
        "result_desc": r.result_desc,
        "conversation_id": r.conversation_id,
        "originator_conversation_id": r.originator_conversation_id,
        "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
        "sent_at": iso(r.sent_at),
        "completed_at": iso(r.completed_at),
    }
