"""B2C payouts, their per-project settings, and Transaction Status queries

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 23:00:00.000000

`payouts` (`po_…`, core/payouts/): one B2C payment each, with its OriginatorConversationID (ours,
sent once), the callback token's SHA-256 (made when it is sent), who created and who approved it,
and its settlement state (`next_query_at`, `not_found_count`). `payout_settings`: approval and
limits per project mode. `status_queries` (`tsq_…`, core/status_queries/): Transaction Status
queries asked through the API or by the payout reconciler, with the parsed Result.

Other branches add 0017 and 0018; whoever merges them re-chains this one after them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payouts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=16), nullable=False),
        sa.Column("command_id", sa.String(length=32), nullable=False),
        sa.Column("remarks", sa.String(length=100), nullable=False),
        sa.Column("occasion", sa.String(length=100), nullable=False),
        sa.Column("metadata", _JSON, nullable=False),
        sa.Column("short_code", sa.String(length=16), nullable=False),
        sa.Column("daraja_environment", sa.String(length=16), nullable=False),
        sa.Column("api_version", sa.String(length=4), nullable=False),
        sa.Column("originator_conversation_id", sa.String(length=64), nullable=False),
        sa.Column("callback_token_hash", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_at", _TS, nullable=True),
        sa.Column("rejected_by", sa.String(length=64), nullable=True),
        sa.Column("rejection_reason", sa.String(length=200), nullable=True),
        sa.Column("conversation_id", sa.String(length=64), nullable=True),
        sa.Column("receipt", sa.String(length=32), nullable=True),
        sa.Column("recipient_name", sa.String(length=200), nullable=True),
        sa.Column("result_code", sa.String(length=32), nullable=True),
        sa.Column("result_desc", sa.String(length=500), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.String(length=500), nullable=True),
        sa.Column("sending_at", _TS, nullable=True),
        sa.Column("completed_at", _TS, nullable=True),
        sa.Column("needs_attention", sa.Boolean(), nullable=False),
        sa.Column("attention_reason", sa.String(length=64), nullable=True),
        sa.Column("query_attempts", sa.Integer(), nullable=False),
        sa.Column("next_query_at", _TS, nullable=True),
        sa.Column("not_found_count", sa.Integer(), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payouts_amount_positive")),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_payouts_project_id_projects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payouts")),
        sa.UniqueConstraint("callback_token_hash", name=op.f("uq_payouts_callback_token_hash")),
    )
    op.create_index("ix_payouts_tenant_id", "payouts", ["project_id", "mode", "id"])
    op.create_index("ix_payouts_tenant_created", "payouts", ["project_id", "mode", "created_at", "status", "amount"])
    op.create_index("ix_payouts_status_updated_at", "payouts", ["status", "updated_at"])
    op.create_index("ix_payouts_next_query_at", "payouts", ["next_query_at"])
    op.create_table(
        "payout_settings",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("approval_required", sa.Boolean(), nullable=False),
        sa.Column("max_amount", sa.Integer(), nullable=True),
        sa.Column("daily_limit", sa.Integer(), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_payout_settings_project_id_projects")),
        sa.PrimaryKeyConstraint("project_id", "mode", name=op.f("pk_payout_settings")),
    )
    op.create_table(
        "status_queries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("transaction_id", sa.String(length=32), nullable=False),
        sa.Column("originator_conversation_id", sa.String(length=64), nullable=False),
        sa.Column("short_code", sa.String(length=16), nullable=False),
        sa.Column("callback_token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("payout_id", sa.String(length=40), nullable=True),
        sa.Column("conversation_id", sa.String(length=64), nullable=True),
        sa.Column("result_code", sa.String(length=32), nullable=True),
        sa.Column("result_desc", sa.String(length=500), nullable=True),
        sa.Column("result", _JSON, nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.String(length=500), nullable=True),
        sa.Column("completed_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_status_queries_project_id_projects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_queries")),
        sa.UniqueConstraint("callback_token_hash", name=op.f("uq_status_queries_callback_token_hash")),
    )
    op.create_index("ix_status_queries_tenant_id", "status_queries", ["project_id", "mode", "id"])
    op.create_index("ix_status_queries_payout_id", "status_queries", ["payout_id"])


def downgrade() -> None:
    op.drop_index("ix_status_queries_payout_id", table_name="status_queries")
    op.drop_index("ix_status_queries_tenant_id", table_name="status_queries")
    op.drop_table("status_queries")
    op.drop_table("payout_settings")
    for name in (
        "ix_payouts_next_query_at",
        "ix_payouts_status_updated_at",
        "ix_payouts_tenant_created",
        "ix_payouts_tenant_id",
    ):
        op.drop_index(name, table_name="payouts")
    op.drop_table("payouts")
