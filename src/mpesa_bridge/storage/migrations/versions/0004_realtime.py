"""realtime: payment client secrets; events numbered in commit order for live streams

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 09:12:03.512730

`outbox_events.position` numbers a project mode's events 1, 2, 3… in the order they COMMIT, so
that a live stream resuming after event n asks for "position > n" and can neither skip an event
that committed late with a smaller id nor repeat one. The database fills it, so every writer —
the payment services, the webhook worker, any later one — gets it without knowing about it:

- a per-(project, mode) counter row in `outbox_sequence`, bumped by a trigger on each insert;
- PostgreSQL: a BEFORE INSERT trigger. The bump's row lock is held until the transaction ends,
  so the next writer of the same project mode takes its number only after this one committed
  (or rolled back, giving the number back): numbers become visible in order, without gaps.
- SQLite: an AFTER INSERT trigger. One writer at a time already orders the commits.

Events written before this revision are numbered in id order.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION outbox_events_position() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.position IS NULL THEN
        INSERT INTO outbox_sequence (project_id, mode, last) VALUES (NEW.project_id, NEW.mode, 1)
        ON CONFLICT (project_id, mode) DO UPDATE SET last = outbox_sequence.last + 1
        RETURNING last INTO NEW.position;
    END IF;
    RETURN NEW;
END
$$
"""
PG_TRIGGER = """
CREATE TRIGGER outbox_events_position BEFORE INSERT ON outbox_events
FOR EACH ROW EXECUTE FUNCTION outbox_events_position()
"""
# A batch migration that rebuilds outbox_events on SQLite drops this trigger: run it again after.
SQLITE_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS outbox_events_position AFTER INSERT ON outbox_events
FOR EACH ROW WHEN NEW.position IS NULL
BEGIN
    INSERT INTO outbox_sequence (project_id, mode, last) VALUES (NEW.project_id, NEW.mode, 1)
    ON CONFLICT (project_id, mode) DO UPDATE SET last = last + 1;
    UPDATE outbox_events SET position = (
        SELECT last FROM outbox_sequence WHERE project_id = NEW.project_id AND mode = NEW.mode
    ) WHERE id = NEW.id;
END
"""


def upgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("client_secret_hash", sa.String(length=64), nullable=True))

    op.create_table(
        "outbox_sequence",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "mode", name=op.f("pk_outbox_sequence")),
    )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("position", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_outbox_events_tenant_position", ["project_id", "mode", "position"], unique=False)
    op.execute(
        """
        UPDATE outbox_events SET position = numbered.n
        FROM (
            SELECT id, row_number() OVER (PARTITION BY project_id, mode ORDER BY id) AS n FROM outbox_events
        ) AS numbered
        WHERE outbox_events.id = numbered.id
        """
    )
    op.execute(
        """
        INSERT INTO outbox_sequence (project_id, mode, last)
        SELECT project_id, mode, max(position) FROM outbox_events GROUP BY project_id, mode
        """
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(SQLITE_TRIGGER)
    else:
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS outbox_events_position")
    else:
        op.execute("DROP TRIGGER IF EXISTS outbox_events_position ON outbox_events")
        op.execute("DROP FUNCTION IF EXISTS outbox_events_position()")
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_events_tenant_position")
        batch_op.drop_column("position")
    op.drop_table("outbox_sequence")

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_column("client_secret_hash")
