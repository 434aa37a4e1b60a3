"""The core's `DarajaGateway`, over `DarajaClient`: one shared HTTP pool (`pool.py`) and token cache.

Client errors become the core's gateway errors here, and only here:

    DarajaValidationError, DarajaRejected          -> PushRejected   (no prompt was shown)
    DarajaConnectError/ConnectTimeout, Throttled,
    DarajaAuthError                                -> PushNotSent    (never processed)
    anything with outcome_unknown (read timeout,
    5xx after sending)                             -> PushOutcomeUnknown (never retried)
    STK Query "being processed"                    -> QueryPending

The initiator APIs' SecurityCredential (`security_credential`): the account's initiator password
encrypted with its environment's certificate — given by a setting, or for the simulator fetched
from it once — made once per password and kept; `InitiatorUnavailable` when it cannot be made.

Dynamic QR (nothing to reconcile: it moves no money):

    DarajaValidationError, DarajaRejected          -> QrRefused      (param: the API's field name)
    every other DarajaError, an unknown environment -> QrUnavailable
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from typing import cast

import httpx
import orjson

from mpesa_bridge.core.balances.ports import BalanceCommand
from mpesa_bridge.core.c2b.errors import C2BRegisterRefused, C2BRegisterUnavailable
from mpesa_bridge.core.c2b.ports import C2BRegisterCommand, IncomingC2B, MalformedC2B
from mpesa_bridge.core.phone import mask_phone
from mpesa_bridge.core.ports import (
    DynamicQrCommand,
    DynamicQrImage,
    GatewayError,
    InitiatorUnavailable,
    PushAccepted,
    PushNotSent,
    PushOutcomeUnknown,
    PushRejected,
    QrRefused,
    QrUnavailable,
    QueryAnswer,
    QueryFailed,
    QueryPending,
    StkPushCommand,
)
from mpesa_bridge.core.projects import DarajaAccount, DarajaEnvironment
from mpesa_bridge.core.reversals.ports import InitiatorQueued, ReversalCommand
from mpesa_bridge.daraja import (
    AccountBalanceRequest,
    C2BRegisterRequest,
    DarajaAuthError,
    DarajaClient,
    DarajaCredentials,
    DarajaDuplicateRequest,
    DarajaError,
    DarajaRejected,
    DarajaResponseError,
    DarajaStillProcessing,
    DarajaSubscriberLocked,
    DarajaThrottled,
    DarajaTransportError,
    DarajaValidationError,
    DynamicQr,
    DynamicQrRequest,
    InitiatorAccepted,
    ReversalRequest,
    StkPushRequest,
    TokenCache,
    TrxCode,
    security_credential,
)
from mpesa_bridge.daraja._transport import Outgoing, transport_for
from mpesa_bridge.daraja.c2b import C2BPayloadError, parse_c2b_payload
from mpesa_bridge.daraja.pool import HttpClient
from mpesa_bridge.logging import get_logger
from mpesa_bridge.observability.instruments import DARAJA_CALLS, DARAJA_ERRORS

log = get_logger("mpesa_bridge.daraja")

# 500.001.1001 carries several unrelated conditions; name the ones a merchant can act on.
_REJECTION_REASONS = (
    ("merchant does not exist", "merchant_not_found"),
    ("wrong credentials", "invalid_daraja_credentials"),
)


# The Dynamic QR fields: the client's names and Daraja's ("Bad Request - Invalid RefNo") -> the API's.
_QR_PARAMS = {
    "merchant_name": "merchant_name",
    "ref_no": "reference",
    "amount": "amount",
    "trx_code": "trx_code",
    "cpi": "cpi",
    "size": "size",
    "MerchantName": "merchant_name",
    "RefNo": "reference",
    "Amount": "amount",
    "TrxCode": "trx_code",
    "CPI": "cpi",
    "Size": "size",
}
_INVALID_FIELD = "bad request - invalid "

# Where the simulator publishes its initiator certificate (simulator/app.py; not a Daraja route).
SIMULATOR_CERTIFICATE_PATH = "/simulator-certificate.pem"


def _qr_param(exc: DarajaRejected) -> str | None:
    message = (exc.error_message or "").strip()
    if not message.lower().startswith(_INVALID_FIELD):
        return None
    return _QR_PARAMS.get(message[len(_INVALID_FIELD) :].strip())


def _rejection_code(exc: DarajaRejected) -> str:
    if isinstance(exc, DarajaSubscriberLocked):
        return "subscriber_locked"
    text = (exc.error_message or "").lower()
    for needle, code in _REJECTION_REASONS:
        if needle in text:
            return code
    return "daraja_rejected"


class DarajaGatewayAdapter:
    """Implements `core.ports.DarajaGateway` for every project, environment and credential set."""

    def __init__(
        self,
        http: HttpClient,
        base_urls: Mapping[DarajaEnvironment, str | None],
        *,
        token_cache: TokenCache | None = None,
        timeout: httpx.Timeout | None = None,
        certificates: Mapping[DarajaEnvironment, bytes] | None = None,
    ) -> None:
        self._http = http
        self._timeout = timeout or DarajaClient.DEFAULT_TIMEOUT
        self._base_urls = dict(base_urls)
        self._tokens = token_cache or TokenCache()
        self._clients: dict[tuple[DarajaEnvironment, str, str], DarajaClient] = {}
        self._certificates: dict[DarajaEnvironment, bytes] = dict(certificates or {})
        self._certificate_lock = asyncio.Lock()
        # (environment, SHA-256 of the password) -> credential: RSA encryption is randomised, and
        # any one of its outputs is valid, so one per password serves every request.
        self._credentials: dict[tuple[DarajaEnvironment, str], str] = {}

    def client(self, account: DarajaAccount) -> DarajaClient:
        key = (account.environment, account.consumer_key, account.consumer_secret)
        client = self._clients.get(key)
        if client is None:
            base_url = self._base_urls.get(account.environment)
            if not base_url:
                raise PushNotSent(
                    f"the Daraja environment '{account.environment.value}' is not available on this bridge",
                    code="environment_unavailable",
                )
            credentials = DarajaCredentials(account.consumer_key, account.consumer_secret)
            client = DarajaClient(
                base_url, credentials, http=self._http, token_cache=self._tokens, timeout=self._timeout
            )
            self._clients[key] = client
        return client

    async def security_credential(self, account: DarajaAccount) -> str:
        """The `SecurityCredential` of the account's initiator; `InitiatorUnavailable` (nothing sent)
        when the mode has no initiator or its environment's certificate cannot be had."""
        if not account.has_initiator:
            raise InitiatorUnavailable(
                f"the {account.environment.value} Daraja settings of this mode have no initiator "
                "(initiator_name and initiator_password)",
                code="initiator_not_configured",
            )
        digest = hashlib.sha256(account.initiator_password.encode()).hexdigest()
        key = (account.environment, digest)
        credential = self._credentials.get(key)
        if credential is None:
            certificate = await self._certificate(account.environment)
            try:
                credential = security_credential(account.initiator_password, certificate)
            except DarajaValidationError as exc:
                raise InitiatorUnavailable(
                    f"the {account.environment.value} certificate cannot be used: {exc.message}",
                    code="certificate_unavailable",
                ) from exc
            self._credentials[key] = credential
        return credential

    async def _certificate(self, environment: DarajaEnvironment) -> bytes:
        found = self._certificates.get(environment)
        if found is not None:
            return found
        if environment is not DarajaEnvironment.SIMULATOR:
            raise InitiatorUnavailable(
                f"no certificate is set for Daraja's {environment.value} "
                f"(MPESA_BRIDGE_DARAJA_CERTIFICATE_{environment.value.upper()})",
                code="certificate_unavailable",
            )
        async with self._certificate_lock:  # fetched once, however many requests wait for it
            found = self._certificates.get(environment)
            if found is None:
                found = await self._fetch_simulator_certificate()
                self._certificates[environment] = found
        return found

    async def _fetch_simulator_certificate(self) -> bytes:
        base_url = self._base_urls.get(DarajaEnvironment.SIMULATOR)
        if not base_url:
            raise InitiatorUnavailable("the simulator is not available on this bridge", code="certificate_unavailable")
        url = base_url.rstrip("/") + SIMULATOR_CERTIFICATE_PATH
        try:
            answer = await transport_for(self._http, self._timeout).send(Outgoing("GET", url, {}))
        except Exception as exc:  # any transport error: the certificate could not be had
            raise InitiatorUnavailable(
                f"the simulator's certificate could not be fetched ({type(exc).__name__})",
                code="certificate_unavailable",
            ) from exc
        if answer.status != 200 or b"-----BEGIN CERTIFICATE-----" not in answer.content:
            raise InitiatorUnavailable(
                f"the simulator answered {answer.status} for its certificate", code="certificate_unavailable"
            )
        log.info("daraja.certificate.fetched", environment="simulator")
        return answer.content

    async def stk_push(self, command: StkPushCommand) -> PushAccepted:
        account = command.account
        request = StkPushRequest(
            business_short_code=account.short_code,
            passkey=account.passkey,
            transaction_type="CustomerBuyGoodsOnline"
            if account.transaction_type == "CustomerBuyGoodsOnline"
            else "CustomerPayBillOnline",
            amount=command.amount,
            party_a=command.phone,
            party_b=account.party_b,
            phone_number=command.phone,
            callback_url=command.callback_url,
            account_reference=command.account_reference,
            transaction_desc=command.description,
        )
        fields = {
            "env": account.environment.value,
            "short_code": account.short_code,
            "phone": mask_phone(command.phone),
        }
        log.info("daraja.stk_push.sending", amount=command.amount, **fields)
        DARAJA_CALLS.labels("stk_push").inc()
        try:
            accepted = await self._push(account, request)
        except PushRejected as exc:
            DARAJA_ERRORS.labels("stk_push", exc.code).inc()
            log.warning("daraja.stk_push.rejected", code=exc.code, message=exc.message, **fields)
            raise
        except (PushNotSent, PushOutcomeUnknown) as exc:
            DARAJA_ERRORS.labels("stk_push", exc.code).inc()
            log.warning("daraja.stk_push.failed", code=exc.code, **fields)
            raise
        log.info("daraja.stk_push.accepted", checkout_request_id=accepted.checkout_request_id, **fields)
        return accepted

    async def _push(self, account: DarajaAccount, request: StkPushRequest) -> PushAccepted:
        try:
            accepted = await self.client(account).stk_push(request)
        except DarajaValidationError as exc:
            raise PushRejected(f"refused before sending: {exc}", code="invalid_for_daraja") from exc
        except DarajaRejected as exc:
            raise PushRejected(_describe(exc), code=_rejection_code(exc)) from exc
        except DarajaThrottled as exc:
            raise PushNotSent("Daraja is throttling requests; try again shortly", code="daraja_throttled") from exc
        except DarajaAuthError as exc:
            raise PushNotSent("Daraja refused this project's credentials", code="daraja_auth_failed") from exc
        except DarajaError as exc:
            if exc.outcome_unknown:
                raise PushOutcomeUnknown("Daraja did not answer the push", code="daraja_no_answer") from exc
            raise PushNotSent("Daraja could not be reached", code="daraja_unreachable") from exc
        return PushAccepted(accepted.merchant_request_id, accepted.checkout_request_id)

    async def stk_query(self, account: DarajaAccount, checkout_request_id: str) -> QueryAnswer:
        DARAJA_CALLS.labels("stk_query").inc()
        try:
            result = await self.client(account).stk_query(account.short_code, account.passkey, checkout_request_id)
        except DarajaStillProcessing as exc:
            log.info("daraja.stk_query.processing", checkout_request_id=checkout_request_id)
            raise QueryPending("the transaction is being processed") from exc
        except (DarajaError, PushNotSent) as exc:
            DARAJA_ERRORS.labels("stk_query", _error_code(exc)).inc()
            log.warning("daraja.stk_query.failed", checkout_request_id=checkout_request_id, error=type(exc).__name__)
            raise QueryFailed(f"STK Query failed: {exc.__class__.__name__}") from exc
        log.info("daraja.stk_query.answered", checkout_request_id=checkout_request_id, result_code=result.result_code)
        return QueryAnswer(result_code=result.result_code, result_desc=result.result_desc)

    async def dynamic_qr(self, command: DynamicQrCommand) -> DynamicQrImage:
        """An M-Pesa Dynamic QR from Daraja, every field checked before it is sent."""
        request = DynamicQrRequest(
            merchant_name=command.merchant_name,
            ref_no=command.reference,
            amount=command.amount,
            trx_code=cast(TrxCode, command.trx_code),  # checked by validate()
            cpi=command.cpi,
            size=command.size,
        )
        fields = {"env": command.account.environment.value, "trx_code": command.trx_code}
        DARAJA_CALLS.labels("dynamic_qr").inc()
        try:
            qr = await self._dynamic_qr(command.account, request)
        except QrRefused as exc:
            DARAJA_ERRORS.labels("dynamic_qr", exc.code).inc()
            log.info("daraja.dynamic_qr.refused", code=exc.code, param=exc.param, **fields)
            raise
        except QrUnavailable as exc:
            DARAJA_ERRORS.labels("dynamic_qr", exc.code).inc()
            log.warning("daraja.dynamic_qr.failed", code=exc.code, **fields)
            raise
        log.info("daraja.dynamic_qr.generated", request_id=qr.request_id, bytes=len(qr.png), **fields)
        return DynamicQrImage(png=qr.png, request_id=qr.request_id, description=qr.response_description)

    async def _dynamic_qr(self, account: DarajaAccount, request: DynamicQrRequest) -> DynamicQr:
        try:
            return await self.client(account).dynamic_qr(request)
        except PushNotSent as exc:  # the environment is not available on this bridge
            raise QrUnavailable(exc.message, code=exc.code) from exc
        except DarajaValidationError as exc:
            param = _QR_PARAMS.get(exc.field, exc.field)
            raise QrRefused(f"{param}: {exc.message}", code="invalid_for_daraja", param=param) from exc
        except DarajaRejected as exc:
            named = _qr_param(exc)
            code = "invalid_for_daraja" if named else _rejection_code(exc)
            raise QrRefused(_describe(exc), code=code, param=named) from exc
        except DarajaThrottled as exc:
            raise QrUnavailable("Daraja is throttling requests; try again shortly", code="daraja_throttled") from exc
        except DarajaAuthError as exc:
            raise QrUnavailable("Daraja refused this project's credentials", code="daraja_auth_failed") from exc
        except DarajaTransportError as exc:
            raise QrUnavailable("Daraja could not be reached", code="daraja_unreachable") from exc
        except DarajaError as exc:
            raise QrUnavailable(f"Daraja answered with an error ({exc.code})", code="daraja_error") from exc

    async def check_credentials(self, account: DarajaAccount) -> None:
        """Fetch a fresh OAuth token with the account's credentials (the dashboard's "test
        connection"); the cached token is neither used nor replaced. Raises `PushNotSent` whose code
        says what is wrong: daraja_auth_failed, daraja_unreachable, daraja_throttled,
        environment_unavailable or daraja_error."""
        client = self.client(account)
        DARAJA_CALLS.labels("oauth").inc()
        try:
            await client._fetch_token()
        except DarajaAuthError as exc:
            DARAJA_ERRORS.labels("oauth", "daraja_auth_failed").inc()
            raise PushNotSent("Daraja refused these credentials", code="daraja_auth_failed") from exc
        except DarajaThrottled as exc:
            DARAJA_ERRORS.labels("oauth", "daraja_throttled").inc()
            raise PushNotSent("Daraja is throttling requests; try again shortly", code="daraja_throttled") from exc
        except DarajaTransportError as exc:
            DARAJA_ERRORS.labels("oauth", "daraja_unreachable").inc()
            raise PushNotSent(f"Daraja could not be reached ({exc.code})", code="daraja_unreachable") from exc
        except DarajaError as exc:
            DARAJA_ERRORS.labels("oauth", "daraja_error").inc()
            raise PushNotSent(f"Daraja answered with an error ({exc.code})", code="daraja_error") from exc
        log.info("daraja.credentials.checked", environment=account.environment.value)

    async def c2b_register(self, command: C2BRegisterCommand) -> str:
        """Register a short code's C2B URLs (v2, or v1 by setting; daraja.md §6.1): Daraja's
        OriginatorCoversationID. `C2BRegisterRefused` (a field, a URL word, "already registered")
        or `C2BRegisterUnavailable`."""
        request = C2BRegisterRequest(
            short_code=command.short_code,
            response_type="Cancelled" if command.response_type == "Cancelled" else "Completed",
            confirmation_url=command.confirmation_url,
            validation_url=command.validation_url,
        )
        fields = {"env": command.account.environment.value, "short_code": command.short_code}
        DARAJA_CALLS.labels("c2b_register").inc()
        try:
            ack = await self._c2b_register(command, request, fields)
        except (C2BRegisterRefused, C2BRegisterUnavailable) as exc:
            DARAJA_ERRORS.labels("c2b_register", exc.code).inc()
            raise
        log.info("daraja.c2b_register.registered", **fields)
        return ack

    async def _c2b_register(
        self, command: C2BRegisterCommand, request: C2BRegisterRequest, fields: dict[str, str]
    ) -> str:
        try:
            ack = await self.client(command.account).c2b_register_urls(
                request, version=1 if command.version == 1 else 2
            )
        except PushNotSent as exc:  # the environment is not available on this bridge
            raise C2BRegisterUnavailable(exc.message, code=exc.code) from exc
        except DarajaValidationError as exc:
            raise C2BRegisterRefused(f"{exc.field}: {exc.message}", code="invalid_for_daraja") from exc
        except DarajaRejected as exc:
            log.warning("daraja.c2b_register.rejected", code=exc.error_code, **fields)
            raise C2BRegisterRefused(_describe(exc), code="c2b_register_refused") from exc
        except DarajaThrottled as exc:
            raise C2BRegisterUnavailable("Daraja is throttling requests", code="daraja_throttled") from exc
        except DarajaAuthError as exc:
            raise C2BRegisterUnavailable(
                "Daraja refused this project's credentials", code="daraja_auth_failed"
            ) from exc
        except DarajaResponseError as exc:
            # Registration moves no money: any other answer Daraja gives (a 500 "Urls are already
            # registered.", Apigee's fault for an STK-only short code) is its refusal of these URLs.
            log.warning("daraja.c2b_register.refused", status=exc.http_status, code=exc.error_code, **fields)
            message = exc.error_message or (exc.body_prefix or "")[:200] or "Daraja refused the registration"
            raise C2BRegisterRefused(f"Daraja refused the registration: {message}") from exc
        except DarajaError as exc:
            raise C2BRegisterUnavailable(
                f"Daraja could not register the URLs ({exc.code})", code="daraja_error"
            ) from exc
        return ack.originator_conversation_id

    # Reversal and Account Balance (core.reversals, core.balances) ------------------------------

    async def reverse(self, command: ReversalCommand) -> InitiatorQueued:
        """Send a Reversal. Moves money: a lost answer raises `PushOutcomeUnknown` (never re-sent)."""
        account = command.account
        credential = await self.security_credential(account)
        request = ReversalRequest(
            initiator=account.initiator_name,
            security_credential=credential,
            transaction_id=command.original_receipt,
            amount=command.amount,
            receiver_party=command.short_code,
            result_url=command.result_url,
            queue_timeout_url=command.queue_timeout_url,
            remarks=command.remarks,
        )
        fields = {"env": account.environment.value, "short_code": command.short_code}
        log.info("daraja.reversal.sending", amount=command.amount, **fields)
        try:
            accepted = await self.send_initiator(account, "reversal", lambda client: client.reversal(request))
        except GatewayError as exc:
            log.warning("daraja.reversal.failed", code=exc.code, **fields)
            raise
        log.info("daraja.reversal.queued", conversation_id=accepted.conversation_id, **fields)
        return InitiatorQueued(accepted.conversation_id, accepted.originator_conversation_id)

    async def account_balance(self, command: BalanceCommand) -> InitiatorQueued:
        """Send an Account Balance query (moves nothing; a lost answer is `PushOutcomeUnknown` too)."""
        account = command.account
        credential = await self.security_credential(account)
        request = AccountBalanceRequest(
            initiator=account.initiator_name,
            security_credential=credential,
            party_a=command.short_code,
            result_url=command.result_url,
            queue_timeout_url=command.queue_timeout_url,
            remarks=command.remarks,
        )
        fields = {"env": account.environment.value, "short_code": command.short_code}
        try:
            accepted = await self.send_initiator(
                account, "account_balance", lambda client: client.account_balance(request)
            )
        except GatewayError as exc:
            log.warning("daraja.account_balance.failed", code=exc.code, **fields)
            raise
        log.info("daraja.account_balance.queued", conversation_id=accepted.conversation_id, **fields)
        return InitiatorQueued(accepted.conversation_id, accepted.originator_conversation_id)

    async def send_initiator(
        self,
        account: DarajaAccount,
        operation: str,
        send: Callable[[DarajaClient], Awaitable[InitiatorAccepted]],
    ) -> InitiatorAccepted:
        """One initiator request (B2C, status, balance, reversal: `daraja/payouts.py` too); the
        client's errors translated as for the push. A duplicate OriginatorConversationID means an
        earlier request with it reached Daraja: its outcome is what counts, so it is unknown.
        Counted in `mpesa_bridge_daraja_calls_total` / `_errors_total` by `operation`."""
        DARAJA_CALLS.labels(operation).inc()
        try:
            return await self._send_initiator(account, operation, send)
        except GatewayError as exc:
            DARAJA_ERRORS.labels(operation, exc.code).inc()
            raise

    async def _send_initiator(
        self,
        account: DarajaAccount,
        operation: str,
        send: Callable[[DarajaClient], Awaitable[InitiatorAccepted]],
    ) -> InitiatorAccepted:
        try:
            return await send(self.client(account))
        except DarajaValidationError as exc:
            raise PushRejected(f"refused before sending: {exc}", code="invalid_for_daraja") from exc
        except DarajaDuplicateRequest as exc:
            raise PushOutcomeUnknown(
                "Daraja has seen this OriginatorConversationID", code="duplicate_originator"
            ) from exc
        except DarajaRejected as exc:
            raise PushRejected(_describe(exc), code=_rejection_code(exc)) from exc
        except DarajaThrottled as exc:
            raise PushNotSent("Daraja is throttling requests; try again shortly", code="daraja_throttled") from exc
        except DarajaAuthError as exc:
            raise PushNotSent("Daraja refused this project's credentials", code="daraja_auth_failed") from exc
        except DarajaError as exc:
            if exc.outcome_unknown:
                raise PushOutcomeUnknown(f"Daraja did not answer the {operation}", code="daraja_no_answer") from exc
            raise PushNotSent("Daraja could not be reached", code="daraja_unreachable") from exc


