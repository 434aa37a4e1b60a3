"""STK callbacks: tolerant parsing, matching to the payment we made, and applying the result.

A callback is authentic enough to move money only when all of these hold (reference §19.3):
- its path token is the one we generated for that payment (we keep only its SHA-256);
- its CheckoutRequestID is the one Daraja gave us for that push (or, if we never learned it,
  the payment is still open, recent enough, and amount and phone agree);
- on success: the amount equals ours, the phone (when sent) equals ours, and there is a real
  receipt (not a `…0000000` placeholder).
Anything else is kept, flagged and changes nothing. A callback is never answered with a 5xx.

A C0 control character (U+0000 to U+001F) in any string of the body, key or value, read or not,
makes the callback `malformed`: Daraja sends none (reference §4), and PostgreSQL's text columns
refuse NUL, so such a value would fail every attempt to store what the callback says.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from mpesa_bridge.core.clock import NAIROBI
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import InboundCallback, Payment, PaymentEvidence
from mpesa_bridge.core.payments.outcomes import Outcome, flag_payment, mark_unknown, record_outcome
from mpesa_bridge.core.payments.policy import ReconcilePolicy
from mpesa_bridge.core.payments.result_codes import classify_result, normalise_code
from mpesa_bridge.core.payments.status import Evidence, Observation, PaymentStatus, Verdict, decide
from mpesa_bridge.core.ports import UnitOfWork
from mpesa_bridge.core.projects import Project


class MalformedCallback(ValueError):
    """The body is not an STK callback we can read."""


@dataclass(frozen=True)
class StkCallback:
    merchant_request_id: str | None
    checkout_request_id: str
    result_code: str
    result_desc: str
    amount: int | None = None
    receipt: str | None = None
    transaction_date: datetime | None = None
    phone: str | None = None


def parse_stk_callback(body: bytes) -> StkCallback:
    try:
        doc = orjson.loads(body)
        cb = doc["Body"]["stkCallback"]
        checkout = cb["CheckoutRequestID"]
        code = cb["ResultCode"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise MalformedCallback(f"not an STK callback: {exc.__class__.__name__}") from exc
    if _holds_control_character(doc):
        raise MalformedCallback("a field holds a control character")
    if not isinstance(checkout, str) or not checkout or len(checkout) > 64:
        raise MalformedCallback("CheckoutRequestID is missing or malformed")
    if code is None or isinstance(code, bool | dict | list) or not str(code).strip():
        raise MalformedCallback("ResultCode is missing or malformed")
    items = _metadata_items(cb.get("CallbackMetadata"))
    merchant = cb.get("MerchantRequestID")
    return StkCallback(
        merchant_request_id=str(merchant) if merchant is not None else None,
        checkout_request_id=checkout,
        result_code=normalise_code(code),
        result_desc=str(cb.get("ResultDesc") or "")[:500],
        amount=_as_amount(items.get("Amount")),
        receipt=_as_text(items.get("MpesaReceiptNumber")),
        transaction_date=_as_date(items.get("TransactionDate")),
        phone=_as_text(items.get("PhoneNumber")),
    )


_CONTROL = re.compile(r"[\x00-\x1f]")


def _holds_control_character(doc: object) -> bool:
    # A loop, not recursion: orjson accepts nesting deeper than Python's recursion limit.
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if _CONTROL.search(node):
                return True
        elif isinstance(node, dict):
            stack.extend(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _metadata_items(meta: object) -> dict[str, Any]:
    if not isinstance(meta, dict):
        return {}
    items = meta.get("Item")
    if isinstance(items, dict):  # some gateways send a single object instead of a list
        items = [items]
    if not isinstance(items, list):
        return {}
    return {str(i["Name"]): i.get("Value") for i in items if isinstance(i, dict) and "Name" in i}


def _as_amount(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(str(value))
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _as_date(value: object) -> datetime | None:
    text = _as_text(value)
    if text is None or len(text) != 14 or not text.isdigit():
        return None
    try:
        local = datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=NAIROBI)
    except ValueError:
        return None
    return local.astimezone(UTC)


def is_placeholder_receipt(receipt: str | None) -> bool:
    return receipt is None or len(receipt) < 8 or receipt.endswith("0000000")


class StkHandler:
    """The inbox's handler for kind `stk` (`core.callbacks.handlers`): a batch's payments are locked
    in one statement, then each callback is matched and applied to its payment."""

    def __init__(self, policy: ReconcilePolicy) -> None:
        self._policy = policy

    async def apply(self, uow: UnitOfWork, callbacks: Sequence[InboundCallback], at: datetime) -> None:
        payments = await uow.payments.lock_by_callback_tokens([c.token_hash for c in callbacks])
        projects = BatchProjects(uow)
        for callback in callbacks:
            payment = payments.get(callback.token_hash)
            await apply_stk_callback(uow, callback, payment, at, self._policy, projects)
        # One batched write for the batch's payments (a payment no callback changed writes nothing);
        # the inbox saves the callbacks.
        await uow.payments.save_many(list(payments.values()))


class BatchProjects:
    """The projects one batch of callbacks needs, each read once and held as a value for the batch
    (several callbacks of one shop need not read it again)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._read: dict[str, Project | None] = {}

    async def get(self, project_id: str) -> Project | None:
        if project_id not in self._read:
            self._read[project_id] = await self._uow.projects.get(project_id)
        return self._read[project_id]


