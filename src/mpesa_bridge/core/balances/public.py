"""The balance query as the API, webhooks and the dashboard show it."""

from __future__ import annotations

from typing import Any

from mpesa_bridge.core.balances.entity import BalanceQuery
from mpesa_bridge.core.payments.public import iso


def balance_query_public(q: BalanceQuery) -> dict[str, Any]:
    return {
        "id": q.id,
        "object": "balance_query",
        "mode": q.mode,
        "status": str(q.status),
        "short_code": q.short_code,
        "accounts": [
            {"name": a.name, "currency": a.currency, "available": a.available, "amounts": list(a.amounts)}
            for a in q.account_balances()
        ],
        "failure_code": q.failure_code,
        "failure_message": q.failure_message,
        "result_code": q.result_code,
        "result_desc": q.result_desc,
        "conversation_id": q.conversation_id,
        "balances_at": iso(q.balances_at),
        "created_at": iso(q.created_at),
        "updated_at": iso(q.updated_at),
        "completed_at": iso(q.completed_at),
    }
