"""What a merchant may ask of a payment link when creating or changing it.

Amounts follow checkout sessions' rules (`core.checkout.validation`): a fixed `amount`, or
`amount_min` and `amount_max` for an amount the customer chooses. Every refusal names its `param`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

# The same amount rules as a checkout session's (a link opens sessions with them).
from mpesa_bridge.core.checkout.validation import amounts, expiry_within
from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.links.entity import COLLECTABLE
from mpesa_bridge.core.payments.validation import PaymentLimits, check_metadata

TITLE_MAX = 100
DESCRIPTION_MAX = 500
MAX_PAYMENTS_CAP = 1_000_000
MIN_LIFETIME = timedelta(minutes=1)
MAX_LIFETIME = timedelta(days=366)


@dataclass(frozen=True)
class LinkCreate:
    """A validated request to create a payment link."""

    title: str
    description: str
    amount: int | None
    amount_min: int | None
    amount_max: int | None
    active: bool
    expires_at: datetime | None
    max_payments: int | None
    collect: list[str]
    metadata: dict[str, Any]


@dataclass(frozen=True)
class LinkChanges:
    """A validated PATCH: only the fields given (`given`), so that null can clear expiry and limit."""

    values: dict[str, Any] = field(default_factory=dict)


def validate_link_create(
    *,
    title: object,
    description: object,
    amount: object,
    amount_min: object,
    amount_max: object,
    active: object,
    expires_at: object,
    max_payments: object,
    collect: object,
    metadata: object,
    limits: PaymentLimits,
    now: datetime,
) -> LinkCreate:
    fixed, low, high = amounts(amount, amount_min, amount_max, limits)
    return LinkCreate(
        title=check_text(title, "title", TITLE_MAX, required=True),
        description=check_text(description, "description", DESCRIPTION_MAX, required=False),
        amount=fixed,
        amount_min=low,
        amount_max=high,
        active=check_active(True if active is None else active),
        expires_at=check_expiry(expires_at, now),
        max_payments=check_max_payments(max_payments),
        collect=check_collect(collect),
        metadata=check_metadata(metadata, limits),
    )


def validate_link_changes(given: dict[str, object], now: datetime) -> LinkChanges:
    """`given`: the PATCH body's fields that were sent (null included)."""
    checks = {
        "title": lambda v: check_text(v, "title", TITLE_MAX, required=True),
        "description": lambda v: check_text(v, "description", DESCRIPTION_MAX, required=False),
        "active": check_active,
        "expires_at": lambda v: check_expiry(v, now),
        "max_payments": check_max_payments,
    }
    values: dict[str, Any] = {}
    for name, value in given.items():
        if name not in checks:
            raise InvalidRequest(f"{name} cannot be changed", code="parameter_unknown", param=name)
        values[name] = checks[name](value)
    return LinkChanges(values)


def check_text(value: object, param: str, max_len: int, *, required: bool) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidRequest(f"{param} is required and must be text", code="parameter_missing", param=param)
    text = value.strip()
    if len(text) > max_len:
        raise InvalidRequest(f"{param} must be at most {max_len} characters", code="parameter_too_long", param=param)
    if "\x00" in text or not all(c.isprintable() or c == "\n" for c in text):
        raise InvalidRequest(f"{param} must be printable text", code="invalid_text", param=param)
    return text


def check_active(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidRequest("active must be true or false", code="invalid_active", param="active")
    return value


def check_expiry(value: object, now: datetime) -> datetime | None:
    return None if value is None else expiry_within(value, now, MIN_LIFETIME, MAX_LIFETIME, "1 minute and 366 days")


def check_max_payments(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAYMENTS_CAP:
        raise InvalidRequest(
            f"max_payments must be a whole number from 1 to {MAX_PAYMENTS_CAP}, or null for no limit",
            code="invalid_max_payments",
            param="max_payments",
        )
    return value


def check_collect(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v in COLLECTABLE for v in value):
        raise InvalidRequest(
            f"collect must be a list of fields among {', '.join(COLLECTABLE)}", code="invalid_collect", param="collect"
        )
    return [name for name in COLLECTABLE if name in value]  # each once, in a fixed order
