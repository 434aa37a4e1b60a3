"""What a merchant may ask for (`core.payments.validation`): every error names its field and code."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.payments.validation import (
    ACCOUNT_REFERENCE_MAX,
    DAR_MAX_AMOUNT,
    DESCRIPTION_MAX,
    PaymentCreate,
    PaymentLimits,
    check_amount,
    check_daraja_text,
    check_metadata,
    validate_payment_create,
)

LIMITS = PaymentLimits()


def _valid(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "phone": "0712345678",
        "amount": 100,
        "account_reference": "INV00042",
        "description": "Order 42",
        "metadata": {"order_id": 42},
        "limits": LIMITS,
    }
    fields.update(overrides)
    return fields


def _error(**overrides: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        validate_payment_create(**_valid(**overrides))
    return info.value


def test_a_valid_request() -> None:
    created = validate_payment_create(**_valid())
    assert created == PaymentCreate(
        phone="254712345678",
        amount=100,
        account_reference="INV00042",
        description="Order 42",
        metadata={"order_id": 42},
    )


def test_the_documented_limits() -> None:
    assert DAR_MAX_AMOUNT == 250_000
    assert ACCOUNT_REFERENCE_MAX == 12
    assert DESCRIPTION_MAX == 13
    assert PaymentLimits() == PaymentLimits(max_amount=250_000, metadata_max_bytes=4096, metadata_max_keys=50)


# ---------------------------------------------------------------------------------------------
# phone
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("phone", ["0201234567", "", None, 712345678])
def test_bad_phone(phone: object) -> None:
    error = _error(phone=phone)
    assert (error.param, error.code) == ("phone", "invalid_phone")


# ---------------------------------------------------------------------------------------------
# amount
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [True, False, 10.0, 10.5, "10", "ten", None, Decimal("10"), [10], b"10"])
def test_amount_must_be_an_int(amount: object) -> None:
    error = _error(amount=amount)
    assert (error.param, error.code) == ("amount", "invalid_amount")


@pytest.mark.parametrize("amount", [0, -1, -250_000, 250_001, 10**12])
def test_amount_out_of_the_default_range(amount: int) -> None:
    error = _error(amount=amount)
    assert (error.param, error.code) == ("amount", "amount_out_of_range")
    assert "250000" in error.message


@pytest.mark.parametrize("amount", [1, 2, 100, 249_999, 250_000])
def test_amount_within_the_default_range(amount: int) -> None:
    assert validate_payment_create(**_valid(amount=amount)).amount == amount


def test_the_maximum_is_configurable() -> None:
    limits = PaymentLimits(max_amount=1000)
    assert check_amount(1000, limits) == 1000
    with pytest.raises(InvalidRequest) as info:
        check_amount(1001, limits)
    assert (info.value.param, info.value.code) == ("amount", "amount_out_of_range")
    assert "1000" in info.value.message
    assert validate_payment_create(**_valid(amount=1000, limits=limits)).amount == 1000


@settings(max_examples=200)
@given(st.integers(min_value=-(10**9), max_value=10**9), st.integers(min_value=1, max_value=10**6))
def test_amount_in_range_iff_between_one_and_max(amount: int, maximum: int) -> None:
    limits = PaymentLimits(max_amount=maximum)
    if 1 <= amount <= maximum:
        assert check_amount(amount, limits) == amount
    else:
        with pytest.raises(InvalidRequest) as info:
            check_amount(amount, limits)
        assert info.value.code == "amount_out_of_range"


# ---------------------------------------------------------------------------------------------
# account_reference
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reference",
    ["A", "INV00042", "123456789012", "Order 42", "a.b-c_d/e 9", "  INV1  ", "AbCdEfGhIjKl"],
)
def test_account_reference_accepted(reference: str) -> None:
    assert validate_payment_create(**_valid(account_reference=reference)).account_reference == reference.strip()


@pytest.mark.parametrize(
    ("reference", "code"),
    [
        ("", "parameter_missing"),
        ("   ", "parameter_missing"),
        (None, "parameter_missing"),
        (12, "parameter_missing"),
        ("1234567890123", "too_long"),
        ("A" * 13, "too_long"),
        ("INV@1", "invalid_characters"),
        ("INV#1", "invalid_characters"),
        ("A&B", "invalid_characters"),
        ("INV😀", "invalid_characters"),
        ("Café", "invalid_characters"),
        ("a\nb", "invalid_characters"),
        ("a\tb", "invalid_characters"),
        ("50%", "invalid_characters"),
        ("a,b", "invalid_characters"),
        ("<b>", "invalid_characters"),
    ],
)
def test_account_reference_refused(reference: object, code: str) -> None:
    error = _error(account_reference=reference)
    assert (error.param, error.code) == ("account_reference", code)


@settings(max_examples=200)
@given(st.text(alphabet="ABCXYZabcxyz0189 .-_/", min_size=1, max_size=12).filter(lambda s: s.strip()))
def test_any_reference_from_the_allowed_set_passes(reference: str) -> None:
    assert check_daraja_text(reference, param="account_reference", max_len=12) == reference.strip()


@settings(max_examples=200)
@given(st.text(min_size=1, max_size=12))
def test_a_reference_passes_only_when_every_char_is_allowed(reference: str) -> None:
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .-_/")
    text = reference.strip()
    try:
        result = check_daraja_text(reference, param="account_reference", max_len=12)
    except InvalidRequest as exc:
        assert exc.param == "account_reference"
        assert exc.code in {"parameter_missing", "too_long", "invalid_characters"}
        assert not text or not set(text) <= allowed
    else:
        assert result == text
        assert set(result) <= allowed


# ---------------------------------------------------------------------------------------------
# description
# ---------------------------------------------------------------------------------------------


def test_description_defaults_to_payment() -> None:
    assert validate_payment_create(**_valid(description=None)).description == "Payment"


@pytest.mark.parametrize("description", ["X", "Order 42", "1234567890123", " Order 42 "])
def test_description_accepted(description: str) -> None:
    assert validate_payment_create(**_valid(description=description)).description == description.strip()


@pytest.mark.parametrize(
    ("description", "code"),
    [
        ("", "parameter_missing"),
        ("   ", "parameter_missing"),
        (13, "parameter_missing"),
        ("12345678901234", "too_long"),
        ("Order #42", "invalid_characters"),
        ("Pay @ shop", "invalid_characters"),
        ("Tea & cake", "invalid_characters"),
        ("☕", "invalid_characters"),
    ],
)
def test_description_refused(description: object, code: str) -> None:
    error = _error(description=description)
    assert (error.param, error.code) == ("description", code)


# ---------------------------------------------------------------------------------------------
# metadata
# ---------------------------------------------------------------------------------------------


def test_metadata_defaults_to_an_empty_object() -> None:
    assert validate_payment_create(**_valid(metadata=None)).metadata == {}


@pytest.mark.parametrize("metadata", [{}, {"a": 1}, {"nested": {"list": [1, "two", None, True]}}])
def test_metadata_objects_are_kept(metadata: dict[str, Any]) -> None:
    assert validate_payment_create(**_valid(metadata=metadata)).metadata == metadata


@pytest.mark.parametrize("metadata", [[], [{"a": 1}], "x", "{}", 1, 1.5, True])
def test_metadata_must_be_an_object(metadata: object) -> None:
    error = _error(metadata=metadata)
    assert (error.param, error.code) == ("metadata", "invalid_metadata")


def test_metadata_key_count_limit() -> None:
    fifty = {f"k{i}": i for i in range(50)}
    assert check_metadata(fifty, LIMITS) == fifty
    error = _error(metadata={**fifty, "one_more": 1})
    assert (error.param, error.code) == ("metadata", "metadata_too_large")


def test_metadata_size_limit_is_measured_as_json_bytes() -> None:
    overhead = len(orjson.dumps({"k": ""}))
    at_limit = {"k": "x" * (4096 - overhead)}
    assert len(orjson.dumps(at_limit)) == 4096
    assert check_metadata(at_limit, LIMITS) == at_limit
    error = _error(metadata={"k": "x" * (4097 - overhead)})
    assert (error.param, error.code) == ("metadata", "metadata_too_large")


def test_metadata_size_counts_utf8_bytes_not_characters() -> None:
    # 1500 characters, 3000 bytes in UTF-8: fits in 4096 bytes only if measured in characters.
    limits = PaymentLimits(metadata_max_bytes=2000)
    with pytest.raises(InvalidRequest) as info:
        check_metadata({"k": "é" * 1500}, limits)
    assert info.value.code == "metadata_too_large"


def test_metadata_limits_are_configurable() -> None:
    limits = PaymentLimits(metadata_max_keys=2, metadata_max_bytes=20)
    assert check_metadata({"a": 1, "b": 2}, limits) == {"a": 1, "b": 2}
    with pytest.raises(InvalidRequest) as info:
        check_metadata({"a": 1, "b": 2, "c": 3}, limits)
    assert info.value.code == "metadata_too_large"
    with pytest.raises(InvalidRequest) as info:
        check_metadata({"a": "x" * 20}, limits)
    assert info.value.code == "metadata_too_large"


def test_metadata_that_cannot_be_measured_is_refused_as_invalid() -> None:
    with pytest.raises(InvalidRequest) as info:
        check_metadata({"n": 2**64}, LIMITS)
    assert info.value.param == "metadata"


# ---------------------------------------------------------------------------------------------
# error codes are stable strings, errors are InvalidRequest
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "param", "code"),
    [
        ({"phone": "x"}, "phone", "invalid_phone"),
        ({"amount": 1.0}, "amount", "invalid_amount"),
        ({"amount": 0}, "amount", "amount_out_of_range"),
        ({"account_reference": ""}, "account_reference", "parameter_missing"),
        ({"account_reference": "x" * 13}, "account_reference", "too_long"),
        ({"account_reference": "a@b"}, "account_reference", "invalid_characters"),
        ({"description": "x" * 14}, "description", "too_long"),
        ({"metadata": []}, "metadata", "invalid_metadata"),
        ({"metadata": {str(i): i for i in range(51)}}, "metadata", "metadata_too_large"),
    ],
)
def test_error_param_and_code_table(overrides: dict[str, Any], param: str, code: str) -> None:
    error = _error(**overrides)
    assert type(error) is InvalidRequest
    assert (error.param, error.code) == (param, code)
    assert error.message
    assert str(error) == error.message
