"""The per-test reset (tests/fixtures/database.py): every table empty, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from mpesa_bridge.storage.tables import metadata
from tests.fixtures.bridge import InProcessBridge
from tests.fixtures.database import TableEraser


async def _row_counts(bridge: InProcessBridge) -> dict[str, int]:
    async with bridge.db.read_engine.connect() as conn:
        return {
            table.name: (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()
            for table in metadata.sorted_tables
        }


async def test_a_test_starts_with_every_table_empty(bridge: InProcessBridge) -> None:
    assert set((await _row_counts(bridge)).values()) == {0}


async def test_the_eraser_empties_every_table_the_bridge_wrote(
    bridge: InProcessBridge, db_url: str, table_eraser: TableEraser
) -> None:
    shop = await bridge.create_project()
    payment = await bridge.pay(shop)
    await bridge.wait_status(shop, payment["id"], "succeeded")
    written = {name for name, count in (await _row_counts(bridge)).items() if count}
    assert {"projects", "api_keys", "payments", "outbox_events", "outbox_sequence"} <= written

    table_eraser.erase(db_url)

    assert set((await _row_counts(bridge)).values()) == {0}
