"""The C2B and expected-payment request and response models: their part of the OpenAPI contract.

Request fields are typed loosely (`Any` with a JSON schema) and checked by the core, so that every
refusal has the one error shape with its `param` (as `api/schemas.py` does)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class C2BSettingsUpdate(BaseModel):
    """Change how the bridge answers Daraja's C2B validation calls (only the fields sent change)."""

    model_config = ConfigDict(extra="forbid")

    validation_rule: Any = Field(
        None,
        description="accept_all, known_references (an open expected payment, checkout session or payment link "
        "has the account number) or merchant (ask merchant_url, signed, within the deadline)",
        json_schema_extra={"type": "string", "enum": ["accept_all", "known_references", "merchant"]},
    )
    merchant_url: Any = Field(
        None,
        description="the merchant's validation URL (rule merchant); same address rules as webhook endpoints",
        examples=["https://shop.example.com/c2b/validate"],
        json_schema_extra={"type": "string", "format": "uri"},
    )
    default_action: Any = Field(
        None,
        description="the answer when the merchant's server is late or fails: accept or reject",
        json_schema_extra={"type": "string", "enum": ["accept", "reject"]},
    )
    rotate_secret: Any = Field(False, description="true: a new signing secret", json_schema_extra={"type": "boolean"})


class C2BSettingsPublic(BaseModel):
    object: str = "c2b_settings"
    validation_rule: str
    merchant_url: str | None
    default_action: str
    signing_secret: str | None = Field(description="whsec_…: verify the validation requests with it")
    updated_at: str | None


class C2BRegistrationCreate(BaseModel):
    """Register this bridge's validation and confirmation URLs for a short code with Daraja."""

    model_config = ConfigDict(extra="forbid")

    short_code: Any = Field(
        None,
        description="the paybill or till short code; default: the mode's Daraja short code",
        examples=["600984"],
        json_schema_extra={"type": "string"},
    )
    response_type: Any = Field(
        "Completed",
        description="what Daraja does when the validation answer is late: Completed or Cancelled",
        json_schema_extra={"type": "string", "enum": ["Completed", "Cancelled"]},
    )
    validation: Any = Field(
        True,
        description="false: every validation call is accepted at once (as a short code without validation)",
        json_schema_extra={"type": "boolean"},
    )
    api_version: Any = Field(
        None,
        description="Daraja's register URL version, 2 (masked MSISDN) or 1 (hashed); default: the bridge's setting",
        json_schema_extra={"type": "integer", "enum": [1, 2]},
    )


class C2BRegistrationPublic(BaseModel):
    id: str
    object: str = "c2b_registration"
    short_code: str
    response_type: str
    validation: bool
    api_version: int
    validation_url: str
    confirmation_url: str
    status: str
    created_at: str | None
    updated_at: str | None


class C2BRegistrationList(BaseModel):
    object: str = "list"
    data: list[C2BRegistrationPublic]


class C2BMatched(BaseModel):
    type: str = Field(description="expected_payment, checkout_session or payment_link")
    id: str
    by: str = Field(description="auto or manual")
    at: str | None


class C2BPaymentPublic(BaseModel):
    id: str
    object: str = "c2b_payment"
    status: str = Field(description="unmatched (in the review queue), matched or dismissed")
    trans_id: str
    transaction_type: str
    trans_time: str | None
    amount: int
    short_code: str
    bill_ref_number: str
    invoice_number: str
    org_account_balance: str | None
    third_party_trans_id: str
    msisdn: str = Field(description="as Daraja sends it: masked (v2) or SHA-256 hex (v1)")
    msisdn_kind: str
    customer_name: str
    matched: C2BMatched | None
    duplicate_of: str | None = Field(description="an earlier payment that already paid this reference")
    note: str | None
    created_at: str | None
    updated_at: str | None


class C2BSuggestion(BaseModel):
    type: str
    id: str
    reference: str
    amount: int | None
    amount_min: int | None
    amount_max: int | None
    score: int
    reasons: list[str]


class C2BValidationPublic(BaseModel):
    id: str
    accepted: bool
    result_code: str
    decided_by: str
    latency_ms: int
    created_at: str | None


class C2BPaymentDetail(C2BPaymentPublic):
    suggestions: list[C2BSuggestion] = Field(description="near matches (unmatched payments only)")
    validations: list[C2BValidationPublic]
    same_reference: list[str] = Field(description="every payment of the same account number, oldest first")


class C2BPaymentList(BaseModel):
    object: str = "list"
    data: list[C2BPaymentPublic]
    has_more: bool
    next_cursor: str | None


class C2BMatch(BaseModel):
    """Match an unmatched payment by hand."""

    model_config = ConfigDict(extra="forbid")

    type: Any = Field(
        description="expected_payment, checkout_session or payment_link",
        json_schema_extra={"type": "string", "enum": ["expected_payment", "checkout_session", "payment_link"]},
    )
    id: Any = Field(description="the expected payment's, session's or link's id", json_schema_extra={"type": "string"})


class C2BDismiss(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Any = Field(None, description="why (≤ 500 characters)", json_schema_extra={"type": "string"})


class ExpectedPaymentCreate(BaseModel):
    """A payment a customer will make to your paybill with `reference` as the account number."""

    model_config = ConfigDict(extra="forbid")

    reference: Any = Field(
        description="the account number the customer types (≤ 20 characters; case and spaces ignored)",
        examples=["INV-0042"],
        json_schema_extra={"type": "string", "maxLength": 20},
    )
    amount: Any = Field(description="whole shillings", examples=[1500], json_schema_extra={"type": "integer"})
    phone: Any = Field(
        None,
        description="the payer's phone, when known: checked against Daraja's masked or hashed number",
        examples=["0712345678"],
        json_schema_extra={"type": "string"},
    )
    description: Any = Field(None, description="≤ 200 characters", json_schema_extra={"type": "string"})
    metadata: Any = Field(None, description="your own keys and values", json_schema_extra={"type": "object"})


class ExpectedPaymentPublic(BaseModel):
    id: str
    object: str = "expected_payment"
    status: str = Field(description="open, paid or cancelled")
    reference: str
    amount: int
    phone: str | None
    description: str
    metadata: dict[str, Any]
    c2b_payment_id: str | None
    paid_at: str | None
    cancelled_at: str | None
    created_at: str | None


class ExpectedPaymentList(BaseModel):
    object: str = "list"
    data: list[ExpectedPaymentPublic]
    has_more: bool
    next_cursor: str | None
