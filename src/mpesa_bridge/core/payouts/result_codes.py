"""B2C ResultCodes (daraja.md 7.4) as the failure codes a payout shows."""

from __future__ import annotations

_CODES = {
    "1": "insufficient_balance",
    "2": "below_minimum_amount",
    "3": "above_maximum_amount",
    "4": "daily_limit_reached",
    "8": "recipient_balance_limit",
    "11": "debit_party_invalid_state",
    "21": "initiator_not_allowed",
    "2001": "initiator_invalid",
    "2006": "account_status_not_allowed",
    "2028": "b2c_not_permitted",
    "2040": "recipient_not_registered",
    "8006": "initiator_locked",
    "SFC_IC0003": "invalid_recipient",
}
NOT_FOUND_CODES = frozenset({"25"})  # Transaction Status: no transaction matches (docs/simulator.md)


def failure_code(result_code: str) -> str:
    return _CODES.get(result_code, f"daraja_result_{result_code}")