async def apply_stk_callback(
    uow: UnitOfWork,
    callback: InboundCallback,
    payment: Payment | None,
    at: datetime,
    policy: ReconcilePolicy,
    projects: BatchProjects | None = None,
) -> None:
    """Process one stored callback inside the caller's transaction; the callback is locked, and so
    is `payment`, the one its token names (None: no payment has that token). Both are changed in
    place; the caller saves them (`StkHandler.apply` the payments, the inbox the callbacks)."""
    callback.attempts += 1
    callback.processed_at = at
    try:
        parsed = parse_stk_callback(callback.body)
    except MalformedCallback:
        _mark(callback, "flagged", "malformed")
        return
    callback.checkout_request_id = parsed.checkout_request_id
    if payment is None:
        _mark(callback, "flagged", "unknown_token")
        return
    callback.payment_id = payment.id
    problem = _match_problem(payment, parsed, callback.received_at, policy)
    if problem is not None:
        await _flag(uow, payment, callback, parsed, problem, at)
        return
    if payment.checkout_request_id is None:
        if await uow.payments.by_checkout_request_id(parsed.checkout_request_id) is not None:
            _mark(callback, "flagged", "checkout_request_id_taken")
            return
        payment.checkout_request_id = parsed.checkout_request_id
        payment.merchant_request_id = payment.merchant_request_id or parsed.merchant_request_id
    status, reason = classify_result(parsed.result_code)
    if status is PaymentStatus.SUCCEEDED:
        problem = _success_problem(payment, parsed)
        if problem is not None:
            await _flag(uow, payment, callback, parsed, problem, at)
            return
    outcome = Outcome(
        status,
        Evidence.CALLBACK,
        reason,
        result_code=parsed.result_code,
        result_desc=parsed.result_desc,
        receipt=parsed.receipt if status is PaymentStatus.SUCCEEDED else None,
        transaction_date=parsed.transaction_date,
        callback_id=callback.id,
    )
    if status is PaymentStatus.SUCCEEDED and await _must_confirm(projects or BatchProjects(uow), payment, outcome):
        await _await_confirmation(uow, payment, callback, parsed, at)
        return
    if payment.awaiting_confirmation and status is not PaymentStatus.SUCCEEDED:
        # A held success and now a failure for the same push: neither is believed; a person decides.
        payment.awaiting_confirmation = False
        await mark_unknown(uow, payment, "confirmation_disagrees", at)
        await _flag(uow, payment, callback, parsed, "contradicting_callback", at)
        payment.next_query_at = None
        return
    verdict = await record_outcome(uow, payment, outcome, at)
    _mark(callback, _STATE[verdict], "contradicts_settled_state" if verdict is Verdict.CONFLICT else None)


