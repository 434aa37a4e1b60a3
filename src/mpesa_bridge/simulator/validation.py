"""Field rules of the STK Push, STK Query and Dynamic QR requests (daraja.md sections 1.3, 3.1, 5, 12, 19).

Fields are checked in the order Daraja lists them and the first bad one is named in
`Bad Request - Invalid <Field>`. Numeric fields accept JSON numbers or digit strings, as Daraja does.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from .errors import invalid_field, merchant_error

PAYBILL = "CustomerPayBillOnline"
BUY_GOODS = "CustomerBuyGoodsOnline"
MAX_AMOUNT = 250_000
TRX_CODES = ("BG", "WA", "PB", "SM", "SB")
# Daraja documents no bounds on Size; the simulator refuses what no one would ask for.
MAX_QR_SIZE = 2000

_SHORTCODE = re.compile(r"^\d{5,7}$")
_MSISDN = re.compile(r"^254[17]\d{8}$")
_SHORTCODE_OR_MSISDN = re.compile(r"^(\d{5,7}|254[17]\d{8})$")
_TIMESTAMP = re.compile(r"^\d{14}$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_WHITESPACE = re.compile(r"\s")


@dataclass(frozen=True)
class StkPushRequest:
    business_short_code: str
    password: str
    timestamp: str
    transaction_type: str
    amount: int
    party_a: str
    party_b: str
    phone_number: str
    callback_url: str
    account_reference: str
    transaction_desc: str


@dataclass(frozen=True)
class StkQueryRequest:
    business_short_code: str
    password: str
    timestamp: str
    checkout_request_id: str


@dataclass(frozen=True)
class DynamicQrRequest:
    merchant_name: str
    ref_no: str
    amount: int
    trx_code: str
    cpi: str
    size: int


def stk_password(short_code: str, passkey: str, timestamp: str) -> str:
    """`base64(BusinessShortCode + Passkey + Timestamp)`, the STK Password."""
    return base64.b64encode(f"{short_code}{passkey}{timestamp}".encode()).decode("ascii")


def parse_stk_push(body: Mapping[str, Any]) -> StkPushRequest:
    return StkPushRequest(
        business_short_code=_digits(body, "BusinessShortCode", _SHORTCODE),
        password=_password(body),
        timestamp=_timestamp(body),
        transaction_type=_transaction_type(body),
        amount=_amount(body),
        party_a=_digits(body, "PartyA", _MSISDN),
        party_b=_digits(body, "PartyB", _SHORTCODE),
        phone_number=_digits(body, "PhoneNumber", _MSISDN),
        callback_url=_callback_url(body),
        account_reference=_text(body, "AccountReference", 12),
        transaction_desc=_transaction_desc(body),
    )


def parse_stk_query(body: Mapping[str, Any]) -> StkQueryRequest:
    return StkQueryRequest(
        business_short_code=_digits(body, "BusinessShortCode", _SHORTCODE),
        password=_password(body),
        timestamp=_timestamp(body),
        checkout_request_id=_checkout_request_id(body),
    )


def parse_dynamic_qr(body: Mapping[str, Any]) -> DynamicQrRequest:
    merchant_name = _text(body, "MerchantName", 100)
    ref_no = _text(body, "RefNo", 100)
    amount = _amount(body)
    trx_code = body.get("TrxCode")
    if trx_code not in TRX_CODES:
        raise invalid_field("TrxCode")
    # SM pays a phone number; the others a till, paybill, agent or business number (SB: either).
    if trx_code == "SM":
        cpi_pattern = _MSISDN
    elif trx_code == "SB":
        cpi_pattern = _SHORTCODE_OR_MSISDN
    else:
        cpi_pattern = _SHORTCODE
    cpi = _digits(body, "CPI", cpi_pattern)
    size = _as_digits(body.get("Size"))
    if size is None or not 1 <= int(size) <= MAX_QR_SIZE:
        raise invalid_field("Size")
    return DynamicQrRequest(merchant_name, ref_no, amount, str(trx_code), cpi, int(size))


def _as_digits(value: Any) -> str | None:
    """A JSON integer or a string of digits, as text; None for anything else (bools, floats, …)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if value >= 0 else None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return value
    return None


def _digits(body: Mapping[str, Any], field: str, pattern: re.Pattern[str]) -> str:
    text = _as_digits(body.get(field))
    if text is None or not pattern.match(text):
        raise invalid_field(field)
    return text


def _password(body: Mapping[str, Any]) -> str:
    value = body.get("Password")
    if not isinstance(value, str) or not _BASE64.match(value):
        raise invalid_field("Password")
    return value


def _timestamp(body: Mapping[str, Any]) -> str:
    text = _as_digits(body.get("Timestamp"))
    if text is None or not _TIMESTAMP.match(text):
        raise invalid_field("Timestamp")
    try:
        datetime.strptime(text, "%Y%m%d%H%M%S")  # noqa: DTZ007 - a calendar check only, no time arithmetic
    except ValueError:
        raise invalid_field("Timestamp") from None
    return text


def _transaction_type(body: Mapping[str, Any]) -> str:
    value = body.get("TransactionType")
    if value not in (PAYBILL, BUY_GOODS):
        raise invalid_field("TransactionType")
    return str(value)


def _amount(body: Mapping[str, Any]) -> int:
    # A decimal (10.5, but also 100.00) is refused as Daraja refuses it; "100" is fine.
    text = _as_digits(body.get("Amount"))
    if text is None or not 1 <= int(text) <= MAX_AMOUNT:
        raise invalid_field("Amount")
    return int(text)


def _callback_url(body: Mapping[str, Any], field: str = "CallBackURL") -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value or _WHITESPACE.search(value):
        raise invalid_field(field)
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        raise invalid_field(field) from None
    # localhost and private addresses are fine here: the simulator runs next to its merchant.
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid_field(field)
    return value


def _text(body: Mapping[str, Any], field: str, max_length: int) -> str:
    value = body.get(field)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise invalid_field(field)
    return value


def _transaction_desc(body: Mapping[str, Any]) -> str:
    # Daraja maps TransactionDesc to its internal "Remarks": a null value is reported under that name.
    if body.get("TransactionDesc") is None:
        raise invalid_field("Remarks")
    return _text(body, "TransactionDesc", 13)


def _checkout_request_id(body: Mapping[str, Any]) -> str:
    value = body.get("CheckoutRequestID")
    if not isinstance(value, str) or not value.strip():
        raise invalid_field("CheckoutRequestID")
    return value


def check_password(request: StkPushRequest | StkQueryRequest, passkey: str) -> None:
    expected = stk_password(request.business_short_code, passkey, request.timestamp)
    if request.password != expected:
        raise merchant_error("[MerchantValidate] - Wrong credentials")
