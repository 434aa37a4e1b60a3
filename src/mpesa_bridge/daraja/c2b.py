"""C2B: the validation and confirmation payloads Safaricom POSTs, and the answers it expects.

Pure functions, no I/O: the bridge's C2B endpoint reads a body with `parse_c2b_payload` and answers
with `accept_payment`, `reject_payment` or `CONFIRMATION_ACK` (daraja.md §6.3, §6.4).

Both payloads have one shape; `OrgAccountBalance` is blank on validation. Amounts are whole
shillings: Daraja writes them as decimal text (`"5.00"`), and a payment with cents is refused
explicitly rather than rounded. `TransTime` is Nairobi local time, returned as aware UTC. The
payer's number is not given any more: v2 masks it (`2547 ***** 126`), v1 sends its SHA-256 hex,
so identify the customer by `BillRefNumber`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = [
    "CONFIRMATION_ACK",
    "RESULT_DESC_MAX",
    "C2BPayload",
    "C2BPayloadError",
    "C2BRejectCode",
    "MsisdnKind",
    "accept_payment",
    "msisdn_kind",
    "parse_c2b_payload",
    "reject_payment",
]

NAIROBI = ZoneInfo("Africa/Nairobi")
# One SDK warns that Daraja mishandles a ResultDesc above 90 characters.
RESULT_DESC_MAX = 90

MsisdnKind = Literal["hashed", "masked", "plain", "empty"]

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_PLAIN_MSISDN = re.compile(r"254[0-9]{9}")
_TRANS_TIME = re.compile(r"[0-9]{14}")


class C2BRejectCode(StrEnum):
    """Codes a validation answer may refuse a payment with; the code picks the customer's SMS."""

    INVALID_MSISDN = "C2B00011"
    INVALID_ACCOUNT_NUMBER = "C2B00012"
    INVALID_AMOUNT = "C2B00013"
    INVALID_KYC_DETAILS = "C2B00014"
    INVALID_SHORTCODE = "C2B00015"
    OTHER_ERROR = "C2B00016"


# The answer to a confirmation: always 0. The money has moved; nothing said here undoes it.
CONFIRMATION_ACK: Mapping[str, object] = {"ResultCode": 0, "ResultDesc": "Success"}


class C2BPayloadError(ValueError):
    """A validation or confirmation body the bridge cannot take as it is. `field` is Daraja's name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class C2BPayload:
    """A C2B validation or confirmation body, typed. `org_account_balance` is None on validation.

    `msisdn` is kept as sent; `msisdn_kind` says what it is. The balance keeps its cents (it is
    Safaricom's figure for the whole account, charges included), unlike the payment's amount."""

    transaction_type: str
    trans_id: str
    trans_time: datetime
    amount: int
    business_short_code: str
    bill_ref_number: str
    invoice_number: str
    org_account_balance: Decimal | None
    third_party_trans_id: str
    msisdn: str
    msisdn_kind: MsisdnKind
    first_name: str
    middle_name: str
    last_name: str

    @property
    def customer_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.middle_name, self.last_name) if part)


def parse_c2b_payload(body: Mapping[str, object]) -> C2BPayload:
    """Read a validation or confirmation body; raise `C2BPayloadError` naming the first bad field."""
    msisdn = _text(body, "MSISDN")
    return C2BPayload(
        transaction_type=_text(body, "TransactionType"),
        trans_id=_required(body, "TransID"),
        trans_time=_trans_time(body),
        amount=_amount(body),
        business_short_code=_required(body, "BusinessShortCode"),
        bill_ref_number=_text(body, "BillRefNumber"),
        invoice_number=_text(body, "InvoiceNumber"),
        org_account_balance=_balance(body),
        third_party_trans_id=_text(body, "ThirdPartyTransID"),
        msisdn=msisdn,
        msisdn_kind=msisdn_kind(msisdn),
        first_name=_text(body, "FirstName"),
        middle_name=_text(body, "MiddleName"),
        last_name=_text(body, "LastName"),
    )


def msisdn_kind(value: str) -> MsisdnKind:
    """What Daraja sent as MSISDN: a SHA-256 hex (v1), a masked number (v2), or an old plain one."""
    if not value:
        return "empty"
    if _SHA256_HEX.fullmatch(value):
        return "hashed"
    if _PLAIN_MSISDN.fullmatch(value):
        return "plain"
    return "masked"


def accept_payment(third_party_trans_id: str | None = None) -> dict[str, str]:
    """The validation answer that lets the payment through. `third_party_trans_id` (the bridge's
    own reference) comes back in the confirmation's ThirdPartyTransID."""
    answer = {"ResultCode": "0", "ResultDesc": "Accepted"}
    if third_party_trans_id:
        answer["ThirdPartyTransID"] = third_party_trans_id
    return answer


def reject_payment(code: C2BRejectCode | str, description: str = "Rejected") -> dict[str, str]:
    """The validation answer that refuses the payment with one of the documented codes."""
    try:
        code = C2BRejectCode(code)
    except ValueError:
        raise ValueError("code must be one of C2B00011..C2B00016") from None
    if not description.strip() or len(description) > RESULT_DESC_MAX:
        raise ValueError(f"description must be 1 to {RESULT_DESC_MAX} characters")
    return {"ResultCode": code.value, "ResultDesc": description}


def _text(body: Mapping[str, object], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise C2BPayloadError(name, "must be text")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _required(body: Mapping[str, object], name: str) -> str:
    text = _text(body, name)
    if not text:
        raise C2BPayloadError(name, "is missing")
    return text


def _trans_time(body: Mapping[str, object]) -> datetime:
    text = _required(body, "TransTime")
    if not _TRANS_TIME.fullmatch(text):
        raise C2BPayloadError("TransTime", "must be YYYYMMDDHHmmss")
    try:
        local = datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=NAIROBI)
    except ValueError:
        raise C2BPayloadError("TransTime", "is not a real date and time") from None
    return local.astimezone(UTC)


def _decimal(body: Mapping[str, object], name: str) -> Decimal | None:
    text = _text(body, name).replace(",", "")
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise C2BPayloadError(name, "must be a decimal number") from None
    if not value.is_finite():
        raise C2BPayloadError(name, "must be a decimal number")
    return value


def _amount(body: Mapping[str, object]) -> int:
    value = _decimal(body, "TransAmount")
    if value is None:
        raise C2BPayloadError("TransAmount", "is missing")
    if value != value.to_integral_value():
        # Never rounded: a payment with cents is not one the bridge knows how to account for.
        raise C2BPayloadError("TransAmount", "has cents; the bridge counts whole shillings only")
    if value <= 0:
        raise C2BPayloadError("TransAmount", "must be positive")
    return int(value)


def _balance(body: Mapping[str, object]) -> Decimal | None:
    return _decimal(body, "OrgAccountBalance")
