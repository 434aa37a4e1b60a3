"""Request and response models — the OpenAPI contract. Validation rules live in the core."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mpesa_bridge.core.shortcodes import SHORT_CODE_PATTERN, SHORT_CODE_RULE

# An amount as the OpenAPI document shows it: whole shillings (the configured maximum is enforced by
# the core's validation, whatever the document says).
SHILLINGS: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": 250000}
# A fixed amount, or a range the customer chooses within: checkout sessions and payment links.
FixedAmount = Annotated[
    Any,
    Field(
        description="whole shillings, fixed; or leave it out and give amount_min and amount_max",
        examples=[1500],
        json_schema_extra=SHILLINGS,
    ),
]
AmountMin = Annotated[
    Any, Field(description="the least the customer may choose, whole shillings", json_schema_extra=SHILLINGS)
]
AmountMax = Annotated[
    Any, Field(description="the most the customer may choose, whole shillings", json_schema_extra=SHILLINGS)
]


class ErrorDetail(BaseModel):
    type: str = Field(examples=["invalid_request_error"])
    code: str = Field(examples=["invalid_phone"])
    message: str
    param: str | None = Field(description="the field or parameter at fault, when there is one")
    request_id: str | None = Field(description="also in the X-Request-Id header; quote it when asking for help")


class ErrorResponse(BaseModel):
    error: ErrorDetail


# Answers every /v1 route may give besides its own (`responses=` of the route decorators).
RATE_LIMITED: dict[str, Any] = {"model": ErrorResponse, "description": "rate limited (see Retry-After, RateLimit-*)"}
BODY_REFUSED: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "body larger than MPESA_BRIDGE_MAX_BODY_BYTES"},
    415: {"model": ErrorResponse, "description": "a body that is not application/json"},
}


class PaymentCreate(BaseModel):
    """Start an STK Push. `phone` may be written 07…, 01…, +254…, 254…, 7… (spaces and dashes allowed)."""

    model_config = ConfigDict(extra="forbid")

    phone: Any = Field(
        description="Kenyan mobile number of the payer", examples=["0708374149"], json_schema_extra={"type": "string"}
    )
    amount: Any = Field(
        description="whole shillings, 1 to 250000 (configurable maximum)",
        examples=[100],
        json_schema_extra=SHILLINGS,
    )
    account_reference: Any = Field(
        description="shown to the customer in the prompt; ≤ 12 letters, digits, spaces, . - _ /",
        examples=["INV00042"],
        json_schema_extra={"type": "string", "maxLength": 12},
    )
    description: Any = Field(
        None,
        description="≤ 13 letters, digits, spaces, . - _ /; default 'Payment'",
        examples=["Order 42"],
        json_schema_extra={"type": "string", "maxLength": 13},
    )
    metadata: Any = Field(
        None,
        description="your own JSON object, kept with the payment (≤ 4 KB)",
        json_schema_extra={"type": "object"},
    )


PaymentStatusName = Literal["pending", "unknown", "succeeded", "failed", "cancelled", "expired"]


class PaymentPublic(BaseModel):
    id: str = Field(examples=["pay_01jz5m3k6q8w2d1c4b7n9p0r5t"])
    object: Literal["payment"]
    mode: Literal["test", "live"]
    status: PaymentStatusName
    amount: int
    currency: Literal["KES"]
    phone: str = Field(examples=["254708374149"])
    account_reference: str
    description: str
    metadata: dict[str, Any]
    failure_code: str | None = Field(description="stable reason code, e.g. user_cancelled, insufficient_funds")
    failure_message: str | None = Field(description="Safaricom's own text where there is one")
    result_code: str | None
    result_desc: str | None
    mpesa_receipt_number: str | None
    merchant_request_id: str | None
    checkout_request_id: str | None
    business_short_code: str
    needs_attention: bool = Field(description="true when something about this payment needs a human look")
    attention_reason: str | None
    checkout_session_id: str | None = Field(description="the checkout session that started the payment, if one did")
    reversal_id: str | None = Field(None, description="its latest reversal (POST /v1/payments/{id}/reversals), if any")
    reversed_at: str | None = Field(None, description="set once a reversal succeeded; the status stays succeeded")
    transaction_date: str | None
    created_at: str
    updated_at: str
    completed_at: str | None
    client_secret: str | None = Field(
        None,
        description="only in the answer that creates the payment: lets a browser or app read this payment's "
        "status (SSE, Socket.IO) and nothing else",
    )


class PaymentList(BaseModel):
    object: Literal["list"]
    data: list[PaymentPublic]
    has_more: bool
    next_cursor: str | None = Field(description="pass as starting_after to get the next page")


class PaymentStatusCounts(BaseModel):
    pending: int
    unknown: int
    succeeded: int
    failed: int
    cancelled: int
    expired: int


class PaymentTotalsSummary(BaseModel):
    count: int = Field(description="payments created, in any status")
    succeeded_count: int
    succeeded_amount: int = Field(description="sum of the succeeded payments' amounts, whole shillings")
    by_status: PaymentStatusCounts = Field(description="payments created, by their status now")


class PaymentDayTotals(PaymentTotalsSummary):
    date: str = Field(description="an Africa/Nairobi calendar day (YYYY-MM-DD)", examples=["2026-11-26"])


class PaymentTotals(BaseModel):
    object: Literal["payment_totals"]
    time_zone: Literal["Africa/Nairobi"] = Field(description="the days are Kenyan calendar days (EAT, UTC+3)")
    currency: Literal["KES"]
    created_gte: str = Field(description="the window counted: payments created at or after this time…")
    created_lte: str = Field(description="…and at or before this one (UTC)")
    data: list[PaymentDayTotals] = Field(description="every day of the window, oldest first; zeros on quiet days")
    total: PaymentTotalsSummary = Field(description="the whole window")


class EvidencePublic(BaseModel):
    id: str
    source: str
    verdict: str
    result_code: str | None
    result_desc: str | None
    callback_id: str | None
    note: str | None
    created_at: str


class EvidenceList(BaseModel):
    object: Literal["list"]
    data: list[EvidencePublic]


class QrCodeCreate(BaseModel):
    """An M-Pesa Dynamic QR: the payer scans it in the M-Pesa app and sees these details filled in.

    Daraja's rules are checked before anything is sent (`daraja/_validation.py`); a refusal is a 400
    whose `param` names the field."""

    model_config = ConfigDict(extra="forbid")

    merchant_name: Any = Field(
        description="the business name shown to the payer; ≤ 64 printable ASCII characters, no @ # & < >",
        examples=["TEST SUPERMARKET"],
        json_schema_extra={"type": "string", "maxLength": 64},
    )
    reference: Any = Field(
        description="the transaction reference (for a paybill, the account number); ≤ 20 letters, digits, "
        "spaces, . - _ /",
        examples=["Invoice 42"],
        json_schema_extra={"type": "string", "maxLength": 20},
    )
    amount: Any = Field(
        description="whole shillings, 1 to 250000",
        examples=[100],
        json_schema_extra=SHILLINGS,
    )
    trx_code: Any = Field(
        description="BG buy goods (till), WA withdraw at an agent, PB paybill, SM send money to a phone, "
        "SB send to a business",
        examples=["BG"],
        json_schema_extra={"type": "string", "enum": ["BG", "WA", "PB", "SM", "SB"]},
    )
    cpi: Any = Field(
        description=f"the party paid: for SM a phone number 2547…/2541…; for BG, WA, PB a till, agent or "
        f"paybill number ({SHORT_CODE_RULE}); for SB either",
        examples=["373132"],
        json_schema_extra={"type": "string"},
    )
    size: Any = Field(
        300,
        description="the side of the square PNG in pixels, 100 to 1000",
        examples=[300],
        json_schema_extra={"type": "integer", "minimum": 100, "maximum": 1000},
    )


class QrCodePublic(BaseModel):
    object: Literal["qr_code"]
    image_png_base64: str = Field(description="the PNG Daraja drew, base64 (serve as data:image/png;base64,…)")
    request_id: str = Field(description="Daraja's RequestID; quote it to Safaricom support")
    description: str = Field(description="Daraja's ResponseDescription")


class CallbackAck(BaseModel):
    ResultCode: int = 0
    ResultDesc: str = "Accepted"


class DarajaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The patterns document what the core checks (its error codes stay: invalid_short_code, …).
    environment: Literal["simulator", "sandbox", "production"] = Field(
        description="test mode: simulator or sandbox; live mode: production"
    )
    consumer_key: str = Field(json_schema_extra={"pattern": r"\S"})
    consumer_secret: str = Field(json_schema_extra={"pattern": r"\S"})
    short_code: str = Field(
        description="paybill number, or for a till its store (head office) number",
        json_schema_extra={"pattern": f"^{SHORT_CODE_PATTERN}$"},
    )
    passkey: str = Field(json_schema_extra={"pattern": r"\S"})
    shortcode_type: Literal["paybill", "till"] = "paybill"
    till_number: str | None = Field(
        None, description=f"tills only ({SHORT_CODE_RULE})", json_schema_extra={"pattern": f"^{SHORT_CODE_PATTERN}$"}
    )
    initiator_name: str | None = Field(
        None,
        description="the initiator of payouts, reversals, transaction status and balance queries (with "
        "initiator_password); left out: the stored initiator is kept; empty: it is removed",
        json_schema_extra={"pattern": r"^[A-Za-z0-9._-]{0,64}$"},
    )
    initiator_password: str | None = Field(
        None,
        max_length=256,
        description="the initiator's password, sealed like the other secrets and never shown back; the bridge "
        "turns it into the SecurityCredential with the environment's certificate",
    )


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    test: DarajaSettings | None = Field(None, description="default: the built-in simulator when it is enabled")
    live: DarajaSettings | None = None


class DarajaSettingsPublic(BaseModel):
    environment: str
    short_code: str
    shortcode_type: str
    till_number: str | None
    updated_at: str
    initiator_name: str | None = Field(None, description="null: no initiator (the password is never shown)")


class ProjectPublic(BaseModel):
    id: str
    object: Literal["project"]
    name: str
    created_at: str
    require_signed_requests: bool
    has_signing_secret: bool
    confirm_by_query: bool
    daraja: dict[str, DarajaSettingsPublic]


class ProjectCreated(ProjectPublic):
    secret_keys: dict[str, str] = Field(description="shown once: store them now")


class ProjectList(BaseModel):
    object: Literal["list"]
    data: list[ProjectPublic]


class KeyCreated(BaseModel):
    object: Literal["api_key"]
    id: str
    mode: str
    secret_key: str = Field(description="shown once")


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


class CheckoutSessionCreate(BaseModel):
    """Open a checkout session: a fixed `amount`, or `amount_min` and `amount_max` for an amount the
    customer chooses. Its client secret lets a browser read it, pay it and watch it — nothing else.

    With a publishable key (a project with client-side amounts on) only `amount`, `reference`,
    `description` and `phone` may be sent: the amount is the browser's choice."""

    model_config = ConfigDict(extra="forbid")

    amount: FixedAmount = None
    amount_min: AmountMin = None
    amount_max: AmountMax = None
    reference: Any = Field(
        None,
        description="the payment's account reference, shown in the prompt; ≤ 12 letters, digits, spaces, . - _ /. "
        "Required with a secret key; with a publishable key optional (default 'Online')",
        examples=["INV00042"],
        json_schema_extra={"type": "string", "maxLength": 12},
    )
    phone: Any = Field(
        None,
        description="publishable key only: send the prompt to this phone at once (as POST …/pay would); "
        "refused with a secret key",
        examples=["0708374149"],
        json_schema_extra={"type": "string"},
    )
    description: Any = Field(
        None,
        description="≤ 13 letters, digits, spaces, . - _ /; default 'Payment'",
        examples=["Order 42"],
        json_schema_extra={"type": "string", "maxLength": 13},
    )
    metadata: Any = Field(
        None,
        description="your own JSON object (≤ 4 KB), kept with the session and copied to its payments",
        json_schema_extra={"type": "object"},
    )
    expires_at: Any = Field(
        None,
        description="ISO 8601 with a zone, 1 minute to 24 hours from now; default one hour from now",
        examples=["2026-12-31T12:00:00Z"],
        json_schema_extra={"type": "string", "format": "date-time"},
    )
    success_url: Any = Field(
        None, description="where the hosted page sends the customer once paid", json_schema_extra={"type": "string"}
    )
    cancel_url: Any = Field(
        None, description="where the hosted page sends a customer who gives up", json_schema_extra={"type": "string"}
    )


