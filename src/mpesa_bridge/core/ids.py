"""Identifiers: a type prefix and a time-ordered random part, so that ids sort by creation time.

48 bits of milliseconds + 80 random bits in Crockford base32 (26 characters), like a ULID.
Sorting by id therefore sorts by creation time, which keeps cursor pagination index-only.
"""

from __future__ import annotations

import secrets
from datetime import datetime

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _encode(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_id(prefix: str, at: datetime) -> str:
    millis = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    return f"{prefix}_{_encode(millis, 10)}{_encode(secrets.randbits(80), 16)}"


def new_token(nbytes: int = 24) -> str:
    """An unguessable URL-safe token."""
    return secrets.token_urlsafe(nbytes)
