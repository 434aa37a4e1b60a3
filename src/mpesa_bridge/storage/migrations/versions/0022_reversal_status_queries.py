"""unknown reversals settled by Transaction Status

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 02:40:00.000000

`reversals.next_query_at`, `query_attempts`, `not_found_count`: when the reconciler next asks
Transaction Status about a reversal that is `unknown` (or `sent` with no Result for too long) and
whose OriginatorConversationID we know; how often it asked; how many "no such transaction"
answers it got. `status_queries.reversal_id`: the reversal a query was asked about, so that its
Result settles it (core/reversals/reconcile.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("reversals") as batch_op:
        batch_op.add_column(sa.Column("next_query_at", _TS, nullable=True))
        batch_op.add_column(sa.Column("query_attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("not_found_count", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_index("ix_reversals_next_query_at", ["next_query_at"])
    with op.batch_alter_table("status_queries") as batch_op:
        batch_op.add_column(sa.Column("reversal_id", sa.String(40), nullable=True))
        batch_op.create_index("ix_status_queries_reversal_id", ["reversal_id"])


def downgrade() -> None:
    with op.batch_alter_table("status_queries") as batch_op:
        batch_op.drop_index("ix_status_queries_reversal_id")
        batch_op.drop_column("reversal_id")
    with op.batch_alter_table("reversals") as batch_op:
        batch_op.drop_index("ix_reversals_next_query_at")
        batch_op.drop_column("not_found_count")
        batch_op.drop_column("query_attempts")
        batch_op.drop_column("next_query_at")
