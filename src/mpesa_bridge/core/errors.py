"""Domain errors. Each carries a stable string `code` and a message, never an HTTP status.

    BridgeError
    ├── InvalidRequest          (code, message, param) — bad input, named field
    │   └── ConfigurationMissing — the project/mode is not set up for what was asked
    ├── AuthenticationFailed    — every auth failure looks the same from outside
    ├── PermissionDenied        — a valid credential, but its project does not allow this
    ├── NotFound                — also what another tenant's ids get
    ├── Conflict                — the request clashes with current state (e.g. duplicate_in_flight)
    ├── Unprocessable           — a well-formed request that cannot be honoured (idempotency_key_reused)
    ├── RateLimited             — too many requests; carries retry_after seconds
    └── UpstreamUnavailable     — Daraja could not be reached / answered unusably

The API maps these classes to HTTP statuses in one table (`api/errors.py`).
"""

from __future__ import annotations


class BridgeError(Exception):
    code: str = "bridge_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.param = param

    def __str__(self) -> str:
        return self.message


class InvalidRequest(BridgeError):
    code = "invalid_request"


class ConfigurationMissing(InvalidRequest):
    code = "mode_not_configured"


class AuthenticationFailed(BridgeError):
    code = "invalid_api_key"


class PermissionDenied(BridgeError):
    code = "permission_denied"


class NotFound(BridgeError):
    code = "resource_missing"


class Conflict(BridgeError):
    code = "conflict"


class Unprocessable(BridgeError):
    code = "unprocessable"


class RateLimited(BridgeError):
    """Too many requests. `retry_after` in whole seconds; `limit`/`remaining`/`reset` for RateLimit-* headers."""

    code = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        retry_after: int,
        limit: int | None = None,
        remaining: int = 0,
        reset: int | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message, code=code, param=param)
        self.retry_after = max(1, retry_after)
        self.limit = limit
        self.remaining = remaining
        self.reset = reset if reset is not None else self.retry_after


class UpstreamUnavailable(BridgeError):
    code = "daraja_unavailable"
