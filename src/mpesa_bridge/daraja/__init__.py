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
"""

from ._client import DarajaClient, DarajaEndpoints
from ._exceptions import (
    DarajaAuthError,
    DarajaConnectError,
    DarajaConnectTimeout,
    DarajaError,
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
    C2BAcknowledged,
    C2BRegisterRequest,
    C2BResponseType,
    C2BSimulateRequest,
    DarajaCredentials,
    DynamicQr,
    DynamicQrRequest,
    StkPushAccepted,
    StkPushRequest,
    StkQueryResult,
    TransactionType,
    TrxCode,
)
from ._security import stk_password, stk_timestamp
from ._token_cache import AccessToken, TokenCache, TokenFetcher, TokenKey
from .result_codes import classify_stk_result, normalise_code

__all__ = [
    "AccessToken",
    "C2BAcknowledged",
    "C2BRegisterRequest",
    "C2BResponseType",
    "C2BSimulateRequest",
    "DarajaAuthError",
    "DarajaClient",
    "DarajaConnectError",
    "DarajaConnectTimeout",
    "DarajaCredentials",
    "DarajaEndpoints",
    "DarajaError",
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
    "StkPushAccepted",
    "StkPushRequest",
    "StkQueryResult",
    "TokenCache",
    "TokenFetcher",
    "TokenKey",
    "TransactionType",
    "TrxCode",
    "classify_stk_result",
    "normalise_code",
    "stk_password",
    "stk_timestamp",
]
