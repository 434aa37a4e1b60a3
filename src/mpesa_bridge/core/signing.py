"""Signed requests: HMAC-SHA256 over the method, the path with its query, a timestamp and the body.

A project may require every secret-key request to be signed. The client sends

    MB-Timestamp: <unix seconds>
    MB-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>\\n<METHOD>\\n<path?query>\\n" + body bytes)>

keyed by the project's signing secret (`mbsig_…`, if one was set) or else by the secret key itself.
Requests outside ±tolerance, with a wrong signature, or replaying a signature already seen inside
the window are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Protocol

from mpesa_bridge.core.errors import AuthenticationFailed

TIMESTAMP_HEADER = "mb-timestamp"
SIGNATURE_HEADER = "mb-signature"
VERSION = "v1"
INVALID_SIGNATURE = "Invalid request signature."


def canonical(timestamp: str, method: str, path_with_query: str, body: bytes) -> bytes:
    return f"{timestamp}\n{method.upper()}\n{path_with_query}\n".encode() + body


def sign(secret: str, timestamp: str, method: str, path_with_query: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), canonical(timestamp, method, path_with_query, body), hashlib.sha256)
    return f"{VERSION}={digest.hexdigest()}"


class ReplayGuard(Protocol):
    async def first_use(self, signature: str, ttl: float) -> bool:
        """True the first time a signature is seen within `ttl` seconds, False afterwards."""
        ...


def _refuse(code: str) -> AuthenticationFailed:
    return AuthenticationFailed(INVALID_SIGNATURE, code=code)


async def verify(
    secret: str,
    headers: Mapping[str, str],
    method: str,
    path_with_query: str,
    body: bytes,
    *,
    now: float,
    tolerance: float,
    replay: ReplayGuard,
) -> None:
    """Raise AuthenticationFailed unless the request is signed, fresh and not a replay."""
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    given = headers.get(SIGNATURE_HEADER, "")
    if not timestamp or not given:
        raise _refuse("signature_missing")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise _refuse("signature_timestamp_invalid")
    if abs(now - int(timestamp)) > tolerance:
        raise _refuse("signature_timestamp_out_of_range")
    expected = sign(secret, timestamp, method, path_with_query, body)
    wanted = expected.encode()
    if not any(hmac.compare_digest(wanted, part.strip().encode("utf-8", "replace")) for part in given.split(",")):
        raise _refuse("signature_invalid")
    if not await replay.first_use(expected, tolerance * 2):
        raise _refuse("signature_replayed")


class MonotonicClock(Protocol):
    def __call__(self) -> float: ...


class MemoryReplayGuard:
    """Signatures seen in this process (use a shared store when several instances serve)."""

    def __init__(self, clock: MonotonicClock | None = None) -> None:
        self._seen: dict[str, float] = {}
        self._now = clock or time.monotonic

    async def first_use(self, signature: str, ttl: float) -> bool:
        now = self._now()
        if len(self._seen) > 10_000:
            self._seen = {s: t for s, t in self._seen.items() if t > now}
        expires = self._seen.get(signature)
        if expires is not None and expires > now:
            return False
        self._seen[signature] = now + ttl
        return True
