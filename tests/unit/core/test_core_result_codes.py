"""STK ResultCode → (status, reason) in the core (`core.payments.result_codes`), reference §4.3."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpesa_bridge.core.payments.result_codes import (
    STK_RESULT_CODES,
    UNKNOWN_RESULT,
    classify_result,
    normalise_code,
)
from mpesa_bridge.core.payments.status import PaymentStatus

# Written out from reference §4.3, not copied from the module.
EXPECTED: dict[str, tuple[str, str]] = {
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


def test_the_table_has_exactly_the_reference_rows() -> None:
    assert set(STK_RESULT_CODES) == set(EXPECTED)


@pytest.mark.parametrize(("code", "expected"), sorted(EXPECTED.items()))
def test_every_row_of_the_table(code: str, expected: tuple[str, str]) -> None:
    status, reason = classify_result(code)
    assert (str(status), reason) == expected
    assert isinstance(status, PaymentStatus)
    assert status.is_final


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [
        (0, PaymentStatus.SUCCEEDED, "paid"),
        (1032, PaymentStatus.CANCELLED, "user_cancelled"),
        (1037, PaymentStatus.FAILED, "timeout"),
        (2001, PaymentStatus.FAILED, "wrong_pin"),
        (1001, PaymentStatus.FAILED, "subscriber_locked"),
        (1019, PaymentStatus.EXPIRED, "transaction_expired"),
        (9999, PaymentStatus.FAILED, "system_error"),
        (1.0, PaymentStatus.FAILED, "insufficient_funds"),
        ("  2001\n", PaymentStatus.FAILED, "wrong_pin"),
    ],
)
def test_numbers_and_padded_strings_classify_like_their_string(
    code: object, status: PaymentStatus, reason: str
) -> None:
    assert classify_result(code) == (status, reason)


def test_only_code_zero_is_success() -> None:
    successes = [code for code, (status, _) in STK_RESULT_CODES.items() if status is PaymentStatus.SUCCEEDED]
    assert successes == ["0"]


@pytest.mark.parametrize(
    "code",
    ["1234", "5", "-1", "", "   ", "1032.5", 1032.5, "sfc_ic0003", "SFC_IC0004", None, "abc", "0.0", "0x0"],
)
def test_unknown_codes_are_failed_with_a_stable_reason(code: object) -> None:
    assert classify_result(code) == UNKNOWN_RESULT == (PaymentStatus.FAILED, "unknown_result_code")


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        (0, "0"),
        ("0", "0"),
        ("00", "0"),
        ("00000000", "0"),
        (0.0, "0"),
        (" 0 ", "0"),
        (" 1032 ", "1032"),
        (1032, "1032"),
        (1032.0, "1032"),
        ("1032", "1032"),
        ("SFC_IC0003", "SFC_IC0003"),
        (" SFC_IC0003\t", "SFC_IC0003"),
        ("", ""),
    ],
)
def test_normalise_code(value: object, normalised: str) -> None:
    assert normalise_code(value) == normalised


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=10**9))
def test_integer_codes_normalise_like_their_decimal_text(code: int) -> None:
    text = normalise_code(code)
    assert text == str(code)
    assert normalise_code(str(code)) == text
    assert normalise_code(float(code)) == text
    assert normalise_code(f"  {code} ") == text


@settings(max_examples=200)
@given(st.integers(min_value=1, max_value=20))
def test_any_run_of_zeros_is_success(length: int) -> None:
    assert normalise_code("0" * length) == "0"
    assert classify_result("0" * length) == (PaymentStatus.SUCCEEDED, "paid")


@settings(max_examples=200)
@given(st.text(max_size=12))
def test_classification_is_total(code: str) -> None:
    status, reason = classify_result(code)
    assert status.is_final
    assert reason
