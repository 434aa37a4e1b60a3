"""The inbox's handlers for Reversal Results (`reversal_result`) and queue timeouts (`reversal_timeout`).

The same defences as STK callbacks (`core.callbacks.stk`, reference §19.3): a Result moves a
reversal only when
- its path token is the one generated for that reversal (we keep only its SHA-256);
- its ConversationID is the one Daraja gave us when it queued the request (when we learned it);
- on success: the reversed transaction (when named) is the payment's receipt, the amount (when
  given) is the payment's, and the reversal's own receipt is real (not a `…0000000` placeholder).
Anything else is kept, flagged and changes nothing. A Result for a final reversal is a
`duplicate` when it agrees and `flagged` (contradicts_settled_state) when it does not.

A queue-timeout notice is not a verdict (daraja.md §8): an open reversal becomes `unknown`, never
failed and never re-sent. Its body is undocumented, so the token alone makes it a notice; a body
we can read whose ConversationID is another's is flagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mpesa_bridge.core.callbacks.stk import is_placeholder_receipt
from mpesa_bridge.core.payments.entity import InboundCallback
from mpesa_bridge.core.ports import UnitOfWork
from mpesa_bridge.core.reversals.entity import Reversal, ReversalStatus, failure_code_for
from mpesa_bridge.core.reversals.ports import InitiatorResultNotice, MalformedResult, ResultReader, ReversalResult
from mpesa_bridge.core.reversals.settle import ReversalOutcome, mark_reversal_unknown, settle_reversal


class ReversalResultHandler:
    """Kind `reversal_result`: the reversals of a batch locked in one statement, then each applied."""

    def __init__(self, reader: ResultReader) -> None:
        self._reader = reader

    async def apply(self, uow: UnitOfWork, callbacks: Sequence[InboundCallback], at: datetime) -> None:
        reversals = await uow.reversals.lock_by_callback_tokens([c.token_hash for c in callbacks])
        for callback in callbacks:
            reversal = reversals.get(callback.token_hash)
            await self._apply_one(uow, callback, reversal, at)
            if reversal is not None:
                await uow.reversals.save(reversal)

    async def _apply_one(
        self, uow: UnitOfWork, callback: InboundCallback, reversal: Reversal | None, at: datetime
    ) -> None:
        _start(callback, at)
        try:
            result = self._reader.reversal(callback.body)
        except MalformedResult:
            _mark(callback, "flagged", "malformed")
            return
        if reversal is None:
            _mark(callback, "flagged", "unknown_token")
            return
        callback.payment_id = reversal.payment_id
        problem = _match_problem(reversal, result)
        if problem is not None:
            _mark(callback, "flagged", problem)
            return
        succeeded = result.result_code == "0"
        if reversal.status.is_final:
            agrees = succeeded == (reversal.status is ReversalStatus.SUCCEEDED)
            _mark(callback, "duplicate" if agrees else "flagged", None if agrees else "contradicts_settled_state")
            return
        reversal.conversation_id = reversal.conversation_id or result.conversation_id or None
        outcome = ReversalOutcome(
            succeeded,
            result.result_code,
            result.result_desc[:500],
            failure_code=None if succeeded else failure_code_for(result.result_code),
            receipt=result.transaction_id if succeeded else None,
            callback_id=callback.id,
        )
        await settle_reversal(uow, reversal, outcome, at)
        _mark(callback, "applied", None)


def _match_problem(reversal: Reversal, result: ReversalResult) -> str | None:
    if reversal.conversation_id and result.conversation_id and result.conversation_id != reversal.conversation_id:
        return "conversation_id_mismatch"
    if result.result_code != "0":
        return None
    if result.original_transaction_id and result.original_transaction_id != reversal.original_receipt:
        return "original_transaction_mismatch"
    if result.amount is not None and result.amount != reversal.amount:
        return "amount_mismatch"
    if is_placeholder_receipt(result.transaction_id):
        return "receipt_missing"
    return None


class ReversalTimeoutHandler:
    """Kind `reversal_timeout`: Daraja's QueueTimeOutURL notice. An open reversal becomes `unknown`."""

    def __init__(self, reader: ResultReader) -> None:
        self._reader = reader

    async def apply(self, uow: UnitOfWork, callbacks: Sequence[InboundCallback], at: datetime) -> None:
        reversals = await uow.reversals.lock_by_callback_tokens([c.token_hash for c in callbacks])
        for callback in callbacks:
            _start(callback, at)
            reversal = reversals.get(callback.token_hash)
            if reversal is None:
                _mark(callback, "flagged", "unknown_token")
                continue
            callback.payment_id = reversal.payment_id
            notice = _read_notice(self._reader, callback.body)
            if (
                notice is not None
                and reversal.conversation_id
                and notice.conversation_id not in ("", reversal.conversation_id)
            ):
                _mark(callback, "flagged", "conversation_id_mismatch")
                continue
            if mark_reversal_unknown(reversal, "queue_timeout", at):
                _mark(callback, "applied", None)
                await uow.reversals.save(reversal)
            else:
                _mark(callback, "recorded", None)


def _read_notice(reader: ResultReader, body: bytes) -> InitiatorResultNotice | None:
    try:
        return reader.notice(body)
    except MalformedResult:
        return None


def _start(callback: InboundCallback, at: datetime) -> None:
    callback.attempts += 1
    callback.processed_at = at


def _mark(callback: InboundCallback, state: str, reason: str | None) -> None:
    callback.state = state
    callback.flag_reason = reason
