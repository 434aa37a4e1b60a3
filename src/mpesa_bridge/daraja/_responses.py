"""Reading Daraja's answers tolerantly and turning error answers into exceptions.

Daraja answers with its JSON envelope, Apigee fault JSON, HTML firewall pages, empty bodies, and
numbers where strings are documented (and the reverse). Nothing here may crash on any of them.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ._exceptions import (
    DarajaAuthError,
    DarajaDuplicateRequest,
    DarajaRejected,
    DarajaResponseError,
    DarajaServerError,
    DarajaStillProcessing,
    DarajaSubscriberLocked,
    DarajaThrottled,
)
from ._models import C2BAcknowledged, DynamicQr, InitiatorAccepted, StkPushAccepted, StkQueryResult
from ._token_cache import AccessToken
from ._transport import Answer
from .result_codes import normalise_code

__all__ = [
    "BODY_PREFIX_LIMIT",
    "Reply",
    "error_for",
    "is_error",
    "is_token_error",
    "oauth_error",
    "parse_access_token",
    "parse_c2b_ack",
    "parse_dynamic_qr",
    "parse_initiator_accepted",
    "parse_stk_push",
    "parse_stk_query",
    "read_reply",
]

Redact = Callable[[str], str]

BODY_PREFIX_LIMIT = 500
# Daraja documents 3600 s; used only when expires_in is missing or garbled. A token that dies
# earlier is caught by the token-error refresh anyway.
DEFAULT_TOKEN_LIFETIME = 3599

_TOKEN_ERROR_CODES = frozenset({"400.003.01", "401.002.01", "401.003.01", "404.001.03"})
_THROTTLE_CODES = frozenset({"500.003.02", "500.003.03"})
# One code for unrelated conditions: branch on the message, default to a plain rejection.
_OVERLOADED_CODE = "500.001.1001"
_OVERLOADED_MESSAGES: tuple[tuple[str, type[DarajaResponseError]], ...] = (
    ("unable to lock subscriber", DarajaSubscriberLocked),
    ("being processed", DarajaStillProcessing),
)
# C2B register, 500.003.1001: URLs already registered (production) or left on the old broker
# platform. Verdicts that need a person (portal or Safaricom), not a retry (daraja.md §6.1).
_C2B_REGISTER_REFUSALS = ("already registered", "duplicate notification info")
_INTERNAL_CODE = "500.003.1001"
# Initiator APIs: a second request with one OriginatorConversationID (daraja.md §1.5, §7.1). Only
# they send one; on an STK push the code stays an unexplained 5xx (an unknown outcome).
_DUPLICATE_CODE = "500.002.1001"
_DUPLICATE_MESSAGE = "duplicate originatorconversationid"
_INITIATOR_OPERATIONS = frozenset({"b2c_payment", "transaction_status", "account_balance", "reversal"})
_NO_API_PRODUCT = "no apiproduct"
_INVALID_TOKEN = "invalid access token"
_LOCKED_SUBSCRIBER = "unable to lock subscriber"


@dataclass(frozen=True)
class Reply:
    """An HTTP answer from Daraja: status, the JSON object if the body was one, a redacted prefix."""

    http_status: int
    body: Mapping[str, object] | None
    body_prefix: str
    content_type: str


@dataclass(frozen=True)
class _ErrorInfo:
    error_code: str | None
    error_message: str
    request_id: str | None
    daraja_envelope: bool


def read_reply(answer: Answer, redact: Redact) -> Reply:
    """Decode `answer` without ever raising; secrets in its text are redacted."""
    # Redact before cutting, so a secret straddling the cut cannot leave a visible half.
    prefix = redact(_text_of(answer)[: BODY_PREFIX_LIMIT * 8])[:BODY_PREFIX_LIMIT]
    return Reply(
        http_status=answer.status,
        body=_json_object(answer.content),
        body_prefix=prefix,
        content_type=answer.content_type,
    )


def _text_of(answer: Answer) -> str:
    """The body as text: in its declared charset when Python knows it, else UTF-8; never raises."""
    charset = _charset(answer.content_type)
    if charset:
        try:
            return answer.content.decode(charset, errors="replace")
        except (LookupError, ValueError, TypeError):  # a charset Python does not know, or not a text codec
            pass
    return answer.content.decode("utf-8", errors="replace")


def _charset(content_type: str) -> str | None:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


def _json_object(content: bytes) -> Mapping[str, object] | None:
    try:
        value = json.loads(content)
    except (ValueError, RecursionError):  # not JSON, bad UTF-8, or absurdly nested
        return None
    return value if isinstance(value, dict) else None


def _lookup(body: Mapping[str, object], name: str) -> object | None:
    """Value of `name`, tolerating the key-case variants some Daraja endpoints use."""
    if name in body:
        return body[name]
    lowered = name.lower()
    return next((v for k, v in body.items() if isinstance(k, str) and k.lower() == lowered), None)


def _text(body: Mapping[str, object], name: str) -> str | None:
    value = _lookup(body, name)
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _code(body: Mapping[str, object], name: str) -> str | None:
    value = _lookup(body, name)
    return None if value is None else normalise_code(value)


def is_error(reply: Reply) -> bool:
    """Non-2xx, or a 2xx carrying Daraja's error envelope instead of an answer."""
    if not 200 <= reply.http_status < 300:
        return True
    body = reply.body
    return body is None or _lookup(body, "errorCode") is not None or _lookup(body, "errorMessage") is not None