class CheckoutSessionPay(BaseModel):
    """Start an STK Push for the session to the customer's phone (any Kenyan form)."""

    model_config = ConfigDict(extra="forbid")

    phone: Any = Field(
        description="Kenyan mobile number of the payer", examples=["0708374149"], json_schema_extra={"type": "string"}
    )
    amount: Any = Field(
        None,
        description="only for a session where the customer chooses: within its amount_min..amount_max",
        json_schema_extra={"type": "integer", "minimum": 1},
    )


class CheckoutPaymentSummary(BaseModel):
    id: str
    status: PaymentStatusName
    amount: int
    phone: str = Field(description="masked", examples=["2547****4149"])
    failure_code: str | None
    failure_message: str | None
    mpesa_receipt_number: str | None
    created_at: str


class CheckoutSessionPublic(BaseModel):
    id: str = Field(examples=["cs_01jz5m3k6q8w2d1c4b7n9p0r5t"])
    object: Literal["checkout_session"]
    mode: Literal["test", "live"]
    status: Literal["open", "complete", "expired"]
    amount: int | None = Field(description="the fixed amount; null when the customer chooses")
    amount_min: int | None
    amount_max: int | None
    currency: Literal["KES"]
    reference: str
    description: str
    metadata: dict[str, Any] | None = Field(None, description="absent from what a client secret reads")
    url: str = Field(description="the hosted payment page")
    success_url: str | None
    cancel_url: str | None
    payment_in_flight: bool = Field(description="a payment was started and has no outcome yet")
    paid_payment_id: str | None = Field(description="the payment that completed the session")
    paid_c2b_payment_id: str | None = Field(
        None, description="the C2B payment (paybill or till, with the session's reference) that completed it instead"
    )
    payment_link_id: str | None = Field(None, description="the payment link that opened the session, if one did")
    payment: CheckoutPaymentSummary | None = Field(description="the latest payment started for the session")
    expires_at: str
    created_at: str
    updated_at: str
    completed_at: str | None
    client_secret: str | None = Field(
        None,
        description="only in the answer that creates the session: lets a browser read this session, pay it and "
        "watch it, nothing else",
    )


