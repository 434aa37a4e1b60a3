"""Typed objects of the API. Each keeps the JSON it was read from in `raw` (fields added by a newer
bridge are there); timestamps are timezone-aware `datetime`s in UTC; amounts are whole shillings."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, TypeAlias, TypeVar

FINAL_PAYMENT_STATUSES = frozenset({"succeeded", "failed", "cancelled", "expired"})
"""The final statuses (`unknown` is not one: a late callback can still settle it). A final status
normally stays; the one exception is a late correction to `succeeded` (flagged `needs_attention`,
its `payment.succeeded` event marked `late_correction`), which your webhook handler sees."""

_TIME_FIELDS = frozenset({"created", "transaction_date", "created_gte", "created_lte", "trans_time"})

M = TypeVar("M", bound="Model")
Nested: TypeAlias = "dict[str, type[Model]]"


def _parse_time(value: Any) -> Any:
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


@dataclass(frozen=True, kw_only=True)
class Model:
    """Base of every API object: `raw` is the JSON object as the bridge sent it."""

    raw: dict[str, Any] = field(repr=False, compare=False)
    _nested: ClassVar[Nested] = {}

    @classmethod
    def from_dict(cls: type[M], data: Mapping[str, Any]) -> M:
        """Build the object from its JSON form, ignoring fields this SDK does not know."""
        values: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            name = spec.name
            if name == "raw" or name not in data:
                continue
            value = data[name]
            nested = cls._nested.get(name)
            if nested is not None and value is not None:
                if isinstance(value, list):
                    value = [nested.from_dict(item) for item in value]
                else:
                    value = nested.from_dict(value)
            elif name.endswith("_at") or name in _TIME_FIELDS:
                value = _parse_time(value)
            values[name] = value
        return cls(raw=dict(data), **values)


@dataclass(frozen=True, kw_only=True)
class Payment(Model):
    """An STK push payment (`pay_…`). `client_secret` is only set in the answer that created it."""

    id: str
    object: str = "payment"
    mode: str = "test"
    status: str = "pending"
    amount: int = 0
    currency: str = "KES"
    phone: str | None = None
    account_reference: str | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    result_code: str | None = None
    result_desc: str | None = None
    mpesa_receipt_number: str | None = None
    merchant_request_id: str | None = None
    checkout_request_id: str | None = None
    business_short_code: str | None = None
    needs_attention: bool = False
    attention_reason: str | None = None
    checkout_session_id: str | None = None
    reversal_id: str | None = None
    reversed_at: datetime | None = None
    transaction_date: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    completed_at: datetime | None = None
    client_secret: str | None = None

    @property
    def is_final(self) -> bool:
        """True once the status can no longer change (succeeded, failed, cancelled, expired)."""
        return self.status in FINAL_PAYMENT_STATUSES


@dataclass(frozen=True, kw_only=True)
class Evidence(Model):
    """One outcome report received for a payment (`GET /v1/payments/{id}/evidence`)."""

    id: str
    source: str
    verdict: str
    result_code: str | None = None
    result_desc: str | None = None
    callback_id: str | None = None
    note: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class PaymentTotals(Model):
    """Daily totals by Nairobi day (`GET /v1/payments/totals`); `data` and `total` as the API sends them."""

    object: str = "payment_totals"
    time_zone: str = "Africa/Nairobi"
    currency: str = "KES"
    created_gte: datetime | None = None
    created_lte: datetime | None = None
    data: list[dict[str, Any]] = field(default_factory=list)
    total: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class CheckoutPayment(Model):
    """The latest payment of a checkout session, as a client secret sees it (the phone masked)."""

    id: str
    status: str
    amount: int = 0
    phone: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    mpesa_receipt_number: str | None = None
    created_at: datetime | None = None

    @property
    def is_final(self) -> bool:
        """True once the status can no longer change."""
        return self.status in FINAL_PAYMENT_STATUSES


@dataclass(frozen=True, kw_only=True)
class CheckoutSession(Model):
    """A checkout session (`cs_…`). `client_secret` only in the answer that created it; `payment` only
    when read with the client secret (its latest payment); `metadata` only with the secret key."""

    id: str
    object: str = "checkout_session"
    mode: str = "test"
    status: str = "open"
    amount: int | None = None
    amount_min: int | None = None
    amount_max: int | None = None
    currency: str = "KES"
    reference: str | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = None
    url: str | None = None
    success_url: str | None = None
    cancel_url: str | None = None
    payment_in_flight: bool = False
    paid_payment_id: str | None = None
    paid_c2b_payment_id: str | None = None
    payment_link_id: str | None = None
    payment: CheckoutPayment | None = None
    expires_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    completed_at: datetime | None = None
    client_secret: str | None = None
    _nested: ClassVar[Nested] = {"payment": CheckoutPayment}


@dataclass(frozen=True, kw_only=True)
class PaymentLink(Model):
    """A reusable payment link (`plink_…`); each visit of its `url` opens a checkout session."""

    id: str
    object: str = "payment_link"
    mode: str = "test"
    slug: str = ""
    url: str = ""
    title: str = ""
    description: str | None = None
    amount: int | None = None
    amount_min: int | None = None
    amount_max: int | None = None
    currency: str = "KES"
    active: bool = True
    expires_at: datetime | None = None
    max_payments: int | None = None
    collect: list[str] | None = None
    metadata: dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    payments_succeeded: int = 0
    amount_collected: int = 0


@dataclass(frozen=True, kw_only=True)
class WebhookEndpoint(Model):
    """A webhook endpoint (`we_…`). `secret` (`whsec_…`) only in the answers of create and rotate_secret."""

    id: str
    object: str = "webhook_endpoint"
    mode: str = "test"
    url: str = ""
    enabled_events: list[str] = field(default_factory=list)
    description: str | None = None
    enabled: bool = True
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    failing_since: datetime | None = None
    previous_secret_expires_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    secret: str | None = None


@dataclass(frozen=True, kw_only=True)
class DeletedWebhookEndpoint(Model):
    """The answer of deleting an endpoint."""

    id: str
    object: str = "webhook_endpoint"
    deleted: bool = True


@dataclass(frozen=True, kw_only=True)
class Attempt(Model):
    """One try of a webhook delivery."""

    id: str
    attempted_at: datetime | None = None
    succeeded: bool = False
    status_code: int | None = None
    latency_ms: int | None = None
    response_body: str | None = None
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class Delivery(Model):
    """An event's delivery to one endpoint, with its attempts."""

    id: str
    object: str = "webhook_delivery"
    event_id: str = ""
    endpoint_id: str = ""
    status: str = "pending"
    redelivery: bool = False
    attempt_count: int = 0
    next_attempt_at: datetime | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
    attempts: list[Attempt] = field(default_factory=list)
    _nested: ClassVar[Nested] = {"attempts": Attempt}


