"""Field rules: a request Daraja would refuse or mishandle is refused before anything is sent."""

import dataclasses
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mpesa_bridge.daraja import DarajaClient, DarajaCredentials, DarajaValidationError, StkPushRequest, TokenCache
from mpesa_bridge.daraja._validation import check_short_code
from tests.fixtures.shortcodes import SHORT_CODE_CASES

PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
VALID = StkPushRequest(
    business_short_code="174379",
    passkey=PASSKEY,
    transaction_type="CustomerPayBillOnline",
    amount=100,
    party_a="254708374149",
    party_b="174379",
    phone_number="254708374149",
    callback_url="https://pay.example.com/hooks/stk/3f9c1e7a2b",
    account_reference="INV00042",
    transaction_desc="Order 42",
)
FREE_TEXT_ALPHABET = "abcXYZ019 -._/"


def with_(**overrides: object) -> StkPushRequest:
    return dataclasses.replace(VALID, **overrides)  # type: ignore[arg-type]


@pytest.fixture
async def silent_client() -> AsyncIterator[tuple[DarajaClient, list[httpx.Request]]]:
    """A client whose peer fails the test if anything at all reaches it."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        raise AssertionError(f"nothing should have been sent, got {request.method} {request.url.path}")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = DarajaClient(
            "https://sandbox.safaricom.co.ke", DarajaCredentials("k", "s"), http=http, token_cache=TokenCache()
        )
        yield client, seen


REFUSED: dict[str, tuple[str, object]] = {
    "zero amount": ("amount", 0),
    "negative amount": ("amount", -5),
    "amount over the ceiling": ("amount", 250_001),
    "decimal amount": ("amount", 10.5),
    "whole float amount": ("amount", 100.0),
    "bool amount": ("amount", True),
    "string amount": ("amount", "100"),
    "phone with plus": ("phone_number", "+254708374149"),
    "phone with leading zero": ("phone_number", "0708374149"),
    "phone too short": ("phone_number", "25470837414"),
    "phone too long": ("phone_number", "2547083741490"),
    "phone wrong prefix": ("phone_number", "254608374149"),
    "phone with spaces": ("phone_number", "254 708 374 149"),
    "phone with arabic digits": ("phone_number", "254" + "\u0667\u0660\u0668\u0663\u0667\u0664\u0661\u0664\u0669"),
    "party_a not an msisdn": ("party_a", "174379"),
    "party_a as int": ("party_a", 254708374149),
    "shortcode too short": ("business_short_code", "1234"),
    "shortcode too long": ("business_short_code", "12345678"),
    "shortcode with letters": ("business_short_code", "17437a"),
    "shortcode with leading zero": ("business_short_code", "017437"),
    "shortcode as int": ("business_short_code", 174379),
    "party_b too long": ("party_b", "12345678"),
    "empty passkey": ("passkey", ""),
    "unknown transaction type": ("transaction_type", "CustomerPayBill"),
    "reference empty": ("account_reference", ""),
    "reference blank": ("account_reference", "   "),
    "reference 13 chars": ("account_reference", "A" * 13),
    "reference with @": ("account_reference", "me@shop"),
    "reference with #": ("account_reference", "INV#42"),
    "reference with &": ("account_reference", "A&B"),
    "reference with emoji": ("account_reference", "INV🙂"),
    "reference with accent": ("account_reference", "café"),
    "reference none": ("account_reference", None),
    "desc empty": ("transaction_desc", ""),
    "desc 14 chars": ("transaction_desc", "D" * 14),
    "desc with newline": ("transaction_desc", "Order\n42"),
    "callback without scheme": ("callback_url", "pay.example.com/hooks"),
    "callback ftp": ("callback_url", "ftp://pay.example.com/hooks"),
    "callback with space": ("callback_url", "https://pay.example.com/hooks/stk 1"),
    "callback with trailing newline": ("callback_url", "https://pay.example.com/hooks\n"),
    "callback without host": ("callback_url", "https:///hooks"),
    "callback with broken ipv6 host": ("callback_url", "https://[::1/hooks"),
    "callback empty": ("callback_url", ""),
}


@pytest.mark.parametrize(("field", "value"), REFUSED.values(), ids=REFUSED.keys())
def test_validate_names_the_field(field: str, value: object) -> None:
    with pytest.raises(DarajaValidationError) as caught:
        with_(**{field: value}).validate()

    assert caught.value.field == field
    assert caught.value.code == "daraja_validation_error"
    assert caught.value.outcome_unknown is False
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(("field", "value"), REFUSED.values(), ids=REFUSED.keys())
async def test_push_refused_sends_nothing(
    silent_client: tuple[DarajaClient, list[httpx.Request]], field: str, value: object
) -> None:
    client, seen = silent_client

    with pytest.raises(DarajaValidationError):
        await client.stk_push(with_(**{field: value}))

    assert seen == []


@pytest.mark.parametrize(
    ("short_code", "passkey", "checkout_request_id"),
    [
        ("1234", PASSKEY, "ws_CO_1"),
        ("174379", "", "ws_CO_1"),
        ("174379", PASSKEY, ""),
        ("174379", PASSKEY, "  "),
        ("174379", PASSKEY, "x" * 65),
    ],
)
async def test_query_refused_sends_nothing(
    silent_client: tuple[DarajaClient, list[httpx.Request]], short_code: str, passkey: str, checkout_request_id: str
) -> None:
    client, seen = silent_client

    with pytest.raises(DarajaValidationError):
        await client.stk_query(short_code, passkey, checkout_request_id)

    assert seen == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"amount": 1},
        {"amount": 250_000},
        {"phone_number": "254112345678", "party_a": "254112345678"},
        {"business_short_code": "12345", "party_b": "1234567"},
        {"transaction_type": "CustomerBuyGoodsOnline", "business_short_code": "7654321", "party_b": "123456"},
        {"account_reference": "Ab1 -._/xyzW"},
        {"transaction_desc": "Pay 4 order/1"},
        {"callback_url": "http://203.0.113.7:8080/hooks/stk/abc?x=1"},
    ],
)
def test_edge_values_are_accepted(overrides: dict[str, object]) -> None:
    with_(**overrides).validate()


# --- Properties ----------------------------------------------------------------------------------


def refused(request: StkPushRequest) -> str | None:
    try:
        request.validate()
    except DarajaValidationError as exc:
        return exc.field
    return None


@given(st.one_of(st.integers(min_value=-(10**7), max_value=10**7), st.booleans(), st.floats(), st.text()))
@example(0)
@example(1)
@example(250_000)
@example(250_001)
def test_amount_is_accepted_iff_an_int_in_range(amount: object) -> None:
    ok = isinstance(amount, int) and not isinstance(amount, bool) and 1 <= amount <= 250_000
    assert refused(with_(amount=amount)) == (None if ok else "amount")


@given(st.one_of(st.text(alphabet="0123456789+ ", max_size=14), st.from_regex(r"254[0-9]{9}", fullmatch=True)))
def test_msisdn_is_accepted_iff_254_7_or_1_and_8_digits(phone: str) -> None:
    ok = re.fullmatch(r"254[71][0-9]{8}", phone) is not None
    assert refused(with_(phone_number=phone)) == (None if ok else "phone_number")


@given(st.text(alphabet="0123456789a ", max_size=9))
def test_short_code_is_accepted_iff_5_to_7_digits(code: str) -> None:
    ok = re.fullmatch(r"[1-9][0-9]{4,6}", code) is not None
    assert refused(with_(business_short_code=code, party_b="174379")) == (None if ok else "business_short_code")


@given(st.text(alphabet=st.one_of(st.sampled_from(FREE_TEXT_ALPHABET), st.characters()), max_size=16))
def test_account_reference_rules(text: str) -> None:
    allowed = all(ch in FREE_TEXT_ALPHABET or (ch.isascii() and ch.isalnum()) for ch in text)
    ok = allowed and 1 <= len(text) <= 12 and text.strip() != ""
    assert refused(with_(account_reference=text)) == (None if ok else "account_reference")


@given(st.text(alphabet=st.one_of(st.sampled_from(FREE_TEXT_ALPHABET), st.characters()), max_size=16))
def test_transaction_desc_rules(text: str) -> None:
    allowed = all(ch in FREE_TEXT_ALPHABET or (ch.isascii() and ch.isalnum()) for ch in text)
    ok = allowed and 1 <= len(text) <= 13 and text.strip() != ""
    assert refused(with_(transaction_desc=text)) == (None if ok else "transaction_desc")


@given(path=st.text(max_size=20), whitespace=st.sampled_from([" ", "\t", "\n", "\r", "\u00a0", "\u2003"]))
def test_callback_url_with_any_whitespace_is_refused(path: str, whitespace: str) -> None:
    url = f"https://pay.example.com/{path}{whitespace}"
    assert refused(with_(callback_url=url)) == "callback_url"


def test_validation_messages_never_echo_the_value() -> None:
    for field, value in REFUSED.values():
        with pytest.raises(DarajaValidationError) as caught:
            with_(**{field: value}).validate()
        # (transaction_type's message lists the allowed values, which contain the bad one.)
        if isinstance(value, str) and len(value) > 3 and field != "transaction_type":
            assert value not in str(caught.value)


@pytest.mark.parametrize(("text", "valid", "why"), SHORT_CODE_CASES, ids=[c[2] for c in SHORT_CODE_CASES])
@pytest.mark.parametrize("field", ["business_short_code", "party_b"])
def test_short_codes_follow_the_one_rule(field: str, text: str, valid: bool, why: str) -> None:
    """The client accepts exactly what the bridge's core saves (issue 9 #16)."""
    if valid:
        check_short_code(field, text)
    else:
        with pytest.raises(DarajaValidationError):
            check_short_code(field, text)
