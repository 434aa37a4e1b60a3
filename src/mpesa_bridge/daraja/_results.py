"""The asynchronous Result of the initiator APIs (daraja.md §8), and each API's ResultParameters.

Safaricom POSTs `{"Result": {...}}` to ResultURL (and, undocumented, something of the same shape
to QueueTimeOutURL). Read tolerantly (rule 10): codes as numbers or strings (`"R000002"` too),
`ResultParameters.ResultParameter` as a list or a single object, the inverse nesting or a bare list,
keys with spaces (`"Originator Conversation ID"`) or in another case, repeated keys, a `Key` with no
`Value`. `parse_result` keeps every parameter in order; the `*_details` functions read one API's.

Money: a transaction amount (`TransactionAmount`, `Amount`) is whole shillings, like everything in
the bridge; a value with a fractional part is not turned into shillings (`None`) and stays in
`parameters` as it came. Balances and charges do carry cents (`228037.00`, `-1980.00`,
`Fee For B2C Payment|KES|22.40`), so they are integer **cents** (`*_cents`): exact, never floats.
Times are EAT (Nairobi) on the wire and aware UTC datetimes here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from ._exceptions import DarajaMalformedResult
from ._security import NAIROBI
from .result_codes import normalise_code

__all__ = [
    "AccountBalanceDetails",
    "B2cResultDetails",
    "Balance",
    "InitiatorResult",
    "ResultParameter",
    "ReversalDetails",
    "TransactionStatusDetails",
    "account_balance_details",
    "b2c_details",
    "parse_balances",
    "parse_result",
    "reversal_details",
    "transaction_status_details",
]


@dataclass(frozen=True)
class ResultParameter:
    """One `{"Key", "Value"}` pair; `value` is None when Daraja sent the key alone."""

    key: str
    value: object = None


@dataclass(frozen=True)
class InitiatorResult:
    """The common Result envelope. `result_code` is normalised (`"0"` for any run of zeros)."""

    result_type: str
    result_code: str
    result_desc: str
    originator_conversation_id: str
    conversation_id: str
    transaction_id: str
    parameters: tuple[ResultParameter, ...] = ()
    reference_data: tuple[ResultParameter, ...] = ()

    @property
    def succeeded(self) -> bool:
        return self.result_code == "0"

    def get(self, key: str) -> object:
        """The first parameter named `key` (spaces and case ignored), or None."""
        return next(iter(self.get_all(key)), None)

    def get_all(self, key: str) -> list[object]:
        wanted = _norm(key)
        return [p.value for p in self.parameters if _norm(p.key) == wanted]

    def reference(self, key: str) -> object:
        wanted = _norm(key)
        return next((p.value for p in self.reference_data if _norm(p.key) == wanted), None)


@dataclass(frozen=True)
class Balance:
    """One account of an `AccountBalance` string: `Name|Currency|a1|a2|a3|a4`, amounts in cents.

    The meaning of the four amounts differs between sources (daraja.md §10); all four are kept and
    the first (the string's third field) is the headline balance."""

    name: str
    currency: str
    amounts_cents: tuple[int, ...]

    @property
    def available_cents(self) -> int:
        return self.amounts_cents[0] if self.amounts_cents else 0


@dataclass(frozen=True)
class B2cResultDetails:
    receipt: str | None
    amount: int | None
    receiver_party_public_name: str | None
    completed_at: datetime | None
    utility_account_available_cents: int | None
    working_account_available_cents: int | None
    charges_paid_account_available_cents: int | None
    recipient_is_registered: bool | None


@dataclass(frozen=True)
class TransactionStatusDetails:
    receipt: str | None
    status: str | None  # "Completed" is the only one that means money moved
    amount: int | None
    debit_party_name: str | None
    credit_party_name: str | None
    originator_conversation_id: str | None
    conversation_id: str | None
    initiated_at: datetime | None
    finalised_at: datetime | None
    debit_party_charges_cents: int | None
    debit_account_type: str | None
    reason_type: str | None

    @property
    def completed(self) -> bool:
        return (self.status or "").strip().lower() == "completed"


@dataclass(frozen=True)
class AccountBalanceDetails:
    accounts: tuple[Balance, ...]
    completed_at: datetime | None

    def account(self, name: str) -> Balance | None:
        wanted = _norm(name)
        return next((a for a in self.accounts if _norm(a.name) == wanted), None)


@dataclass(frozen=True)
class ReversalDetails:
    amount: int | None
    original_transaction_id: str | None
    charge_cents: int | None
    debit_account_balance: tuple[Balance, ...]
    completed_at: datetime | None
    credit_party_public_name: str | None
    debit_party_public_name: str | None


def parse_result(body: Mapping[str, object] | bytes | str) -> InitiatorResult:
    """The Result envelope of a POST to ResultURL or QueueTimeOutURL; `DarajaMalformedResult` if
    it has no `Result` object or no `ResultCode`."""
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):
            raise DarajaMalformedResult("result: body is not JSON") from None
    if not isinstance(body, Mapping):
        raise DarajaMalformedResult("result: body is not a JSON object")
    result = _lookup(body, "Result")
    if not isinstance(result, Mapping):
        raise DarajaMalformedResult("result: no Result object")
    code = _lookup(result, "ResultCode")
    if code is None or not normalise_code(code):
        raise DarajaMalformedResult("result: no ResultCode")
    return InitiatorResult(
        result_type=normalise_code(_lookup(result, "ResultType")),
        result_code=normalise_code(code),
        result_desc=_str(_lookup(result, "ResultDesc")) or "",
        originator_conversation_id=_str(_lookup(result, "OriginatorConversationID")) or "",
        conversation_id=_str(_lookup(result, "ConversationID")) or "",
        transaction_id=_str(_lookup(result, "TransactionID")) or "",
        parameters=_pairs(_wrapped(result, "ResultParameters", "ResultParameter")),
        reference_data=_pairs(_wrapped(result, "ReferenceData", "ReferenceItem")),
    )


