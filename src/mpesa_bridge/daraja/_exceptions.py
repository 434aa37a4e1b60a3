"""
The Daraja client's exception hierarchy:

* DarajaError                        .code, .message, .outcome_unknown
  + DarajaValidationError            .field: refused before anything was sent
  + DarajaMalformedResult            an initiator API's Result body that has no Result / ResultCode
  + DarajaTransportError             no usable HTTP answer
    - DarajaConnectError             never sent
    - DarajaTimeout
      · DarajaConnectTimeout         never sent
      · DarajaReadTimeout            sent, no answer (also write timeout, connection dropped after send)
  + DarajaResponseError              Daraja answered: .http_status, .error_code, .error_message,
    |                                .request_id, .body_prefix (first 500 characters, secrets redacted)
    - DarajaAuthError                OAuth failed, token still rejected after one refresh, no API product
    - DarajaRejected                 a definitive business refusal (400.002.02, 500.001.1001 ...)
      · DarajaSubscriberLocked       500.001.1001 "Unable to lock subscriber"
      · DarajaDuplicateRequest       500.002.1001 "Duplicate OriginatorConversationID." (initiator APIs)
    - DarajaStillProcessing          STK Query 500.001.1001 "The transaction is being processed"
    - DarajaThrottled                500.003.02 spike arrest / system busy, 500.003.03 quota
    - DarajaServerError              other 5xx, HTML / Apigee / unparseable bodies

`outcome_unknown` is True only when a money-moving request (an STK push, a B2C payout, a reversal)
may have reached M-Pesa
and we did not get a verdict. Such a request must be settled by a query or a callback, never sent
again: Daraja has no idempotency key, so a second push is a second prompt.

Low-level errors of both HTTP clients the client can run over (aiohttp, httpx; see `_transport`)
are translated in one place, `map_transport_errors`, as httpx itself does with
`map_httpcore_exceptions`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import ClassVar

import aiohttp
import httpx

__all__ = [
    "DarajaAuthError",
    "DarajaConnectError",
    "DarajaConnectTimeout",
    "DarajaDuplicateRequest",
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
    "map_httpx_errors",
    "map_transport_errors",
]


class DarajaError(Exception):
    """Base class of every error raised by the Daraja client.

    `code` is a stable machine-readable string; `message` is for humans and never contains a
    consumer secret, passkey, STK password or bearer token.
    """

    code: ClassVar[str] = "daraja_error"
    outcome_unknown: bool = False

    def __init__(self, message: str, *, outcome_unknown: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if outcome_unknown is not None:
            self.outcome_unknown = outcome_unknown

    def __reduce__(self) -> tuple[object, ...]:
        # The keyword-only constructors would break pickle/copy; rebuild from args and attributes.
        return (_restore, (type(self), self.args, self.__dict__))


class DarajaValidationError(DarajaError):
    """A request field broke Daraja's rules; nothing was sent."""

    code = "daraja_validation_error"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class DarajaTransportError(DarajaError):
    """The request failed below HTTP: no response was received."""

    code = "daraja_transport_error"


class DarajaConnectError(DarajaTransportError):
    """No connection could be opened, so the request was never sent."""

    code = "daraja_connect_error"


class DarajaTimeout(DarajaTransportError):
    """A timeout while talking to Daraja."""

    code = "daraja_timeout"


class DarajaConnectTimeout(DarajaTimeout):
    """Connecting (or waiting for a pooled connection) timed out; the request was never sent."""

    code = "daraja_connect_timeout"


class DarajaReadTimeout(DarajaTimeout):
    """The request was (or may have been) sent but no answer came back.

    Also raised for a write timeout and for a connection dropped after sending.
    """

    code = "daraja_read_timeout"
    outcome_unknown = True


class DarajaResponseError(DarajaError):
    """Daraja answered with an error, or with something that could not be understood."""

    code = "daraja_response_error"

    def __init__(
        self,
        message: str,
        *,
        http_status: int,
        error_code: str | None = None,
        error_message: str = "",
        request_id: str | None = None,
        body_prefix: str = "",
        outcome_unknown: bool | None = None,
    ) -> None:
        super().__init__(message, outcome_unknown=outcome_unknown)
        self.http_status = http_status
        self.error_code = error_code
        self.error_message = error_message
        self.request_id = request_id
        self.body_prefix = body_prefix


class DarajaAuthError(DarajaResponseError):
    """OAuth failed, the token was rejected again after one refresh, or the app lacks the API product."""

    code = "daraja_auth_error"


class DarajaRejected(DarajaResponseError):
    """Daraja definitively refused the request (bad field, unknown merchant, wrong credentials...)."""

    code = "daraja_rejected"


class DarajaSubscriberLocked(DarajaRejected):
    """Another STK session is active on the customer's phone; try again in a minute or two."""

    code = "daraja_subscriber_locked"


