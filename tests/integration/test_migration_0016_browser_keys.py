"""Migration 0016 on SQLite and PostgreSQL: existing projects get a publishable key per mode and the
browser settings' defaults; the downgrade removes them and leaves the projects as they were."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from mpesa_bridge.storage.db import normalise_url
from mpesa_bridge.storage.migrate import downgrade, upgrade
from tests.fixtures.database import create_pg_database, drop_pg_database


@pytest.fixture
def empty_url(engine_name: str, tmp_path: Path) -> Iterator[str]:
    if engine_name == "sqlite":
        yield f"sqlite:///{tmp_path / 'browser.db'}"
        return
    url = asyncio.run(create_pg_database())
    yield url
    asyncio.run(drop_pg_database(url))


def run(url: str, *statements: str) -> list[list[tuple[object, ...]]]:
    async def go() -> list[list[tuple[object, ...]]]:
        engine = create_async_engine(normalise_url(url))
        try:
            async with engine.begin() as conn:
                out = []
                for statement in statements:
                    result = await conn.execute(sa.text(statement))
                    out.append([tuple(row) for row in result] if result.returns_rows else [])
                return out
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_existing_projects_get_publishable_keys_and_the_downgrade_takes_them_away(empty_url: str) -> None:
    upgrade(empty_url, "0015")
    run(
        empty_url,
        "INSERT INTO projects (id, name, created_at) VALUES "
        "('proj_a', 'A', '2026-01-01 00:00:00'), ('proj_b', 'B', '2026-01-02 00:00:00')",
    )
    upgrade(empty_url, "0016")
    keys, projects = run(
        empty_url,
        "SELECT project_id, mode, key FROM publishable_keys ORDER BY project_id, mode",
        "SELECT id, client_side_amounts, client_side_amount_max, allowed_origins FROM projects ORDER BY id",
    )
    assert [(p, m) for p, m, _ in keys] == [
        ("proj_a", "live"),
        ("proj_a", "test"),
        ("proj_b", "live"),
        ("proj_b", "test"),
    ]
    assert all(str(k).startswith(f"pk_{m}_") and len(str(k)) == 8 + 24 for _, m, k in keys)
    assert len({k for _, _, k in keys}) == 4
    assert [(p, bool(on), most) for p, on, most, _ in projects] == [("proj_a", False, None), ("proj_b", False, None)]
    assert all(origins in ([], "[]") for *_, origins in projects)

    downgrade(empty_url, "0015")
    (tables,) = run(
        empty_url,
        "SELECT name FROM sqlite_master WHERE type = 'table'"
        if empty_url.startswith("sqlite")
        else "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
    )
    assert ("publishable_keys",) not in tables
    (left,) = run(empty_url, "SELECT id, name FROM projects ORDER BY id")
    assert left == [("proj_a", "A"), ("proj_b", "B")]
    upgrade(empty_url)  # and up again to head
