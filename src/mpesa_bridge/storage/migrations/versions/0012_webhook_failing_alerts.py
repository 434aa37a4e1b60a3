"""webhook endpoints: when the owners were told of the current failure streak

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 17:40:00.000000

An endpoint failing for a day is reported to its project's owners once per streak
(`core/webhooks/alerts.py`); the streak told is the one whose `failing_since` is not later than
`failing_notified_at`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mpesa_bridge.storage.types import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch_op:
        batch_op.add_column(sa.Column("failing_notified_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch_op:
        batch_op.drop_column("failing_notified_at")