class DarajaDuplicateRequest(DarajaRejected):
    """`500.002.1001` "Duplicate OriginatorConversationID.": a request with this id already reached
    Daraja. This one was refused; the earlier one's outcome comes by its Result or a Transaction
    Status query. Never re-send the payout under a new id to get past it."""

    code = "daraja_duplicate_request"


class DarajaMalformedResult(DarajaError):
    """A body POSTed to ResultURL / QueueTimeOutURL that is not a Result envelope."""

    code = "daraja_malformed_result"


class DarajaStillProcessing(DarajaResponseError):
    """STK Query: the transaction has no final result yet. Not a failure; query again later."""

    code = "daraja_still_processing"


class DarajaThrottled(DarajaResponseError):
    """Rate limit, quota or "system busy"; back off before trying again."""

    code = "daraja_throttled"


class DarajaServerError(DarajaResponseError):
    """A 5xx, or a body that is not Daraja's JSON (HTML firewall page, Apigee fault, garbage)."""

    code = "daraja_server_error"


def _restore(cls: type[DarajaError], args: tuple[object, ...], state: dict[str, object]) -> DarajaError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


# Ordered most specific first. The bool says whether the request may have reached Daraja.
_TRANSPORT_MAP: tuple[tuple[type[BaseException], type[DarajaTransportError], bool], ...] = (
    # httpx
    (httpx.ConnectTimeout, DarajaConnectTimeout, False),
    # A pool timeout means no connection was ever acquired, so nothing was written.
    (httpx.PoolTimeout, DarajaConnectTimeout, False),
    (httpx.ConnectError, DarajaConnectError, False),
    (httpx.ReadTimeout, DarajaReadTimeout, True),
    # A write may have been partly delivered: the server could act on it.
    (httpx.WriteTimeout, DarajaReadTimeout, True),
    (httpx.WriteError, DarajaReadTimeout, True),
    (httpx.ReadError, DarajaReadTimeout, True),
    (httpx.RemoteProtocolError, DarajaReadTimeout, True),
    # Refused locally (bad URL scheme, malformed request, proxy refused): Daraja never saw it.
    (httpx.UnsupportedProtocol, DarajaTransportError, False),
    (httpx.LocalProtocolError, DarajaTransportError, False),
    (httpx.ProxyError, DarajaTransportError, False),
    # aiohttp: waiting for a pooled connection or connecting timed out (its `connect` timeout).
    (aiohttp.ConnectionTimeoutError, DarajaConnectTimeout, False),
    # DNS, refused, unreachable, TLS handshake and certificate errors: all before a byte was sent.
    (aiohttp.ClientConnectorError, DarajaConnectError, False),
    (aiohttp.ServerTimeoutError, DarajaReadTimeout, True),  # sock_read
    (aiohttp.ServerDisconnectedError, DarajaReadTimeout, True),
    (aiohttp.ClientPayloadError, DarajaReadTimeout, True),
    # Not a status (raise_for_status is off): an answer that is not valid HTTP/1.1.
    (aiohttp.ClientResponseError, DarajaReadTimeout, True),
    # Reset or broken pipe on an open connection: it may have been written.
    (aiohttp.ClientOSError, DarajaReadTimeout, True),
    (aiohttp.ClientConnectionError, DarajaReadTimeout, True),
    (aiohttp.InvalidURL, DarajaTransportError, False),
    (aiohttp.NonHttpUrlClientError, DarajaTransportError, False),
    # aiohttp's `total` timeout: it outlasts the `connect` one, so it fires after connecting.
    (TimeoutError, DarajaReadTimeout, True),
)

_LOW_LEVEL = (httpx.RequestError, aiohttp.ClientError, TimeoutError)


def _translate(exc: BaseException) -> tuple[type[DarajaTransportError], bool]:
    for low_type, daraja_type, may_have_been_sent in _TRANSPORT_MAP:
        if isinstance(exc, low_type):
            return daraja_type, may_have_been_sent
    # Anything else (decoding errors, future types): assume the worst, it may have been sent.
    return DarajaTransportError, True


@contextlib.contextmanager
def map_transport_errors(*, operation: str, money_moving: bool, redact: Callable[[str], str] = str) -> Iterator[None]:
    """Translate the HTTP clients' errors raised in the block into `DarajaTransportError`s.

    `money_moving` marks requests whose effect cannot be checked by re-sending them (STK push):
    only those get `outcome_unknown=True` when they may have been sent.
    """
    try:
        yield
    except _LOW_LEVEL as exc:
        daraja_type, may_have_been_sent = _translate(exc)
        detail = redact(str(exc))
        message = f"{operation}: {type(exc).__name__}" + (f": {detail}" if detail else "")
        raise daraja_type(message, outcome_unknown=may_have_been_sent and money_moving) from exc


map_httpx_errors = map_transport_errors  # its name before the client could run over aiohttp
