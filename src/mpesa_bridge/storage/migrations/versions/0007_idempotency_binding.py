"""idempotency keys: bound to what they created, owned by the request that claimed them

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 12:00:00.000000

`owner` is a random token written by each claim: only the request that holds the claim may bind,
complete or release the key, so a request that lost its claim to a takeover changes nothing.
`resource_id` is written in the same transaction that inserts the payment (a recovery point):
once set, every later request with the key answers with that payment and never runs again.
`resource_secret` is the payment's client secret, sealed under the master key, so that a
recovered answer can show it as the first answer would have.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("resource_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("resource_secret", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_column("resource_secret")
        batch_op.drop_column("resource_id")
        batch_op.drop_column("owner")
