"""Identifiers: a type prefix and a time-ordered random part, so that ids sort by creation time.

48 bits of milliseconds + 80 random bits in Crockford base32 (26 characters), like a ULID.
Sorting by id therefore sorts by creation time, which keeps cursor pagination index-only.
Within one process ids are strictly increasing within a millisecond (and under a frozen
test clock): the random part is then the previous one plus one, as monotonic ULIDs do.

An object made at `at` gets an id whose time part is `at`, so a time range is also an id range
(`id_floor`, `id_ceiling`): a created_gte/created_lte filter can then be served by an index on ids.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _encode(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


_last = (0, 0)
_RANDOM_MAX = (1 << 80) - 1
_MILLIS_MAX = (1 << 48) - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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


def _millis(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(milliseconds=1)


# Both bounds leave a millisecond of slack: `new_id` reads the time through a float, which may
# round either way at the edge of a millisecond. (48 bits of milliseconds last until the year 10889.)


def id_floor(prefix: str, at: datetime) -> str:
    """A string that sorts at or before every id `new_id(prefix, t)` gives for t >= at."""
    return f"{prefix}_{_encode(min(max(_millis(at) - 1, 0), _MILLIS_MAX), 10)}"


def id_ceiling(prefix: str, at: datetime) -> str:
    """A string that sorts after every id `new_id(prefix, t)` gives for t <= at."""
    return f"{prefix}_{_encode(min(max(_millis(at) + 2, 0), _MILLIS_MAX), 10)}"


def new_token(nbytes: int = 24) -> str:
    """An unguessable URL-safe token."""
    return secrets.token_urlsafe(nbytes)
