"""The payout entity (one B2C payment to a phone), its events and a project's payout settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mpesa_bridge.core.payouts.status import PayoutStatus

PAYOUT = "payout"  # the outbox subject type; ids are `po_…`
PAYOUT_ID_PREFIX = "po"


@dataclass(eq=False)
class Payout:
    """One B2C payout. Amount is whole shillings; times are aware UTC.

    `originator_conversation_id` is ours, made once when the payout is created and sent with its
    one and only B2C request (v3): Daraja refuses a second request with it, and Transaction Status
    finds the payout by it. `created_by` / `approved_by` name the actor: `key:<api key id>` or
    `person:<dashboard person id>`."""

    id: str
    project_id: str
    mode: str
    status: PayoutStatus
    amount: int
    phone: str
    command_id: str
    remarks: str
    occasion: str
    metadata: dict[str, Any]
    short_code: str
    daraja_environment: str
    api_version: str  # "v3" or "v1"
    originator_conversation_id: str
    callback_token_hash: str | None  # SHA-256 of the callback token, made when it is sent
    created_by: str
    created_at: datetime
    updated_at: datetime
    approved_by: str | None = None
    approved_at: datetime | None = None
    rejected_by: str | None = None
    rejection_reason: str | None = None
    conversation_id: str | None = None
    receipt: str | None = None
    recipient_name: str | None = None
    result_code: str | None = None
    result_desc: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    sending_at: datetime | None = None
    completed_at: datetime | None = None
    needs_attention: bool = False
    attention_reason: str | None = None
    query_attempts: int = 0
    next_query_at: datetime | None = None
    not_found_count: int = 0


class PayoutEvent:
    CREATED = "payout.created"
    APPROVED = "payout.approved"
    REJECTED = "payout.rejected"
    SENT = "payout.sent"
    SUCCEEDED = "payout.succeeded"
    FAILED = "payout.failed"
    UNKNOWN = "payout.unknown"

    ALL = (CREATED, APPROVED, REJECTED, SENT, SUCCEEDED, FAILED, UNKNOWN)


STATUS_EVENT = {
    PayoutStatus.APPROVED: PayoutEvent.APPROVED,
    PayoutStatus.REJECTED: PayoutEvent.REJECTED,
    PayoutStatus.SENT: PayoutEvent.SENT,
    PayoutStatus.SUCCEEDED: PayoutEvent.SUCCEEDED,
    PayoutStatus.FAILED: PayoutEvent.FAILED,
    PayoutStatus.UNKNOWN: PayoutEvent.UNKNOWN,
}


@dataclass(eq=False)
class PayoutSettings:
    """A project's payout rules (per mode). None for a limit: the bridge's default applies."""

    project_id: str
    mode: str
    approval_required: bool
    max_amount: int | None
    daily_limit: int | None
    updated_at: datetime


def actor_of_key(key_id: str) -> str:
    return f"key:{key_id}"


def actor_of_person(person_id: str) -> str:
    return f"person:{person_id}"
