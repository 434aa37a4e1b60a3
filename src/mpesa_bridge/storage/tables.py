"""The tables. Money is an integer column; every timestamp is aware UTC (`UTCDateTime`)."""

from __future__ import annotations

import sqlalchemy as sa

from mpesa_bridge.core.balances.entity import BalanceQueryStatus
from mpesa_bridge.core.c2b.entity import (
    C2BStatus,
    DecidedBy,
    DefaultAction,
    ExpectedStatus,
    MatchTarget,
    ValidationRule,
)
from mpesa_bridge.core.checkout.entity import CheckoutStatus
from mpesa_bridge.core.payments.status import Evidence, PaymentStatus
from mpesa_bridge.core.payouts.status import PayoutStatus
from mpesa_bridge.core.people.entity import Role, TokenKind
from mpesa_bridge.core.projects import DarajaEnvironment, Mode, ShortcodeType
from mpesa_bridge.core.reversals.entity import ReversalStatus
from mpesa_bridge.core.status_queries.entity import StatusQueryStatus
from mpesa_bridge.storage.types import IntEnumType, JSONType, StrEnumType, UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("require_signed_requests", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("signing_secret_sealed", sa.Text(), nullable=True),
    sa.Column("confirm_by_query", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("time_zone", sa.String(64), nullable=False, server_default="Africa/Nairobi"),
    # Browser settings (migration 0016): publishable keys with browser-chosen amounts; CORS origins.
    sa.Column("client_side_amounts", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("client_side_amount_max", sa.Integer(), nullable=True),
    sa.Column("allowed_origins", JSONType, nullable=False, server_default=sa.text("'[]'")),
    # The earlier system's payment calls answered for this project (migration 0021, api/legacy.py).
    sa.Column("legacy_api", sa.Boolean(), nullable=False, server_default=sa.false()),
)

daraja_configs = sa.Table(
    "daraja_configs",
    metadata,
    sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), primary_key=True),
    sa.Column("mode", StrEnumType(Mode), primary_key=True),
    sa.Column("environment", StrEnumType(DarajaEnvironment), nullable=False),
    sa.Column("short_code", sa.String(16), nullable=False),
    sa.Column("shortcode_type", StrEnumType(ShortcodeType), nullable=False),
    sa.Column("till_number", sa.String(16), nullable=True),
    sa.Column("consumer_key_sealed", sa.Text(), nullable=False),
    sa.Column("consumer_secret_sealed", sa.Text(), nullable=False),
    sa.Column("passkey_sealed", sa.Text(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # The initiator of B2C, reversal, transaction status and account balance (0017).
    sa.Column("initiator_name", sa.String(64), nullable=True),
    sa.Column("initiator_password_sealed", sa.Text(), nullable=True),
)

# A project mode's publishable key (`pk_test_…`): no secret, stored as it is; one per mode (0016).
publishable_keys = sa.Table(
    "publishable_keys",
    metadata,
    sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), primary_key=True),
    sa.Column("mode", StrEnumType(Mode), primary_key=True),
    sa.Column("key", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), nullable=False, index=True),
    sa.Column("mode", StrEnumType(Mode), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("display", sa.String(40), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("last_used_at", UTCDateTime(), nullable=True),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("status", StrEnumType(PaymentStatus), nullable=False),
    sa.Column("amount", sa.Integer(), nullable=False),
    sa.Column("phone", sa.String(16), nullable=False),
    sa.Column("account_reference", sa.String(32), nullable=False),
    sa.Column("description", sa.String(32), nullable=False),
    sa.Column("metadata", JSONType, nullable=False),
    sa.Column("business_short_code", sa.String(16), nullable=False),
    sa.Column("party_b", sa.String(16), nullable=False),
    sa.Column("transaction_type", sa.String(32), nullable=False),
    sa.Column("daraja_environment", sa.String(16), nullable=False),
    sa.Column("callback_token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("evidence", IntEnumType(Evidence), nullable=True),
    sa.Column("failure_code", sa.String(64), nullable=True),
    sa.Column("failure_message", sa.String(500), nullable=True),
    sa.Column("result_code", sa.String(32), nullable=True),
    sa.Column("result_desc", sa.String(500), nullable=True),
    sa.Column("mpesa_receipt_number", sa.String(32), nullable=True),
    sa.Column("merchant_request_id", sa.String(64), nullable=True),
    sa.Column("checkout_request_id", sa.String(64), nullable=True, unique=True),
    sa.Column("transaction_date", UTCDateTime(), nullable=True),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
    sa.Column("needs_attention", sa.Boolean(), nullable=False, default=False),
    sa.Column("attention_reason", sa.String(64), nullable=True),
    sa.Column("query_attempts", sa.Integer(), nullable=False, default=0),
    sa.Column("next_query_at", UTCDateTime(), nullable=True),
    sa.Column("awaiting_confirmation", sa.Boolean(), nullable=False, server_default=sa.false()),
    # SHA-256 of the client secret (read-only access to this payment's status); None before 0004.
    sa.Column("client_secret_hash", sa.String(64), nullable=True),
    # The checkout session that started it (migration 0013); None for a payment made by POST /v1/payments.
    sa.Column("checkout_session_id", sa.String(40), nullable=True),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    # Its latest reversal, and when one succeeded (migration 0020, core.reversals).
    sa.Column("reversal_id", sa.String(40), nullable=True),
    sa.Column("reversed_at", UTCDateTime(), nullable=True),
)
# Listing is newest first within a tenant; ids sort by creation time, so (tenant, id) serves
# cursor pages and (tenant, status, id) serves the usual status filter — created_gte/created_lte
# included, as id bounds (SqlPaymentRepository.list).
sa.Index("ix_payments_tenant_id", payments.c.project_id, payments.c.mode, payments.c.id)
sa.Index("ix_payments_tenant_status_id", payments.c.project_id, payments.c.mode, payments.c.status, payments.c.id)
# Daily totals (GET /v1/payments/totals) read this index alone: the tenant's payments in a time
# range with their status and amount (migration 0005).
sa.Index(
    "ix_payments_tenant_created",
    payments.c.project_id,
    payments.c.mode,
    payments.c.created_at,
    payments.c.status,
    payments.c.amount,
)
sa.Index("ix_payments_tenant_phone", payments.c.project_id, payments.c.mode, payments.c.phone)
sa.Index("ix_payments_phone_short_code", payments.c.phone, payments.c.business_short_code, payments.c.created_at)
sa.Index("ix_payments_tenant_reference", payments.c.project_id, payments.c.mode, payments.c.account_reference)
sa.Index("ix_payments_next_query_at", payments.c.next_query_at)
# The dashboard's payment search (storage/payment_search.py, migration 0011): the amount sorts
# keyset pages, and an M-Pesa receipt typed into the search box.
sa.Index("ix_payments_tenant_amount_id", payments.c.project_id, payments.c.mode, payments.c.amount, payments.c.id)
sa.Index("ix_payments_mpesa_receipt_number", payments.c.mpesa_receipt_number)
sa.Index("ix_payments_checkout_session_id", payments.c.checkout_session_id)

# A checkout session takes at most one payment in flight (`active_payment_id`, claimed by a
# conditional UPDATE) and is paid at most once (core/checkout/payments.py). Migration 0013.
checkout_sessions = sa.Table(
    "checkout_sessions",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("status", StrEnumType(CheckoutStatus), nullable=False),
    sa.Column("amount", sa.Integer(), nullable=True),
    sa.Column("amount_min", sa.Integer(), nullable=True),
    sa.Column("amount_max", sa.Integer(), nullable=True),
    sa.Column("reference", sa.String(32), nullable=False),
    sa.Column("description", sa.String(32), nullable=False),
    sa.Column("metadata", JSONType, nullable=False),
    sa.Column("success_url", sa.String(2000), nullable=True),
    sa.Column("cancel_url", sa.String(2000), nullable=True),
    sa.Column("url", sa.String(2100), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("client_secret_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("active_payment_id", sa.String(40), nullable=True),
    sa.Column("last_payment_id", sa.String(40), nullable=True),
    sa.Column("paid_payment_id", sa.String(40), nullable=True),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
    # The payment link that opened it (migration 0015); a link's payments are its sessions' payments.
    sa.Column("payment_link_id", sa.String(40), nullable=True),
    # Opened with a publishable key for an amount the browser chose (migration 0016).
    sa.Column("client_side", sa.Boolean(), nullable=False, server_default=sa.false()),
    # The C2B payment (paybill/till) that completed it instead of an STK payment (migration 0023).
    sa.Column("paid_c2b_payment_id", sa.String(40), nullable=True),
    sa.CheckConstraint(
        "(amount IS NOT NULL AND amount > 0 AND amount_min IS NULL AND amount_max IS NULL) OR "
        "(amount IS NULL AND amount_min > 0 AND amount_max >= amount_min)",
        name="amount_fixed_or_range",
    ),
)
_cs = checkout_sessions.c
sa.Index("ix_checkout_sessions_tenant_id", _cs.project_id, _cs.mode, _cs.id)
# The expiry pass: open sessions by expiry.
sa.Index("ix_checkout_sessions_status_expires_at", _cs.status, _cs.expires_at)
sa.Index("ix_checkout_sessions_payment_link_id", _cs.payment_link_id)

# A payment link (`plink_…`) opens a checkout session per visit of `/l/{slug}`; `slug` is unique
# across projects (the public URL names no project). Migration 0015.
payment_links = sa.Table(
    "payment_links",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("slug", sa.String(32), nullable=False, unique=True),
    sa.Column("title", sa.String(100), nullable=False),
    sa.Column("description", sa.String(500), nullable=False),
    sa.Column("amount", sa.Integer(), nullable=True),
    sa.Column("amount_min", sa.Integer(), nullable=True),
    sa.Column("amount_max", sa.Integer(), nullable=True),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("max_payments", sa.Integer(), nullable=True),
    sa.Column("collect", JSONType, nullable=False),
    sa.Column("metadata", JSONType, nullable=False),
    sa.Column("url", sa.String(2100), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint(
        "(amount IS NOT NULL AND amount > 0 AND amount_min IS NULL AND amount_max IS NULL) OR "
        "(amount IS NULL AND amount_min > 0 AND amount_max >= amount_min)",
        name="amount_fixed_or_range",
    ),
)
_pl = payment_links.c
sa.Index("ix_payment_links_tenant_id", _pl.project_id, _pl.mode, _pl.id)

payment_evidence = sa.Table(
    "payment_evidence",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("payment_id", sa.String(40), sa.ForeignKey("payments.id"), nullable=False, index=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("verdict", sa.String(16), nullable=False),
    sa.Column("result_code", sa.String(32), nullable=True),
    sa.Column("result_desc", sa.String(500), nullable=True),
    sa.Column("callback_id", sa.String(40), nullable=True),
    sa.Column("note", sa.String(200), nullable=True),
)

inbound_callbacks = sa.Table(
    "inbound_callbacks",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Column("body", sa.LargeBinary(), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False),
    sa.Column("source_ip", sa.String(64), nullable=True),
    sa.Column("headers", JSONType, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("flag_reason", sa.String(64), nullable=True),
    sa.Column("payment_id", sa.String(40), nullable=True, index=True),
    sa.Column("checkout_request_id", sa.String(64), nullable=True),
    sa.Column("processed_at", UTCDateTime(), nullable=True),
    sa.Column("attempts", sa.Integer(), nullable=False, default=0),
    # After a failed attempt: when the sweep may try again (None: at once), and the error's class.
    sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("last_error", sa.String(64), nullable=True),
)
sa.Index("ix_inbound_callbacks_state_received", inbound_callbacks.c.state, inbound_callbacks.c.received_at)

outbox_events = sa.Table(
    "outbox_events",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("project_id", sa.String(40), nullable=False),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    # What the event is about ("payment", "pay_…"); both None: about no subject (migration 0008).
    sa.Column("subject_type", sa.String(24), nullable=True),
    sa.Column("subject_id", sa.String(40), nullable=True),
    sa.Column("data", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("late_correction", sa.Boolean(), nullable=False, default=False),
    # Set when the webhook dispatcher has made the event's deliveries (core.webhooks.dispatch).
    sa.Column("dispatched_at", UTCDateTime(), nullable=True, index=True),
    # 1, 2, 3… per project and mode, in COMMIT order: filled by the database (triggers, see
    # migration 0004), never by the code. Live streams resume with "position > n" (SqlEventRepository).
    sa.Column("position", sa.BigInteger(), nullable=True, server_default=sa.FetchedValue()),
)
sa.Index("ix_outbox_events_tenant_id", outbox_events.c.project_id, outbox_events.c.mode, outbox_events.c.id)
sa.Index("ix_outbox_events_created_at", outbox_events.c.created_at)  # retention pruning
sa.Index("ix_outbox_events_tenant_position", outbox_events.c.project_id, outbox_events.c.mode, outbox_events.c.position)
# One subject's events in commit order (live streams of one payment, `for_payment`), and a
# tenant's events about one subject newest first (`GET /v1/events?subject=`).
sa.Index("ix_outbox_events_subject", outbox_events.c.subject_type, outbox_events.c.subject_id, outbox_events.c.position)
sa.Index(
    "ix_outbox_events_tenant_subject",
    outbox_events.c.project_id,
    outbox_events.c.mode,
    outbox_events.c.subject_type,
    outbox_events.c.subject_id,
    outbox_events.c.id,
)

# The last `outbox_events.position` given in each project mode. A counter of its own, not
# max(position) + 1: pruning old events must never make the numbers start again.
outbox_sequence = sa.Table(
    "outbox_sequence",
    metadata,
    sa.Column("project_id", sa.String(40), primary_key=True),
    sa.Column("mode", sa.String(8), primary_key=True),
    sa.Column("last", sa.BigInteger(), nullable=False),
)

# --- webhooks (core.webhooks) -------------------------------------------------------------------------

webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("enabled_events", JSONType, nullable=False),
    sa.Column("description", sa.String(500), nullable=True),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("secret_sealed", sa.Text(), nullable=False),
    sa.Column("previous_secret_sealed", sa.Text(), nullable=True),
    sa.Column("previous_secret_expires_at", UTCDateTime(), nullable=True),
    sa.Column("failing_since", UTCDateTime(), nullable=True),
    sa.Column("disabled_reason", sa.String(32), nullable=True),
    sa.Column("disabled_at", UTCDateTime(), nullable=True),
    sa.Column("deleted_at", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("failing_notified_at", UTCDateTime(), nullable=True),  # migration 0011
)
sa.Index("ix_webhook_endpoints_tenant", webhook_endpoints.c.project_id, webhook_endpoints.c.mode)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("event_id", sa.String(40), sa.ForeignKey("outbox_events.id"), nullable=False, index=True),
    sa.Column("endpoint_id", sa.String(40), sa.ForeignKey("webhook_endpoints.id"), nullable=False),
    sa.Column("subject_type", sa.String(24), nullable=True),  # copied from the event
    sa.Column("subject_id", sa.String(40), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("redelivery", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("first_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("last_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("claimed_by", sa.String(100), nullable=True),
    sa.Column("lease_until", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
)
# Claims: pending deliveries by due time; order: the pending deliveries of one (endpoint, subject).
sa.Index(
    "ix_webhook_deliveries_status_next",
    webhook_deliveries.c.status,
    webhook_deliveries.c.next_attempt_at,
    webhook_deliveries.c.id,  # the claim's ORDER BY next_attempt_at, id (migration 0009)
)
sa.Index(
    "ix_webhook_deliveries_endpoint_subject",
    webhook_deliveries.c.endpoint_id,
    webhook_deliveries.c.subject_type,
    webhook_deliveries.c.subject_id,
    webhook_deliveries.c.status,
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("delivery_id", sa.String(40), sa.ForeignKey("webhook_deliveries.id"), nullable=False, index=True),
    sa.Column("attempted_at", UTCDateTime(), nullable=False),
    sa.Column("succeeded", sa.Boolean(), nullable=False),
    sa.Column("status_code", sa.Integer(), nullable=True),
    sa.Column("latency_ms", sa.Integer(), nullable=False),
    sa.Column("response_body", sa.Text(), nullable=True),
    sa.Column("error", sa.String(500), nullable=True),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("scope", sa.String(64), primary_key=True),  # "<project id>:<mode>" or "admin"
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # in_progress | unanswered | completed
    sa.Column("response_status", sa.Integer(), nullable=True),
    sa.Column("response_body", sa.LargeBinary(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False, index=True),
    # The claim's random token: only the request holding the claim binds, completes or releases.
    sa.Column("owner", sa.String(64), nullable=True),
    # What the request created, written in the transaction that created it (migration 0007).
    sa.Column("resource_id", sa.String(40), nullable=True),
    sa.Column("resource_secret", sa.Text(), nullable=True),  # its client secret, sealed
)


# --- the dashboard's people (migration 0010) ---------------------------------------------------

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),  # lower-cased
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("is_admin", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("disabled_at", UTCDateTime(), nullable=True),
    sa.Column("failed_logins", sa.Integer(), nullable=False),
    sa.Column("locked_until", UTCDateTime(), nullable=True),
    sa.Column("last_login_at", UTCDateTime(), nullable=True),
    sa.Column("language", sa.String(8), nullable=False),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), primary_key=True, index=True),
    sa.Column("role", StrEnumType(Role), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

dashboard_sessions = sa.Table(
    "dashboard_sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # sha256 of the cookie's token
    sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("last_seen_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("project_id", sa.String(40), nullable=True),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.String(300), nullable=True),
)

one_time_tokens = sa.Table(
    "one_time_tokens",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # sha256 of the link's token
    sa.Column("kind", StrEnumType(TokenKind), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("user_id", sa.String(40), nullable=True),
    sa.Column("project_id", sa.String(40), nullable=True, index=True),
    sa.Column("role", StrEnumType(Role), nullable=True),
    sa.Column("created_by", sa.String(40), nullable=True),
    sa.Column("used_at", UTCDateTime(), nullable=True),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("user_id", sa.String(40), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("project_id", sa.String(40), nullable=True),
    sa.Column("target", sa.String(320), nullable=True),
    sa.Column("detail", sa.String(500), nullable=True),
)
sa.Index("ix_audit_log_project_id", audit_log.c.project_id, audit_log.c.id)

# C2B (migration 0018, docs/c2b.md): settings per project mode, URL registrations per short code,
# validation answers, incoming payments (c2b_…) and the payments merchants expect (exp_…).
c2b_settings = sa.Table(
    "c2b_settings",
    metadata,
    sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), primary_key=True),
    sa.Column("mode", sa.String(8), primary_key=True),
    sa.Column("validation_rule", StrEnumType(ValidationRule), nullable=False),
    sa.Column("merchant_url", sa.String(2048), nullable=True),
    sa.Column("default_action", StrEnumType(DefaultAction), nullable=False),
    sa.Column("secret_sealed", sa.Text(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

c2b_registrations = sa.Table(
    "c2b_registrations",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("short_code", sa.String(16), nullable=False),
    sa.Column("response_type", sa.String(16), nullable=False),
    sa.Column("validation", sa.Boolean(), nullable=False),
    sa.Column("api_version", sa.Integer(), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("validation_url", sa.String(2100), nullable=False),
    sa.Column("confirmation_url", sa.String(2100), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("failure", sa.String(500), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("project_id", "mode", "short_code"),
)

c2b_validations = sa.Table(
    "c2b_validations",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("project_id", sa.String(40), nullable=True),
    sa.Column("mode", sa.String(8), nullable=True),
    sa.Column("registration_id", sa.String(40), nullable=True),
    sa.Column("callback_id", sa.String(40), nullable=False),
    sa.Column("trans_id", sa.String(64), nullable=True),
    sa.Column("short_code", sa.String(16), nullable=True),
    sa.Column("amount", sa.Integer(), nullable=True),
    sa.Column("bill_ref_number", sa.String(64), nullable=True),
    sa.Column("accepted", sa.Boolean(), nullable=False),
    sa.Column("result_code", sa.String(16), nullable=False),
    sa.Column("decided_by", StrEnumType(DecidedBy), nullable=False),
    sa.Column("latency_ms", sa.Integer(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)
sa.Index(
    "ix_c2b_validations_tenant_trans_id",
    c2b_validations.c.project_id,
    c2b_validations.c.mode,
    c2b_validations.c.trans_id,
)

c2b_payments = sa.Table(
    "c2b_payments",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("registration_id", sa.String(40), nullable=False),
    sa.Column("callback_id", sa.String(40), nullable=False),
    sa.Column("trans_id", sa.String(64), nullable=False),
    sa.Column("transaction_type", sa.String(32), nullable=False),
    sa.Column("trans_time", UTCDateTime(), nullable=False),
    sa.Column("amount", sa.Integer(), nullable=False),
    sa.Column("short_code", sa.String(16), nullable=False),
    sa.Column("bill_ref_number", sa.String(64), nullable=False),
    sa.Column("reference_key", sa.String(64), nullable=False),
    sa.Column("invoice_number", sa.String(64), nullable=False),
    sa.Column("org_account_balance", sa.String(32), nullable=True),
    sa.Column("third_party_trans_id", sa.String(64), nullable=False),
    sa.Column("msisdn", sa.String(80), nullable=False),
    sa.Column("msisdn_kind", sa.String(8), nullable=False),
    sa.Column("customer_name", sa.String(200), nullable=False),
    sa.Column("status", StrEnumType(C2BStatus), nullable=False),
    sa.Column("matched_type", StrEnumType(MatchTarget), nullable=True),
    sa.Column("matched_id", sa.String(40), nullable=True),
    sa.Column("matched_by", sa.String(8), nullable=True),
    sa.Column("matched_at", UTCDateTime(), nullable=True),
    sa.Column("duplicate_of", sa.String(40), nullable=True),
    sa.Column("note", sa.String(500), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("project_id", "mode", "trans_id"),
)
_c2b = c2b_payments.c
sa.Index("ix_c2b_payments_tenant_id", _c2b.project_id, _c2b.mode, _c2b.id)
sa.Index("ix_c2b_payments_tenant_reference_key", _c2b.project_id, _c2b.mode, _c2b.reference_key)
# What a payment link or checkout session was paid by over C2B (migration 0023: a link's totals).
sa.Index("ix_c2b_payments_matched_id", _c2b.matched_id)

expected_payments = sa.Table(
    "expected_payments",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("reference", sa.String(32), nullable=False),
    sa.Column("reference_key", sa.String(32), nullable=False),
    sa.Column("amount", sa.Integer(), nullable=False),
    sa.Column("phone", sa.String(16), nullable=True),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("metadata", JSONType, nullable=False),
    sa.Column("status", StrEnumType(ExpectedStatus), nullable=False),
    sa.Column("c2b_payment_id", sa.String(40), nullable=True),
    sa.Column("paid_at", UTCDateTime(), nullable=True),
    sa.Column("cancelled_at", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)
_exp = expected_payments.c
sa.Index("ix_expected_payments_tenant_id", _exp.project_id, _exp.mode, _exp.id)
sa.Index("ix_expected_payments_tenant_reference_key", _exp.project_id, _exp.mode, _exp.reference_key)

# Reversals of succeeded payments (migration 0020, core.reversals): at most one open or succeeded
# per payment, checked under the payment's lock (core/reversals/service.py).
reversals = sa.Table(
    "reversals",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("payment_id", sa.String(40), sa.ForeignKey("payments.id"), nullable=False, index=True),
    sa.Column("status", StrEnumType(ReversalStatus), nullable=False),
    sa.Column("amount", sa.Integer(), nullable=False),
    sa.Column("original_receipt", sa.String(32), nullable=False),
    sa.Column("short_code", sa.String(16), nullable=False),
    sa.Column("daraja_environment", sa.String(16), nullable=False),
    sa.Column("callback_token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("remarks", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("conversation_id", sa.String(64), nullable=True),
    sa.Column("originator_conversation_id", sa.String(64), nullable=True),
    sa.Column("receipt", sa.String(32), nullable=True),
    sa.Column("result_code", sa.String(32), nullable=True),
    sa.Column("result_desc", sa.String(500), nullable=True),
    sa.Column("failure_code", sa.String(64), nullable=True),
    sa.Column("failure_message", sa.String(500), nullable=True),
    sa.Column("sent_at", UTCDateTime(), nullable=True),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
    sa.Column("next_query_at", UTCDateTime(), nullable=True),
    sa.Column("query_attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("not_found_count", sa.Integer(), nullable=False, server_default="0"),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
)
sa.Index("ix_reversals_tenant_id", reversals.c.project_id, reversals.c.mode, reversals.c.id)
sa.Index("ix_reversals_status_created", reversals.c.status, reversals.c.created_at)
sa.Index("ix_reversals_next_query_at", reversals.c.next_query_at)

# Account Balance queries (migration 0020, core.balances): accounts in whole shillings, as JSON.
balance_queries = sa.Table(
    "balance_queries",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("status", StrEnumType(BalanceQueryStatus), nullable=False),
    sa.Column("short_code", sa.String(16), nullable=False),
    sa.Column("daraja_environment", sa.String(16), nullable=False),
    sa.Column("callback_token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("conversation_id", sa.String(64), nullable=True),
    sa.Column("originator_conversation_id", sa.String(64), nullable=True),
    sa.Column("result_code", sa.String(32), nullable=True),
    sa.Column("result_desc", sa.String(500), nullable=True),
    sa.Column("failure_code", sa.String(64), nullable=True),
    sa.Column("failure_message", sa.String(500), nullable=True),
    sa.Column("accounts", JSONType, nullable=False),
    sa.Column("balances_at", UTCDateTime(), nullable=True),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
)
sa.Index("ix_balance_queries_tenant_id", balance_queries.c.project_id, balance_queries.c.mode, balance_queries.c.id)
sa.Index("ix_balance_queries_status_created", balance_queries.c.status, balance_queries.c.created_at)

# B2C payouts (`po_…`, core/payouts/) and their per-project settings; Transaction Status queries
# (`tsq_…`, core/status_queries/). Migration 0019.
payouts = sa.Table(
    "payouts",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("status", StrEnumType(PayoutStatus), nullable=False),
    sa.Column("amount", sa.Integer(), nullable=False),
    sa.Column("phone", sa.String(16), nullable=False),
    sa.Column("command_id", sa.String(32), nullable=False),
    sa.Column("remarks", sa.String(100), nullable=False),
    sa.Column("occasion", sa.String(100), nullable=False),
    sa.Column("metadata", JSONType, nullable=False),
    sa.Column("short_code", sa.String(16), nullable=False),
    sa.Column("daraja_environment", sa.String(16), nullable=False),
    sa.Column("api_version", sa.String(4), nullable=False),
    sa.Column("originator_conversation_id", sa.String(64), nullable=False),
    sa.Column("callback_token_hash", sa.String(64), nullable=True, unique=True),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("approved_by", sa.String(64), nullable=True),
    sa.Column("approved_at", UTCDateTime(), nullable=True),
    sa.Column("rejected_by", sa.String(64), nullable=True),
    sa.Column("rejection_reason", sa.String(200), nullable=True),
    sa.Column("conversation_id", sa.String(64), nullable=True),
    sa.Column("receipt", sa.String(32), nullable=True),
    sa.Column("recipient_name", sa.String(200), nullable=True),
    sa.Column("result_code", sa.String(32), nullable=True),
    sa.Column("result_desc", sa.String(500), nullable=True),
    sa.Column("failure_code", sa.String(64), nullable=True),
    sa.Column("failure_message", sa.String(500), nullable=True),
    sa.Column("sending_at", UTCDateTime(), nullable=True),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
    sa.Column("needs_attention", sa.Boolean(), nullable=False),
    sa.Column("attention_reason", sa.String(64), nullable=True),
    sa.Column("query_attempts", sa.Integer(), nullable=False),
    sa.Column("next_query_at", UTCDateTime(), nullable=True),
    sa.Column("not_found_count", sa.Integer(), nullable=False),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
)
_po = payouts.c
sa.Index("ix_payouts_tenant_id", _po.project_id, _po.mode, _po.id)
sa.Index("ix_payouts_tenant_created", _po.project_id, _po.mode, _po.created_at, _po.status, _po.amount)
sa.Index("ix_payouts_status_updated_at", _po.status, _po.updated_at)
sa.Index("ix_payouts_next_query_at", _po.next_query_at)

payout_settings = sa.Table(
    "payout_settings",
    metadata,
    sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), primary_key=True),
    sa.Column("mode", sa.String(8), primary_key=True),
    sa.Column("approval_required", sa.Boolean(), nullable=False),
    sa.Column("max_amount", sa.Integer(), nullable=True),
    sa.Column("daily_limit", sa.Integer(), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

status_queries = sa.Table(
    "status_queries",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("status", StrEnumType(StatusQueryStatus), nullable=False),
    sa.Column("transaction_id", sa.String(32), nullable=False),
    sa.Column("originator_conversation_id", sa.String(64), nullable=False),
    sa.Column("short_code", sa.String(16), nullable=False),
    sa.Column("callback_token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("payout_id", sa.String(40), nullable=True),
    sa.Column("conversation_id", sa.String(64), nullable=True),
    sa.Column("result_code", sa.String(32), nullable=True),
    sa.Column("result_desc", sa.String(500), nullable=True),
    sa.Column("result", JSONType, nullable=True),
    sa.Column("failure_code", sa.String(64), nullable=True),
    sa.Column("failure_message", sa.String(500), nullable=True),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
    sa.Column("reversal_id", sa.String(40), nullable=True),
)
_sq = status_queries.c
sa.Index("ix_status_queries_tenant_id", _sq.project_id, _sq.mode, _sq.id)
sa.Index("ix_status_queries_payout_id", _sq.payout_id)
sa.Index("ix_status_queries_reversal_id", _sq.reversal_id)
sa.Index("ix_status_queries_status_created", _sq.status, _sq.created_at)
