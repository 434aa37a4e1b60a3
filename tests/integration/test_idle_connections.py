"""A pooled PostgreSQL connection that died while idle (a server restart, an idle timeout) is
replaced before a unit of work gets it: the request after the outage does not fail. Connections in
steady use are not pinged (storage/db.py, PING_IDLE_AFTER)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.ext.asyncio import create_async_engine

from mpesa_bridge.storage import db as db_module
from mpesa_bridge.storage.db import Database, normalise_url
from tests.fixtures.services import need, postgres_available


@pytest.fixture
def pg(postgres_url: str) -> str:
    need("PostgreSQL", postgres_available())
    return postgres_url


async def _backend_pids(database: Database) -> set[int]:
    async with database.write() as uow:
        return {int((await uow.connection.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one())}


async def _terminate(url: str, pids: set[int]) -> None:
    killer = create_async_engine(normalise_url(url))
    try:
        async with killer.connect() as conn:
            for pid in pids:
                await conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await killer.dispose()


async def test_an_idle_connection_killed_by_the_server_is_replaced(pg: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "PING_IDLE_AFTER", 0.0)  # every pooled connection counts as idle
    database = Database(pg, pool_size=1)
    try:
        first = await _backend_pids(database)
        await _terminate(pg, first)

        second = await _backend_pids(database)  # no error: the dead connection was pinged and replaced

        assert second and second != first
    finally:
        await database.dispose()


async def test_a_connection_in_steady_use_is_not_pinged(pg: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pings: list[bool] = []
    real_ping = AsyncAdapt_asyncpg_connection.ping

    def counted(self: AsyncAdapt_asyncpg_connection) -> None:
        pings.append(True)
        real_ping(self)

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", counted)
    database = Database(pg, pool_size=1)
    try:
        for _ in range(3):
            await _backend_pids(database)
        assert pings == []
        monkeypatch.setattr(db_module, "PING_IDLE_AFTER", 0.0)  # now it has been idle "long enough"
        await _backend_pids(database)
        assert pings == [True]
    finally:
        await database.dispose()
