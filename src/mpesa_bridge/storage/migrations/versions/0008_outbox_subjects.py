"""outbox: events and deliveries keyed by subject (type + id) instead of payment_id

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 13:10:00.000000

An event is about a subject: `subject_type` ("payment") and `subject_id` ("pay_…"); both NULL
for an event about no subject (endpoint.disabled). Deliveries copy them: the deliveries of one
(endpoint, subject) go out in order. Payouts or checkout sessions become subject types of their
own without a column, an index or a pipeline of their own.

Existing rows are filled from `payment_id` in batches (no long single UPDATE on a big outbox),
then `payment_id` and its indexes are dropped. On PostgreSQL the whole revision is one
transaction, indexes included: the fill already locks every row, so a CONCURRENTLY build would
not let writers through sooner, and an interrupted upgrade leaves nothing half done. On SQLite
the columns are dropped with ALTER TABLE DROP COLUMN (SQLite >= 3.35), so the table is not
rebuilt and the position trigger of migration 0004 stays; an older SQLite rebuilds the table
(batch mode) and the trigger is created again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000
TABLES = ("outbox_events", "webhook_deliveries")
EVENTS_SUBJECT = ["subject_type", "subject_id", "position"]
EVENTS_TENANT_SUBJECT = ["project_id", "mode", "subject_type", "subject_id", "id"]
DELIVERIES_SUBJECT = ["endpoint_id", "subject_type", "subject_id", "status"]
DELIVERIES_PAYMENT = ["endpoint_id", "payment_id", "status"]


# Migration 0004's trigger, as it is there: a rebuilt outbox_events loses it.
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


def _drop_columns(table: str, *columns: str) -> None:
    old_sqlite = op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35, 0)
    if not old_sqlite:
        for column in columns:
            op.drop_column(table, column)
        return
    with op.batch_alter_table(table, schema=None) as batch_op:
        for column in columns:
            batch_op.drop_column(column)
    if table == "outbox_events":
        op.execute(SQLITE_TRIGGER)


def _batched(sql: str) -> None:
    """Run `sql` (an UPDATE of at most BATCH rows at a time) until it changes no row."""
    bind = op.get_bind()
    while bind.execute(sa.text(sql), {"batch": BATCH}).rowcount:
        pass


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("subject_type", sa.String(length=24), nullable=True))
        op.add_column(table, sa.Column("subject_id", sa.String(length=40), nullable=True))
        _batched(
            f"""
            UPDATE {table} SET subject_type = 'payment', subject_id = payment_id
            WHERE id IN (
                SELECT id FROM {table} WHERE payment_id IS NOT NULL AND subject_id IS NULL LIMIT :batch
            )
            """  # noqa: S608  # table names from TABLES, values bound
        )
    op.create_index("ix_outbox_events_subject", "outbox_events", EVENTS_SUBJECT, unique=False)
    op.create_index("ix_outbox_events_tenant_subject", "outbox_events", EVENTS_TENANT_SUBJECT, unique=False)
    op.create_index("ix_webhook_deliveries_endpoint_subject", "webhook_deliveries", DELIVERIES_SUBJECT, unique=False)

    op.drop_index("ix_webhook_deliveries_endpoint_payment", table_name="webhook_deliveries")
    op.drop_index("ix_outbox_events_payment_id", table_name="outbox_events")
    for table in TABLES:
        _drop_columns(table, "payment_id")


def downgrade() -> None:
    """Back to payment_id: events about a subject other than a payment keep no subject."""
    for table in TABLES:
        op.add_column(table, sa.Column("payment_id", sa.String(length=40), nullable=True))
        _batched(
            f"""
            UPDATE {table} SET payment_id = subject_id
            WHERE id IN (
                SELECT id FROM {table} WHERE subject_type = 'payment' AND payment_id IS NULL LIMIT :batch
            )
            """  # noqa: S608  # table names from TABLES, values bound
        )
    op.create_index("ix_outbox_events_payment_id", "outbox_events", ["payment_id"], unique=False)
    op.create_index("ix_webhook_deliveries_endpoint_payment", "webhook_deliveries", DELIVERIES_PAYMENT, unique=False)

    op.drop_index("ix_webhook_deliveries_endpoint_subject", table_name="webhook_deliveries")
    op.drop_index("ix_outbox_events_tenant_subject", table_name="outbox_events")
    op.drop_index("ix_outbox_events_subject", table_name="outbox_events")
    for table in TABLES:
        _drop_columns(table, "subject_id", "subject_type")
