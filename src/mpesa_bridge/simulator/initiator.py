"""The initiator APIs, free of HTTP: B2C payouts, Transaction Status, Account Balance and
Reversal (daraja.md sections 7 to 11), with the state they need in memory.

Each request is checked, answered at once with the standard acknowledgement (daraja.md 7.3), and
decided at once: the money moves (a balance per organisation short code) and the Result is built
then; `on_result` is told where to POST it. The initiator is checked on every request by
decrypting its SecurityCredential with the simulator's key; a wrong one is accepted and answered
with ResultCode 2001 in the Result, as Daraja does (daraja.md 15).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import ids
from .config import SimulatorConfig
from .credentials import InitiatorKey
from .errors import GatewayError
from .initiator_validation import (
    parse_account_balance,
    parse_b2c,
    parse_reversal,
    parse_transaction_status,
)
from .state import PushLedger

DUPLICATE_CODE = "500.002.1001"
DUPLICATE_MESSAGE = "Duplicate OriginatorConversationID."
ACCEPTED = "Accept the service request successfully."
PROCESSED = "The service request is processed successfully."

# Recipients (B2C PartyB) that pick an outcome, like the STK magic numbers.
B2C_INSUFFICIENT_BALANCE = "254700000001"
B2C_QUEUE_TIMEOUT = "254700000900"

# ResultCodes and texts (daraja.md 7.4, 10, 11).
INITIATOR_INVALID = (2001, "The initiator information is invalid.")
INITIATOR_NOT_ALLOWED = (21, "The initiator is not allowed to initiate this request.")
INSUFFICIENT_BALANCE = (1, "The balance is insufficient for the transaction.")
BELOW_MINIMUM = (2, "Declined due to limit rule: less than the minimum transaction amount.")
NOT_FOUND = (25, "Invalid request parameters: no transaction matches the TransactionID or OriginalConversationID.")
ALREADY_REVERSED = ("R000001", "The transaction has already been reversed.")
ORIGINAL_INVALID = ("R000002", "The OriginalTransactionID is invalid.")
# Safaricom documents no body for a QueueTimeOutURL notice (daraja.md 8): this is the simulator's.
QUEUE_TIMEOUT = (1037, "The service request timed out in the queue.")
B2C_MIN_AMOUNT = 10
RECIPIENT_NAME = "SIMULATED RECIPIENT"

_REFERENCE_URLS = {
    "b2c": "https://internalsandbox.safaricom.co.ke/mpesa/b2cresults/v1/submit",
    "status": "https://internalsandbox.safaricom.co.ke/mpesa/tsresults/v1/submit",
    "balance": "https://internalsandbox.safaricom.co.ke/mpesa/abresults/v1/submit",
    "reversal": "https://internalsandbox.safaricom.co.ke/mpesa/reversalresults/v1/submit",
}


@dataclass(frozen=True)
class ResultDelivery:
    """A Result to POST: `url` is ResultURL, or QueueTimeOutURL for a queue timeout."""

    url: str
    body: dict[str, Any]
    timed_out: bool = False


@dataclass
class Transaction:
    """A B2C payout or a reversal the simulator made (what Transaction Status finds)."""

    kind: str  # "b2c" or "reversal"
    receipt: str | None
    originator_conversation_id: str
    conversation_id: str
    amount: int
    debit_party: str
    credit_party: str
    status: str  # "Completed" or "Declined"
    at: datetime
    original_transaction_id: str | None = None


@dataclass(frozen=True)
class StkReceipt:
    """A paid STK push, as Transaction Status and Reversal see it."""

    receipt: str
    amount: int
    shortcode: str
    phone: str
    at: datetime


@dataclass
class InitiatorLedger:
    """Balances, transactions, the OriginatorConversationIDs already used, and reversed receipts."""

    balances: dict[str, int]
    transactions: list[Transaction] = field(default_factory=list)
    originator_ids: set[str] = field(default_factory=set)
    reversed_receipts: set[str] = field(default_factory=set)
    receipts: set[str] = field(default_factory=set)

    def by_receipt(self, receipt: str) -> Transaction | None:
        return next((t for t in self.transactions if t.receipt == receipt), None)

    def by_originator(self, originator_id: str) -> Transaction | None:
        return next((t for t in self.transactions if t.originator_conversation_id == originator_id), None)


class InitiatorGateway:
    """B2C, Transaction Status, Account Balance and Reversal; `on_result` hears every Result to send.

    `stk_receipt` looks up a receipt among the paid STK pushes (for Transaction Status and Reversal).
    """

    def __init__(
        self,
        config: SimulatorConfig,
        on_result: Callable[[ResultDelivery], None],
        stk_receipt: Callable[[str], StkReceipt | None],
    ) -> None:
        self.config = config
        self.key = InitiatorKey(config.initiator_key_pem, config.now())
        self.ledger = InitiatorLedger(balances=dict(config.organisations))
        self._on_result = on_result
        self._stk_receipt = stk_receipt

    # B2C ----------------------------------------------------------------------------------------

    def b2c_payment(self, body: Mapping[str, Any], *, v3: bool) -> dict[str, str]:
        request = parse_b2c(body, v3=v3)
        originator = request.originator_conversation_id or ids.gateway_id()
        if originator in self.ledger.originator_ids:
            raise GatewayError(500, DUPLICATE_CODE, DUPLICATE_MESSAGE)
        self.ledger.originator_ids.add(originator)
        conversation = conversation_id(self.config.now())
        envelope = _Envelope(originator, conversation, "b2c")
        now = self.config.now()
        failure = self._initiator_failure(request.initiator_name, request.security_credential, request.party_a)
        if failure is None and request.amount < B2C_MIN_AMOUNT:
            failure = BELOW_MINIMUM
        balance = self.ledger.balances.get(request.party_a, 0)
        if failure is None and (request.party_b == B2C_INSUFFICIENT_BALANCE or request.amount > balance):
            failure = INSUFFICIENT_BALANCE
        if failure is not None:
            if failure not in (INITIATOR_INVALID, INITIATOR_NOT_ALLOWED):
                self._record("b2c", None, envelope, request.amount, request.party_a, request.party_b, "Declined", now)
            self._send(request.result_url, envelope.failure(failure, now))
            return envelope.accepted()
        self.ledger.balances[request.party_a] = balance - request.amount
        receipt = self._new_receipt(now)
        self._record("b2c", receipt, envelope, request.amount, request.party_a, request.party_b, "Completed", now)
        if request.party_b == B2C_QUEUE_TIMEOUT:
            # The payout went through, but only a timeout notice arrives (daraja.md 8: not a verdict).
            self._send(request.queue_timeout_url, envelope.failure(QUEUE_TIMEOUT, now), timed_out=True)
            return envelope.accepted()
        parameters = [
            ("TransactionAmount", request.amount),
            ("TransactionReceipt", receipt),
            ("ReceiverPartyPublicName", f"{request.party_b} - {RECIPIENT_NAME}"),
            ("TransactionCompletedDateTime", ids.nairobi_stamp(now, "%d.%m.%Y %H:%M:%S")),
            ("B2CUtilityAccountAvailableFunds", _money(self.ledger.balances[request.party_a])),
            ("B2CWorkingAccountAvailableFunds", 0.0),
            ("B2CRecipientIsRegisteredCustomer", "Y"),
            ("B2CChargesPaidAccountAvailableFunds", 0.0),
        ]
        self._send(request.result_url, envelope.success(receipt, parameters))
        return envelope.accepted()

    # Transaction Status -------------------------------------------------------------------------

    def transaction_status(self, body: Mapping[str, Any]) -> dict[str, str]:
        request = parse_transaction_status(body)
        now = self.config.now()
        envelope = _Envelope(ids.gateway_id(), conversation_id(now), "status")
        failure = self._initiator_failure(request.initiator, request.security_credential, request.party_a)
        if failure is not None:
            self._send(request.result_url, envelope.failure(failure, now))
            return envelope.accepted()
        parameters = self._status_parameters(request.transaction_id, request.original_conversation_id, request.party_a)
        if parameters is None:
            self._send(request.result_url, envelope.failure(NOT_FOUND, now))
        else:
            self._send(request.result_url, envelope.success(placeholder(now), parameters))
        return envelope.accepted()

    def _status_parameters(self, receipt: str, originator: str, party: str) -> list[tuple[str, Any]] | None:
        transaction = self.ledger.by_receipt(receipt) if receipt else self.ledger.by_originator(originator)
        if transaction is not None and party in (transaction.debit_party, transaction.credit_party):
            reason = "Business Payment to Customer via API" if transaction.kind == "b2c" else "Reversal"
            return _status_list(
                debit=f"{transaction.debit_party} - Simulated Organisation",
                credit=f"{transaction.credit_party} - {RECIPIENT_NAME}",
                originator=transaction.originator_conversation_id,
                conversation=transaction.conversation_id,
                at=transaction.at,
                reason=reason,
                status=transaction.status,
                amount=transaction.amount,
                receipt=transaction.receipt or placeholder(transaction.at),
            )
        stk = self._stk_receipt(receipt) if receipt else None
        if stk is not None and party == stk.shortcode:
            status = "Reversed" if stk.receipt in self.ledger.reversed_receipts else "Completed"
            return _status_list(
                debit=f"{stk.phone} - SIMULATED CUSTOMER",
                credit=f"{stk.shortcode} - Simulated Organisation",
                originator="",
                conversation="",
                at=stk.at,
                reason="Pay Bill Online",
                status=status,
                amount=stk.amount,
                receipt=stk.receipt,
            )
        return None

    # Account Balance ----------------------------------------------------------------------------

    def account_balance(self, body: Mapping[str, Any]) -> dict[str, str]:
        request = parse_account_balance(body)
        now = self.config.now()
        envelope = _Envelope(ids.gateway_id(), conversation_id(now), "balance")
        failure = self._initiator_failure(request.initiator, request.security_credential, request.party_a)
        if failure is not None:
            self._send(request.result_url, envelope.failure(failure, now))
            return envelope.accepted()
        utility = _money_text(self.ledger.balances[request.party_a])
        accounts = "&".join(
            [
                "Working Account|KES|0.00|0.00|0.00|0.00",
                "Float Account|KES|0.00|0.00|0.00|0.00",
                f"Utility Account|KES|{utility}|{utility}|0.00|0.00",
                "Charges Paid Account|KES|0.00|0.00|0.00|0.00",
                "Organization Settlement Account|KES|0.00|0.00|0.00|0.00",
            ]
        )
        parameters = [("AccountBalance", accounts), ("BOCompletedTime", ids.nairobi_stamp(now))]
        self._send(request.result_url, envelope.success(placeholder(now), parameters))
        return envelope.accepted()

    # Reversal -----------------------------------------------------------------------------------

    def reversal(self, body: Mapping[str, Any]) -> dict[str, str]:
        request = parse_reversal(body)
        now = self.config.now()
        envelope = _Envelope(ids.gateway_id(), conversation_id(now), "reversal")
        failure = self._initiator_failure(request.initiator, request.security_credential, request.receiver_party)
        stk = self._stk_receipt(request.transaction_id)
        balance = self.ledger.balances.get(request.receiver_party, 0)
        if failure is None and (stk is None or stk.shortcode != request.receiver_party):
            failure = ORIGINAL_INVALID  # unknown, another short code's, or a B2C receipt (not reversible)
        elif failure is None and request.transaction_id in self.ledger.reversed_receipts:
            failure = ALREADY_REVERSED
        elif failure is None and stk is not None and stk.amount > balance:
            failure = INSUFFICIENT_BALANCE
        if failure is not None or stk is None:
            self._send(request.result_url, envelope.failure(failure or ORIGINAL_INVALID, now))
            return envelope.accepted()
        self.ledger.balances[request.receiver_party] = balance - stk.amount
        self.ledger.reversed_receipts.add(stk.receipt)
        receipt = self._new_receipt(now)
        self._record("reversal", receipt, envelope, stk.amount, request.receiver_party, stk.phone, "Completed", now)
        self.ledger.transactions[-1].original_transaction_id = stk.receipt
        utility = _money_text(self.ledger.balances[request.receiver_party])
        parameters = [
            ("DebitAccountBalance", f"Utility Account|KES|{utility}|{utility}|0.00|0.00"),
            ("Amount", _money(stk.amount)),
            ("TransCompletedTime", int(ids.nairobi_stamp(now))),
            ("OriginalTransactionID", stk.receipt),
            ("Charge", 0.0),
            ("CreditPartyPublicName", f"{stk.phone} - SIMULATED CUSTOMER"),
            ("DebitPartyPublicName", f"{request.receiver_party} - Simulated Organisation"),
        ]
        self._send(request.result_url, envelope.success(receipt, parameters))
        return envelope.accepted()

    # Shared -------------------------------------------------------------------------------------

    def _initiator_failure(self, name: str, credential: str, party: str) -> tuple[int | str, str] | None:
        password = self.config.initiators.get(name)
        if password is None or self.key.decrypt(credential) != password:
            return INITIATOR_INVALID
        if party not in self.ledger.balances:
            return INITIATOR_NOT_ALLOWED
        return None

    def _record(
        self,
        kind: str,
        receipt: str | None,
        envelope: _Envelope,
        amount: int,
        debit: str,
        credit: str,
        status: str,
        at: datetime,
    ) -> None:
        self.ledger.transactions.append(
            Transaction(kind, receipt, envelope.originator, envelope.conversation, amount, debit, credit, status, at)
        )

    def _new_receipt(self, now: datetime) -> str:
        receipt = ids.receipt_number(now)
        while receipt in self.ledger.receipts or self._stk_receipt(receipt) is not None:
            receipt = ids.receipt_number(now)
        self.ledger.receipts.add(receipt)
        return receipt

    def _send(self, url: str, body: dict[str, Any], *, timed_out: bool = False) -> None:
        self._on_result(ResultDelivery(url, body, timed_out))


@dataclass(frozen=True)
class _Envelope:
    originator: str
    conversation: str
    api: str

    def accepted(self) -> dict[str, str]:
        return {
            "ConversationID": self.conversation,
            "OriginatorConversationID": self.originator,
            "ResponseCode": "0",
            "ResponseDescription": ACCEPTED,
        }

    def _result(self, code: int | str, desc: str, transaction_id: str) -> dict[str, Any]:
        return {
            "ResultType": 0,
            "ResultCode": code,
            "ResultDesc": desc,
            "OriginatorConversationID": self.originator,
            "ConversationID": self.conversation,
            "TransactionID": transaction_id,
        }

    def success(self, transaction_id: str, parameters: list[tuple[str, Any]]) -> dict[str, Any]:
        result = self._result(0, PROCESSED, transaction_id)
        result["ResultParameters"] = {"ResultParameter": [_pair(k, v) for k, v in parameters]}
        result["ReferenceData"] = self._reference()
        return {"Result": result}

    def failure(self, failure: tuple[int | str, str], now: datetime) -> dict[str, Any]:
        result = self._result(failure[0], failure[1], placeholder(now))
        result["ReferenceData"] = self._reference()
        return {"Result": result}

    def _reference(self) -> dict[str, Any]:
        return {"ReferenceItem": {"Key": "QueueTimeoutURL", "Value": _REFERENCE_URLS[self.api]}}


def _pair(key: str, value: Any) -> dict[str, Any]:
    return {"Key": key} if value is None else {"Key": key, "Value": value}


def _status_list(
    *,
    debit: str,
    credit: str,
    originator: str,
    conversation: str,
    at: datetime,
    reason: str,
    status: str,
    amount: int,
    receipt: str,
) -> list[tuple[str, Any]]:
    stamp = ids.nairobi_stamp(at)
    return [
        ("DebitPartyName", debit),
        ("CreditPartyName", credit),
        ("OriginatorConversationID", originator),
        ("InitiatedTime", stamp),
        ("DebitAccountType", "Utility Account"),
        ("DebitPartyCharges", "Fee For B2C Payment|KES|0.00"),
        ("TransactionReason", None),
        ("ReasonType", reason),
        ("TransactionStatus", status),
        ("FinalisedTime", stamp),
        ("Amount", str(amount)),
        ("ConversationID", conversation),
        ("ReceiptNo", receipt),
    ]


def conversation_id(now: datetime) -> str:
    """`AG_<YYYYMMDD>_<20 hex>`, like `AG_20240706_20106e9209f64bebd05b` (daraja.md 1.7)."""
    return f"AG_{ids.nairobi_stamp(now, '%Y%m%d')}_{secrets.token_hex(10)}"


def placeholder(now: datetime) -> str:
    """The `TransactionID` of a failure or a query: a receipt's first three characters and zeros."""
    return ids.receipt_number(now)[:3] + "0000000"


def _money(shillings: int) -> float:
    return float(shillings)


def _money_text(shillings: int) -> str:
    return f"{shillings}.00"


def stk_receipt_lookup(pushes: PushLedger) -> Callable[[str], StkReceipt | None]:
    """Find a paid STK push by receipt in a `PushLedger` (a scan: the simulator holds few)."""

    def lookup(receipt: str) -> StkReceipt | None:
        for record in pushes:
            if record.receipt_number == receipt and record.decided_at is not None:
                return StkReceipt(
                    receipt, record.amount, record.request.business_short_code, record.party_a, record.decided_at
                )
        return None

    return lookup


__all__ = [
    "B2C_INSUFFICIENT_BALANCE",
    "B2C_QUEUE_TIMEOUT",
    "InitiatorGateway",
    "InitiatorLedger",
    "ResultDelivery",
    "StkReceipt",
    "Transaction",
    "conversation_id",
    "placeholder",
    "stk_receipt_lookup",
]
