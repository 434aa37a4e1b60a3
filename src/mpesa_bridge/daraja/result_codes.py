"""STK ResultCodes (callback and STK Query) and what each means for a payment; the initiator APIs'
Result codes likewise.

Data only: the gateway core decides what to do with a (status, reason) pair. Codes arrive as
numbers in callbacks and as strings from STK Query, so compare them only after `normalise_code`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "INITIATOR_RESULT_CODES",
    "STK_RESULT_CODES",
    "UNKNOWN_RESULT",
    "classify_initiator_result",
    "classify_stk_result",
    "normalise_code",
]

STK_RESULT_CODES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "0": ("succeeded", "paid"),
        "1": ("failed", "insufficient_funds"),
        "2": ("failed", "amount_below_minimum"),
        "3": ("failed", "amount_above_maximum"),
        "4": ("failed", "daily_limit_exceeded"),
        "8": ("failed", "balance_limit_exceeded"),
        "17": ("failed", "rule_limited"),
        "26": ("failed", "system_busy"),
        "1001": ("failed", "subscriber_locked"),
        "1019": ("expired", "transaction_expired"),
        "1025": ("failed", "push_failed"),
        "1032": ("cancelled", "user_cancelled"),
        "1036": ("failed", "timeout"),
        "1037": ("failed", "timeout"),
        "2001": ("failed", "wrong_pin"),
        "2028": ("failed", "not_permitted"),
        "8006": ("failed", "credential_locked"),
        "9999": ("failed", "system_error"),
        "SFC_IC0003": ("failed", "operator_not_found"),
    }
)

UNKNOWN_RESULT: tuple[str, str] = ("failed", "unknown_result_code")


def normalise_code(value: object) -> str:
    """Daraja code as a comparable string: 0, "0", "00", "00000000" -> "0"; 1032 -> "1032"."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    # Success appears as any run of zeros depending on the API ("0", "00", "00000000").
    if text and set(text) == {"0"}:
        return "0"
    return text


def classify_stk_result(code: object) -> tuple[str, str]:
    """(status, reason) for an STK ResultCode; unknown codes are failures with a distinct reason."""
    return STK_RESULT_CODES.get(normalise_code(code), UNKNOWN_RESULT)


# The initiator APIs' Result codes (B2C, Transaction Status, Account Balance, Reversal; daraja.md
# §7.4, §10, §11). Only a Result POSTed to ResultURL is a verdict: a notice on QueueTimeOutURL is
# not, whatever its code (daraja.md §8), and must be settled by Transaction Status instead.
INITIATOR_RESULT_CODES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "0": ("succeeded", "completed"),
        "1": ("failed", "insufficient_balance"),
        "2": ("failed", "amount_below_minimum"),
        "3": ("failed", "amount_above_maximum"),
        "4": ("failed", "daily_limit_exceeded"),
        "8": ("failed", "recipient_balance_limit_exceeded"),
        "11": ("failed", "debit_party_invalid_state"),
        "15": ("failed", "duplicate_detected"),
        "17": ("failed", "internal_failure"),
        "18": ("failed", "initiator_credential_check_failed"),
        "20": ("failed", "unresolved_initiator"),
        "21": ("failed", "initiator_not_allowed"),
        "22": ("failed", "initiator_not_active"),
        "24": ("failed", "missing_mandatory_fields"),
        "25": ("failed", "invalid_request_parameters"),
        "26": ("failed", "system_busy"),
        "29": ("failed", "invalid_command"),
        "2001": ("failed", "initiator_invalid"),
        "2006": ("failed", "account_status_not_allowed"),
        "2028": ("failed", "not_permitted"),
        "2040": ("failed", "recipient_not_registered"),
        "8006": ("failed", "credential_locked"),
        "SFC_IC0003": ("failed", "receiver_not_found"),
        "R000001": ("failed", "already_reversed"),
        "R000002": ("failed", "original_transaction_invalid"),
    }
)


def classify_initiator_result(code: object) -> tuple[str, str]:
    """(status, reason) for the ResultCode of an initiator API's Result (not of a QueueTimeOut notice)."""
    return INITIATOR_RESULT_CODES.get(normalise_code(code), UNKNOWN_RESULT)
