"""What a merchant may ask a payout to be, and the limits it must keep (clear errors, never a 500)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mpesa_bridge.core.errors import InvalidRequest, Unprocessable
from mpesa_bridge.core.payments.validation import PaymentLimits, check_metadata
from mpesa_bridge.core.payouts.entity import PayoutSettings
from mpesa_bridge.core.payouts.policy import DARAJA_MAX_AMOUNT, DARAJA_MIN_AMOUNT, PayoutPolicy
from mpesa_bridge.core.phone import normalise_phone

COMMAND_IDS = ("BusinessPayment", "SalaryPayment", "PromotionPayment")
REMARKS_MIN, REMARKS_MAX = 2, 100  # daraja.md 7.1
OCCASION_MAX = 100


@dataclass(frozen=True)
class PayoutCreate:
    """A validated request to pay a phone by B2C."""

    phone: str
    amount: int
    command_id: str
    remarks: str
    occasion: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class PayoutRules:
    """What applies to one project mode: its settings over the bridge's defaults."""

    approval_required: bool
    max_amount: int
    daily_limit: int

    @classmethod
    def of(cls, settings: PayoutSettings | None, policy: PayoutPolicy) -> PayoutRules:
        if settings is None:
            return cls(False, policy.max_amount, policy.daily_limit)
        return cls(
            settings.approval_required,
            settings.max_amount if settings.max_amount is not None else policy.max_amount,
            settings.daily_limit if settings.daily_limit is not None else policy.daily_limit,
        )


def _text(value: object, *, param: str, min_len: int, max_len: int, required: bool) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(f"{param} must be a string", code="invalid_text", param=param)
    text = value.strip()
    if not text and not required:
        return ""
    if len(text) < min_len:
        raise InvalidRequest(
            f"{param} must be at least {min_len} characters",
            code="parameter_missing" if not text else "too_short",
            param=param,
        )
    if len(text) > max_len:
        raise InvalidRequest(f"{param} must be at most {max_len} characters", code="too_long", param=param)
    if not text.isprintable():
        raise InvalidRequest(f"{param} may not contain control characters", code="invalid_characters", param=param)
    return text


def check_payout_amount(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest("amount must be a whole number of shillings", code="invalid_amount", param="amount")
    if not DARAJA_MIN_AMOUNT <= value <= DARAJA_MAX_AMOUNT:
        raise InvalidRequest(
            f"amount must be between {DARAJA_MIN_AMOUNT} and {DARAJA_MAX_AMOUNT} shillings (Daraja's B2C range)",
            code="amount_out_of_range",
            param="amount",
        )
    return value


def validate_payout_create(
    *,
    phone: object,
    amount: object,
    command_id: object,
    remarks: object,
    occasion: object,
    metadata: object,
    limits: PaymentLimits,
) -> PayoutCreate:
    if command_id is None:
        command_id = "BusinessPayment"
    if command_id not in COMMAND_IDS:
        raise InvalidRequest(
            f"command_id must be one of {', '.join(COMMAND_IDS)}", code="invalid_command_id", param="command_id"
        )
    return PayoutCreate(
        phone=normalise_phone(phone),
        amount=check_payout_amount(amount),
        command_id=str(command_id),
        remarks=_text(
            "Payout" if remarks is None else remarks,
            param="remarks",
            min_len=REMARKS_MIN,
            max_len=REMARKS_MAX,
            required=True,
        ),
        occasion=_text(occasion, param="occasion", min_len=1, max_len=OCCASION_MAX, required=False),
        metadata=check_metadata(metadata, limits),
    )


def check_limits(amount: int, rules: PayoutRules, committed_today: int) -> None:
    """Raise `Unprocessable` (422) with a code the merchant can act on when a limit would be broken."""
    if amount > rules.max_amount:
        raise Unprocessable(
            f"amount {amount} is above this project's payout limit of {rules.max_amount} shillings",
            code="payout_limit_exceeded",
            param="amount",
        )
    if committed_today + amount > rules.daily_limit:
        left = max(rules.daily_limit - committed_today, 0)
        raise Unprocessable(
            f"this payout would pass the project's daily payout limit of {rules.daily_limit} shillings "
            f"({left} left today, Africa/Nairobi)",
            code="daily_payout_limit_exceeded",
            param="amount",
        )
