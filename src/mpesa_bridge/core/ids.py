"""Identifiers: a type prefix and a time-ordered random part, so that ids sort by creation time.

48 bits of milliseconds + 80 random bits in Crockford base32 (26 characters), like a ULID.
Sorting by id therefore sorts by creation time, which keeps cursor pagination index-only.
Within one process ids are strictly increasing within a millisecond (and under a frozen
test clock): the random part is then the previous one plus one, as monotonic ULIDs do.
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


_last = (0, 0)
_RANDOM_MAX = (1 << 80) - 1


def new_id(prefix: str, at: datetime) -> str:
    global _last
    millis = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    last_millis, last_random = _last
    if millis == last_millis and last_random < _RANDOM_MAX:
        millis, random = last_millis, last_random + 1
    else:
        random = secrets.randbits(79)  # leaves room to count up within the millisecond
    _last = (millis, random)
    return f"{prefix}_{_encode(millis, 10)}{_encode(random, 16)}"


def new_token(nbytes: int = 24) -> str:
    """An unguessable URL-safe token."""
    return secrets.token_urlsafe(nbytes)
