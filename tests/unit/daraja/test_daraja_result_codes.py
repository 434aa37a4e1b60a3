"""The STK ResultCode table and code normalisation."""

import pytest

from mpesa_bridge.daraja import classify_stk_result, normalise_code
from mpesa_bridge.daraja.result_codes import STK_RESULT_CODES

EXPECTED = {
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


def test_table_is_exactly_the_documented_rows() -> None:
    assert dict(STK_RESULT_CODES) == EXPECTED


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        STK_RESULT_CODES["0"] = ("failed", "x")  # type: ignore[index]


@pytest.mark.parametrize(("code", "expected"), EXPECTED.items())
def test_every_row_classifies(code: str, expected: tuple[str, str]) -> None:
    assert classify_stk_result(code) == expected


@pytest.mark.parametrize(("value", "expected"), [(1032, ("cancelled", "user_cancelled")), (0, ("succeeded", "paid"))])
def test_callback_numbers_classify_like_query_strings(value: int, expected: tuple[str, str]) -> None:
    assert classify_stk_result(value) == expected


@pytest.mark.parametrize("code", ["5", "1050", "R000001", "", None, "  "])
def test_unknown_codes_fail_with_their_own_reason(code: object) -> None:
    assert classify_stk_result(code) == ("failed", "unknown_result_code")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0"),
        ("0", "0"),
        ("00", "0"),
        ("00000000", "0"),
        (0.0, "0"),
        (1032, "1032"),
        ("1032", "1032"),
        (" 1032 ", "1032"),
        (1032.0, "1032"),
        ("SFC_IC0003", "SFC_IC0003"),
        ("500.001.1001", "500.001.1001"),
        (None, ""),
    ],
)
def test_normalise_code(value: object, expected: str) -> None:
    assert normalise_code(value) == expected
