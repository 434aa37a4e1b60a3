"""STK ResultCodes (callback and STK Query) and what each means for a payment.

Data only: the gateway core decides what to do with a (status, reason) pair. Codes arrive as
numbers in callbacks and as strings from STK Query, so compare them only after `normalise_code`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["STK_RESULT_CODES", "UNKNOWN_RESULT", "classify_stk_result", "normalise_code"]

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
