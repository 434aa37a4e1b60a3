"""payments: an index for daily totals

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 10:40:00.000000

`GET /v1/payments/totals` groups a tenant's payments of a time range by day and status and sums
their amounts: (project_id, mode, created_at, status, amount) answers it from the index alone.

PostgreSQL builds it CONCURRENTLY (outside the migration's transaction), so that payments can
still be created and settled while a large table is indexed. If that build is interrupted it
leaves an invalid index behind: drop it (`DROP INDEX ix_payments_tenant_created`) and upgrade again.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_payments_tenant_created"
COLUMNS = ["project_id", "mode", "created_at", "status", "amount"]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.create_index(NAME, "payments", COLUMNS, unique=False, postgresql_concurrently=True)
    else:
        op.create_index(NAME, "payments", COLUMNS, unique=False)


def downgrade() -> None:
    op.drop_index(NAME, table_name="payments")
