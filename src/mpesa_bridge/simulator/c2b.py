"""C2B: URL registration, the sandbox's simulate call, and customers paying a till or paybill.

A customer payment, like Safaricom's (daraja.md §6): if the short code has external validation,
POST the validation payload to the ValidationURL and wait at most `c2b_validation_timeout`; a
`ResultCode` of zeros accepts, any other code rejects (no confirmation, no money moves); no usable
answer in time (slow, refused, non-2xx, not JSON) lets the registered ResponseType decide:
`Completed` goes on, `Cancelled` stops. A payment that goes on is recorded (a TransID, the new
balance) and its confirmation POSTed once to the ConfirmationURL, never retried.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from . import ids
from .callbacks import mask_phone
from .config import SANDBOX_SHORTCODE, SimulatorConfig
from .errors import INTERNAL_ERROR, GatewayError, invalid_field
from .outbound import Outbound

logger = logging.getLogger(__name__)

PAY_BILL = "Pay Bill"
BUY_GOODS = "Buy Goods"
COMMAND_TYPES = {"CustomerPayBillOnline": PAY_BILL, "CustomerBuyGoodsOnline": BUY_GOODS}
RESPONSE_TYPES = ("Completed", "Cancelled")
REGISTERED = "Success"
SIMULATE_ACCEPTED = "Accept the service request successfully."
ALREADY_REGISTERED = "Urls are already registered."
URL_WORD_ERROR = "400.003.02"
# Daraja refuses these in a C2B URL, in any letter case (daraja.md §6.1); the message names the word.
FORBIDDEN_URL_WORDS = ("m-pesa", "mpesa", "safaricom", "exec", "exe", "cmd", "sql", "query")
BILL_REF_MAX = 20
NAME_MAX = 30
DEFAULT_FIRST_NAME = "JOHN"
SANDBOX_MSISDN = "254708374149"

_SHORTCODE = re.compile(r"^\d{5,7}$")
_MSISDN = re.compile(r"^254[17]\d{8}$")
_NAME = re.compile(r"^[A-Za-z' -]*$")

Kind = Literal["paybill", "till"]
Validation = Literal["accepted", "rejected", "no_answer", "not_enabled", "not_registered"]
Outcome = Literal["completed", "cancelled", "rejected"]


@dataclass(frozen=True)
class Registration:
    """The URLs registered for a short code, and through which API version (v1 hashes the MSISDN)."""

    short_code: str
    response_type: str
    confirmation_url: str
    validation_url: str
    version: int
    registered_at: datetime


@dataclass(frozen=True)
class PaymentOrder:
    """A customer's payment as the simulator's own endpoint (or Daraja's simulate call) gives it."""

    short_code: str
    kind: Kind
    amount: int
    bill_ref_number: str
    msisdn: str
    first_name: str = DEFAULT_FIRST_NAME
    middle_name: str = ""
    last_name: str = ""


@dataclass
class Delivery:
    """One POST to the merchant: the body sent and what came back (`status_code` None: no answer)."""

    url: str
    body: dict[str, Any]
    status_code: int | None = None
    answer: Any = None
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        return {"url": self.url, "http_status": self.status_code, "answer": self.answer, "error": self.error}


@dataclass
class C2BPayment:
    """A customer payment and what became of it."""

    trans_id: str
    order: PaymentOrder
    at: datetime
    outcome: Outcome = "completed"
    validation: Validation = "not_registered"
    result_code: str | None = None
    third_party_trans_id: str = ""
    org_account_balance: int | None = None
    validation_call: Delivery | None = None
    confirmation_call: Delivery | None = None

    def public(self) -> dict[str, Any]:
        return {
            "TransID": self.trans_id,
            "status": self.outcome,
            "short_code": self.order.short_code,
            "transaction_type": _transaction_type(self.order.kind),
            "amount": self.order.amount,
            "bill_ref_number": self.order.bill_ref_number,
            "org_account_balance": self.org_account_balance,
            "validation": {
                "outcome": self.validation,
                "result_code": self.result_code,
                **({"call": self.validation_call.summary()} if self.validation_call else {}),
            },
            "confirmation": self.confirmation_call.summary() if self.confirmation_call else None,
        }


class C2BDesk:
    """The C2B side of the gateway: registrations, balances and payments, in memory."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.registrations: dict[str, Registration] = {}
        self.payments: dict[str, C2BPayment] = {}
        self._balances: dict[str, int] = {}
        self._out = Outbound(config.callback_timeout)

    # Daraja's endpoints -----------------------------------------------------------------------

    def register(self, body: Mapping[str, Any], version: int) -> dict[str, str]:
        """`/mpesa/c2b/v{1,2}/registerurl` (daraja.md §6.1)."""
        short_code = _digits(body, "ShortCode", _SHORTCODE)
        response_type = body.get("ResponseType")
        if response_type not in RESPONSE_TYPES:
            raise invalid_field("ResponseType")
        confirmation_url = _c2b_url(body, "ConfirmationURL")
        validation_url = _c2b_url(body, "ValidationURL")
        if short_code == SANDBOX_SHORTCODE:
            raise StkOnlyShortCode()
        if self.config.c2b_register_once and short_code in self.registrations:
            raise GatewayError(500, INTERNAL_ERROR, ALREADY_REGISTERED)
        self.registrations[short_code] = Registration(
            short_code, str(response_type), confirmation_url, validation_url, version, self.config.now()
        )
        return {"OriginatorCoversationID": ids.gateway_id(), "ResponseCode": "0", "ResponseDescription": REGISTERED}

    def simulate(self, body: Mapping[str, Any]) -> dict[str, str]:
        """`/mpesa/c2b/v{1,2}/simulate` (sandbox only, daraja.md §6.2): accepted at once, paid after."""
        short_code = _digits(body, "ShortCode", _SHORTCODE)
        command = body.get("CommandID")
        if command not in COMMAND_TYPES:
            raise invalid_field("CommandID")
        amount = _amount(body, "Amount")
        msisdn = _digits(body, "Msisdn", _MSISDN)
        bill_ref = body.get("BillRefNumber")
        if bill_ref is not None and (not isinstance(bill_ref, str) or len(bill_ref) > BILL_REF_MAX):
            raise invalid_field("BillRefNumber")
        kind: Kind = "paybill" if command == "CustomerPayBillOnline" else "till"
        order = PaymentOrder(short_code, kind, amount, bill_ref or "", msisdn)
        self._out.spawn(self.pay(order), f"c2b:{short_code}")
        return {
            "OriginatorCoversationID": ids.gateway_id(),
            "ResponseCode": "0",
            "ResponseDescription": SIMULATE_ACCEPTED,
        }

    # The customer -----------------------------------------------------------------------------

    async def pay(self, order: PaymentOrder) -> C2BPayment:
        """The customer pays: validation (if on), then the outcome, then the confirmation."""
        now = self.config.now()
        payment = C2BPayment(trans_id=self._new_trans_id(now), order=order, at=now)
        registration = self.registrations.get(order.short_code)
        if registration is not None and order.short_code not in self.config.c2b_validation_off:
            await self._validate(payment, registration)
        elif registration is not None:
            payment.validation = "not_enabled"
        self.payments[payment.trans_id] = payment
        if payment.outcome == "completed":
            balance = self._balances.get(order.short_code, 0) + order.amount
            self._balances[order.short_code] = balance
            payment.org_account_balance = balance
            if registration is not None:
                body = payload(payment, registration, balance=balance)
                payment.confirmation_call = await self._post(registration.confirmation_url, body, None)
        logger.info(
            "simulator.c2b.paid",
            extra={
                "trans_id": payment.trans_id,
                "short_code": order.short_code,
                "phone": mask_phone(order.msisdn),
                "outcome": payment.outcome,
                "validation": payment.validation,
            },
        )
        return payment

    def balance(self, short_code: str) -> int:
        return self._balances.get(short_code, 0)

    async def _validate(self, payment: C2BPayment, registration: Registration) -> None:
        body = payload(payment, registration, balance=None)
        call = await self._post(registration.validation_url, body, self.config.c2b_validation_timeout)
        payment.validation_call = call
        answer = call.answer if call.status_code is not None and 200 <= call.status_code < 300 else None
        code = _result_code(answer) if isinstance(answer, dict) else None
        if code is None:
            # No usable answer in time: the ResponseType registered for the short code decides.
            payment.validation = "no_answer"
            payment.outcome = "completed" if registration.response_type == "Completed" else "cancelled"
            return
        payment.result_code = code
        if code == "0":
            payment.validation = "accepted"
            third_party = answer.get("ThirdPartyTransID") if isinstance(answer, dict) else None
            payment.third_party_trans_id = str(third_party) if isinstance(third_party, str | int) else ""
        else:
            payment.validation = "rejected"
            payment.outcome = "rejected"

    async def _post(self, url: str, body: dict[str, Any], wait: float | None) -> Delivery:
        call = Delivery(url, body)
        content = json.dumps(body, separators=(",", ":")).encode()
        limit = self.config.callback_timeout if wait is None else wait
        try:
            async with asyncio.timeout(limit):
                response = await self._out.http.post(
                    url, content=content, headers={"Content-Type": "application/json"}, timeout=limit
                )
        except (httpx.HTTPError, httpx.InvalidURL, TimeoutError) as exc:
            call.error = type(exc).__name__
            logger.warning("simulator.c2b.post_failed", extra={"url": url, "error": call.error})
            return call
        call.status_code = response.status_code
        try:
            call.answer = response.json()
        except ValueError:
            call.answer = None
        return call

    def _new_trans_id(self, moment: datetime) -> str:
        trans_id = ids.receipt_number(moment)
        while trans_id in self.payments:
            trans_id = ids.receipt_number(moment)
        return trans_id

    async def aclose(self) -> None:
        await self._out.aclose()

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - tests call drain(seconds)
        """Wait until every payment started by the simulate call has finished."""
        await self._out.drain(timeout)


class StkOnlyShortCode(GatewayError):
    """C2B register for the sandbox's STK-only 174379: Apigee's fault object, not the envelope."""

    def __init__(self) -> None:
        super().__init__(500, INTERNAL_ERROR, "Execution of ServiceCallout SCO-AddURLVault failed.")

    def envelope(self) -> dict[str, Any]:
        return {
            "fault": {
                "faultstring": (
                    "Execution of ServiceCallout SCO-AddURLVault failed. Reason: ResponseCode 409 is treated as error"
                ),
                "detail": {"errorcode": "steps.servicecallout.ExecutionFailed"},
            }
        }


def payload(payment: C2BPayment, registration: Registration, *, balance: int | None) -> dict[str, Any]:
    """The validation (`balance` None: blank) or confirmation body, as daraja.md §6.3 shows it."""
    order = payment.order
    return {
        "TransactionType": _transaction_type(order.kind),
        "TransID": payment.trans_id,
        "TransTime": ids.nairobi_stamp(payment.at),
        "TransAmount": f"{order.amount}.00",
        "BusinessShortCode": order.short_code,
        "BillRefNumber": order.bill_ref_number,
        "InvoiceNumber": "",
        "OrgAccountBalance": "" if balance is None else f"{balance}.00",
        "ThirdPartyTransID": payment.third_party_trans_id,
        "MSISDN": hidden_msisdn(order.msisdn, registration.version),
        "FirstName": order.first_name,
        "MiddleName": order.middle_name,
        "LastName": order.last_name,
    }


def hidden_msisdn(msisdn: str, version: int) -> str:
    """v1: SHA-256 hex of the number; v2: masked like `2547 ***** 126` (daraja.md §6.1)."""
    if version == 1:
        return hashlib.sha256(msisdn.encode()).hexdigest()
    return f"{msisdn[:4]} ***** {msisdn[-3:]}"


def parse_order(body: Mapping[str, Any]) -> PaymentOrder:
    """The simulator's own `POST /simulator/c2b/payments` body; raises `OrderError`."""
    kind = body.get("type", "paybill")
    if kind not in ("paybill", "till"):
        raise OrderError("type", "must be paybill or till")
    short_code = body.get("short_code")
    if not isinstance(short_code, str) or not _SHORTCODE.match(short_code):
        raise OrderError("short_code", "must be 5 to 7 digits")
    amount = body.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= 250_000:
        raise OrderError("amount", "must be a whole number of shillings from 1 to 250000")
    account = body.get("account", "")
    if not isinstance(account, str) or len(account) > BILL_REF_MAX:
        raise OrderError("account", f"must be text of at most {BILL_REF_MAX} characters")
    if kind == "paybill" and not account.strip():
        raise OrderError("account", "is required for a paybill (the customer types an account number)")
    phone = body.get("phone", SANDBOX_MSISDN)
    if not isinstance(phone, str) or not _MSISDN.match(phone):
        raise OrderError("phone", "must be 254 followed by 7 or 1 and 8 more digits")
    names = [body.get(name, default) for name, default in _NAMES]
    for (name, _), value in zip(_NAMES, names, strict=True):
        if not isinstance(value, str) or len(value) > NAME_MAX or not _NAME.match(value):
            raise OrderError(name, f"must be at most {NAME_MAX} letters")
    first, middle, last = (str(value).upper() for value in names)
    # A till has no account number: Daraja sends BillRefNumber empty for Buy Goods.
    return PaymentOrder(short_code, kind, amount, account if kind == "paybill" else "", phone, first, middle, last)


_NAMES = (("first_name", DEFAULT_FIRST_NAME), ("middle_name", ""), ("last_name", ""))


class OrderError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")
        self.field = field
        self.message = message


def _transaction_type(kind: Kind) -> str:
    return PAY_BILL if kind == "paybill" else BUY_GOODS


def _result_code(answer: Mapping[str, Any]) -> str | None:
    value = answer.get("ResultCode")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if not text:
        return None
    return "0" if set(text) == {"0"} else text


def _digits(body: Mapping[str, Any], field: str, pattern: re.Pattern[str]) -> str:
    value = body.get(field)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if not isinstance(value, str) or not value.isascii() or not pattern.match(value):
        raise invalid_field(field)
    return value


def _amount(body: Mapping[str, Any], field: str) -> int:
    text = _digits(body, field, re.compile(r"^\d{1,6}$"))
    if not 1 <= int(text) <= 250_000:
        raise invalid_field(field)
    return int(text)


def _c2b_url(body: Mapping[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value or any(ch.isspace() for ch in value):
        raise invalid_field(field)
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError:
        raise invalid_field(field) from None
    # http and loopback are fine: the sandbox allows http, and the simulator runs next to its merchant.
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid_field(field)
    lowered = value.lower()
    word = next((w for w in FORBIDDEN_URL_WORDS if w in lowered), None)
    if word is not None:
        raise GatewayError(400, URL_WORD_ERROR, f"Bad Request - Invalid {field} - URL has the word {word.upper()}")
    return value