def b2c_details(result: InitiatorResult) -> B2cResultDetails:
    """B2C ResultParameters (daraja.md §7.4); all None on a failure, which has none."""
    registered = _str(result.get("B2CRecipientIsRegisteredCustomer"))
    return B2cResultDetails(
        receipt=_str(result.get("TransactionReceipt")) or _receipt(result.transaction_id),
        amount=_shillings(result.get("TransactionAmount")),
        receiver_party_public_name=_str(result.get("ReceiverPartyPublicName")),
        completed_at=_eat(result.get("TransactionCompletedDateTime"), "%d.%m.%Y %H:%M:%S"),
        utility_account_available_cents=_cents(result.get("B2CUtilityAccountAvailableFunds")),
        working_account_available_cents=_cents(result.get("B2CWorkingAccountAvailableFunds")),
        charges_paid_account_available_cents=_cents(result.get("B2CChargesPaidAccountAvailableFunds")),
        recipient_is_registered=None if registered is None else registered.upper() == "Y",
    )


def transaction_status_details(result: InitiatorResult) -> TransactionStatusDetails:
    """Transaction Status ResultParameters (daraja.md §9): the looked-up transaction's receipt is
    `ReceiptNo`; the envelope's `TransactionID` is a placeholder."""
    charges = _str(result.get("DebitPartyCharges"))
    return TransactionStatusDetails(
        receipt=_receipt(_str(result.get("ReceiptNo"))),
        status=_str(result.get("TransactionStatus")),
        amount=_shillings(result.get("Amount")),
        debit_party_name=_str(result.get("DebitPartyName")),
        credit_party_name=_str(result.get("CreditPartyName")),
        originator_conversation_id=_str(result.get("OriginatorConversationID")),
        conversation_id=_str(result.get("ConversationID")),
        initiated_at=_eat(result.get("InitiatedTime"), "%Y%m%d%H%M%S"),
        finalised_at=_eat(result.get("FinalisedTime"), "%Y%m%d%H%M%S"),
        # "<label>|<currency>|<amount>"
        debit_party_charges_cents=_cents(charges.rsplit("|", 1)[-1]) if charges else None,
        debit_account_type=_str(result.get("DebitAccountType")),
        reason_type=_str(result.get("ReasonType")),
    )


