"""What `/metrics` reads from the database at scrape time: one read-only transaction, a few grouped
statements, whatever the number of server processes (counters live in `observability/`).

- payments by mode and status: one GROUP BY project, mode, status — the order of the index
  `ix_payments_tenant_status_id`, which covers it, so SQLite reads that index alone, in order, with
  no sort; the first id of each group comes with it (ids are time-ordered), and the oldest
  pending or unknown payment is then one lookup of those few ids by primary key. Chosen over
  counters on every transition: those would put work on the payment path of every process and
  drift from the truth whenever a process dies; this costs an index scan per scrape instead, in
  the scraping process, off the hot paths (docs/operations.md has the measured times);
- the inbox's rows still waiting (received) or given up (failed), with the oldest `received_at`
  (the `state, received_at` index);
- webhook deliveries still pending, with the oldest `created_at` (the `status, …` index).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from mpesa_bridge.core.payments.status import OPEN_STATUSES
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.db import Database

_p = tables.payments.c
_c = tables.inbound_callbacks.c
_d = tables.webhook_deliveries.c

_PAYMENTS = sa.select(_p.mode, _p.status, sa.func.count(), sa.func.min(_p.id)).group_by(
    _p.project_id, _p.mode, _p.status
)
_OLDEST = sa.select(sa.func.min(_p.created_at)).where(_p.id.in_(sa.bindparam("ids", expanding=True)))
_INBOX = (
    sa.select(_c.state, sa.func.count(), sa.func.min(_c.received_at))
    .where(_c.state.in_(("received", "failed")))
    .group_by(_c.state)
)
_DELIVERIES = sa.select(sa.func.count(), sa.func.min(_d.created_at)).where(_d.status == "pending")
_OPEN = frozenset(str(s) for s in OPEN_STATUSES)


@dataclass
class DatabaseGauges:
    """A snapshot of the backlogs; ages in seconds at `at` (0 when nothing waits)."""

    at: datetime
    payments: dict[tuple[str, str], int] = field(default_factory=dict)  # (mode, status) -> count
    reconcile_backlog: int = 0  # payments pending or unknown: reconciliation's to settle
    reconcile_oldest_age: float = 0.0
    inbox: dict[str, int] = field(default_factory=dict)  # state (received, failed) -> count
    inbox_oldest_age: float = 0.0  # the oldest callback still waiting to be applied
    webhooks_pending: int = 0
    webhooks_oldest_age: float = 0.0


def _age(at: datetime, since: datetime | None) -> float:
    return max(0.0, (at - since).total_seconds()) if since is not None else 0.0


async def read_gauges(db: Database, at: datetime) -> DatabaseGauges:
    gauges = DatabaseGauges(at=at, inbox={"received": 0, "failed": 0})
    first_open: list[str] = []  # the first id of each tenant's pending and unknown payments
    async with db.read() as uow:
        conn = uow.connection
        for mode, status, count, first_id in await conn.execute(_PAYMENTS):
            key = (str(mode), str(status))
            gauges.payments[key] = gauges.payments.get(key, 0) + count
            if key[1] in _OPEN:
                gauges.reconcile_backlog += count
                first_open.append(first_id)
        oldest_open = (await conn.execute(_OLDEST, {"ids": first_open})).scalar() if first_open else None
        for state, count, oldest in await conn.execute(_INBOX):
            gauges.inbox[state] = count
            if state == "received":
                gauges.inbox_oldest_age = _age(at, oldest)
        count, oldest = (await conn.execute(_DELIVERIES)).one()
        gauges.webhooks_pending, gauges.webhooks_oldest_age = count, _age(at, oldest)
    gauges.reconcile_oldest_age = _age(at, oldest_open)
    return gauges