def _error_info(reply: Reply, redact: Redact) -> _ErrorInfo:
    body = reply.body
    if body is None:
        return _ErrorInfo(None, "", None, daraja_envelope=False)
    code = _text(body, "errorCode")
    message = _text(body, "errorMessage")
    # "no apiproduct" 401s come with errorMessage alone.
    if code is not None or message is not None:
        request_id = _text(body, "requestId")
        request_id = None if request_id is None else redact(request_id)
        return _ErrorInfo(code, redact(message or ""), request_id, daraja_envelope=True)
    return _fault_info(body, redact)


def _fault_info(body: Mapping[str, object], redact: Redact) -> _ErrorInfo:
    """Apigee's `{"fault": {"faultstring": ..., "detail": {"errorcode": ...}}}`, or nothing."""
    fault = _lookup(body, "fault")
    if not isinstance(fault, Mapping):
        return _ErrorInfo(None, "", None, daraja_envelope=False)
    detail = _lookup(fault, "detail")
    code = _text(detail, "errorcode") if isinstance(detail, Mapping) else None
    return _ErrorInfo(code, redact(_text(fault, "faultstring") or ""), None, daraja_envelope=False)


def is_token_error(reply: Reply, redact: Redact = str) -> bool:
    """An expired or unknown bearer token: worth one refresh and one retry."""
    info = _error_info(reply, redact)
    message = info.error_message.lower()
    if _NO_API_PRODUCT in message:  # the app lacks the product: a new token will not help
        return False
    return info.error_code in _TOKEN_ERROR_CODES or _INVALID_TOKEN in message


def _error_class(reply: Reply, info: _ErrorInfo) -> type[DarajaResponseError]:
    message = info.error_message.lower()
    if info.error_code in _TOKEN_ERROR_CODES or _INVALID_TOKEN in message or _NO_API_PRODUCT in message:
        return DarajaAuthError
    if info.error_code in _THROTTLE_CODES or reply.http_status == 429:
        return DarajaThrottled
    if info.error_code == _OVERLOADED_CODE:
        return next((cls for text, cls in _OVERLOADED_MESSAGES if text in message), DarajaRejected)
    if info.error_code == _INTERNAL_CODE and any(text in message for text in _C2B_REGISTER_REFUSALS):
        return DarajaRejected
    if info.daraja_envelope and (_is_4xx(reply.http_status) or (info.error_code or "").startswith("4")):
        return DarajaRejected
    return DarajaServerError


def _is_4xx(status: int) -> bool:
    return 400 <= status < 500


def _describe(operation: str, reply: Reply, info: _ErrorInfo) -> str:
    if info.error_code is None and not info.error_message:
        kind = reply.content_type.split(";")[0].strip() or ("non-JSON" if reply.body_prefix else "empty")
        return f"{operation}: HTTP {reply.http_status} with an unexpected {kind} body"
    text = f"{operation}: HTTP {reply.http_status} {info.error_code or '-'} {info.error_message}".rstrip()
    return f"{text} (requestId {info.request_id})" if info.request_id else text


