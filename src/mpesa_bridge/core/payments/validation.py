"""Rules for what a merchant may ask: nothing Daraja would reject for format is ever sent."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.phone import normalise_phone

# Daraja shows AccountReference in the prompt and rejects `@ # &`, emoji and the like (§1.3, §19.7).
DARAJA_TEXT = re.compile(r"^[A-Za-z0-9 .\-_/]+$")
ACCOUNT_REFERENCE_MAX = 12
DESCRIPTION_MAX = 13
DAR_MAX_AMOUNT = 250_000


@dataclass(frozen=True)
class PaymentLimits:
    max_amount: int = DAR_MAX_AMOUNT
    metadata_max_bytes: int = 4096
    metadata_max_keys: int = 50


@dataclass(frozen=True)
class PaymentCreate:
    """A validated request to collect money by STK Push."""

    phone: str
    amount: int
    account_reference: str
    description: str
    metadata: dict[str, Any]


def check_amount(value: object, limits: PaymentLimits) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest("amount must be a whole number of shillings", code="invalid_amount", param="amount")
    if not 1 <= value <= limits.max_amount:
        raise InvalidRequest(
            f"amount must be between 1 and {limits.max_amount} shillings",
            code="amount_out_of_range",
            param="amount",
        )
    return value


def check_daraja_text(value: object, *, param: str, max_len: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{param} is required", code="parameter_missing", param=param)
    text = value.strip()
    if len(text) > max_len:
        raise InvalidRequest(f"{param} must be at most {max_len} characters", code="too_long", param=param)
    if not DARAJA_TEXT.fullmatch(text):
        raise InvalidRequest(
            f"{param} may contain only letters, digits, spaces and . - _ /",
            code="invalid_characters",
            param=param,
        )
    return text


def check_metadata(value: object, limits: PaymentLimits) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest("metadata must be a JSON object", code="invalid_metadata", param="metadata")
    if len(value) > limits.metadata_max_keys:
        raise InvalidRequest(
            f"metadata may have at most {limits.metadata_max_keys} keys",
            code="metadata_too_large",
            param="metadata",
        )
    try:
        size = len(orjson.dumps(value))
    except orjson.JSONEncodeError as exc:  # e.g. integers beyond 64 bits
        raise InvalidRequest(
            "metadata holds a value that cannot be stored (integers must fit in 64 bits)",
            code="invalid_metadata",
            param="metadata",
        ) from exc
    if size > limits.metadata_max_bytes:
        raise InvalidRequest(
            f"metadata must be at most {limits.metadata_max_bytes} bytes as JSON",
            code="metadata_too_large",
            param="metadata",
        )
    return value


def validate_payment_create(
    *,
    phone: object,
    amount: object,
    account_reference: object,
    description: object,
    metadata: object,
    limits: PaymentLimits,
) -> PaymentCreate:
    return PaymentCreate(
        phone=normalise_phone(phone),
        amount=check_amount(amount, limits),
        account_reference=check_daraja_text(
            account_reference, param="account_reference", max_len=ACCOUNT_REFERENCE_MAX
        ),
        description=check_daraja_text(
            "Payment" if description is None else description, param="description", max_len=DESCRIPTION_MAX
        ),
        metadata=check_metadata(metadata, limits),
    )
