"""The Transaction Status query as the API returns it (and as its events carry it)."""

from __future__ import annotations

from typing import Any

from mpesa_bridge.core.payments.public import iso
from mpesa_bridge.core.status_queries.entity import StatusQuery


def status_query_public(q: StatusQuery) -> dict[str, Any]:
    return {
        "id": q.id,
        "object": "transaction_status_query",
        "mode": q.mode,
        "status": str(q.status),
        "transaction_id": q.transaction_id or None,
        "originator_conversation_id": q.originator_conversation_id or None,
        "short_code": q.short_code,
        "payout_id": q.payout_id,
        "reversal_id": q.reversal_id,
        "conversation_id": q.conversation_id,
        "result_code": q.result_code,
        "result_desc": q.result_desc,
        "result": q.result,
        "failure_code": q.failure_code,
        "failure_message": q.failure_message,
        "created_at": iso(q.created_at),
        "updated_at": iso(q.updated_at),
        "completed_at": iso(q.completed_at),
    }