def _build(
    cls: type[DarajaResponseError], operation: str, reply: Reply, info: _ErrorInfo, *, outcome_unknown: bool
) -> DarajaResponseError:
    return cls(
        _describe(operation, reply, info),
        http_status=reply.http_status,
        error_code=info.error_code,
        error_message=info.error_message,
        request_id=info.request_id,
        body_prefix=reply.body_prefix,
        outcome_unknown=outcome_unknown,
    )


def error_for(reply: Reply, *, operation: str, money_moving: bool, redact: Redact) -> DarajaResponseError:
    """The exception for an error reply (see `is_error`)."""
    info = _error_info(reply, redact)
    cls = _error_class(reply, info)
    if operation in _INITIATOR_OPERATIONS and _is_duplicate(info):
        cls = DarajaDuplicateRequest
    # Daraja's own codes are verdicts. A 5xx, or a body we cannot read, on a push leaves us not
    # knowing whether the customer got the prompt: reconcile it, never push again.
    unknown = money_moving and cls is DarajaServerError
    return _build(cls, operation, reply, info, outcome_unknown=unknown)


def _is_duplicate(info: _ErrorInfo) -> bool:
    return info.error_code == _DUPLICATE_CODE or _DUPLICATE_MESSAGE in info.error_message.lower()


def oauth_error(reply: Reply, redact: Redact) -> DarajaResponseError:
    """OAuth errors: bad key/secret comes back as HTTP 400 with an empty body."""
    info = _error_info(reply, redact)
    cls = _error_class(reply, info)
    if reply.http_status in (400, 401) or issubclass(cls, DarajaRejected):
        cls = DarajaAuthError
    return _build(cls, "oauth", reply, info, outcome_unknown=False)


def _unexpected(operation: str, reply: Reply, *, money_moving: bool, what: str) -> DarajaServerError:
    return DarajaServerError(
        f"{operation}: HTTP {reply.http_status} answer {what}",
        http_status=reply.http_status,
        body_prefix=reply.body_prefix,
        outcome_unknown=money_moving,
    )


def _rejection(operation: str, reply: Reply, body: Mapping[str, object], code: str) -> DarajaRejected:
    """A 2xx whose ResponseCode is not zero: Daraja said no, just not with its error envelope."""
    message = _text(body, "ResponseDescription") or _text(body, "CustomerMessage") or ""
    cls = DarajaSubscriberLocked if _LOCKED_SUBSCRIBER in message.lower() else DarajaRejected
    return cls(
        f"{operation}: ResponseCode {code} {message}".rstrip(),
        http_status=reply.http_status,
        error_code=code,
        error_message=message,
        body_prefix=reply.body_prefix,
        outcome_unknown=False,
    )


def _response_code(operation: str, reply: Reply, *, money_moving: bool) -> tuple[Mapping[str, object], str]:
    body = reply.body
    code = None if body is None else _code(body, "ResponseCode")
    if body is None or not code:
        raise _unexpected(operation, reply, money_moving=money_moving, what="has no ResponseCode")
    if code != "0":
        raise _rejection(operation, reply, body, code)
    return body, code


def parse_stk_push(reply: Reply) -> StkPushAccepted:
    """The push acknowledgement; raises if it is a refusal or cannot be understood."""
    body, code = _response_code("stk_push", reply, money_moving=True)
    checkout_request_id = _text(body, "CheckoutRequestID")
    if not checkout_request_id:
        # Accepted but uncorrelatable: the prompt may be on its way, so the outcome is unknown.
        raise _unexpected("stk_push", reply, money_moving=True, what="has no CheckoutRequestID")
    return StkPushAccepted(
        merchant_request_id=_text(body, "MerchantRequestID") or "",
        checkout_request_id=checkout_request_id,
        response_code=code,
        response_description=_text(body, "ResponseDescription") or "",
        customer_message=_text(body, "CustomerMessage") or "",
    )


