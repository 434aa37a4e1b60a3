"""Transaction Status Results and queue timeouts (kinds `status_result`, `status_timeout`).

The same defences as every callback: the token in the path names one query (we keep its SHA-256);
a Result for a query already completed is a `duplicate`; the ConversationID, once known, must be
the query's. A query asked to settle a payout (`payout_id`) hands the Result to
`core.payouts.settle`, one asked to settle a reversal (`reversal_id`) to `core.reversals.settle`,
in the same transaction. A Result (or timeout notice) for a query given up (`no_result`,
`core.result_deadline`) is kept as `recorded`, reason `late_result`, and changes nothing: not the
query, whose `failed` event is out, nor its payout or reversal, which the reconcilers ask about
again on their backoff.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mpesa_bridge.core.payments.entity import InboundCallback
from mpesa_bridge.core.payouts.policy import PayoutPolicy
from mpesa_bridge.core.payouts.ports import InitiatorResultReader, MalformedResult, StatusResult
from mpesa_bridge.core.payouts.settle import settle_by_status
from mpesa_bridge.core.ports import UnitOfWork
from mpesa_bridge.core.result_deadline import LATE_RESULT, NO_RESULT
from mpesa_bridge.core.reversals.settle import settle_by_status as settle_reversal_by_status
from mpesa_bridge.core.status_queries.entity import StatusQuery, StatusQueryEvent, StatusQueryStatus
from mpesa_bridge.core.status_queries.service import write_query_event


def _mark(callback: InboundCallback, state: str, reason: str | None = None) -> None:
    callback.state = state
    callback.flag_reason = reason


def _problem(query: StatusQuery | None, result: StatusResult) -> str | None:
    if query is None:
        return "unknown_token"
    if query.conversation_id and result.conversation_id and result.conversation_id != query.conversation_id:
        return "conversation_mismatch"
    return None


class StatusResultHandler:
    def __init__(self, reader: InitiatorResultReader, policy: PayoutPolicy, *, timeout: bool = False) -> None:
        self._reader = reader
        self._policy = policy
        self._timeout = timeout

    async def apply(self, uow: UnitOfWork, callbacks: Sequence[InboundCallback], at: datetime) -> None:
        queries = await uow.status_queries.lock_by_callback_tokens([c.token_hash for c in callbacks])
        for callback in callbacks:
            await self._apply_one(uow, callback, queries.get(callback.token_hash), at)
        for query in queries.values():
            await uow.status_queries.save(query)

    async def _apply_one(
        self, uow: UnitOfWork, callback: InboundCallback, query: StatusQuery | None, at: datetime
    ) -> None:
        callback.attempts += 1
        callback.processed_at = at
        try:
            result = self._reader.transaction_status(callback.body)
        except MalformedResult:
            _mark(callback, "flagged", "malformed")
            return
        problem = _problem(query, result)
        if problem is not None or query is None:
            _mark(callback, "flagged", problem)
            return
        if query.status is not StatusQueryStatus.PENDING:
            if query.failure_code == NO_RESULT:
                _mark(callback, "recorded", LATE_RESULT)
            else:
                _mark(callback, "duplicate")
            return
        query.conversation_id = query.conversation_id or result.conversation_id or None
        query.result_code, query.result_desc = result.result_code, result.result_desc
        query.updated_at = query.completed_at = at
        if self._timeout:
            query.status = StatusQueryStatus.TIMED_OUT
            query.failure_code, query.failure_message = "queue_timeout", result.result_desc
            await write_query_event(uow, query, StatusQueryEvent.FAILED)
            _mark(callback, "applied")
            return  # a payout it was about is asked again on its backoff
        query.status = StatusQueryStatus.COMPLETED
        query.result = dict(result.details)
        await write_query_event(uow, query, StatusQueryEvent.COMPLETED)
        _mark(callback, "applied")
        if query.payout_id is not None:
            payout = await uow.payouts.lock(query.payout_id)
            if payout is not None:
                await settle_by_status(uow, payout, result, at, self._policy)
                await uow.payouts.save(payout)
        if query.reversal_id is not None:
            reversal = await uow.reversals.lock(query.reversal_id)
            if reversal is not None:
                await settle_reversal_by_status(uow, reversal, result, at, self._policy)
                await uow.reversals.save(reversal)
