"""payments: indexes for the dashboard's search (amount sorts, receipt lookup)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 17:30:00.000000

The dashboard lists a tenant's payments by amount with keyset pages (storage/payment_search.py):
(project_id, mode, amount, id) walks that order and starts at the cursor, where without it both
engines read every payment of the tenant and sorted them for each page. A receipt typed into the
search box is found by ix_payments_mpesa_receipt_number instead of a scan of the tenant's rows.
Figures: `python -m bench.dashboard_scale`.

"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_payments_tenant_amount_id", "payments", ["project_id", "mode", "amount", "id"])
    op.create_index("ix_payments_mpesa_receipt_number", "payments", ["mpesa_receipt_number"])


def downgrade() -> None:
    op.drop_index("ix_payments_mpesa_receipt_number", table_name="payments")
    op.drop_index("ix_payments_tenant_amount_id", table_name="payments")
