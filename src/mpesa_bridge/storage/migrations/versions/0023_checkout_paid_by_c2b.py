"""checkout sessions completed by a C2B payment

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 03:00:00.000000

`checkout_sessions.paid_c2b_payment_id`: the C2B payment (a customer's paybill or till payment with
the session's reference) that completed the session, when the matching engine or a person in the
review queue tied one to it (core/c2b/confirmation.py). `paid_payment_id` stays the STK payment's.
`ix_c2b_payments_matched_id`: a payment link's totals count the C2B payments matched to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("checkout_sessions") as batch_op:
        batch_op.add_column(sa.Column("paid_c2b_payment_id", sa.String(40), nullable=True))
    op.create_index("ix_c2b_payments_matched_id", "c2b_payments", ["matched_id"])


def downgrade() -> None:
    op.drop_index("ix_c2b_payments_matched_id", table_name="c2b_payments")
    with op.batch_alter_table("checkout_sessions") as batch_op:
        batch_op.drop_column("paid_c2b_payment_id")
