"""indexes for the queries given up without a Result

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 03:20:00.000000

`ix_status_queries_status_created`, `ix_balance_queries_status_created`: the maintenance loop looks
for queries still `pending` past MPESA_BRIDGE_QUERY_RESULT_DEADLINE (core/result_deadline.py,
storage/due.py `created_before`); Transaction Status queries grow with every payout and reversal
settled, so that read uses an index instead of a scan.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_status_queries_status_created", "status_queries", ["status", "created_at"])
    op.create_index("ix_balance_queries_status_created", "balance_queries", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_balance_queries_status_created", table_name="balance_queries")
    op.drop_index("ix_status_queries_status_created", table_name="status_queries")
