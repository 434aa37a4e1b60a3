"""payment links, and the link a checkout session was opened by

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-05 18:30:00.000000

A payment link (`plink_…`, core/links/) opens a checkout session per visit of its public URL
`/l/{slug}`; the slug is unique across projects. A session opened by a link records it in
`checkout_sessions.payment_link_id` (indexed: a link's sessions, hence its payments).

Another branch may add a 0014 revision; whoever merges both re-chains this one after it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "payment_links",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("slug", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=True),
        sa.Column("amount_min", sa.Integer(), nullable=True),
        sa.Column("amount_max", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_payments", sa.Integer(), nullable=True),
        sa.Column("collect", _JSON, nullable=False),
        sa.Column("metadata", _JSON, nullable=False),
        sa.Column("url", sa.String(length=2100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(amount IS NOT NULL AND amount > 0 AND amount_min IS NULL AND amount_max IS NULL) OR "
            "(amount IS NULL AND amount_min > 0 AND amount_max >= amount_min)",
            name=op.f("ck_payment_links_amount_fixed_or_range"),
        ),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_payment_links_project_id_projects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_links")),
        sa.UniqueConstraint("slug", name=op.f("uq_payment_links_slug")),
    )
    op.create_index("ix_payment_links_tenant_id", "payment_links", ["project_id", "mode", "id"])
    with op.batch_alter_table("checkout_sessions") as batch_op:
        batch_op.add_column(sa.Column("payment_link_id", sa.String(length=40), nullable=True))
    op.create_index("ix_checkout_sessions_payment_link_id", "checkout_sessions", ["payment_link_id"])


def downgrade() -> None:
    op.drop_index("ix_checkout_sessions_payment_link_id", table_name="checkout_sessions")
    with op.batch_alter_table("checkout_sessions") as batch_op:
        batch_op.drop_column("payment_link_id")
    op.drop_index("ix_payment_links_tenant_id", table_name="payment_links")
    op.drop_table("payment_links")
