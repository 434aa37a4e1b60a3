"""Migration 0008: events and deliveries written with payment_id at 0007 are found by subject after it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from mpesa_bridge.core.payments.entity import PAYMENT, Subject
from mpesa_bridge.core.projects import Mode, Tenant
from mpesa_bridge.core.webhooks.ports import EventFilter
from mpesa_bridge.storage.db import normalise_url
from mpesa_bridge.storage.events import SqlEventReader
from mpesa_bridge.storage.migrate import downgrade, upgrade
from mpesa_bridge.storage.webhooks import SqlWebhookRepository
from tests.fixtures.database import create_pg_database, drop_pg_database

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _at(url: str) -> datetime | str:
    """T0 as raw SQL takes it: SQLite stores the naive UTC text the models write."""
    return T0.replace(tzinfo=None).isoformat(" ") if url.startswith("sqlite") else T0


@pytest.fixture
def empty_url(engine_name: str, tmp_path: Path) -> Iterator[str]:
    if engine_name == "sqlite":
        yield f"sqlite:///{tmp_path / 'outbox.db'}"
        return
    url = asyncio.run(create_pg_database())
    yield url
    asyncio.run(drop_pg_database(url))


def _event(
    event_id: str, payment_id: str | None, event_type: str = "payment.succeeded", at: datetime | str = T0
) -> dict[str, Any]:
    return {
        "id": event_id,
        "project_id": "proj_1",
        "mode": "test",
        "type": event_type,
        "payment_id": payment_id,
        "data": '{"object": {}}',
        "created_at": at,
        "late_correction": False,
    }


def _delivery(delivery_id: str, event_id: str, payment_id: str | None, at: datetime | str = T0) -> dict[str, Any]:
    return {
        "id": delivery_id,
        "event_id": event_id,
        "endpoint_id": "we_1",
        "payment_id": payment_id,
        "status": "pending",
        "redelivery": False,
        "attempts": 0,
        "next_attempt_at": at,
        "created_at": at,
    }


async def _write_at_0007(url: str) -> None:
    engine = create_async_engine(normalise_url(url))
    at = _at(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text("INSERT INTO projects (id, name, created_at) VALUES ('proj_1', 'Shop', :t)"), {"t": at}
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO webhook_endpoints (id, project_id, mode, url, enabled_events, enabled,"
                    " secret_sealed, created_at, updated_at) VALUES ('we_1', 'proj_1', 'test',"
                    " 'https://example.com/hook', '[\"*\"]', true, 'x', :t, :t)"
                ),
                {"t": at},
            )
            columns = ", ".join(_event("", None))
            values = ", ".join(f":{name}" for name in _event("", None))
            insert_event = sa.text(f"INSERT INTO outbox_events ({columns}) VALUES ({values})")
            await conn.execute(
                insert_event,
                [
                    _event("evt_1", "pay_a", at=at),
                    _event("evt_2", "pay_b", at=at),
                    _event("evt_3", "pay_a", "payment.failed", at),
                    _event("evt_4", None, "webhook_endpoint.disabled", at),
                ],
            )
            columns = ", ".join(_delivery("", "", None))
            values = ", ".join(f":{name}" for name in _delivery("", "", None))
            insert_delivery = sa.text(f"INSERT INTO webhook_deliveries ({columns}) VALUES ({values})")
            await conn.execute(
                insert_delivery,
                [_delivery("whd_1", "evt_1", "pay_a", at), _delivery("whd_4", "evt_4", None, at)],
            )
    finally:
        await engine.dispose()


async def _read_after_0008(url: str) -> dict[str, Any]:
    engine = create_async_engine(normalise_url(url))
    try:
        async with engine.connect() as conn:
            # The position trigger of migration 0004 still numbers new events (SQLite: no table rebuild).
            await conn.execute(
                sa.text(
                    "INSERT INTO outbox_events (id, project_id, mode, type, subject_type, subject_id, data,"
                    " created_at, late_correction) VALUES ('evt_5', 'proj_1', 'test', 'payment.succeeded',"
                    " 'payment', 'pay_a', '{}', :t, false)"
                ),
                {"t": _at(url)},
            )
            await conn.commit()
            deliveries = (
                await conn.execute(sa.text("SELECT id, subject_type, subject_id FROM webhook_deliveries ORDER BY id"))
            ).all()
        async with engine.connect() as conn:
            events = SqlEventReader(conn)
            webhooks = SqlWebhookRepository(conn, postgres=False, lock=False)
            tenant = Tenant("proj_1", Mode.TEST)
            return {
                "deliveries": [tuple(row) for row in deliveries],
                "for_payment": [e.id for e in await events.for_payment("pay_a")],
                "listed": [e.id for e in await webhooks.events(tenant, EventFilter(subject=Subject(PAYMENT, "pay_a")))],
                "stream": [
                    (e.id, at)
                    for e, at in await events.stream_after("proj_1", "test", 0, subject=Subject(PAYMENT, "pay_a"))
                ],
                "about_nothing": [
                    e.subject for e in await webhooks.events(tenant, EventFilter(type="webhook_endpoint.disabled"))
                ],
            }
    finally:
        await engine.dispose()


def test_events_and_deliveries_written_with_payment_id_are_found_by_subject(empty_url: str) -> None:
    upgrade(empty_url, "0007")
    asyncio.run(_write_at_0007(empty_url))

    upgrade(empty_url, "0008")
    found = asyncio.run(_read_after_0008(empty_url))

    assert found["deliveries"] == [("whd_1", "payment", "pay_a"), ("whd_4", None, None)]
    assert found["for_payment"] == ["evt_1", "evt_3", "evt_5"]
    assert found["listed"] == ["evt_5", "evt_3", "evt_1"]
    assert found["stream"] == [("evt_1", 1), ("evt_3", 3), ("evt_5", 5)]
    assert found["about_nothing"] == [None]


def test_downgrade_gives_payment_ids_back(empty_url: str) -> None:
    upgrade(empty_url, "0007")
    asyncio.run(_write_at_0007(empty_url))
    upgrade(empty_url, "0008")

    downgrade(empty_url, "0007")

    async def read() -> list[tuple[Any, ...]]:
        engine = create_async_engine(normalise_url(empty_url))
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(sa.text("SELECT id, payment_id FROM outbox_events ORDER BY id"))
                return [tuple(row) for row in rows]
        finally:
            await engine.dispose()

    assert asyncio.run(read()) == [("evt_1", "pay_a"), ("evt_2", "pay_b"), ("evt_3", "pay_a"), ("evt_4", None)]


def test_an_sqlite_without_drop_column_rebuilds_the_tables_and_keeps_the_position_trigger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'old-sqlite.db'}"
    upgrade(url, "0007")
    asyncio.run(_write_at_0007(url))
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))  # Debian 11's SQLite

    upgrade(url, "0008")
    found = asyncio.run(_read_after_0008(url))

    assert found["stream"] == [("evt_1", 1), ("evt_3", 3), ("evt_5", 5)]  # evt_5 numbered by the trigger
    downgrade(url, "0007")
    upgrade(url, "0008")
