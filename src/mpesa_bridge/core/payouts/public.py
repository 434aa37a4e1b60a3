"""The payout as the API returns it — and as webhooks and live events carry it."""

from __future__ import annotations

from typing import Any

from mpesa_bridge.core.payments.public import iso
from mpesa_bridge.core.payouts.entity import Payout, PayoutSettings
from mpesa_bridge.core.payouts.validation import PayoutRules


def payout_public(p: Payout) -> dict[str, Any]:
    return {
        "id": p.id,
        "object": "payout",
        "mode": p.mode,
        "status": str(p.status),
        "amount": p.amount,
        "currency": "KES",
        "phone": p.phone,
        "command_id": p.command_id,
        "remarks": p.remarks,
        "occasion": p.occasion or None,
        "metadata": p.metadata,
        "short_code": p.short_code,
        "api_version": p.api_version,
        "originator_conversation_id": p.originator_conversation_id,
        "conversation_id": p.conversation_id,
        "receipt": p.receipt,
        "recipient_name": p.recipient_name,
        "result_code": p.result_code,
        "result_desc": p.result_desc,
        "failure_code": p.failure_code,
        "failure_message": p.failure_message,
        "created_by": p.created_by,
        "approved_by": p.approved_by,
        "approved_at": iso(p.approved_at),
        "rejected_by": p.rejected_by,
        "rejection_reason": p.rejection_reason,
        "needs_attention": p.needs_attention,
        "attention_reason": p.attention_reason,
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
        "completed_at": iso(p.completed_at),
    }


def payout_settings_public(rules: PayoutRules, settings: PayoutSettings | None) -> dict[str, Any]:
    return {
        "object": "payout_settings",
        "approval_required": rules.approval_required,
        "max_amount": rules.max_amount,
        "daily_limit": rules.daily_limit,
        "updated_at": iso(settings.updated_at) if settings is not None else None,
    }