def account_balance_details(result: InitiatorResult) -> AccountBalanceDetails:
    """Account Balance ResultParameters (daraja.md §10)."""
    return AccountBalanceDetails(
        accounts=parse_balances(_str(result.get("AccountBalance")) or ""),
        completed_at=_eat(result.get("BOCompletedTime"), "%Y%m%d%H%M%S"),
    )


def reversal_details(result: InitiatorResult) -> ReversalDetails:
    """Reversal ResultParameters (daraja.md §11)."""
    return ReversalDetails(
        amount=_shillings(result.get("Amount")),
        original_transaction_id=_str(result.get("OriginalTransactionID")),
        charge_cents=_cents(result.get("Charge")),
        debit_account_balance=parse_balances(_str(result.get("DebitAccountBalance")) or ""),
        completed_at=_eat(result.get("TransCompletedTime"), "%Y%m%d%H%M%S"),
        credit_party_public_name=_str(result.get("CreditPartyPublicName")),
        debit_party_public_name=_str(result.get("DebitPartyPublicName")),
    )


def parse_balances(text: str) -> tuple[Balance, ...]:
    """`Working Account|KES|700000.00|700000.00|0.00|0.00&Utility Account|KES|…`; a malformed
    account (too few fields, an amount that is not a number) is skipped, not guessed at."""
    accounts = []
    for chunk in text.split("&"):
        fields = [f.strip() for f in chunk.split("|")]
        if len(fields) < 3 or not fields[0]:
            continue
        amounts = [_cents(f) for f in fields[2:]]
        if any(a is None for a in amounts):
            continue
        accounts.append(Balance(fields[0], fields[1], tuple(a for a in amounts if a is not None)))
    return tuple(accounts)


def _norm(key: str) -> str:
    return "".join(key.split()).lower()


def _lookup(body: Mapping[str, object], name: str) -> object:
    if name in body:
        return body[name]
    wanted = _norm(name)
    return next((v for k, v in body.items() if isinstance(k, str) and _norm(k) == wanted), None)


def _wrapped(result: Mapping[str, object], outer: str, inner: str) -> object:
    """`outer.inner`, `inner.outer`, or a bare list (or object) under either name."""
    for first, second in ((outer, inner), (inner, outer)):
        value = _lookup(result, first)
        if isinstance(value, Mapping):
            nested = _lookup(value, second)
            if nested is not None:
                return nested
            if _lookup(value, "Key") is not None:
                return value
        elif isinstance(value, list):
            return value
    return None


def _pairs(value: object) -> tuple[ResultParameter, ...]:
    items: Sequence[object] = value if isinstance(value, list) else [value] if isinstance(value, Mapping) else []
    pairs = []
    for item in items:
        if isinstance(item, Mapping):
            key = _str(_lookup(item, "Key"))
            if key:
                pairs.append(ResultParameter(key, _lookup(item, "Value")))
    return tuple(pairs)


def _str(value: object) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str | int | float):
        text = str(value).strip()
        return text or None
    return None


def _decimal(value: object) -> Decimal | None:
    text = _str(value)
    if text is None:
        return None
    try:
        number = Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _shillings(value: object) -> int | None:
    number = _decimal(value)
    return int(number) if number is not None and number == number.to_integral_value() else None


def _cents(value: object) -> int | None:
    number = _decimal(value)
    if number is None:
        return None
    cents = number * 100
    return int(cents) if cents == cents.to_integral_value() else None


def _receipt(value: str | None) -> str | None:
    # `…0000000` is the placeholder of failures and queries, never a receipt (daraja.md §1.7).
    return None if not value or value.endswith("0000000") else value


def _eat(value: object, fmt: str) -> datetime | None:
    text = _str(value)
    if text is None:
        return None
    try:
        local = datetime.strptime(text, fmt)  # noqa: DTZ007 - Nairobi local time, made aware just below
    except ValueError:
        return None
    return local.replace(tzinfo=NAIROBI).astimezone(UTC)
