"""the earlier system's payment calls, per project

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 23:30:00.000000

`projects.legacy_api`: whether the bridge answers the earlier (Node) system's two payment calls,
`POST /api/v1/transactions/stk-push` and `GET /api/v1/transactions/status/{id}`, for the project
(api/legacy.py, docs/migrating.md). Off for every project, existing ones included.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch_op:
        batch_op.add_column(sa.Column("legacy_api", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch_op:
        batch_op.drop_column("legacy_api")
