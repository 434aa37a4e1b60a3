"""The inbox's handlers for Account Balance Results (`balance_result`) and queue timeouts
(`balance_timeout`), with the defences of `core.reversals.results`: the path token names the query
(SHA-256 kept), the ConversationID must be the one Daraja gave us, a Result for a final query is a
`duplicate` (or `flagged` when it disagrees), and an unreadable body is `flagged`. A queue timeout
fails the query (`queue_timeout`): it moved nothing, and asking again is a new query. A Result or
notice for a query given up (`no_result`, `core.result_deadline`) is kept as `recorded`, reason
`late_result`, and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mpesa_bridge.core.balances.entity import BalanceQuery, BalanceQueryStatus, stored_accounts
from mpesa_bridge.core.balances.ports import BalanceResultReader
from mpesa_bridge.core.balances.service import BalanceOutcome, settle_balance_query
from mpesa_bridge.core.payments.entity import InboundCallback
from mpesa_bridge.core.ports import UnitOfWork
from mpesa_bridge.core.result_deadline import LATE_RESULT, NO_RESULT
from mpesa_bridge.core.reversals.ports import MalformedResult


class BalanceResultHandler:
    def __init__(self, reader: BalanceResultReader) -> None:
        self._reader = reader

    async def apply(self, uow: UnitOfWork, callbacks: Sequence[InboundCallback], at: datetime) -> None:
        queries = await uow.balance_queries.lock_by_callback_tokens([c.token_hash for c in callbacks])
        for callback in callbacks:
            query = queries.get(callback.token_hash)
            await self._apply_one(uow, callback, query, at)
            if query is not None:
                await uow.balance_queries.save(query)

    async def _apply_one(
        self, uow: UnitOfWork, callback: InboundCallback, query: BalanceQuery | None, at: datetime
    ) -> None:
        callback.attempts += 1
        callback.processed_at = at
        try:
            result = self._reader.balance(callback.body)
        except MalformedResult:
            _mark(callback, "flagged", "malformed")
            return
        if query is None:
            _mark(callback, "flagged", "unknown_token")
            return
        if query.conversation_id and result.conversation_id and result.conversation_id != query.conversation_id:
            _mark(callback, "flagged", "conversation_id_mismatch")
            return
        completed = result.result_code == "0"
        if query.failure_code == NO_RESULT:
            _mark(callback, "recorded", LATE_RESULT)
            return
        if query.status.is_final:
            agrees = completed == (query.status is BalanceQueryStatus.COMPLETED)
            _mark(callback, "duplicate" if agrees else "flagged", None if agrees else "contradicts_settled_state")
            return
        if completed and not result.accounts:
            _mark(callback, "flagged", "no_accounts")
            return
        outcome = BalanceOutcome(
            completed,
            result.result_code,
            result.result_desc[:500],
            failure_code=None if completed else _failure_code(result.result_code),
            accounts=list(stored_accounts(result.accounts)),
            balances_at=result.completed_at,
        )
        await settle_balance_query(uow, query, outcome, at)
        _mark(callback, "applied", None)


class BalanceTimeoutHandler:
    def __init__(self, reader: BalanceResultReader) -> None:
        self._reader = reader

    async def apply(self, uow: UnitOfWork, callbacks: Sequence[InboundCallback], at: datetime) -> None:
        queries = await uow.balance_queries.lock_by_callback_tokens([c.token_hash for c in callbacks])
        for callback in callbacks:
            callback.attempts += 1
            callback.processed_at = at
            query = queries.get(callback.token_hash)
            if query is None:
                _mark(callback, "flagged", "unknown_token")
                continue
            try:
                notice = self._reader.notice(callback.body)
            except MalformedResult:
                notice = None
            if (
                notice is not None
                and query.conversation_id
                and notice.conversation_id not in ("", query.conversation_id)
            ):
                _mark(callback, "flagged", "conversation_id_mismatch")
                continue
            desc = notice.result_desc if notice is not None else "The request timed out in Daraja's queue."
            code = notice.result_code if notice is not None else None
            outcome = BalanceOutcome(False, code, desc[:500], failure_code="queue_timeout")
            if await settle_balance_query(uow, query, outcome, at):
                _mark(callback, "applied", None)
                await uow.balance_queries.save(query)
            else:
                _mark(callback, "recorded", LATE_RESULT if query.failure_code == NO_RESULT else None)


_FAILURES = {"2001": "initiator_invalid", "21": "initiator_not_allowed", "18": "initiator_invalid"}


def _failure_code(result_code: str) -> str:
    return _FAILURES.get(result_code, "balance_query_failed")


def _mark(callback: InboundCallback, state: str, reason: str | None) -> None:
    callback.state = state
    callback.flag_reason = reason
