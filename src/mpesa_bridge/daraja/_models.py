"""The values the client takes and returns. Secrets are kept out of every repr."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ._exceptions import DarajaValidationError
from ._validation import (
    B2C_COMMAND_IDS,
    RECEIVER_IDENTIFIER_TYPES,
    check_amount,
    check_b2c_amount,
    check_c2b_response_type,
    check_c2b_url,
    check_callback_url,
    check_command_id,
    check_cpi,
    check_free_text,
    check_identifier_type,
    check_initiator,
    check_merchant_name,
    check_msisdn,
    check_non_empty,
    check_optional_text,
    check_party_for_identifier,
    check_qr_size,
    check_remarks,
    check_result_url,
    check_security_credential,
    check_short_code,
    check_transaction_id,
    check_transaction_type,
    check_trx_code,
)

__all__ = [
    "ACCOUNT_REFERENCE_MAX",
    "BILL_REF_NUMBER_MAX",
    "QR_REF_NO_MAX",
    "TRANSACTION_DESC_MAX",
    "AccountBalanceRequest",
    "B2cCommandId",
    "B2cPaymentRequest",
    "B2cVersion",
    "C2BAcknowledged",
    "C2BRegisterRequest",
    "C2BResponseType",
    "C2BSimulateRequest",
    "DarajaCredentials",
    "DynamicQr",
    "DynamicQrRequest",
    "InitiatorAccepted",
    "ReversalRequest",
    "StkPushAccepted",
    "StkPushRequest",
    "StkQueryResult",
    "TransactionStatusRequest",
    "TransactionType",
    "TrxCode",
]

ACCOUNT_REFERENCE_MAX = 12
TRANSACTION_DESC_MAX = 13

TransactionType = Literal["CustomerPayBillOnline", "CustomerBuyGoodsOnline"]
# Dynamic QR: BG buy goods (till), WA withdraw at an agent, PB paybill, SM send money to a phone,
# SB send to a business.
TrxCode = Literal["BG", "WA", "PB", "SM", "SB"]
# RefNo is the account number for a paybill; Daraja documents no limit, C2B account numbers run to 20.
QR_REF_NO_MAX = 20


@dataclass(frozen=True)
class DarajaCredentials:
    """A Daraja app's consumer key and secret (one pair per environment)."""

    consumer_key: str
    consumer_secret: str = field(repr=False)


@dataclass(frozen=True)
class StkPushRequest:
    """One M-Pesa Express (STK push) request, in Daraja's terms.

    For a paybill, `business_short_code` and `party_b` are both the paybill number and the type is
    CustomerPayBillOnline. For a till, `business_short_code` is the store (head office) number the
    passkey belongs to, `party_b` is the till number and the type is CustomerBuyGoodsOnline.
    """

    business_short_code: str
    passkey: str = field(repr=False)
    transaction_type: TransactionType
    amount: int
    party_a: str
    party_b: str
    phone_number: str
    callback_url: str
    account_reference: str
    transaction_desc: str

    def validate(self) -> None:
        """Raise `DarajaValidationError` for the first field Daraja would refuse or mishandle."""
        check_short_code("business_short_code", self.business_short_code)
        check_non_empty("passkey", self.passkey)
        check_transaction_type("transaction_type", self.transaction_type)
        check_amount("amount", self.amount)
        check_msisdn("party_a", self.party_a)
        check_short_code("party_b", self.party_b)
        check_msisdn("phone_number", self.phone_number)
        check_callback_url("callback_url", self.callback_url)
        check_free_text("account_reference", self.account_reference, max_length=ACCOUNT_REFERENCE_MAX)
        check_free_text("transaction_desc", self.transaction_desc, max_length=TRANSACTION_DESC_MAX)


@dataclass(frozen=True)
class StkPushAccepted:
    """Daraja queued the push. Not a payment: the outcome comes by callback or STK Query."""

    merchant_request_id: str
    checkout_request_id: str
    response_code: str
    response_description: str = ""
    customer_message: str = ""


@dataclass(frozen=True)
class StkQueryResult:
    """A final STK Query answer; classify `result_code` with `classify_stk_result`."""

    response_code: str
    merchant_request_id: str
    checkout_request_id: str
    result_code: str
    result_desc: str


