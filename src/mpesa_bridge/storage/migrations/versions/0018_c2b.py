"""C2B: settings, URL registrations, validation answers, incoming payments, expected payments

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 23:00:00.000000

docs/c2b.md. `c2b_settings` holds a project mode's validation rule, the merchant's URL, the default
answer and the sealed signing secret (`c2b:<project>:<mode>`); `c2b_registrations` the URLs
registered per short code (the SHA-256 of their token, unique); `c2b_validations` every validation
answer and which path decided it; `c2b_payments` the confirmations, one per (tenant, TransID);
`expected_payments` what merchants declared they expect.

Another branch adds a 0017 revision; whoever merges both re-chains this one after it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "c2b_settings",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("validation_rule", sa.String(length=16), nullable=False),
        sa.Column("merchant_url", sa.String(length=2048), nullable=True),
        sa.Column("default_action", sa.String(length=16), nullable=False),
        sa.Column("secret_sealed", sa.Text(), nullable=True),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_c2b_settings_project_id_projects")),
        sa.PrimaryKeyConstraint("project_id", "mode", name=op.f("pk_c2b_settings")),
    )
    op.create_table(
        "c2b_registrations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("short_code", sa.String(length=16), nullable=False),
        sa.Column("response_type", sa.String(length=16), nullable=False),
        sa.Column("validation", sa.Boolean(), nullable=False),
        sa.Column("api_version", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("validation_url", sa.String(length=2100), nullable=False),
        sa.Column("confirmation_url", sa.String(length=2100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure", sa.String(length=500), nullable=True),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_c2b_registrations_project_id_projects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_c2b_registrations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_c2b_registrations_token_hash")),
        sa.UniqueConstraint(
            "project_id", "mode", "short_code", name=op.f("uq_c2b_registrations_project_id_mode_short_code")
        ),
    )
    op.create_table(
        "c2b_validations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=True),
        sa.Column("mode", sa.String(length=8), nullable=True),
        sa.Column("registration_id", sa.String(length=40), nullable=True),
        sa.Column("callback_id", sa.String(length=40), nullable=False),
        sa.Column("trans_id", sa.String(length=64), nullable=True),
        sa.Column("short_code", sa.String(length=16), nullable=True),
        sa.Column("amount", sa.Integer(), nullable=True),
        sa.Column("bill_ref_number", sa.String(length=64), nullable=True),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("result_code", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=16), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_c2b_validations")),
    )
    op.create_index("ix_c2b_validations_tenant_trans_id", "c2b_validations", ["project_id", "mode", "trans_id"])
    op.create_table(
        "c2b_payments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("registration_id", sa.String(length=40), nullable=False),
        sa.Column("callback_id", sa.String(length=40), nullable=False),
        sa.Column("trans_id", sa.String(length=64), nullable=False),
        sa.Column("transaction_type", sa.String(length=32), nullable=False),
        sa.Column("trans_time", _AT, nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("short_code", sa.String(length=16), nullable=False),
        sa.Column("bill_ref_number", sa.String(length=64), nullable=False),
        sa.Column("reference_key", sa.String(length=64), nullable=False),
        sa.Column("invoice_number", sa.String(length=64), nullable=False),
        sa.Column("org_account_balance", sa.String(length=32), nullable=True),
        sa.Column("third_party_trans_id", sa.String(length=64), nullable=False),
        sa.Column("msisdn", sa.String(length=80), nullable=False),
        sa.Column("msisdn_kind", sa.String(length=8), nullable=False),
        sa.Column("customer_name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("matched_type", sa.String(length=16), nullable=True),
        sa.Column("matched_id", sa.String(length=40), nullable=True),
        sa.Column("matched_by", sa.String(length=8), nullable=True),
        sa.Column("matched_at", _AT, nullable=True),
        sa.Column("duplicate_of", sa.String(length=40), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_c2b_payments_project_id_projects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_c2b_payments")),
        sa.UniqueConstraint("project_id", "mode", "trans_id", name=op.f("uq_c2b_payments_project_id_mode_trans_id")),
    )
    op.create_index("ix_c2b_payments_tenant_id", "c2b_payments", ["project_id", "mode", "id"])
    op.create_index("ix_c2b_payments_tenant_reference_key", "c2b_payments", ["project_id", "mode", "reference_key"])
    op.create_table(
        "expected_payments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("reference_key", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=16), nullable=True),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("metadata", _JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("c2b_payment_id", sa.String(length=40), nullable=True),
        sa.Column("paid_at", _AT, nullable=True),
        sa.Column("cancelled_at", _AT, nullable=True),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_expected_payments_project_id_projects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expected_payments")),
    )
    op.create_index("ix_expected_payments_tenant_id", "expected_payments", ["project_id", "mode", "id"])
    op.create_index(
        "ix_expected_payments_tenant_reference_key", "expected_payments", ["project_id", "mode", "reference_key"]
    )


def downgrade() -> None:
    op.drop_index("ix_expected_payments_tenant_reference_key", table_name="expected_payments")
    op.drop_index("ix_expected_payments_tenant_id", table_name="expected_payments")
    op.drop_table("expected_payments")
    op.drop_index("ix_c2b_payments_tenant_reference_key", table_name="c2b_payments")
    op.drop_index("ix_c2b_payments_tenant_id", table_name="c2b_payments")
    op.drop_table("c2b_payments")
    op.drop_index("ix_c2b_validations_tenant_trans_id", table_name="c2b_validations")
    op.drop_table("c2b_validations")
    op.drop_table("c2b_registrations")
    op.drop_table("c2b_settings")
