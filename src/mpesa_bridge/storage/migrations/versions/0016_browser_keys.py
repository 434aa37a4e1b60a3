"""publishable keys, client-side amounts and allowed origins

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 20:30:00.000000

A project mode's publishable key (`pk_test_…`, `pk_live_…`) names the project in a browser. It is
no secret: stored as it is, unique. Every existing project gets one per mode here; new projects get
theirs when they are created (`ProjectService.create_project`).

`projects` gains the browser settings: `client_side_amounts` (may a publishable key open a checkout
session for an amount the browser chose; off), `client_side_amount_max` (the most such an amount
may be; none: the payment limits) and `allowed_origins` (the sites whose pages may call the
client-secret routes and the publishable-key route; empty: the server-wide list). A session opened
with a publishable key is marked `checkout_sessions.client_side` (its payments count against the
per-phone limit for browser-chosen amounts).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _new_key(mode: str) -> str:
    # The same shape as core.projects.generate_publishable_key (a migration does not import the app).
    return f"pk_{mode}_" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch_op:
        batch_op.add_column(sa.Column("client_side_amounts", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("client_side_amount_max", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("allowed_origins", _JSON, nullable=False, server_default=sa.text("'[]'")))
    with op.batch_alter_table("checkout_sessions") as batch_op:
        batch_op.add_column(sa.Column("client_side", sa.Boolean(), nullable=False, server_default=sa.false()))
    keys = op.create_table(
        "publishable_keys",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_publishable_keys_project_id_projects")),
        sa.PrimaryKeyConstraint("project_id", "mode", name=op.f("pk_publishable_keys")),
        sa.UniqueConstraint("key", name=op.f("uq_publishable_keys_key")),
    )
    bind = op.get_bind()
    projects = bind.execute(sa.text("SELECT id FROM projects")).scalars().all()
    now = datetime.now(UTC)
    if bind.dialect.name == "sqlite":  # stored naive UTC there, as storage/types.py UTCDateTime does
        now = now.replace(tzinfo=None)
    rows = [
        {"project_id": project_id, "mode": mode, "key": _new_key(mode), "created_at": now}
        for project_id in projects
        for mode in ("test", "live")
    ]
    if rows:
        op.bulk_insert(keys, rows)


def downgrade() -> None:
    op.drop_table("publishable_keys")
    with op.batch_alter_table("checkout_sessions") as batch_op:
        batch_op.drop_column("client_side")
    with op.batch_alter_table("projects") as batch_op:
        batch_op.drop_column("allowed_origins")
        batch_op.drop_column("client_side_amount_max")
        batch_op.drop_column("client_side_amounts")
