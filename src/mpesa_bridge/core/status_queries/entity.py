"""A Transaction Status query (`tsq_…`): what was asked, and the Result Daraja sent back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

STATUS_QUERY = "transaction_status_query"  # the outbox subject type
STATUS_QUERY_ID_PREFIX = "tsq"


class StatusQueryStatus(StrEnum):
    PENDING = "pending"  # asked; the Result has not come yet
    COMPLETED = "completed"  # a Result came (whatever its ResultCode: `result_code` says)
    FAILED = "failed"  # Daraja refused the query, it never left, or its Result never came (`no_result`)
    TIMED_OUT = "timed_out"  # Daraja's queue timeout notice came instead of a Result

    @property
    def is_final(self) -> bool:
        return self is not StatusQueryStatus.PENDING


class StatusQueryEvent:
    COMPLETED = "transaction_status_query.completed"
    FAILED = "transaction_status_query.failed"

    ALL = (COMPLETED, FAILED)


@dataclass(eq=False)
class StatusQuery:
    """`transaction_id` (an M-Pesa receipt) or `originator_conversation_id` (a B2C v3 id) names the
        transaction asked about. `payout_id` (`reversal_id`) is set when the bridge asked to settle one of
    its payouts (reversals)."""

    id: str
    project_id: str
    mode: str
    status: StatusQueryStatus
    transaction_id: str
    originator_conversation_id: str
    short_code: str
    callback_token_hash: str
    created_at: datetime
    updated_at: datetime
    payout_id: str | None = None
    conversation_id: str | None = None
    result_code: str | None = None
    result_desc: str | None = None
    result: dict[str, Any] | None = None  # the parsed ResultParameters (receipt, status, amount, parties…)
    failure_code: str | None = None
    failure_message: str | None = None
    completed_at: datetime | None = None
    reversal_id: str | None = None  # set when the bridge asked to settle one of its reversals
