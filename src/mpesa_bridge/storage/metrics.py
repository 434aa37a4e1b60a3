"""What `/metrics` reads from the database at scrape time: one read-only transaction, four grouped
statements, whatever the number of server processes (counters live in `observability/`).

- payments by mode and status, with the oldest `created_at` of each group: one GROUP BY over the
  payments table (the reconciliation backlog — pending and unknown — and its oldest age come out of
  the same rows). Measured against counters on every transition: the counters would put work on
  the payment path of every process and drift from the truth whenever a process dies; this costs a
  scan per scrape instead, in the scraping process, off the hot paths (docs/operations.md has the
  measured times);
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

_PAYMENTS = sa.select(_p.mode, _p.status, sa.func.count(), sa.func.min(_p.created_at)).group_by(_p.mode, _p.status)
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
    oldest_open: datetime | None = None
    async with db.read() as uow:
        conn = uow.connection
        for mode, status, count, oldest in await conn.execute(_PAYMENTS):
            gauges.payments[(str(mode), str(status))] = count
            if str(status) in _OPEN:
                gauges.reconcile_backlog += count
                oldest_open = oldest if oldest_open is None or (oldest and oldest < oldest_open) else oldest_open
        for state, count, oldest in await conn.execute(_INBOX):
            gauges.inbox[state] = count
            if state == "received":
                gauges.inbox_oldest_age = _age(at, oldest)
        count, oldest = (await conn.execute(_DELIVERIES)).one()
        gauges.webhooks_pending, gauges.webhooks_oldest_age = count, _age(at, oldest)
    gauges.reconcile_oldest_age = _age(at, oldest_open)
    return gauges
