"""reversals and balance queries

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 23:00:00.000000

`reversals`: one row per attempt to reverse a succeeded payment (core.reversals), with the token
hash of its ResultURL/QueueTimeOutURL. `balance_queries`: Account Balance requests and their
parsed accounts (whole shillings, JSON). `payments` gains `reversal_id` (its latest reversal) and
`reversed_at` (set once one succeeded).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch_op:
        batch_op.add_column(sa.Column("reversal_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("reversed_at", _TS, nullable=True))
    op.create_table(
        "reversals",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("original_receipt", sa.String(length=32), nullable=False),
        sa.Column("short_code", sa.String(length=16), nullable=False),
        sa.Column("daraja_environment", sa.String(length=16), nullable=False),
        sa.Column("callback_token_hash", sa.String(length=64), nullable=False),
        sa.Column("remarks", sa.String(length=100), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=True),
        sa.Column("originator_conversation_id", sa.String(length=64), nullable=True),
        sa.Column("receipt", sa.String(length=32), nullable=True),
        sa.Column("result_code", sa.String(length=32), nullable=True),
        sa.Column("result_desc", sa.String(length=500), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.String(length=500), nullable=True),
        sa.Column("sent_at", _TS, nullable=True),
        sa.Column("completed_at", _TS, nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_reversals_amount_positive")),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], name=op.f("fk_reversals_payment_id_payments")),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_reversals_project_id_projects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reversals")),
        sa.UniqueConstraint("callback_token_hash", name=op.f("uq_reversals_callback_token_hash")),
    )
    op.create_index("ix_reversals_payment_id", "reversals", ["payment_id"])
    op.create_index("ix_reversals_tenant_id", "reversals", ["project_id", "mode", "id"])
    op.create_index("ix_reversals_status_created", "reversals", ["status", "created_at"])
    op.create_table(
        "balance_queries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("short_code", sa.String(length=16), nullable=False),
        sa.Column("daraja_environment", sa.String(length=16), nullable=False),
        sa.Column("callback_token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=True),
        sa.Column("originator_conversation_id", sa.String(length=64), nullable=True),
        sa.Column("result_code", sa.String(length=32), nullable=True),
        sa.Column("result_desc", sa.String(length=500), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.String(length=500), nullable=True),
        sa.Column("accounts", _JSON, nullable=False),
        sa.Column("balances_at", _TS, nullable=True),
        sa.Column("completed_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_balance_queries_project_id_projects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_queries")),
        sa.UniqueConstraint("callback_token_hash", name=op.f("uq_balance_queries_callback_token_hash")),
    )
    op.create_index("ix_balance_queries_tenant_id", "balance_queries", ["project_id", "mode", "id"])


def downgrade() -> None:
    op.drop_index("ix_balance_queries_tenant_id", table_name="balance_queries")
    op.drop_table("balance_queries")
    op.drop_index("ix_reversals_status_created", table_name="reversals")
    op.drop_index("ix_reversals_tenant_id", table_name="reversals")
    op.drop_index("ix_reversals_payment_id", table_name="reversals")
    op.drop_table("reversals")
    with op.batch_alter_table("payments") as batch_op:
        batch_op.drop_column("reversed_at")
        batch_op.drop_column("reversal_id")