@dataclass(frozen=True)
class DynamicQrRequest:
    """One Dynamic QR request (`POST /mpesa/qrcode/v1/generate`), in Daraja's terms.

    `cpi` is the credit party: a till (BG), agent till (WA), paybill (PB) or business number (SB),
    or for SM a phone number `2547…`/`2541…`. `size` is the side of the square PNG in pixels.
    """

    merchant_name: str
    ref_no: str
    amount: int
    trx_code: TrxCode
    cpi: str
    size: int = 300

    def validate(self) -> None:
        """Raise `DarajaValidationError` for the first field Daraja would refuse or mishandle."""
        check_merchant_name("merchant_name", self.merchant_name)
        check_free_text("ref_no", self.ref_no, max_length=QR_REF_NO_MAX)
        check_amount("amount", self.amount)
        check_trx_code("trx_code", self.trx_code)
        check_cpi("cpi", self.cpi, self.trx_code)
        check_qr_size("size", self.size)


@dataclass(frozen=True)
class DynamicQr:
    """A generated QR code: `png` is the decoded image of Daraja's base64 `QRCode`."""

    response_code: str
    request_id: str
    response_description: str
    png: bytes = field(repr=False)


# --- C2B (daraja.md §6) ---------------------------------------------------------------------------

# What Daraja does with a payment when the ValidationURL does not answer in time (§6.1).
C2BResponseType = Literal["Completed", "Cancelled"]
# BillRefNumber: the account number the customer types, at most 20 characters (§6.3).
BILL_REF_NUMBER_MAX = 20


@dataclass(frozen=True)
class C2BRegisterRequest:
    """Register the URLs Safaricom calls for payments to `short_code` (`/mpesa/c2b/v{1,2}/registerurl`).

    `response_type` is the default when the ValidationURL is unreachable or slower than ~8 s.
    The ValidationURL is called only if Safaricom enabled external validation on the short code.
    """

    short_code: str
    response_type: C2BResponseType
    confirmation_url: str
    validation_url: str

    def validate(self, *, require_https: bool) -> None:
        """Raise `DarajaValidationError` for the first field Daraja would refuse."""
        check_short_code("short_code", self.short_code)
        check_c2b_response_type("response_type", self.response_type)
        check_c2b_url("confirmation_url", self.confirmation_url, require_https=require_https)
        check_c2b_url("validation_url", self.validation_url, require_https=require_https)


@dataclass(frozen=True)
class C2BSimulateRequest:
    """A sandbox-only simulated customer payment (`/mpesa/c2b/v{1,2}/simulate`).

    `bill_ref_number` is the paybill account number; None (sent as null) for buy goods."""

    short_code: str
    command_id: TransactionType
    amount: int
    msisdn: str
    bill_ref_number: str | None = None

    def validate(self) -> None:
        check_short_code("short_code", self.short_code)
        check_transaction_type("command_id", self.command_id)
        check_amount("amount", self.amount)
        check_msisdn("msisdn", self.msisdn)
        if self.bill_ref_number is not None:
            check_free_text("bill_ref_number", self.bill_ref_number, max_length=BILL_REF_NUMBER_MAX)


@dataclass(frozen=True)
class C2BAcknowledged:
    """Daraja's answer to a C2B register or simulate: `OriginatorCoversationID` (sic) and a code of zeros."""

    originator_conversation_id: str
    response_code: str
    response_description: str


# Initiator APIs (daraja.md §7 to §11): B2C, Transaction Status, Account Balance, Reversal ----------

B2cCommandId = Literal["SalaryPayment", "BusinessPayment", "PromotionPayment"]
B2cVersion = Literal["v3", "v1"]
# Longer ids have no documented limit; ours are UUID-sized.
ORIGINATOR_CONVERSATION_ID_MAX = 64


@dataclass(frozen=True)
class B2cPaymentRequest:
    """One B2C payout (`/mpesa/b2c/v3/paymentrequest`, or v1 by `DarajaClient.b2c_payment(version=)`).

    `originator_conversation_id` is ours, unique per attempt (v3; v1 has none and Safaricom makes
    one up): a second request with the same id is refused with `500.002.1001`, which is what keeps
    a payout from being sent twice. `security_credential` comes from `security_credential()`.
    """

    originator_conversation_id: str
    initiator_name: str
    security_credential: str = field(repr=False)
    command_id: B2cCommandId
    amount: int
    party_a: str
    party_b: str
    remarks: str
    queue_timeout_url: str
    result_url: str
    occasion: str = ""

    def validate(self, *, version: B2cVersion = "v3", require_https: bool = False) -> None:
        """Raise `DarajaValidationError` for the first field Daraja would refuse or mishandle."""
        if version == "v3":
            check_non_empty(
                "originator_conversation_id", self.originator_conversation_id, max_length=ORIGINATOR_CONVERSATION_ID_MAX
            )
        check_initiator("initiator_name", self.initiator_name)
        check_security_credential("security_credential", self.security_credential)
        check_command_id("command_id", self.command_id, B2C_COMMAND_IDS)
        check_b2c_amount("amount", self.amount)
        check_short_code("party_a", self.party_a)
        check_msisdn("party_b", self.party_b)
        check_remarks("remarks", self.remarks, min_length=2)
        check_result_url("queue_timeout_url", self.queue_timeout_url, require_https=require_https)
        check_result_url("result_url", self.result_url, require_https=require_https)
        check_optional_text("occasion", self.occasion)