class PaymentLinkCreate(BaseModel):
    """Create a payment link: a public URL (`/l/{slug}`) that opens a checkout session for each
    customer. A fixed `amount`, or `amount_min` and `amount_max` for an amount the customer chooses."""

    model_config = ConfigDict(extra="forbid")

    title: Any = Field(
        description="shown on the page; ≤ 100 characters",
        examples=["Tuition, term 1"],
        json_schema_extra={"type": "string", "maxLength": 100},
    )
    description: Any = Field(
        None, description="shown on the page; ≤ 500 characters", json_schema_extra={"type": "string", "maxLength": 500}
    )
    amount: FixedAmount = None
    amount_min: AmountMin = None
    amount_max: AmountMax = None
    active: Any = Field(True, description="false: the page opens no session", json_schema_extra={"type": "boolean"})
    expires_at: Any = Field(
        None,
        description="ISO 8601 with a zone, 1 minute to 366 days from now; null (default): never",
        examples=["2026-12-31T12:00:00Z"],
        json_schema_extra={"type": "string", "format": "date-time"},
    )
    max_payments: Any = Field(
        None,
        description="once this many payments succeeded, the page opens no session; null (default): no limit",
        json_schema_extra={"type": "integer", "minimum": 1, "maximum": 1000000},
    )
    collect: Any = Field(
        None,
        description="optional fields the hosted page may ask the customer for: name, reference",
        examples=[["name"]],
        json_schema_extra={"type": "array", "items": {"type": "string", "enum": ["name", "reference"]}},
    )
    metadata: Any = Field(
        None,
        description="your own JSON object (≤ 4 KB), copied to each session the link opens and to its payment",
        json_schema_extra={"type": "object"},
    )


