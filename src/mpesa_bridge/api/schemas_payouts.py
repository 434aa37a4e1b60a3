"""Request and response models of payouts and Transaction Status queries (the OpenAPI contract);
validation rules live in the core (`core.payouts.validation`, `core.status_queries.validation`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PayoutStatusName = Literal[
    "pending_approval", "approved", "rejected", "queued", "sending", "sent", "unknown", "succeeded", "failed"
]


class PayoutCreate(BaseModel):
    """Send money to a phone (B2C). `phone` may be written 07…, 01…, +254…, 254…, 7…."""

    model_config = ConfigDict(extra="forbid")

    phone: Any = Field(
        description="the recipient's M-Pesa number", examples=["0708374149"], json_schema_extra={"type": "string"}
    )
    amount: Any = Field(
        description="whole shillings, 10 to 250000 (and the project's limits)",
        examples=[100],
        json_schema_extra={"type": "integer", "minimum": 10, "maximum": 250000},
    )
    command_id: Any = Field(
        None,
        description="BusinessPayment (default), SalaryPayment or PromotionPayment",
        json_schema_extra={"type": "string", "enum": ["BusinessPayment", "SalaryPayment", "PromotionPayment"]},
    )
    remarks: Any = Field(
        None,
        description="2 to 100 characters; default 'Payout'",
        examples=["Refund order 42"],
        json_schema_extra={"type": "string", "maxLength": 100},
    )
    occasion: Any = Field(
        None, description="optional, at most 100 characters", json_schema_extra={"type": "string", "maxLength": 100}
    )
    metadata: Any = Field(
        None, description="your own JSON object, kept with the payout (≤ 4 KB)", json_schema_extra={"type": "object"}
    )


class PayoutReject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=200, description="why (shown on the payout)")


class PayoutPublic(BaseModel):
    id: str = Field(examples=["po_01jz5m3k6q8w2d1c4b7n9p0r5t"])
    object: Literal["payout"]
    mode: Literal["test", "live"]
    status: PayoutStatusName
    amount: int
    currency: Literal["KES"]
    phone: str
    command_id: str
    remarks: str
    occasion: str | None
    metadata: dict[str, Any]
    short_code: str
    api_version: Literal["v3", "v1"]
    originator_conversation_id: str = Field(description="ours, sent once with the B2C request (v3)")
    conversation_id: str | None
    receipt: str | None = Field(description="the M-Pesa receipt once it succeeded")
    recipient_name: str | None
    result_code: str | None
    result_desc: str | None
    failure_code: str | None = Field(description="e.g. insufficient_balance, initiator_invalid, not_found_at_daraja")
    failure_message: str | None
    created_by: str = Field(description="key:<api key id> or person:<dashboard person id>")
    approved_by: str | None
    approved_at: str | None
    rejected_by: str | None
    rejection_reason: str | None
    needs_attention: bool
    attention_reason: str | None
    created_at: str
    updated_at: str
    completed_at: str | None


class PayoutList(BaseModel):
    object: Literal["list"]
    data: list[PayoutPublic]
    has_more: bool
    next_cursor: str | None


class PayoutSettingsInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approval_required: bool = Field(description="hold every payout until a second person or key approves it")
    max_amount: int | None = Field(None, ge=10, le=250000, description="largest payout (null: the bridge default)")
    daily_limit: int | None = Field(None, ge=10, description="sum per Africa/Nairobi day (null: the bridge default)")


class PayoutSettingsPublic(BaseModel):
    object: Literal["payout_settings"]
    approval_required: bool
    max_amount: int
    daily_limit: int
    updated_at: str | None


class StatusQueryCreate(BaseModel):
    """Ask Daraja for a transaction's status: by M-Pesa receipt, or by a B2C OriginatorConversationID."""

    model_config = ConfigDict(extra="forbid")

    transaction_id: Any = Field(
        None, description="an M-Pesa receipt", examples=["SG632NMUAB"], json_schema_extra={"type": "string"}
    )
    originator_conversation_id: Any = Field(
        None, description="a payout's originator_conversation_id", json_schema_extra={"type": "string"}
    )


class StatusQueryPublic(BaseModel):
    id: str = Field(examples=["tsq_01jz5m3k6q8w2d1c4b7n9p0r5t"])
    object: Literal["transaction_status_query"]
    mode: Literal["test", "live"]
    status: Literal["pending", "completed", "failed", "timed_out"]
    transaction_id: str | None
    originator_conversation_id: str | None
    short_code: str
    payout_id: str | None = Field(description="the payout the bridge asked about, to settle it")
    reversal_id: str | None = Field(description="the reversal the bridge asked about, to settle it")
    conversation_id: str | None
    result_code: str | None = Field(description="0: found (see result.transaction_status); 25: no such transaction")
    result_desc: str | None
    result: dict[str, Any] | None = Field(
        description="receipt, transaction_status (Completed, Declined…), amount, debit_party_name, credit_party_name, "
        "originator_conversation_id, initiated_at, finalised_at, …"
    )
    failure_code: str | None
    failure_message: str | None
    created_at: str
    updated_at: str
    completed_at: str | None


class StatusQueryList(BaseModel):
    object: Literal["list"]
    data: list[StatusQueryPublic]
    has_more: bool
    next_cursor: str | None