def read_c2b_body(body: bytes) -> IncomingC2B:
    """A C2B validation or confirmation body for the core (`core.c2b.ports.C2BBodyReader`)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedC2B("not JSON") from exc
    if not isinstance(doc, dict):
        raise MalformedC2B("not a JSON object")
    try:
        parsed = parse_c2b_payload(doc)
    except C2BPayloadError as exc:
        raise MalformedC2B(str(exc)) from exc
    texts = (parsed.trans_id, parsed.bill_ref_number, parsed.msisdn, parsed.customer_name, parsed.transaction_type)
    if any(any(ord(ch) < 0x20 for ch in text) for text in texts) or len(parsed.bill_ref_number) > 64:
        raise MalformedC2B("a field holds a control character or is too long")
    if len(parsed.trans_id) > 64 or len(parsed.msisdn) > 80 or len(parsed.business_short_code) > 16:
        raise MalformedC2B("a field is too long")
    balance = parsed.org_account_balance
    return IncomingC2B(
        transaction_type=parsed.transaction_type[:32],
        trans_id=parsed.trans_id,
        trans_time=parsed.trans_time,
        amount=parsed.amount,
        short_code=parsed.business_short_code,
        bill_ref_number=parsed.bill_ref_number,
        invoice_number=parsed.invoice_number[:64],
        org_account_balance=str(balance) if balance is not None else None,
        third_party_trans_id=parsed.third_party_trans_id[:64],
        msisdn=parsed.msisdn,
        msisdn_kind=parsed.msisdn_kind,
        customer_name=parsed.customer_name[:200],
        first_name=parsed.first_name,
    )


def _error_code(exc: Exception) -> str:
    """The metric label of a failed call: the error's code, or its class when it has none."""
    return str(getattr(exc, "code", None) or type(exc).__name__)


def _describe(exc: DarajaRejected) -> str:
    message = exc.error_message or "Daraja rejected the request"
    return f"{message} ({exc.error_code})" if exc.error_code else message
