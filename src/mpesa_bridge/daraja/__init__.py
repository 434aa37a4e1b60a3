"""An async client for Safaricom's M-Pesa Daraja API.

Standalone: it imports nothing else from mpesa_bridge. The STK ResultCode table lives in the
public `result_codes` module; the C2B validation/confirmation payloads and their answers in
`c2b`. `http` is a caller-owned `aiohttp.ClientSession` (the cheaper one per request) or
`httpx.AsyncClient`. Usage::

    cache = TokenCache()
    async with aiohttp.ClientSession() as http:  # or httpx.AsyncClient()
        creds = DarajaCredentials(consumer_key, consumer_secret)
        client = DarajaClient(DarajaClient.SANDBOX_URL, creds, http=http, token_cache=cache)
        accepted = await client.stk_push(request)

The initiator APIs (B2C, Transaction Status, Account Balance, Reversal) take a
`security_credential(password, certificate)`; their Results are read with `parse_result`.
"""

from ._client import DarajaClient, DarajaEndpoints
from ._credential import Certificate, load_certificate_key, security_credential
from ._exceptions import (
    DarajaAuthError,
    DarajaConnectError,
    DarajaConnectTimeout,
    DarajaDuplicateRequest,
    DarajaError,
    DarajaMalformedResult,
    DarajaReadTimeout,
    DarajaRejected,
    DarajaResponseError,
    DarajaServerError,
    DarajaStillProcessing,
    DarajaSubscriberLocked,
    DarajaThrottled,
    DarajaTimeout,
    DarajaTransportError,
    DarajaValidationError,
)
from ._models import (
    AccountBalanceRequest,
    B2cCommandId,
    B2cPaymentRequest,
    B2cVersion,
    C2BAcknowledged,
    C2BRegisterRequest,
    C2BResponseType,
    C2BSimulateRequest,
    DarajaCredentials,
    DynamicQr,
    DynamicQrRequest,
    InitiatorAccepted,
    ReversalRequest,
    StkPushAccepted,
    StkPushRequest,
    StkQueryResult,
    TransactionStatusRequest,
    TransactionType,
    TrxCode,
)
from ._results import (
    AccountBalanceDetails,
    B2cResultDetails,
    Balance,
    InitiatorResult,
    ResultParameter,
    ReversalDetails,
    TransactionStatusDetails,
    account_balance_details,
    b2c_details,
    parse_balances,
    parse_result,
    reversal_details,
    transaction_status_details,
)
from ._security import stk_password, stk_timestamp
from ._token_cache import AccessToken, TokenCache, TokenFetcher, TokenKey
from .result_codes import classify_initiator_result, classify_stk_result, normalise_code

__all__ = [
    "AccessToken",
    "AccountBalanceDetails",
    "AccountBalanceRequest",
    "B2cCommandId",
    "B2cPaymentRequest",
    "B2cResultDetails",
    "B2cVersion",
    "Balance",
    "C2BAcknowledged",
    "C2BRegisterRequest",
    "C2BResponseType",
    "C2BSimulateRequest",
    "Certificate",
    "DarajaAuthError",
    "DarajaClient",
    "DarajaConnectError",
    "DarajaConnectTimeout",
    "DarajaCredentials",
    "DarajaDuplicateRequest",
    "DarajaEndpoints",
    "DarajaError",
    "DarajaMalformedResult",
    "DarajaReadTimeout",
    "DarajaRejected",
    "DarajaResponseError",
    "DarajaServerError",
    "DarajaStillProcessing",
    "DarajaSubscriberLocked",
    "DarajaThrottled",
    "DarajaTimeout",
    "DarajaTransportError",
    "DarajaValidationError",
    "DynamicQr",
    "DynamicQrRequest",
    "InitiatorAccepted",
    "InitiatorResult",
    "ResultParameter",
    "ReversalDetails",
    "ReversalRequest",
    "StkPushAccepted",
    "StkPushRequest",
    "StkQueryResult",
    "TokenCache",
    "TokenFetcher",
    "TokenKey",
    "TransactionStatusDetails",
    "TransactionStatusRequest",
    "TransactionType",
    "TrxCode",
    "account_balance_details",
    "b2c_details",
    "classify_initiator_result",
    "classify_stk_result",
    "load_certificate_key",
    "normalise_code",
    "parse_balances",
    "parse_result",
    "reversal_details",
    "security_credential",
    "stk_password",
    "stk_timestamp",
    "transaction_status_details",
]