async def _must_confirm(projects: BatchProjects, payment: Payment, outcome: Outcome) -> bool:
    """Confirm-by-query projects declare success only once STK Query agrees with the callback."""
    verdict = decide(payment.status, payment.evidence, Observation(outcome.status, outcome.evidence))
    if verdict not in (Verdict.APPLY, Verdict.CORRECT):
        return False
    project = await projects.get(payment.project_id)
    return project is not None and project.confirm_by_query


async def _await_confirmation(
    uow: UnitOfWork, payment: Payment, callback: InboundCallback, cb: StkCallback, at: datetime
) -> None:
    # Keep what the callback said; the reconciler queries at once and settles with both.
    payment.awaiting_confirmation = True
    payment.mpesa_receipt_number = cb.receipt
    payment.transaction_date = cb.transaction_date
    payment.result_code, payment.result_desc = cb.result_code, cb.result_desc
    payment.next_query_at = at
    payment.updated_at = at
    _mark(callback, "confirming", None)
    await uow.evidence.add(
        PaymentEvidence(
            id=new_id("evd", at),
            payment_id=payment.id,
            source="callback",
            created_at=at,
            verdict="confirming",
            result_code=cb.result_code,
            result_desc=cb.result_desc,
            callback_id=callback.id,
            note="success callback held until STK Query confirms it",
        )
    )


# A callback that is not about this payment at all must not touch it, not even its flag.
_NOT_THIS_PAYMENT = frozenset({"checkout_request_id_mismatch", "outside_match_window", "checkout_request_id_taken"})

_STATE = {
    Verdict.APPLY: "applied",
    Verdict.CORRECT: "applied",
    Verdict.CONFIRM: "applied",
    Verdict.DUPLICATE: "duplicate",
    Verdict.RECORD: "recorded",
    Verdict.CONFLICT: "flagged",
}


def _match_problem(payment: Payment, cb: StkCallback, received: datetime, policy: ReconcilePolicy) -> str | None:
    if payment.checkout_request_id is not None:
        return None if payment.checkout_request_id == cb.checkout_request_id else "checkout_request_id_mismatch"
    # We never learned the id (Daraja's answer to the push was lost): adopt it only for an open
    # payment, recently created, whose amount and phone agree with what the callback says.
    if payment.status.is_final:
        return "checkout_request_id_mismatch"
    if received - payment.created_at > timedelta(seconds=policy.match_window):
        return "outside_match_window"
    if cb.amount is not None and cb.amount != payment.amount:
        return "amount_mismatch"
    if cb.phone is not None and cb.phone != payment.phone:
        return "phone_mismatch"
    return None


def _success_problem(payment: Payment, cb: StkCallback) -> str | None:
    if cb.amount is None or cb.amount != payment.amount:
        return "amount_mismatch"
    if cb.phone is not None and cb.phone != payment.phone:
        return "phone_mismatch"
    if is_placeholder_receipt(cb.receipt):
        return "receipt_missing"
    return None


async def _flag(
    uow: UnitOfWork, payment: Payment, callback: InboundCallback, cb: StkCallback, problem: str, at: datetime
) -> None:
    _mark(callback, "flagged", problem)
    if problem not in _NOT_THIS_PAYMENT:
        flag_payment(payment, f"callback_{problem}", at)
    await uow.evidence.add(
        PaymentEvidence(
            id=new_id("evd", at),
            payment_id=payment.id,
            source="callback",
            created_at=at,
            verdict="flagged",
            result_code=cb.result_code,
            result_desc=cb.result_desc,
            callback_id=callback.id,
            note=problem,
        )
    )


def _mark(callback: InboundCallback, state: str, reason: str | None) -> None:
    callback.state = state
    callback.flag_reason = reason
