"""Daraja STK ResultCodes mapped to a payment status and a stable reason code.

Safaricom's own ResultDesc is kept beside the reason; branching is on the code only, since the
texts vary in case and prefix (reference §4.3).
"""

from __future__ import annotations

from typing import Final

from mpesa_bridge.core.payments.status import PaymentStatus

_S, _F, _C, _E = PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.CANCELLED, PaymentStatus.EXPIRED

STK_RESULT_CODES: Final[dict[str, tuple[PaymentStatus, str]]] = {
    "0": (_S, "paid"),
    "1": (_F, "insufficient_funds"),
    "2": (_F, "amount_below_minimum"),
    "3": (_F, "amount_above_maximum"),
    "4": (_F, "daily_limit_exceeded"),
    "8": (_F, "balance_limit_exceeded"),
    "17": (_F, "rule_limited"),
    "26": (_F, "system_busy"),
    "1001": (_F, "subscriber_locked"),
    "1019": (_E, "transaction_expired"),
    "1025": (_F, "push_failed"),
    "1032": (_C, "user_cancelled"),
    "1036": (_F, "timeout"),
    "1037": (_F, "timeout"),
    "2001": (_F, "wrong_pin"),
    "2028": (_F, "not_permitted"),
    "8006": (_F, "credential_locked"),
    "9999": (_F, "system_error"),
    "SFC_IC0003": (_F, "operator_not_found"),
}
UNKNOWN_RESULT = (_F, "unknown_result_code")


def normalise_code(value: object) -> str:
    """0, "0", "00" and "00000000" are all success; numbers and strings compare as strings."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if text and set(text) == {"0"}:
        return "0"
    return text


def classify_result(code: object) -> tuple[PaymentStatus, str]:
    return STK_RESULT_CODES.get(normalise_code(code), UNKNOWN_RESULT)
