"""the initiator of a project mode's Daraja settings

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 23:00:00.000000

B2C, reversal, transaction status and account balance name an initiator and prove it with a
SecurityCredential: the initiator's password encrypted with the environment's certificate.
`daraja_configs` gains the initiator's name and its password, sealed under the master key like the
other Daraja secrets (associated data `daraja:<project id>:<mode>`). Both empty: those APIs are
not set up for the mode. Nothing is filled in here (a migration holds no master key): the
development project gets the simulator's initiator when `mpesa-bridge dev` next starts.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("daraja_configs") as batch_op:
        batch_op.add_column(sa.Column("initiator_name", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("initiator_password_sealed", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("daraja_configs") as batch_op:
        batch_op.drop_column("initiator_password_sealed")
        batch_op.drop_column("initiator_name")