@dataclass(frozen=True, kw_only=True)
class Event(Model):
    """An event (`evt_…`): `data["object"]` is the object it is about, as it was then. `deliveries` only
    from `events.retrieve`."""

    id: str
    object: str = "event"
    type: str = ""
    created: datetime | None = None
    mode: str = "test"
    late_correction: bool = False
    data: dict[str, Any] = field(default_factory=dict)
    deliveries: list[Delivery] | None = None
    _nested: ClassVar[Nested] = {"deliveries": Delivery}

    @property
    def subject(self) -> dict[str, Any]:
        """`data["object"]`: the payment (or session, endpoint) the event is about."""
        value = self.data.get("object")
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True, kw_only=True)
class ApiKey(Model):
    """A secret key as listed (`display` only); `secret_key` only in the answer that issued it."""

    id: str
    object: str = "api_key"
    mode: str = "test"
    display: str | None = None
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    secret_key: str | None = None
    previous_key: ApiKey | None = None


ApiKey._nested = {"previous_key": ApiKey}


@dataclass(frozen=True, kw_only=True)
class ProjectSettings(Model):
    """The project as browsers meet it: this mode's publishable key, client-side amounts and the
    origins allowed to call the browser routes."""

    id: str
    object: str = "project"
    name: str | None = None
    mode: str = "test"
    publishable_key: str | None = None
    client_side_amounts: bool = False
    client_side_amount_max: int | None = None
    allowed_origins: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class PublishableKeyRotation(Model):
    """The answer of a publishable-key rotation: the new key; the old one stopped at once."""

    object: str = "publishable_key"
    publishable_key: str
    previous_publishable_key: str | None = None


@dataclass(frozen=True, kw_only=True)
class QrCode(Model):
    """A Dynamic QR drawn by Daraja (`image_png_base64`)."""

    object: str = "qr_code"
    image_png_base64: str = ""
    request_id: str | None = None
    description: str | None = None


