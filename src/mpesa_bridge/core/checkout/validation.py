"""What a merchant may ask of a checkout session, and what a customer may pay into one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from mpesa_bridge.core.clock import ensure_utc
from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.payments.validation import (
    ACCOUNT_REFERENCE_MAX,
    DESCRIPTION_MAX,
    PaymentLimits,
    check_amount,
    check_daraja_text,
    check_metadata,
)

DEFAULT_LIFETIME = timedelta(hours=1)
MIN_LIFETIME = timedelta(minutes=1)
MAX_LIFETIME = timedelta(hours=24)
URL_MAX = 2000


@dataclass(frozen=True)
class CheckoutCreate:
    """A validated request to open a checkout session."""

    amount: int | None
    amount_min: int | None
    amount_max: int | None
    reference: str
    description: str
    metadata: dict[str, Any]
    expires_at: datetime
    success_url: str | None
    cancel_url: str | None


def validate_checkout_create(
    *,
    amount: object,
    amount_min: object,
    amount_max: object,
    reference: object,
    description: object,
    metadata: object,
    expires_at: object,
    success_url: object,
    cancel_url: object,
    limits: PaymentLimits,
    now: datetime,
) -> CheckoutCreate:
    fixed, low, high = amounts(amount, amount_min, amount_max, limits)
    return CheckoutCreate(
        amount=fixed,
        amount_min=low,
        amount_max=high,
        reference=check_daraja_text(reference, param="reference", max_len=ACCOUNT_REFERENCE_MAX),
        description=check_daraja_text(
            "Payment" if description is None else description, param="description", max_len=DESCRIPTION_MAX
        ),
        metadata=check_metadata(metadata, limits),
        expires_at=_expiry(expires_at, now),
        success_url=_url(success_url, "success_url"),
        cancel_url=_url(cancel_url, "cancel_url"),
    )


def amounts(
    amount: object, amount_min: object, amount_max: object, limits: PaymentLimits
) -> tuple[int | None, int | None, int | None]:
    if amount is not None:
        if amount_min is not None or amount_max is not None:
            raise InvalidRequest(
                "Give either amount or amount_min and amount_max, not both.", code="amount_conflict", param="amount"
            )
        return check_amount(amount, limits), None, None
    if amount_min is None or amount_max is None:
        both = amount_min is None and amount_max is None
        missing = "amount" if both else ("amount_min" if amount_min is None else "amount_max")
        raise InvalidRequest(
            "amount is required, or amount_min and amount_max for an amount the customer chooses",
            code="parameter_missing",
            param=missing,
        )
    low = _range_end(amount_min, "amount_min", limits)
    high = _range_end(amount_max, "amount_max", limits)
    if low > high:
        raise InvalidRequest("amount_min must not be above amount_max", code="amount_range_invalid", param="amount_min")
    return None, low, high


def _range_end(value: object, param: str, limits: PaymentLimits) -> int:
    try:
        return check_amount(value, limits)
    except InvalidRequest as exc:
        raise InvalidRequest(exc.message.replace("amount", param, 1), code=exc.code, param=param) from exc


def _expiry(value: object, now: datetime) -> datetime:
    if value is None:
        return now + DEFAULT_LIFETIME
    return expiry_within(value, now, MIN_LIFETIME, MAX_LIFETIME, "1 minute and 24 hours")


def expiry_within(value: object, now: datetime, shortest: timedelta, longest: timedelta, span: str) -> datetime:
    """`expires_at` as given (ISO 8601 with a zone), between `shortest` and `longest` from now
    (`span` says so in words); sessions and payment links read it this one way."""
    at: datetime | None = None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            at = ensure_utc(parsed) if parsed.tzinfo is not None else None
        except (ValueError, OverflowError):
            at = None
    if at is None:
        raise InvalidRequest(
            "expires_at must be an ISO 8601 time with a zone, e.g. 2026-01-31T12:00:00Z",
            code="invalid_expires_at",
            param="expires_at",
        )
    if not now + shortest <= at <= now + longest:
        raise InvalidRequest(
            f"expires_at must be between {span} from now", code="invalid_expires_at", param="expires_at"
        )
    return at


def _url(value: object, param: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > URL_MAX or not value.isprintable():
        raise InvalidRequest(f"{param} must be an http(s) URL of at most {URL_MAX} characters", param=param)
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
        raise InvalidRequest(f"{param} must be an http(s) URL", code="invalid_url", param=param)
    return value


class AmountRule(Protocol):
    """What decides a payment's amount: a fixed `amount`, or a range the customer chooses within
    (a checkout session, or the payment link that will open one)."""

    @property
    def amount(self) -> int | None: ...
    @property
    def amount_min(self) -> int | None: ...
    @property
    def amount_max(self) -> int | None: ...


def check_pay_amount(session: AmountRule, amount: object) -> int:
    """The amount to collect: the session's own when fixed (a different one is refused), else the
    customer's, within the session's range."""
    if session.amount is not None:
        if amount is not None and amount != session.amount:
            raise InvalidRequest(
                "This checkout session has a fixed amount; it cannot be changed.", code="amount_fixed", param="amount"
            )
        return session.amount
    if amount is None:
        raise InvalidRequest("amount is required: the customer chooses it", code="parameter_missing", param="amount")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidRequest("amount must be a whole number of shillings", code="invalid_amount", param="amount")
    low, high = session.amount_min or 1, session.amount_max or 0
    if not low <= amount <= high:
        raise InvalidRequest(
            f"amount must be between {low} and {high} shillings", code="amount_out_of_range", param="amount"
        )
    return amount
