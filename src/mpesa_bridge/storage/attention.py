"""The attention queue's read model: the payments of a tenant flagged `needs_attention`.

(The callbacks the inbox flagged or gave up on are read through the callback reader,
`storage/callbacks.py` `needing_review`.) Flagged payments are few; the query uses the tenant
index and filters on the flag.
"""

from __future__ import annotations

from collections.abc import Sequence

from mpesa_bridge.core.payments.entity import Payment
from mpesa_bridge.core.projects import Tenant
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.db import Database
from mpesa_bridge.storage.payments import PAYMENTS

_p = tables.payments.c


class AttentionQueue:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def payments(self, tenant: Tenant, limit: int) -> Sequence[Payment]:
        """The tenant's payments flagged `needs_attention`, oldest flag first (by update time)."""
        stmt = (
            PAYMENTS.select()
            .where(_p.project_id == tenant.project_id, _p.mode == tenant.mode.value, _p.needs_attention.is_(True))
            .order_by(_p.updated_at, _p.id)
            .limit(limit)
        )
        async with self._db.read() as uow:
            return [PAYMENTS.build(row) for row in await uow.connection.execute(stmt)]
