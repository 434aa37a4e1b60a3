"""The async Daraja client: OAuth, STK push, STK query, Dynamic QR and the initiator APIs (B2C,
Transaction Status, Account Balance, Reversal) over a caller-owned aiohttp or httpx client."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Literal

import httpx

from ._exceptions import DarajaConnectError, DarajaConnectTimeout, DarajaValidationError, map_transport_errors
from ._models import (
    AccountBalanceRequest,
    B2cPaymentRequest,
    B2cVersion,
    C2BAcknowledged,
    C2BRegisterRequest,
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
)
from ._responses import (
    Reply,
    error_for,
    is_error,
    is_token_error,
    oauth_error,
    parse_access_token,
    parse_c2b_ack,
    parse_dynamic_qr,
    parse_initiator_accepted,
    parse_stk_push,
    parse_stk_query,
    read_reply,
)
from ._security import redact, stk_password, stk_timestamp
from ._token_cache import AccessToken, TokenCache, TokenKey
from ._transport import Answer, HttpClient, Outgoing, transport_for
from ._validation import check_non_empty, check_short_code

__all__ = ["DEFAULT_TIMEOUT", "C2BVersion", "DarajaClient", "DarajaEndpoints", "utc_now"]

C2BVersion = Literal[1, 2]

# Read is generous: STK push answers can take several seconds under load, and giving up early
# only turns a push into an "unknown" that must be reconciled.
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0)

# CheckoutRequestIDs are ~32 characters today; stored as text of at most 64.
_CHECKOUT_REQUEST_ID_MAX = 64


@dataclass(frozen=True)
class DarajaEndpoints:
    """Paths on the Daraja host. Go-live emails sometimes list others (e.g. STK Query v2)."""

    oauth: str = "/oauth/v1/generate"
    stk_push: str = "/mpesa/stkpush/v1/processrequest"
    stk_query: str = "/mpesa/stkpushquery/v1/query"
    dynamic_qr: str = "/mpesa/qrcode/v1/generate"
    # C2B (daraja.md §6.1, §6.2): v1 and v2 take the same body; v2 masks the payer's number in the
    # validation and confirmation payloads, v1 hashes it.
    c2b_register_v1: str = "/mpesa/c2b/v1/registerurl"
    c2b_register_v2: str = "/mpesa/c2b/v2/registerurl"
    c2b_simulate_v1: str = "/mpesa/c2b/v1/simulate"
    c2b_simulate_v2: str = "/mpesa/c2b/v2/simulate"
    b2c_v3: str = "/mpesa/b2c/v3/paymentrequest"
    b2c_v1: str = "/mpesa/b2c/v1/paymentrequest"
    transaction_status: str = "/mpesa/transactionstatus/v1/query"
    account_balance: str = "/mpesa/accountbalance/v1/query"
    reversal: str = "/mpesa/reversal/v1/request"


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Secrets:
    """The secrets one call has handled so far, to scrub from anything Daraja sends back."""

    def __init__(self, *values: str) -> None:
        self._values = list(values)

    def add(self, value: str) -> None:
        self._values.append(value)

    def __call__(self, text: str) -> str:
        return redact(text, self._values)


class DarajaClient:
    """An async client for Safaricom's Daraja API (OAuth, STK push, STK query, Dynamic QR, and the
    initiator APIs: B2C, Transaction Status, Account Balance, Reversal).

    `http` is an `aiohttp.ClientSession` (what the bridge uses: a fraction of httpx's CPU per
    request) or an `httpx.AsyncClient`; the client does not own it: the caller opens and closes
    it. `timeout` applies to either (see `_transport.client_timeout`). Tokens come from the shared
    `token_cache`, so many clients (or many calls of one) cost one OAuth request per token life.

    Only what is safe is retried: a connect failure (the request never left) up to
    `connect_retries` times, and a rejected token once after one refresh. A push that timed out,
    lost its connection or got a 5xx raises with `outcome_unknown=True` and is never re-sent,
    because Daraja has no idempotency key and a second push is a second prompt. The same holds for
    a B2C payout and a reversal; a payout may only go again under its own OriginatorConversationID,
    which Daraja refuses as a duplicate (`DarajaDuplicateRequest`) if the first one arrived.
    """

    SANDBOX_URL: ClassVar[str] = "https://sandbox.safaricom.co.ke"
    PRODUCTION_URL: ClassVar[str] = "https://api.safaricom.co.ke"
    DEFAULT_TIMEOUT: ClassVar[httpx.Timeout] = DEFAULT_TIMEOUT

    def __init__(
        self,
        base_url: str,
        credentials: DarajaCredentials,
        *,
        http: HttpClient,
        token_cache: TokenCache,
        now: Callable[[], datetime] = utc_now,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        connect_retries: int = 1,
        endpoints: DarajaEndpoints = DarajaEndpoints(),
    ) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise ValueError("base_url must be an http(s) URL")
        if connect_retries < 0:
            raise ValueError("connect_retries must not be negative")
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._http = http
        self._transport = transport_for(http, timeout)
        self._token_cache = token_cache
        self._now = now
        self._timeout = timeout
        self._connect_retries = connect_retries
        self._endpoints = endpoints

    @property
    def token_key(self) -> TokenKey:
        """This client's key in the token cache: one token per environment and consumer key."""
        return (self._base_url, self._credentials.consumer_key)

    async def stk_push(self, req: StkPushRequest) -> StkPushAccepted:
        """Send an STK push. The result arrives later by callback; this is only the queueing ack."""
        req.validate()
        # One clock reading for both: a timestamp taken twice can straddle a second and the
        # Password then no longer matches ("[MerchantValidate] - Wrong credentials").
        timestamp = stk_timestamp(self._now())
        password = stk_password(req.business_short_code, req.passkey, timestamp)
        body = _stk_push_body(req, password, timestamp)
        secrets = _Secrets(self._credentials.consumer_secret, req.passkey, password)
        reply = await self._call(self._endpoints.stk_push, body, "stk_push", money_moving=True, secrets=secrets)
        return parse_stk_push(reply)

    async def stk_query(self, business_short_code: str, passkey: str, checkout_request_id: str) -> StkQueryResult:
        """Ask for the final result of a push. Raises `DarajaStillProcessing` while there is none."""
        check_short_code("business_short_code", business_short_code)
        check_non_empty("passkey", passkey)
        check_non_empty("checkout_request_id", checkout_request_id, max_length=_CHECKOUT_REQUEST_ID_MAX)
        timestamp = stk_timestamp(self._now())
        password = stk_password(business_short_code, passkey, timestamp)
        body = {
            "BusinessShortCode": int(business_short_code),
            "Password": password,
            "Timestamp": timestamp,
            "CheckoutRequestID": checkout_request_id,
        }
        secrets = _Secrets(self._credentials.consumer_secret, passkey, password)
        reply = await self._call(self._endpoints.stk_query, body, "stk_query", money_moving=False, secrets=secrets)
        return parse_stk_query(reply, checkout_request_id)

    async def dynamic_qr(self, req: DynamicQrRequest) -> DynamicQr:
        """Generate an M-Pesa Dynamic QR code (a PNG the M-Pesa app scans to pay `req.cpi`).

        Moves no money, so a lost answer is simply an error: asking again is harmless."""
        req.validate()
        body = {
            "MerchantName": req.merchant_name,
            "RefNo": req.ref_no,
            "Amount": req.amount,
            "TrxCode": req.trx_code,
            "CPI": req.cpi,
            "Size": str(req.size),  # a string in Daraja's documentation and samples
        }
        secrets = _Secrets(self._credentials.consumer_secret)
        reply = await self._call(self._endpoints.dynamic_qr, body, "dynamic_qr", money_moving=False, secrets=secrets)
        return parse_dynamic_qr(reply)

    # C2B (daraja.md §6) ----------------------------------------------------------------------

    async def c2b_register_urls(self, req: C2BRegisterRequest, *, version: C2BVersion = 2) -> C2BAcknowledged:
        """Register the ConfirmationURL and ValidationURL of a short code.

        In production this works once: changing the URLs means deleting them on the Daraja portal
        first, else `DarajaRejected` "Urls are already registered." (500.003.1001). Production
        URLs must be https. Moves no money: a lost answer is simply an error."""
        _check_c2b_version(version)
        req.validate(require_https=self._base_url == self.PRODUCTION_URL)
        body = {
            "ShortCode": req.short_code,  # a string, as in Daraja's register sample
            "ResponseType": req.response_type,
            "ConfirmationURL": req.confirmation_url,
            "ValidationURL": req.validation_url,
        }
        path = self._endpoints.c2b_register_v1 if version == 1 else self._endpoints.c2b_register_v2
        secrets = _Secrets(self._credentials.consumer_secret)
        reply = await self._call(path, body, "c2b_register_urls", money_moving=False, secrets=secrets)
        return parse_c2b_ack(reply, "c2b_register_urls")

    async def c2b_simulate(self, req: C2BSimulateRequest, *, version: C2BVersion = 2) -> C2BAcknowledged:
        """Ask the sandbox to simulate a customer paying `req.short_code` (no such call in production).

        The sandbox then calls the registered URLs, or often does not (daraja.md §6.2)."""
        if self._base_url == self.PRODUCTION_URL:
            raise DarajaValidationError("base_url", "C2B simulate exists in the sandbox only")
        _check_c2b_version(version)
        req.validate()
        body = {
            "ShortCode": int(req.short_code),
            "CommandID": req.command_id,
            "Amount": req.amount,
            "Msisdn": int(req.msisdn),  # "Msisdn" here, "MSISDN" in the payloads (sic)
            "BillRefNumber": req.bill_ref_number,
        }
        path = self._endpoints.c2b_simulate_v1 if version == 1 else self._endpoints.c2b_simulate_v2
        secrets = _Secrets(self._credentials.consumer_secret)
        reply = await self._call(path, body, "c2b_simulate", money_moving=False, secrets=secrets)
        return parse_c2b_ack(reply, "c2b_simulate")

    # Initiator APIs (daraja.md §7 to §11) ----------------------------------------------------------
    #
    # Each answers at once with a queueing ack (`InitiatorAccepted`) and later POSTs a Result to
    # ResultURL (`parse_result`). A payout and a reversal move money and Daraja's only guard
    # against a repeat is the v3 OriginatorConversationID: a lost answer raises with
    # `outcome_unknown=True`, and the request is settled by its Result or by Transaction Status,
    # never sent again.

    async def b2c_payment(self, req: B2cPaymentRequest, *, version: B2cVersion = "v3") -> InitiatorAccepted:
        """Send a B2C payout: v3 (with our `OriginatorConversationID`, the default) or legacy v1."""
        req.validate(version=version, require_https=self._production)
        body: dict[str, object] = {}
        if version == "v3":
            body["OriginatorConversationID"] = req.originator_conversation_id
        body |= {
            "InitiatorName": req.initiator_name,
            "SecurityCredential": req.security_credential,
            "CommandID": req.command_id,
            "Amount": req.amount,
            "PartyA": int(req.party_a),
            "PartyB": int(req.party_b),
            "Remarks": req.remarks,
            "QueueTimeOutURL": req.queue_timeout_url,
            "ResultURL": req.result_url,
        }
        if req.occasion:
            # Safaricom's spelling: "Occassion" in v3; its own v1 sample says "Occasion".
            body["Occassion" if version == "v3" else "Occasion"] = req.occasion
        path = self._endpoints.b2c_v3 if version == "v3" else self._endpoints.b2c_v1
        return await self._initiator_call(path, body, "b2c_payment", req.security_credential, money_moving=True)

    async def transaction_status(self, req: TransactionStatusRequest) -> InitiatorAccepted:
        """Ask for a transaction's status, by receipt or by our OriginatorConversationID; the answer
        is a Result (`transaction_status_details`). Moves no money: a lost answer may be asked again."""
        req.validate(require_https=self._production)
        body: dict[str, object] = {
            "Initiator": req.initiator,
            "SecurityCredential": req.security_credential,
            "CommandID": "TransactionStatusQuery",
            "TransactionID": req.transaction_id,  # "" when asking by the originator's id (daraja.md §9)
        }
        if req.original_conversation_id:
            body["OriginalConversationID"] = req.original_conversation_id
        # Strings here, as in Safaricom's Transaction Status, Account Balance and Reversal samples.
        body |= {
            "PartyA": req.party_a,
            "IdentifierType": req.identifier_type,
            "ResultURL": req.result_url,
            "QueueTimeOutURL": req.queue_timeout_url,
            "Remarks": req.remarks,
        }
        if req.occasion:
            body["Occasion"] = req.occasion
        path = self._endpoints.transaction_status
        return await self._initiator_call(path, body, "transaction_status", req.security_credential, money_moving=False)

    async def account_balance(self, req: AccountBalanceRequest) -> InitiatorAccepted:
        """Ask for our short code's balances; they come in a Result (`account_balance_details`)."""
        req.validate(require_https=self._production)
        body = {
            "Initiator": req.initiator,
            "SecurityCredential": req.security_credential,
            "CommandID": "AccountBalance",
            "PartyA": req.party_a,
            "IdentifierType": req.identifier_type,
            "Remarks": req.remarks,
            "QueueTimeOutURL": req.queue_timeout_url,
            "ResultURL": req.result_url,
        }
        path = self._endpoints.account_balance
        return await self._initiator_call(path, body, "account_balance", req.security_credential, money_moving=False)

    async def reversal(self, req: ReversalRequest) -> InitiatorAccepted:
        """Reverse a payment our short code received. Moves money: a lost answer is unknown, and is
        settled by the Result or Transaction Status, never by reversing again."""
        req.validate(require_https=self._production)
        body = {
            "Initiator": req.initiator,
            "SecurityCredential": req.security_credential,
            "CommandID": "TransactionReversal",
            "TransactionID": req.transaction_id,
            "Amount": str(req.amount),
            "ReceiverParty": req.receiver_party,
            "RecieverIdentifierType": req.receiver_identifier_type,  # sic: Safaricom's spelling
            "ResultURL": req.result_url,
            "QueueTimeOutURL": req.queue_timeout_url,
            "Remarks": req.remarks,
        }
        if req.occasion:
            body["Occasion"] = req.occasion
        return await self._initiator_call(
            self._endpoints.reversal, body, "reversal", req.security_credential, money_moving=True
        )

    @property
    def _production(self) -> bool:
        # Production calls back only https ResultURLs; elsewhere (sandbox, simulator) http is fine.
        return self._base_url == self.PRODUCTION_URL

    async def _initiator_call(
        self, path: str, body: Mapping[str, object], operation: str, credential: str, *, money_moving: bool
    ) -> InitiatorAccepted:
        secrets = _Secrets(self._credentials.consumer_secret, credential)
        reply = await self._call(path, body, operation, money_moving=money_moving, secrets=secrets)
        return parse_initiator_accepted(reply, operation, money_moving=money_moving)

    async def _call(
        self, path: str, body: Mapping[str, object], operation: str, *, money_moving: bool, secrets: _Secrets
    ) -> Reply:
        """POST with a bearer token; on a token error refresh once and retry once, never more."""
        token = await self._token()
        secrets.add(token)
        reply = await self._post(path, body, token, operation, money_moving=money_moving, secrets=secrets)
        if is_error(reply) and is_token_error(reply, secrets):
            # The gateway refused the token before M-Pesa saw the request, so re-sending is safe.
            self._token_cache.invalidate(self.token_key, token)
            token = await self._token()
            secrets.add(token)
            reply = await self._post(path, body, token, operation, money_moving=money_moving, secrets=secrets)
        if is_error(reply):
            # A token error that survived the refresh lands here too, as DarajaAuthError.
            raise error_for(reply, operation=operation, money_moving=money_moving, redact=secrets)
        return reply

    async def _post(
        self,
        path: str,
        body: Mapping[str, object],
        token: str,
        operation: str,
        *,
        money_moving: bool,
        secrets: _Secrets,
    ) -> Reply:
        request = Outgoing(
            "POST",
            self._base_url + path,
            {"Authorization": f"Bearer {token}", "Accept": "application/json", "Content-Type": "application/json"},
            _json_bytes(body),
        )
        response = await self._send(request, operation, money_moving=money_moving, secrets=secrets)
        return read_reply(response, secrets)

    async def _token(self) -> str:
        return await self._token_cache.get(self.token_key, self._fetch_token)

    async def _fetch_token(self) -> AccessToken:
        """GET the OAuth endpoint with HTTP Basic (consumer key and secret)."""
        basic = _basic_credentials(self._credentials)
        # The encoded pair is the secret too: an echo of the header must be scrubbed as well.
        secrets = _Secrets(self._credentials.consumer_secret, basic)
        request = Outgoing(
            "GET",
            f"{self._base_url}{self._endpoints.oauth}?grant_type=client_credentials",
            {"Authorization": f"Basic {basic}", "Accept": "application/json"},
        )
        response = await self._send(request, "oauth", money_moving=False, secrets=secrets)
        reply = read_reply(response, secrets)
        if is_error(reply):
            raise oauth_error(reply, secrets)
        return parse_access_token(reply, secrets)

    async def _send(self, request: Outgoing, operation: str, *, money_moving: bool, secrets: _Secrets) -> Answer:
        for _ in range(self._connect_retries):
            try:
                return await self._send_once(request, operation, money_moving, secrets)
            except (DarajaConnectError, DarajaConnectTimeout):
                continue  # the request never left, so sending it again cannot duplicate anything
        return await self._send_once(request, operation, money_moving, secrets)

    async def _send_once(self, request: Outgoing, operation: str, money_moving: bool, secrets: _Secrets) -> Answer:
        # The one place this package touches the network; every transport error is translated here.
        with map_transport_errors(operation=operation, money_moving=money_moving, redact=secrets):
            return await self._transport.send(request)


def _check_c2b_version(version: object) -> None:
    if isinstance(version, bool) or version not in (1, 2):
        raise DarajaValidationError("version", "must be 1 or 2")


def _basic_credentials(credentials: DarajaCredentials) -> str:
    pair = f"{credentials.consumer_key}:{credentials.consumer_secret}"
    return base64.b64encode(pair.encode()).decode("ascii")


def _json_bytes(body: Mapping[str, object]) -> bytes:
    # Compact and UTF-8, as httpx's json= sends it.
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _stk_push_body(req: StkPushRequest, password: str, timestamp: str) -> dict[str, object]:
    # Numbers go out as JSON integers: string PartyA/PhoneNumber has been reported to end in
    # silent 1037 timeouts in production.
    return {
        "BusinessShortCode": int(req.business_short_code),
        "Password": password,
        "Timestamp": timestamp,
        "TransactionType": req.transaction_type,
        "Amount": req.amount,
        "PartyA": int(req.party_a),
        "PartyB": int(req.party_b),
        "PhoneNumber": int(req.phone_number),
        "CallBackURL": req.callback_url,
        "AccountReference": req.account_reference,
        "TransactionDesc": req.transaction_desc,
    }
