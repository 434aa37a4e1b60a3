"""The Daraja use cases, free of HTTP: mint a token, accept an STK push, answer an STK query,
draw a Dynamic QR."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from . import ids
from .c2b import C2BDesk
from .config import SimulatorConfig
from .errors import (
    INVALID_AUTH_TYPE,
    INVALID_GRANT_TYPE,
    GatewayError,
    WrongConsumerCredentials,
    invalid_access_token,
    invalid_field,
    merchant_error,
)
from .qr import qr_payload, qr_png_base64
from .scenarios import PRODUCT_NOT_PERMITTED, Scenario, scenario_for
from .state import PushLedger, PushRecord, TokenStore
from .validation import PAYBILL, StkPushRequest, check_password, parse_dynamic_qr, parse_stk_push, parse_stk_query

ACCEPTED = "Success. Request accepted for processing"
QUERY_ACCEPTED = "The service request has been accepted successsfully"  # sic: Safaricom's typo
LOCKED = "Unable to lock subscriber, a transaction is already in process for the current subscriber"
PROCESSING = "The transaction is being processed"
QR_GENERATED = "QR Code Successfully Generated."


class DarajaGateway:
    """The gateway's state and rules; `on_accept` hears about every accepted push."""

    def __init__(self, config: SimulatorConfig, on_accept: Callable[[PushRecord], None]) -> None:
        self.config = config
        self.tokens = TokenStore(config.token_ttl, config.now)
        self.pushes = PushLedger()
        self._on_accept = on_accept
        self.c2b = C2BDesk(config)  # C2B: registrations, customer payments (c2b.py)

    # OAuth ------------------------------------------------------------------------------------

    def generate_token(self, authorization: str | None, grant_type: str | None) -> dict[str, str]:
        scheme, _, encoded = (authorization or "").strip().partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            raise GatewayError(400, INVALID_AUTH_TYPE, "Invalid authentication type passed")
        if grant_type != "client_credentials":
            raise GatewayError(400, INVALID_GRANT_TYPE, "Invalid grant type passed")
        key, secret = _basic_credentials(encoded.strip())
        if key is None or self.config.credentials.get(key) != secret:
            raise WrongConsumerCredentials()
        return {"access_token": self.tokens.issue(), "expires_in": str(self.config.token_ttl)}

    def authorize(self, authorization: str | None) -> None:
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not self.tokens.is_valid(token.strip()):
            raise invalid_access_token()

    # STK push ---------------------------------------------------------------------------------

    def stk_push(self, body: Mapping[str, Any]) -> dict[str, str]:
        request = parse_stk_push(body)
        check_password(request, self._passkey(request.business_short_code))
        if self.pushes.is_locked(request.phone_number):
            raise merchant_error(LOCKED)
        now = self.config.now()
        record = PushRecord(
            merchant_request_id=ids.gateway_id(),
            checkout_request_id=self.pushes.new_checkout_request_id(now, request.phone_number),
            request=request,
            scenario=self._scenario(request),
            created_at=now,
        )
        self.pushes.add(record)
        self._on_accept(record)
        return {
            "MerchantRequestID": record.merchant_request_id,
            "CheckoutRequestID": record.checkout_request_id,
            "ResponseCode": "0",
            "ResponseDescription": ACCEPTED,
            "CustomerMessage": ACCEPTED,
        }

    def _passkey(self, business_short_code: str) -> str:
        passkey = self.config.shortcodes.get(business_short_code)
        if passkey is None:
            raise merchant_error("Merchant does not exist")
        return passkey

    def _scenario(self, request: StkPushRequest) -> Scenario:
        # A wrong PartyB is accepted synchronously and refused in the callback (daraja.md 3.1).
        if request.transaction_type == PAYBILL:
            permitted = request.party_b == request.business_short_code
        else:
            permitted = self.config.tills.get(request.party_b) == request.business_short_code
        return scenario_for(request.party_a) if permitted else PRODUCT_NOT_PERMITTED

    # STK query --------------------------------------------------------------------------------

    def stk_query(self, body: Mapping[str, Any]) -> dict[str, str]:
        request = parse_stk_query(body)
        check_password(request, self._passkey(request.business_short_code))
        record = self.pushes.get(request.checkout_request_id)
        if record is None or record.request.business_short_code != request.business_short_code:
            raise invalid_field("CheckoutRequestID")
        if not record.decided or self._lagging(record):
            raise merchant_error(PROCESSING, request_id=record.checkout_request_id)
        return {
            "ResponseCode": "0",
            "ResponseDescription": QUERY_ACCEPTED,
            "MerchantRequestID": record.merchant_request_id,
            "CheckoutRequestID": record.checkout_request_id,
            "ResultCode": str(record.result_code),
            "ResultDesc": record.result_desc,
        }

    def _lagging(self, record: PushRecord) -> bool:
        lag = timedelta(seconds=self.config.query_lag)
        return record.scenario.query_lags and self.config.now() < record.created_at + lag

    # Dynamic QR -------------------------------------------------------------------------------

    def dynamic_qr(self, body: Mapping[str, Any]) -> dict[str, str]:
        """Synchronous, no callback: the PNG is in the answer (daraja.md 12)."""
        request = parse_dynamic_qr(body)
        return {
            "ResponseCode": "00",
            "RequestID": ids.gateway_id(),
            "ResponseDescription": QR_GENERATED,
            "QRCode": qr_png_base64(qr_payload(request), request.size),
        }


def _basic_credentials(encoded: str) -> tuple[str | None, str | None]:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    key, separator, secret = decoded.partition(":")
    return (key, secret) if separator else (None, None)