def parse_stk_query(reply: Reply, checkout_request_id: str) -> StkQueryResult:
    """A final STK Query answer; "still processing" arrives as an error envelope instead."""
    body, code = _response_code("stk_query", reply, money_moving=False)
    result_code = _code(body, "ResultCode")
    if not result_code:
        raise _unexpected("stk_query", reply, money_moving=False, what="has no ResultCode")
    return StkQueryResult(
        response_code=code,
        merchant_request_id=_text(body, "MerchantRequestID") or "",
        checkout_request_id=_text(body, "CheckoutRequestID") or checkout_request_id,
        result_code=result_code,
        result_desc=_text(body, "ResultDesc") or "",
    )


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DATA_URL_PREFIX = "data:image/png;base64,"


def parse_dynamic_qr(reply: Reply) -> DynamicQr:
    """Dynamic QR: success is ResponseCode "00" (any run of zeros) with `QRCode`, a base64 PNG.

    Tolerated: the code as a number, a `data:` URL prefix, line breaks in the base64, missing padding."""
    body, code = _response_code("dynamic_qr", reply, money_moving=False)
    png = _png_of(_lookup(body, "QRCode"))
    if png is None:
        raise _unexpected("dynamic_qr", reply, money_moving=False, what="has no QRCode PNG")
    return DynamicQr(
        response_code=code,
        request_id=_text(body, "RequestID") or _text(body, "requestId") or "",
        response_description=_text(body, "ResponseDescription") or "",
        png=png,
    )


def _png_of(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    text = "".join(value.split())
    if text.lower().startswith(_DATA_URL_PREFIX):
        text = text[len(_DATA_URL_PREFIX) :]
    try:
        png = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return png if png.startswith(_PNG_SIGNATURE) else None


def parse_access_token(reply: Reply, redact: Redact) -> AccessToken:
    """`{"access_token": "...", "expires_in": "3599"}` (expires_in may also be a number)."""
    body = reply.body
    value = None if body is None else _lookup(body, "access_token")
    if body is None or not isinstance(value, str) or not value.strip():
        # Never quote this body: if it is almost a token answer, it may hold a token.
        raise DarajaAuthError("oauth: HTTP 200 answer has no access_token", http_status=reply.http_status)
    return AccessToken(value=value.strip(), expires_in=_expires_in(_lookup(body, "expires_in")))


def _expires_in(value: object) -> int:
    try:
        return max(int(str(value).strip()), 0)
    except ValueError:
        return DEFAULT_TOKEN_LIFETIME


_C2B_SUCCESS_WORDS = ("success", "accept")


def parse_c2b_ack(reply: Reply, operation: str) -> C2BAcknowledged:
    """C2B register / simulate: success is a ResponseCode of zeros (`"0"`, `"00000000"`), or, on
    new accounts, no ResponseCode at all with a ResponseDescription saying "Success" (daraja.md §6.1)."""
    body = reply.body
    if body is None:
        raise _unexpected(operation, reply, money_moving=False, what="is not a JSON object")
    code = _code(body, "ResponseCode")
    description = _text(body, "ResponseDescription") or ""
    if not code:
        if not description.lower().startswith(_C2B_SUCCESS_WORDS):
            raise _unexpected(operation, reply, money_moving=False, what="has no ResponseCode")
        code = "0"
    elif code != "0":
        raise _rejection(operation, reply, body, code)
    return C2BAcknowledged(
        # Daraja's own spelling is OriginatorCoversationID; accept the corrected one too.
        originator_conversation_id=_text(body, "OriginatorCoversationID")
        or _text(body, "OriginatorConversationID")
        or "",
        response_code=code,
        response_description=description,
    )


def parse_initiator_accepted(reply: Reply, operation: str, *, money_moving: bool) -> InitiatorAccepted:
    """The acknowledgement of B2C, Transaction Status, Account Balance and Reversal (daraja.md §7.3).

    Accepted but without a ConversationID is uncorrelatable: for a payout or a reversal the money
    may be on its way, so it is an unknown outcome, never a refusal."""
    body, code = _response_code(operation, reply, money_moving=money_moving)
    conversation_id = _text(body, "ConversationID")
    if not conversation_id:
        raise _unexpected(operation, reply, money_moving=money_moving, what="has no ConversationID")
    return InitiatorAccepted(
        conversation_id=conversation_id,
        originator_conversation_id=_text(body, "OriginatorConversationID") or "",
        response_code=code,
        response_description=_text(body, "ResponseDescription") or "",
    )
