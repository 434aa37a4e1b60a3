"""Field rules of B2C, Transaction Status, Account Balance and Reversal (daraja.md sections 7 to 11).

As for STK: fields are checked in the order Daraja lists them, the first bad one is named in
`Bad Request - Invalid <Field>`, and numeric fields take JSON numbers or digit strings.
A SecurityCredential is only checked for shape here; whether it opens is decided later and
answered in the Result (ResultCode 2001), as Daraja does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import invalid_field
from .validation import _amount, _as_digits, _callback_url, _digits

B2C_COMMAND_IDS = ("SalaryPayment", "BusinessPayment", "PromotionPayment")
IDENTIFIER_TYPES = ("1", "2", "4")
RECEIVER_IDENTIFIER_TYPES = ("11", "4")
REMARKS_MAX = 100
ID_MAX = 64

_SHORTCODE = re.compile(r"^\d{5,7}$")
_MSISDN = re.compile(r"^254[17]\d{8}$")
_PARTY = re.compile(r"^(\d{5,9}|254[17]\d{8})$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_TRANSACTION_ID = re.compile(r"^[A-Za-z0-9]{1,20}$")


@dataclass(frozen=True)
class B2cRequest:
    originator_conversation_id: str | None  # None for v1: the simulator makes one up
    initiator_name: str
    security_credential: str
    command_id: str
    amount: int
    party_a: str
    party_b: str
    remarks: str
    queue_timeout_url: str
    result_url: str


@dataclass(frozen=True)
class TransactionStatusRequest:
    initiator: str
    security_credential: str
    transaction_id: str
    original_conversation_id: str
    party_a: str
    identifier_type: str
    result_url: str
    queue_timeout_url: str


@dataclass(frozen=True)
class AccountBalanceRequest:
    initiator: str
    security_credential: str
    party_a: str
    identifier_type: str
    queue_timeout_url: str
    result_url: str


@dataclass(frozen=True)
class ReversalRequest:
    initiator: str
    security_credential: str
    transaction_id: str
    amount: int
    receiver_party: str
    result_url: str
    queue_timeout_url: str


def parse_b2c(body: Mapping[str, Any], *, v3: bool) -> B2cRequest:
    originator = _identifier(body, "OriginatorConversationID") if v3 else None
    request = B2cRequest(
        originator_conversation_id=originator,
        initiator_name=_name(body, "InitiatorName"),
        security_credential=_credential(body),
        command_id=_choice(body, "CommandID", B2C_COMMAND_IDS),
        amount=_amount(body),
        party_a=_digits(body, "PartyA", _SHORTCODE),
        party_b=_digits(body, "PartyB", _MSISDN),
        remarks=_remarks(body, min_length=2),
        queue_timeout_url=_url(body, "QueueTimeOutURL"),
        result_url=_url(body, "ResultURL"),
    )
    # Optional, and spelt both ways in the wild (daraja.md 7.1): either is read, neither required.
    for name in ("Occassion", "Occasion"):
        _optional_text(body, name)
    return request


def parse_transaction_status(body: Mapping[str, Any]) -> TransactionStatusRequest:
    initiator = _name(body, "Initiator")
    credential = _credential(body)
    _choice(body, "CommandID", ("TransactionStatusQuery",))
    transaction_id = _optional_id(body, "TransactionID")
    original = body.get("OriginalConversationID")
    if original is not None and (not isinstance(original, str) or len(original) > ID_MAX):
        raise invalid_field("OriginalConversationID")
    original = (original or "").strip()
    if not transaction_id and not original:
        raise invalid_field("TransactionID")
    request = TransactionStatusRequest(
        initiator=initiator,
        security_credential=credential,
        transaction_id=transaction_id,
        original_conversation_id=original,
        party_a=_digits(body, "PartyA", _PARTY),
        identifier_type=_choice(body, "IdentifierType", IDENTIFIER_TYPES),
        result_url=_url(body, "ResultURL"),
        queue_timeout_url=_url(body, "QueueTimeOutURL"),
    )
    _remarks(body, min_length=1)
    _optional_text(body, "Occasion")
    return request


def parse_account_balance(body: Mapping[str, Any]) -> AccountBalanceRequest:
    initiator = _name(body, "Initiator")
    credential = _credential(body)
    _choice(body, "CommandID", ("AccountBalance",))
    party_a = _digits(body, "PartyA", _PARTY)
    identifier_type = _choice(body, "IdentifierType", IDENTIFIER_TYPES)
    _remarks(body, min_length=1)
    return AccountBalanceRequest(
        initiator=initiator,
        security_credential=credential,
        party_a=party_a,
        identifier_type=identifier_type,
        queue_timeout_url=_url(body, "QueueTimeOutURL"),
        result_url=_url(body, "ResultURL"),
    )


def parse_reversal(body: Mapping[str, Any]) -> ReversalRequest:
    initiator = _name(body, "Initiator")
    credential = _credential(body)
    _choice(body, "CommandID", ("TransactionReversal",))
    transaction_id = _optional_id(body, "TransactionID")
    if not transaction_id:
        raise invalid_field("TransactionID")
    amount = _amount(body)
    receiver_party = _digits(body, "ReceiverParty", _SHORTCODE)
    _choice(body, "RecieverIdentifierType", RECEIVER_IDENTIFIER_TYPES)  # sic: Safaricom's spelling
    request = ReversalRequest(
        initiator=initiator,
        security_credential=credential,
        transaction_id=transaction_id,
        amount=amount,
        receiver_party=receiver_party,
        result_url=_url(body, "ResultURL"),
        queue_timeout_url=_url(body, "QueueTimeOutURL"),
    )
    _remarks(body, min_length=2)
    _optional_text(body, "Occasion")
    return request


def _identifier(body: Mapping[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip() or len(value) > ID_MAX:
        raise invalid_field(field)
    return value


def _name(body: Mapping[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip() or len(value) > ID_MAX:
        raise invalid_field(field)
    return value


def _credential(body: Mapping[str, Any]) -> str:
    value = body.get("SecurityCredential")
    if not isinstance(value, str) or not _BASE64.match(value):
        raise invalid_field("SecurityCredential")
    return value


def _choice(body: Mapping[str, Any], field: str, allowed: tuple[str, ...]) -> str:
    value = body.get(field)
    text = _as_digits(value) if isinstance(value, int) else value
    if text not in allowed:
        raise invalid_field(field)
    return str(text)


def _remarks(body: Mapping[str, Any], *, min_length: int) -> str:
    value = body.get("Remarks")
    if not isinstance(value, str) or not value.strip() or not min_length <= len(value) <= REMARKS_MAX:
        raise invalid_field("Remarks")
    return value


def _optional_text(body: Mapping[str, Any], field: str) -> None:
    value = body.get(field)
    if value is not None and (not isinstance(value, str) or len(value) > REMARKS_MAX):
        raise invalid_field(field)


def _optional_id(body: Mapping[str, Any], field: str) -> str:
    value = body.get(field)
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or not _TRANSACTION_ID.match(value):
        raise invalid_field(field)
    return value


def _url(body: Mapping[str, Any], field: str) -> str:
    return _callback_url(body, field)