class PaymentLinkUpdate(BaseModel):
    """Change a payment link: only the fields sent change; null clears `expires_at` or `max_payments`."""

    model_config = ConfigDict(extra="forbid")

    title: Any = Field(None, json_schema_extra={"type": "string", "maxLength": 100})
    description: Any = Field(None, json_schema_extra={"type": "string", "maxLength": 500})
    active: Any = Field(None, description="false deactivates the link", json_schema_extra={"type": "boolean"})
    expires_at: Any = Field(
        None,
        description="ISO 8601 with a zone; null: never",
        json_schema_extra={"type": "string", "format": "date-time"},
    )
    max_payments: Any = Field(
        None, description="null: no limit", json_schema_extra={"type": "integer", "minimum": 1, "maximum": 1000000}
    )


class PaymentLinkPublic(BaseModel):
    id: str = Field(examples=["plink_01jz5m3k6q8w2d1c4b7n9p0r5t"])
    object: Literal["payment_link"]
    mode: Literal["test", "live"]
    slug: str = Field(description="the public URL's last part, unique")
    url: str = Field(description="the public page: its form opens a checkout session, pushes, and shows the outcome")
    title: str
    description: str
    amount: int | None = Field(description="the fixed amount; null when the customer chooses")
    amount_min: int | None
    amount_max: int | None
    currency: Literal["KES"]
    active: bool
    expires_at: str | None
    max_payments: int | None
    collect: list[Literal["name", "reference"]]
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    payments_succeeded: int | None = Field(None, description="succeeded payments of the link's sessions (not in lists)")
    amount_collected: int | None = Field(None, description="their sum, whole shillings (not in lists)")


class PaymentLinkList(BaseModel):
    object: Literal["list"]
    data: list[PaymentLinkPublic]
    has_more: bool
    next_cursor: str | None = Field(description="pass as starting_after to get the next page")


class CheckoutSessionList(BaseModel):
    object: Literal["list"]
    data: list[CheckoutSessionPublic]
    has_more: bool
    next_cursor: str | None = Field(description="pass as starting_after to get the next page")
