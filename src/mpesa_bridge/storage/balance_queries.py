"""The balance query aggregate's repositories (SQLAlchemy Core); tenant queries scoped by project
and mode, the inbox's look-up by the SHA-256 of the callback token (`storage/initiator_queries.py`)."""

from __future__ import annotations

from mpesa_bridge.core.balances.entity import BalanceQuery, BalanceQueryStatus
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.initiator_queries import SqlQueryReader, SqlQueryRepository
from mpesa_bridge.storage.rows import EntityRows

QUERIES = EntityRows(tables.balance_queries, BalanceQuery)


class SqlBalanceQueryReader(SqlQueryReader[BalanceQuery]):
    rows = QUERIES


class SqlBalanceQueryRepository(SqlQueryRepository[BalanceQuery]):
    rows = QUERIES
    pending = BalanceQueryStatus.PENDING