@dataclass(frozen=True, kw_only=True)
class C2BSettings(Model):
    """How the bridge answers Daraja's C2B validation calls for a project mode (docs/c2b.md)."""

    object: str = "c2b_settings"
    validation_rule: str = "accept_all"
    merchant_url: str | None = None
    default_action: str = "accept"
    signing_secret: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class C2BRegistration(Model):
    """A short code's C2B URLs, registered with Daraja (`c2breg_…`)."""

    id: str
    object: str = "c2b_registration"
    short_code: str = ""
    response_type: str = "Completed"
    validation: bool = True
    api_version: int = 2
    validation_url: str = ""
    confirmation_url: str = ""
    status: str = "registered"
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class C2BPayment(Model):
    """A customer's till or paybill payment (`c2b_…`): `unmatched`, `matched` or `dismissed`.

    `matched` says what it paid; `duplicate_of` names the earlier payment of the same account number.
    Read one with `retrieve` for its `suggestions`, `validations` and `same_reference` (in `raw`)."""

    id: str
    object: str = "c2b_payment"
    status: str = "unmatched"
    trans_id: str = ""
    transaction_type: str = ""
    trans_time: datetime | None = None
    amount: int = 0
    short_code: str = ""
    bill_ref_number: str = ""
    msisdn: str = ""
    customer_name: str = ""
    matched: dict[str, Any] | None = None
    duplicate_of: str | None = None
    note: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class ExpectedPayment(Model):
    """A payment expected to the paybill (`exp_…`): `open`, `paid` (by `c2b_payment_id`) or `cancelled`."""

    id: str
    object: str = "expected_payment"
    status: str = "open"
    reference: str = ""
    amount: int = 0
    phone: str | None = None
    description: str = ""
    metadata: dict[str, Any] | None = None
    c2b_payment_id: str | None = None
    paid_at: datetime | None = None
    cancelled_at: datetime | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Reversal(Model):
    """A reversal (`rev_…`) of a succeeded payment's whole amount: `sending`, `sent`, `succeeded`,
    `failed` or `unknown` (sent, answer lost: never sent again)."""

    id: str
    object: str = "reversal"
    mode: str = "test"
    payment_id: str = ""
    status: str = ""
    amount: int = 0
    currency: str = "KES"
    original_receipt: str = ""
    receipt: str | None = None
    remarks: str = ""
    failure_code: str | None = None
    failure_message: str | None = None
    result_code: str | None = None
    result_desc: str | None = None
    conversation_id: str | None = None
    originator_conversation_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Payout(Model):
    """A B2C payout (`po_…`) to a phone: `pending_approval`, `approved`, `rejected`, `queued`, `sending`,
    `sent`, `unknown` (settled by Transaction Status, never sent again), `succeeded` or `failed`."""

    id: str
    object: str = "payout"
    mode: str = "test"
    status: str = ""
    amount: int = 0
    currency: str = "KES"
    phone: str = ""
    command_id: str = "BusinessPayment"
    remarks: str = ""
    occasion: str | None = None
    metadata: dict[str, Any] | None = None
    originator_conversation_id: str = ""
    conversation_id: str | None = None
    receipt: str | None = None
    recipient_name: str | None = None
    result_code: str | None = None
    result_desc: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    created_by: str = ""
    approved_by: str | None = None
    approved_at: datetime | None = None
    rejected_by: str | None = None
    rejection_reason: str | None = None
    needs_attention: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None
    completed_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class BalanceQuery(Model):
    """An Account Balance query (`bq_…`): `pending`, `completed` (with `accounts`) or `failed`.
    Each account is a dict: `name`, `currency`, `available` and the four `amounts`, whole shillings."""

    id: str
    object: str = "balance_query"
    mode: str = "test"
    status: str = ""
    short_code: str = ""
    accounts: list[dict[str, Any]] = field(default_factory=list)
    failure_code: str | None = None
    failure_message: str | None = None
    result_code: str | None = None
    result_desc: str | None = None
    conversation_id: str | None = None
    balances_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class PayoutSettings(Model):
    """The payout rules of the key's project mode: approval and limits (the operator sets them)."""

    object: str = "payout_settings"
    approval_required: bool = False
    max_amount: int = 0
    daily_limit: int = 0
    updated_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class TransactionStatusQuery(Model):
    """A Transaction Status query (`tsq_…`): `pending` until Daraja's Result, then `completed` with
    `result` (receipt, transaction_status, amount, parties…); `failed` or `timed_out` otherwise."""

    id: str
    object: str = "transaction_status_query"
    mode: str = "test"
    status: str = "pending"
    transaction_id: str | None = None
    originator_conversation_id: str | None = None
    payout_id: str | None = None
    reversal_id: str | None = None
    result_code: str | None = None
    result_desc: str | None = None
    result: dict[str, Any] | None = None
    failure_code: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
