"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 06:30:47.774397
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "inbound_callbacks",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("source_ip", sa.String(length=64), nullable=True),
        sa.Column("headers", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("flag_reason", sa.String(length=64), nullable=True),
        sa.Column("payment_id", sa.String(length=40), nullable=True),
        sa.Column("checkout_request_id", sa.String(length=64), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_callbacks")),
    )
    with op.batch_alter_table("inbound_callbacks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbound_callbacks_payment_id"), ["payment_id"], unique=False)
        batch_op.create_index("ix_inbound_callbacks_state_received", ["state", "received_at"], unique=False)

    op.create_table(
        "outbox_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("late_correction", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
    )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_events_payment_id"), ["payment_id"], unique=False)
        batch_op.create_index("ix_outbox_events_tenant_id", ["project_id", "mode", "id"], unique=False)

    op.create_table(
        "projects",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("display", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_api_keys_project_id_projects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_project_id"), ["project_id"], unique=False)

    op.create_table(
        "daraja_configs",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("short_code", sa.String(length=16), nullable=False),
        sa.Column("shortcode_type", sa.String(length=16), nullable=False),
        sa.Column("till_number", sa.String(length=16), nullable=True),
        sa.Column("consumer_key_sealed", sa.Text(), nullable=False),
        sa.Column("consumer_secret_sealed", sa.Text(), nullable=False),
        sa.Column("passkey_sealed", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_daraja_configs_project_id_projects")),
        sa.PrimaryKeyConstraint("project_id", "mode", name=op.f("pk_daraja_configs")),
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=16), nullable=False),
        sa.Column("account_reference", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=32), nullable=False),
        sa.Column("metadata", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("business_short_code", sa.String(length=16), nullable=False),
        sa.Column("party_b", sa.String(length=16), nullable=False),
        sa.Column("transaction_type", sa.String(length=32), nullable=False),
        sa.Column("daraja_environment", sa.String(length=16), nullable=False),
        sa.Column("callback_token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evidence", sa.SmallInteger(), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.String(length=500), nullable=True),
        sa.Column("result_code", sa.String(length=32), nullable=True),
        sa.Column("result_desc", sa.String(length=500), nullable=True),
        sa.Column("mpesa_receipt_number", sa.String(length=32), nullable=True),
        sa.Column("merchant_request_id", sa.String(length=64), nullable=True),
        sa.Column("checkout_request_id", sa.String(length=64), nullable=True),
        sa.Column("transaction_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("needs_attention", sa.Boolean(), nullable=False),
        sa.Column("attention_reason", sa.String(length=64), nullable=True),
        sa.Column("query_attempts", sa.Integer(), nullable=False),
        sa.Column("next_query_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payments_amount_positive")),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_payments_project_id_projects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("callback_token_hash", name=op.f("uq_payments_callback_token_hash")),
        sa.UniqueConstraint("checkout_request_id", name=op.f("uq_payments_checkout_request_id")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index("ix_payments_next_query_at", ["next_query_at"], unique=False)
        batch_op.create_index("ix_payments_tenant_id", ["project_id", "mode", "id"], unique=False)
        batch_op.create_index("ix_payments_tenant_phone", ["project_id", "mode", "phone"], unique=False)
        batch_op.create_index("ix_payments_tenant_reference", ["project_id", "mode", "account_reference"], unique=False)
        batch_op.create_index("ix_payments_tenant_status_id", ["project_id", "mode", "status", "id"], unique=False)

    op.create_table(
        "payment_evidence",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("result_code", sa.String(length=32), nullable=True),
        sa.Column("result_desc", sa.String(length=500), nullable=True),
        sa.Column("callback_id", sa.String(length=40), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], name=op.f("fk_payment_evidence_payment_id_payments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_evidence")),
    )
    with op.batch_alter_table("payment_evidence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_evidence_payment_id"), ["payment_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("payment_evidence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_evidence_payment_id"))

    op.drop_table("payment_evidence")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_tenant_status_id")
        batch_op.drop_index("ix_payments_tenant_reference")
        batch_op.drop_index("ix_payments_tenant_phone")
        batch_op.drop_index("ix_payments_tenant_id")
        batch_op.drop_index("ix_payments_next_query_at")

    op.drop_table("payments")
    op.drop_table("daraja_configs")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_project_id"))

    op.drop_table("api_keys")
    op.drop_table("projects")
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_events_tenant_id")
        batch_op.drop_index(batch_op.f("ix_outbox_events_payment_id"))

    op.drop_table("outbox_events")
    with op.batch_alter_table("inbound_callbacks", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_callbacks_state_received")
        batch_op.drop_index(batch_op.f("ix_inbound_callbacks_payment_id"))

    op.drop_table("inbound_callbacks")
