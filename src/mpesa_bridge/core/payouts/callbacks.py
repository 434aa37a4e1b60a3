"""B2C Result and queue-timeout callbacks (kinds `b2c_result`, `b2c_timeout`), with the defences of
the STK callbacks (`core.callbacks.stk`, reference §19.3):

- the path token is the one made for this payout's one send (we keep only its SHA-256);
- the payout was sent (a Result for a payout never sent is a spoof);
- the OriginatorConversationID is the payout's (v3), the ConversationID the one Daraja gave us;
- on success the amount is the payout's.
Anything else is kept, flagged and changes nothing. A Result repeated is a `duplicate`; one that
contradicts a settled payout is flagged. A queue timeout is never a verdict: `unknown`, then
Transaction Status settles it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from mpesa_bridge.core.payments.entity import InboundCallback
from mpesa_bridge.core.payouts.entity import Payout
from mpesa_bridge.core.payouts.outcomes import flag, move
from mpesa_bridge.core.payouts.policy import PayoutPolicy
from mpesa_bridge.core.payouts.ports import B2cResult, InitiatorResultReader, MalformedResult
from mpesa_bridge.core.payouts.result_codes import failure_code
from mpesa_bridge.core.payouts.service import mark_unknown
from mpesa_bridge.core.payouts.status import PayoutStatus
from mpesa_bridge.core.ports import UnitOfWork


def _mark(callback: InboundCallback, state: str, reason: str | None = None) -> None:
    callback.state = state
    callback.flag_reason = reason


async def _locked(uow: UnitOfWork, callbacks: Sequence[InboundCallback]) -> Mapping[str, Payout]:
    return await uow.payouts.lock_by_callback_tokens([c.token_hash for c in callbacks])


def _match(callback: InboundCallback, payout: Payout | None, result: B2cResult) -> str | None:
    """Why this Result is not about this payout's send (None: it is)."""
    if payout is None:
        return "unknown_token"
    if not payout.status.was_sent:
        return "payout_not_sent"
    if payout.originator_conversation_id and result.originator_conversation_id != payout.originator_conversation_id:
        return "originator_mismatch"
    if payout.conversation_id and result.conversation_id and result.conversation_id != payout.conversation_id:
        return "conversation_mismatch"
    return None


class B2cResultHandler:
    """The inbox's handler for `b2c_result`."""

    def __init__(self, reader: InitiatorResultReader) -> None:
        self._reader = reader

    async def apply(self, uow: UnitOfWork, callbacks: Sequence[InboundCallback], at: datetime) -> None:
        payouts = await _locked(uow, callbacks)
        for callback in callbacks:
            await apply_b2c_result(uow, callback, payouts.get(callback.token_hash), at, self._reader)
        for payout in payouts.values():
            await uow.payouts.save(payout)


async def apply_b2c_result(
    uow: UnitOfWork, callback: InboundCallback, payout: Payout | None, at: datetime, reader: InitiatorResultReader
) -> None:
    callback.attempts += 1
    callback.processed_at = at
    try:
        result = reader.b2c(callback.body)
    except MalformedResult:
        _mark(callback, "flagged", "malformed")
        return
    problem = _match(callback, payout, result)
    if payout is not None:
        callback.payment_id = payout.id  # the subject it concerns
    if problem is not None or payout is None:
        _mark(callback, "flagged", problem)
        return
    succeeded = result.result_code == "0"
    if succeeded and result.amount is not None and result.amount != payout.amount:
        flag(payout, "result_amount_mismatch", at)
        _mark(callback, "flagged", "amount_mismatch")
        return
    payout.conversation_id = payout.conversation_id or result.conversation_id or None
    new = PayoutStatus.SUCCEEDED if succeeded else PayoutStatus.FAILED
    if payout.status is new:
        _mark(callback, "duplicate")
        return
    moved = await move(
        uow,
        payout,
        new,
        at,
        code=None if succeeded else failure_code(result.result_code),
        result_code=result.result_code,
        result_desc=result.result_desc,
        receipt=result.receipt if succeeded else None,
        recipient_name=result.recipient_name,
    )
    if moved:
        _mark(callback, "applied")
    else:
        flag(payout, "contradicting_callback", at)
        _mark(callback, "flagged", "contradicts_settled_state")


class B2cTimeoutHandler:
    """The inbox's handler for `b2c_timeout`: the request expired in Safaricom's queue — which says
    nothing about the money (daraja.md 8): the payout becomes `unknown`, settled by Transaction Status."""

    def __init__(self, reader: InitiatorResultReader, policy: PayoutPolicy) -> None:
        self._reader = reader
        self._policy = policy

    async def apply(self, uow: UnitOfWork, callbacks: Sequence[InboundCallback], at: datetime) -> None:
        payouts = await _locked(uow, callbacks)
        for callback in callbacks:
            await self._apply_one(uow, callback, payouts.get(callback.token_hash), at)
        for payout in payouts.values():
            await uow.payouts.save(payout)

    async def _apply_one(self, uow: UnitOfWork, callback: InboundCallback, payout: Payout | None, at: datetime) -> None:
        callback.attempts += 1
        callback.processed_at = at
        try:
            result = self._reader.b2c(callback.body)
        except MalformedResult:
            _mark(callback, "flagged", "malformed")
            return
        problem = _match(callback, payout, result)
        if payout is not None:
            callback.payment_id = payout.id
        if problem is not None or payout is None:
            _mark(callback, "flagged", problem)
            return
        if payout.status is PayoutStatus.UNKNOWN:
            _mark(callback, "duplicate")
        elif payout.status.is_final:
            _mark(callback, "recorded")  # a Result (or a query) already settled it
        elif await mark_unknown(uow, payout, "queue_timeout", at, self._policy, message=result.result_desc):
            _mark(callback, "applied")
        else:  # pragma: no cover - every sent, open status may become unknown
            _mark(callback, "recorded")
