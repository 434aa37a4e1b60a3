"""webhook deliveries: the claim's order (status, next_attempt_at, id) served by one index

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 15:10:00.000000

A delivery worker claims the due deliveries "ORDER BY next_attempt_at, id LIMIT n". The index on
(status, next_attempt_at) could not give that order (the id breaks ties), so PostgreSQL read every
due delivery, checked each against the per-subject order, and sorted them all to keep ten: ~100 ms
with 50,000 due (`make bench`, B4). With `id` in the index the planner walks it in claim order and
stops at the tenth claimable row.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_webhook_deliveries_status_next"


def upgrade() -> None:
    op.drop_index(INDEX, table_name="webhook_deliveries")
    op.create_index(INDEX, "webhook_deliveries", ["status", "next_attempt_at", "id"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="webhook_deliveries")
    op.create_index(INDEX, "webhook_deliveries", ["status", "next_attempt_at"])
