"""Transaction Status queries' repositories (SQLAlchemy Core). Tenant queries scoped by project and
mode (`storage/initiator_queries.py`); the payout reconciler reads a payout's queries."""

from __future__ import annotations

from collections.abc import Sequence

from mpesa_bridge.core.status_queries.entity import StatusQuery, StatusQueryStatus
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.initiator_queries import SqlQueryReader, SqlQueryRepository
from mpesa_bridge.storage.rows import EntityRows

QUERIES = EntityRows(tables.status_queries, StatusQuery)


class SqlStatusQueryReader(SqlQueryReader[StatusQuery]):
    rows = QUERIES

    async def for_payout(self, payout_id: str) -> Sequence[StatusQuery]:
        return await self._all(QUERIES.select().where(self._t.payout_id == payout_id).order_by(self._t.id))


class SqlStatusQueryRepository(SqlStatusQueryReader, SqlQueryRepository[StatusQuery]):
    pending = StatusQueryStatus.PENDING
