"""Searching a tenant's payments for the dashboard: the query, its page, its keyset cursor, its port.

A `PaymentSearch` is validated when it is made (an `InvalidRequest` naming the field otherwise), so
a reader receives only well-formed queries. Pages are keyset pages, never OFFSET: the cursor names
the sort key and id of the last row shown, and the next page starts strictly after it, so rows with
equal sort keys are neither skipped nor repeated (the id breaks every tie).

Sort keys: "created" is the id (ids begin with their creation time to the millisecond,
`core.ids`, so id order is creation order; within one millisecond the id decides), "amount" is
(amount, id). A leading "-" means newest / largest first.

The cursor is opaque to clients: base64url JSON of [sort, *key] and a short checksum. The checksum
catches edited or truncated cursors; it is not a secret signature, and needs not be: a forged
cursor can only move the page within the caller's own tenant, whose scope every query applies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.payments.entity import Payment
from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.core.phone import normalise_phone
from mpesa_bridge.core.projects import Mode

SORTS = ("-created", "created", "-amount", "amount")
LIMIT_MAX = 200
TEXT_MAX = 64
_CURSOR_MAX = 256
_CHECK_KEY = b"mpesa-bridge/payment-search/cursor/v1"

CursorKey = tuple[str] | tuple[int, str]


def _refuse(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _aware_utc(value: object, param: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise _refuse(f"{param} must be an aware datetime", param)
    return value.astimezone(UTC)


def _amount(value: object, param: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _refuse(f"{param} must be a whole number of shillings, 0 or more", param)
    return value


def _statuses(value: object) -> tuple[PaymentStatus, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise _refuse("statuses must be a list of payment statuses", "statuses")
    try:
        found = {PaymentStatus(s) for s in value}
    except ValueError:
        raise _refuse(f"statuses must be among {', '.join(s.value for s in PaymentStatus)}", "statuses") from None
    return tuple(s for s in PaymentStatus if s in found)  # one order, whatever the caller's


def _text(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _refuse("text must be a string", "text")
    text = value.strip()
    if "\x00" in text:  # PostgreSQL refuses NUL in text: refused at the edge
        raise _refuse("text must not contain NUL characters", "text")
    if len(text) > TEXT_MAX:
        raise _refuse(f"text must be at most {TEXT_MAX} characters", "text")
    return text or None


@dataclass(frozen=True)
class PaymentSearch:
    """What a person asked for on the payments list: one tenant's payments, filtered and sorted.

    `text` matches an account reference by prefix, an M-Pesa receipt exactly (any case: Daraja's
    receipts are upper case) or a payment id exactly. `created_from` is inclusive,
    `created_before` exclusive. `statuses` empty means every status."""

    project_id: str
    mode: str
    statuses: tuple[PaymentStatus, ...] = ()
    created_from: datetime | None = None
    created_before: datetime | None = None
    phone: str | None = None
    amount_min: int | None = None
    amount_max: int | None = None
    text: str | None = None
    needs_attention: bool | None = None
    sort: str = "-created"
    cursor: str | None = None
    limit: int = 50
    after: CursorKey | None = field(default=None, init=False, repr=False, compare=False)  # the decoded cursor

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        if not isinstance(self.project_id, str) or not self.project_id:
            raise _refuse("project_id is required", "project_id")
        if self.mode not in tuple(Mode):
            raise _refuse("mode must be 'test' or 'live'", "mode")
        put("mode", Mode(self.mode).value)
        put("statuses", _statuses(self.statuses))
        put("created_from", _aware_utc(self.created_from, "created_from"))
        put("created_before", _aware_utc(self.created_before, "created_before"))
        if (
            self.created_from is not None
            and self.created_before is not None
            and self.created_before <= self.created_from
        ):
            raise _refuse("created_before must be later than created_from", "created_before")
        if self.phone is not None:
            put("phone", normalise_phone(self.phone, param="phone"))
        put("amount_min", _amount(self.amount_min, "amount_min"))
        put("amount_max", _amount(self.amount_max, "amount_max"))
        if self.amount_min is not None and self.amount_max is not None and self.amount_max < self.amount_min:
            raise _refuse("amount_max must not be less than amount_min", "amount_max")
        put("text", _text(self.text))
        if self.needs_attention is not None and not isinstance(self.needs_attention, bool):
            raise _refuse("needs_attention must be true or false", "needs_attention")
        if self.sort not in SORTS:
            raise _refuse(f"sort must be one of {', '.join(SORTS)}", "sort")
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or not 1 <= self.limit <= LIMIT_MAX:
            raise _refuse(f"limit must be between 1 and {LIMIT_MAX}", "limit")
        if self.cursor is not None:
            put("after", decode_cursor(self.cursor, self.sort))

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    @property
    def by_amount(self) -> bool:
        return self.sort.endswith("amount")


@dataclass(frozen=True)
class PaymentPage:
    """One page of a search, in the search's order; `next_cursor` is None on the last page."""

    items: tuple[Payment, ...]
    next_cursor: str | None


class PaymentSearchReader(Protocol):
    """A tenant's payments as the dashboard searches them (read only)."""

    async def search(self, q: PaymentSearch) -> PaymentPage:
        """One page of `q`, starting after `q.cursor`."""
        ...

    def iter_all(self, q: PaymentSearch, batch: int = 1000) -> AsyncIterator[Payment]:
        """Every payment `q` matches, in its order (its cursor and limit ignored), read in keyset
        batches of `batch`: what an export streams."""
        ...


def sort_key(sort: str, payment: Payment) -> CursorKey:
    """The key a page of `sort` continues after."""
    return (payment.amount, payment.id) if sort.endswith("amount") else (payment.id,)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=8, key=_CHECK_KEY).digest()


def encode_cursor(sort: str, key: CursorKey) -> str:
    payload = json.dumps([sort, *key], separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_check(payload))}"


def decode_cursor(cursor: object, sort: str) -> CursorKey:
    """The key `cursor` names, or InvalidRequest(param="cursor") if it was edited, truncated or
    made for another sort."""
    bad = _refuse("cursor is not valid for this search: start again from the first page", "cursor")
    if not isinstance(cursor, str) or not 0 < len(cursor) <= _CURSOR_MAX or cursor.count(".") != 1:
        raise bad
    body, check = cursor.split(".")
    try:
        payload, digest = _unb64(body), _unb64(check)
        if not hmac.compare_digest(digest, _check(payload)):
            raise bad
        decoded = json.loads(payload)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(decoded, list) or not decoded or decoded[0] != sort:
        raise bad
    key = decoded[1:]
    if sort.endswith("amount"):
        if len(key) == 2 and type(key[0]) is int and isinstance(key[1], str) and key[1]:
            return (key[0], key[1])
    elif len(key) == 1 and isinstance(key[0], str) and key[0]:
        return (key[0],)
    raise bad
