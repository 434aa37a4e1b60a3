"""checkout sessions, and the session a payment was started by

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 18:00:00.000000

A checkout session (`cs_…`, core/checkout/) lets a browser holding its client secret take one
payment. `active_payment_id` is the payment in flight, claimed by a conditional UPDATE; a payment
started by a session records it in `payments.checkout_session_id` (indexed: a session's payments).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "checkout_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=True),
        sa.Column("amount_min", sa.Integer(), nullable=True),
        sa.Column("amount_max", sa.Integer(), nullable=True),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=32), nullable=False),
        sa.Column("metadata", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("success_url", sa.String(length=2000), nullable=True),
        sa.Column("cancel_url", sa.String(length=2000), nullable=True),
        sa.Column("url", sa.String(length=2100), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active_payment_id", sa.String(length=40), nullable=True),
        sa.Column("last_payment_id", sa.String(length=40), nullable=True),
        sa.Column("paid_payment_id", sa.String(length=40), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(amount IS NOT NULL AND amount > 0 AND amount_min IS NULL AND amount_max IS NULL) OR "
            "(amount IS NULL AND amount_min > 0 AND amount_max >= amount_min)",
            name=op.f("ck_checkout_sessions_amount_fixed_or_range"),
        ),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_checkout_sessions_project_id_projects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkout_sessions")),
    )
    op.create_index("ix_checkout_sessions_tenant_id", "checkout_sessions", ["project_id", "mode", "id"])
    op.create_index("ix_checkout_sessions_status_expires_at", "checkout_sessions", ["status", "expires_at"])
    with op.batch_alter_table("payments") as batch_op:
        batch_op.add_column(sa.Column("checkout_session_id", sa.String(length=40), nullable=True))
    op.create_index("ix_payments_checkout_session_id", "payments", ["checkout_session_id"])


def downgrade() -> None:
    op.drop_index("ix_payments_checkout_session_id", table_name="payments")
    with op.batch_alter_table("payments") as batch_op:
        batch_op.drop_column("checkout_session_id")
    op.drop_index("ix_checkout_sessions_status_expires_at", table_name="checkout_sessions")
    op.drop_index("ix_checkout_sessions_tenant_id", table_name="checkout_sessions")
    op.drop_table("checkout_sessions")
