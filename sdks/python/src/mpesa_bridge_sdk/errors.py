"""The exceptions the SDK raises.

```
MpesaBridgeError                 every error of this SDK
├── APIConnectionError           the bridge could not be reached, or the connection broke
│   └── APITimeoutError          ... because a timeout ran out
├── APIError                     the bridge answered with an error envelope (`status`, `code`, `request_id`)
│   ├── InvalidRequestError      400, 404, 413, 415, 422: fix the request
│   │   ├── NotFoundError        404 `resource_missing`
│   │   └── IdempotencyError     422 `idempotency_key_reused`
│   ├── AuthenticationError      401: a bad key, admin token or client secret
│   │   └── SignatureError       401 `signature_*`: a signed request was refused
│   ├── PermissionDeniedError    403
│   ├── ConflictError            409: `phone_busy`, `duplicate_in_flight`, `idempotency_key_in_use`, ...
│   ├── RateLimitError           429 (`retry_after` in seconds)
│   └── APIServerError           5xx
├── WaitTimeoutError             `payments.wait` ran out of time (also a `TimeoutError`)
└── WebhookVerificationError     `webhooks.verify` refused a delivery
```

Branch on `code` (stable); `message` is for people. Quote `request_id` when reporting a problem.
"""

from __future__ import annotations

from typing import Any


class MpesaBridgeError(Exception):
    """The base class of every exception raised by this SDK."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class APIConnectionError(MpesaBridgeError):
    """The request did not get an answer: connection refused, reset, or a protocol error."""


class APITimeoutError(APIConnectionError):
    """A connect, read, write or pool timeout ran out."""


class APIError(MpesaBridgeError):
    """The bridge answered with an error. `status` is the HTTP status; `type`, `code`, `param` and
    `request_id` come from the error envelope (`request_id` from `X-Request-Id` when the body has none);
    `body` is the parsed JSON body, or None."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.body = body
        self.headers = headers or {}

    def __str__(self) -> str:
        parts = [f"{self.status}"]
        if self.code:
            parts.append(self.code)
        text = f"[{' '.join(parts)}] {self.message}"
        if self.request_id:
            text += f" (request {self.request_id})"
        return text


class InvalidRequestError(APIError):
    """The request was refused as it stands (400, 404, 413, 415, 422): change it before retrying."""


class NotFoundError(InvalidRequestError):
    """404: no such object, or one of another project or mode."""


class IdempotencyError(InvalidRequestError):
    """422 `idempotency_key_reused`: the same Idempotency-Key with a different request."""


class AuthenticationError(APIError):
    """401: the key, admin token or client secret was refused."""


class SignatureError(AuthenticationError):
    """401 with a `signature_*` code: the project requires signed requests and this one was refused."""


class PermissionDeniedError(APIError):
    """403: e.g. `origin_not_allowed`."""


class ConflictError(APIError):
    """409: the request conflicts with the current state (`phone_busy`, `duplicate_in_flight`,
    `idempotency_key_in_use`, `checkout_session_payment_in_progress`, ...)."""


class RateLimitError(APIError):
    """429: too many requests. `retry_after` is the `Retry-After` header in seconds (None if absent).
    The client has already retried when the wait was within its `max_retry_after`."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class APIServerError(APIError):
    """5xx: the bridge failed. Safe requests were retried before this was raised."""


class WaitTimeoutError(MpesaBridgeError, TimeoutError):
    """`payments.wait` (or `checkout_sessions.wait`) ran out of time; `last` is the object as last seen."""

    def __init__(self, message: str, last: Any = None) -> None:
        super().__init__(message)
        self.last = last


class WebhookVerificationError(MpesaBridgeError):
    """A webhook delivery's signature or timestamp was refused by `webhooks.verify`."""


def error_for(status: int, body: Any, headers: dict[str, str], *, retry_after: float | None = None) -> APIError:
    """The exception for an error answer: its class chosen by status and code."""
    envelope = body.get("error") if isinstance(body, dict) else None
    if not isinstance(envelope, dict):
        envelope = {}
    code = envelope.get("code") if isinstance(envelope.get("code"), str) else None
    message = envelope.get("message") if isinstance(envelope.get("message"), str) else None
    request_id = envelope.get("request_id") or headers.get("x-request-id")
    kwargs: dict[str, Any] = {
        "status": status,
        "type": envelope.get("type"),
        "code": code,
        "param": envelope.get("param"),
        "request_id": request_id,
        "body": body,
        "headers": headers,
    }
    text = message or f"HTTP {status}"
    if status == 429:
        return RateLimitError(text, retry_after=retry_after, **kwargs)
    if status >= 500:
        return APIServerError(text, **kwargs)
    if status == 401:
        if code is not None and code.startswith("signature_"):
            return SignatureError(text, **kwargs)
        return AuthenticationError(text, **kwargs)
    if status == 403:
        return PermissionDeniedError(text, **kwargs)
    if status == 404:
        return NotFoundError(text, **kwargs)
    if status == 409:
        return ConflictError(text, **kwargs)
    if status == 422 and code == "idempotency_key_reused":
        return IdempotencyError(text, **kwargs)
    if 400 <= status < 500:
        return InvalidRequestError(text, **kwargs)
    return APIError(text, **kwargs)