@dataclass(frozen=True)
class TransactionStatusRequest:
    """A Transaction Status query (`/mpesa/transactionstatus/v1/query`): by receipt
    (`transaction_id`), by our B2C `original_conversation_id`, or both. `party_a` is read as
    `identifier_type` says: "4" a short code, "2" a till, "1" a phone number."""

    initiator: str
    security_credential: str = field(repr=False)
    party_a: str
    result_url: str
    queue_timeout_url: str
    remarks: str
    transaction_id: str = ""
    original_conversation_id: str = ""
    identifier_type: str = "4"
    occasion: str = ""

    def validate(self, *, require_https: bool = False) -> None:
        check_initiator("initiator", self.initiator)
        check_security_credential("security_credential", self.security_credential)
        if not self.transaction_id and not self.original_conversation_id:
            raise DarajaValidationError("transaction_id", "give a transaction_id or an original_conversation_id")
        if self.transaction_id:
            check_transaction_id("transaction_id", self.transaction_id)
        if self.original_conversation_id:
            check_non_empty(
                "original_conversation_id", self.original_conversation_id, max_length=ORIGINATOR_CONVERSATION_ID_MAX
            )
        check_identifier_type("identifier_type", self.identifier_type)
        check_party_for_identifier("party_a", self.party_a, self.identifier_type)
        check_result_url("result_url", self.result_url, require_https=require_https)
        check_result_url("queue_timeout_url", self.queue_timeout_url, require_https=require_https)
        check_remarks("remarks", self.remarks)
        check_optional_text("occasion", self.occasion)


@dataclass(frozen=True)
class AccountBalanceRequest:
    """An Account Balance query (`/mpesa/accountbalance/v1/query`) of our own short code `party_a`."""

    initiator: str
    security_credential: str = field(repr=False)
    party_a: str
    result_url: str
    queue_timeout_url: str
    remarks: str
    identifier_type: str = "4"

    def validate(self, *, require_https: bool = False) -> None:
        check_initiator("initiator", self.initiator)
        check_security_credential("security_credential", self.security_credential)
        check_identifier_type("identifier_type", self.identifier_type)
        check_party_for_identifier("party_a", self.party_a, self.identifier_type)
        check_result_url("result_url", self.result_url, require_https=require_https)
        check_result_url("queue_timeout_url", self.queue_timeout_url, require_https=require_https)
        check_remarks("remarks", self.remarks)


@dataclass(frozen=True)
class ReversalRequest:
    """A Reversal (`/mpesa/reversal/v1/request`) of a payment `transaction_id` our short code
    `receiver_party` received (C2B or STK; B2C cannot be reversed by API). `amount` is that
    payment's amount in whole shillings."""

    initiator: str
    security_credential: str = field(repr=False)
    transaction_id: str
    amount: int
    receiver_party: str
    result_url: str
    queue_timeout_url: str
    remarks: str
    occasion: str = ""
    receiver_identifier_type: str = "11"

    def validate(self, *, require_https: bool = False) -> None:
        check_initiator("initiator", self.initiator)
        check_security_credential("security_credential", self.security_credential)
        check_transaction_id("transaction_id", self.transaction_id)
        check_amount("amount", self.amount)
        check_short_code("receiver_party", self.receiver_party)
        check_identifier_type("receiver_identifier_type", self.receiver_identifier_type, RECEIVER_IDENTIFIER_TYPES)
        check_result_url("result_url", self.result_url, require_https=require_https)
        check_result_url("queue_timeout_url", self.queue_timeout_url, require_https=require_https)
        check_remarks("remarks", self.remarks, min_length=2)
        check_optional_text("occasion", self.occasion)


@dataclass(frozen=True)
class InitiatorAccepted:
    """Daraja queued an initiator request (B2C, Transaction Status, Account Balance, Reversal).

    Nothing has happened yet: the outcome comes as a Result to ResultURL (`parse_result`), or a
    timeout notice to QueueTimeOutURL, which is not a verdict either (daraja.md §8)."""

    conversation_id: str
    originator_conversation_id: str
    response_code: str
    response_description: str = ""
