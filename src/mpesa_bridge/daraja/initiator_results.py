"""The core's Result readers (`core.reversals.ports.ResultReader`, `core.balances.ports.BalanceResultReader`)
over `_results.py`: a Result body becomes the core's values, or `MalformedResult`.

Balances arrive in cents (`_results.Balance.amounts_cents`); the core keeps whole shillings,
rounded down (`core.balances.entity.shillings`).
"""

from __future__ import annotations

from mpesa_bridge.core.balances.entity import account_from_cents
from mpesa_bridge.core.balances.ports import BalanceResult
from mpesa_bridge.core.reversals.ports import InitiatorResultNotice, MalformedResult, ReversalResult
from mpesa_bridge.daraja._exceptions import DarajaMalformedResult
from mpesa_bridge.daraja._results import InitiatorResult, account_balance_details, parse_result, reversal_details


def _parse(body: bytes) -> InitiatorResult:
    try:
        return parse_result(body)
    except (DarajaMalformedResult, UnicodeDecodeError) as exc:
        raise MalformedResult(str(exc)) from exc


def _control_free(*texts: str | None) -> None:
    # PostgreSQL refuses NUL in text, and Daraja sends no control characters (reference §4).
    for text in texts:
        if text and any(ord(ch) < 0x20 for ch in text):
            raise MalformedResult("a field holds a control character")


def _too_long(value: str, limit: int) -> None:
    if len(value) > limit:
        raise MalformedResult("a field is longer than Daraja sends")


class DarajaResultReader:
    """Reads Reversal and Account Balance Results, and queue-timeout notices."""

    def notice(self, body: bytes) -> InitiatorResultNotice:
        result = _parse(body)
        return InitiatorResultNotice(**_envelope(result))

    def reversal(self, body: bytes) -> ReversalResult:
        result = _parse(body)
        details = reversal_details(result)
        original = details.original_transaction_id
        _control_free(original)
        if original is not None:
            _too_long(original, 32)
        return ReversalResult(**_envelope(result), amount=details.amount, original_transaction_id=original)

    def balance(self, body: bytes) -> BalanceResult:
        result = _parse(body)
        details = account_balance_details(result)
        accounts = []
        for account in details.accounts:
            _control_free(account.name, account.currency)
            _too_long(account.name, 100)
            accounts.append(account_from_cents(account.name, account.currency[:8], account.amounts_cents))
        return BalanceResult(**_envelope(result), accounts=tuple(accounts), completed_at=details.completed_at)


def _envelope(result: InitiatorResult) -> dict[str, str]:
    fields = {
        "result_code": result.result_code,
        "result_desc": result.result_desc,
        "conversation_id": result.conversation_id,
        "originator_conversation_id": result.originator_conversation_id,
        "transaction_id": result.transaction_id,
    }
    _control_free(*fields.values())
    for name in ("result_code", "conversation_id", "originator_conversation_id", "transaction_id"):
        _too_long(fields[name], 64)
    _too_long(fields["transaction_id"], 32)
    return fields
