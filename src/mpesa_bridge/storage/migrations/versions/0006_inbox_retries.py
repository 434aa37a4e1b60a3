"""inbound_callbacks: bounded retries of a callback whose handling failed

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 12:00:00.000000

A failed attempt is recorded in a transaction of its own: `attempts` counts it, `last_error`
keeps the error's class (never its message) and `next_attempt_at` says when the sweep may try
again; after the last attempt the row's state is `failed`. The sweep reads `received` rows whose
`next_attempt_at` is null (never tried) or past, oldest first, through the existing
(state, received_at) index: only rows still `received` are scanned, and they are few.

Both columns are nullable and have no default, so adding them rewrites nothing, and a process of
the previous version still inserting callbacks during a rolling upgrade leaves rows that are due
at once, as they should be.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_callbacks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbound_callbacks", schema=None) as batch_op:
        batch_op.drop_column("last_error")
        batch_op.drop_column("next_attempt_at")
