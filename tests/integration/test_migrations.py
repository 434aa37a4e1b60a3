"""Migrations: an empty database upgraded to head equals the models, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from mpesa_bridge.storage.db import Database, normalise_url
from mpesa_bridge.storage.migrate import (
    MigrationFailed,
    at_head,
    downgrade,
    file_head,
    head_revision,
    upgrade,
    upgrade_at_start,
)
from mpesa_bridge.storage.tables import metadata
from tests.fixtures.database import create_pg_database, drop_pg_database


@pytest.fixture
def empty_url(engine_name: str, tmp_path: Path) -> Iterator[str]:
    if engine_name == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    url = asyncio.run(create_pg_database())
    yield url
    asyncio.run(drop_pg_database(url))


async def _diff_and_revision(url: str) -> tuple[list[object], str | None, set[str]]:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(normalise_url(url))
    try:
        async with engine.connect() as conn:

            def inspect(sync_conn: sa.Connection) -> tuple[list[object], str | None, set[str]]:
                context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                tables = set(sa.inspect(sync_conn).get_table_names())
                return compare_metadata(context, metadata), context.get_current_revision(), tables

            return await conn.run_sync(inspect)
    finally:
        await engine.dispose()


def test_upgrade_to_head_matches_the_models(empty_url: str) -> None:
    upgrade(empty_url)

    diff, revision, tables = asyncio.run(_diff_and_revision(empty_url))

    assert diff == []
    assert revision == head_revision()
    assert {"projects", "api_keys", "daraja_configs", "payments", "inbound_callbacks", "outbox_events"} <= tables


def test_downgrade_and_upgrade_round_trip(empty_url: str) -> None:
    upgrade(empty_url)
    downgrade(empty_url, "base")
    _, revision, tables = asyncio.run(_diff_and_revision(empty_url))
    assert revision is None and tables <= {"alembic_version"}

    upgrade(empty_url)
    diff, revision, _ = asyncio.run(_diff_and_revision(empty_url))
    assert diff == [] and revision == head_revision()


def test_readiness_reads_the_head_and_the_stamp_as_alembic_does(empty_url: str) -> None:
    """`/readyz` (`at_head`) reads without Alembic: the same head, the same stamp, behind or not."""
    assert file_head() == head_revision()

    async def ready() -> bool:
        db = Database(empty_url)
        try:
            return await at_head(db)
        finally:
            await db.dispose()

    assert asyncio.run(ready()) is False  # not migrated: no alembic_version table
    upgrade(empty_url, "0016")
    assert asyncio.run(ready()) is False  # behind
    upgrade(empty_url)
    assert asyncio.run(ready()) is True


def test_start_up_migrates_in_a_child_and_never_loads_alembic_here(empty_url: str) -> None:
    # A fresh interpreter: this test process has imported Alembic long ago.
    script = (
        "import asyncio, sys\n"
        "from mpesa_bridge.storage.migrate import upgrade_at_start\n"
        "asyncio.run(upgrade_at_start(sys.argv[1]))\n"
        "print(sorted(m for m in sys.modules if m == 'alembic' or m.startswith('alembic.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, empty_url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    _, revision, _ = asyncio.run(_diff_and_revision(empty_url))
    assert revision == head_revision()


def test_start_up_at_the_head_starts_no_child(empty_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    upgrade(empty_url)

    async def no_child(*args: object, **kwargs: object) -> None:
        raise AssertionError("a child process was started for a database at the head")

    monkeypatch.setattr(asyncio, "create_subprocess_exec", no_child)
    asyncio.run(upgrade_at_start(empty_url))


def test_a_failed_start_up_migration_says_why_without_the_password(tmp_path: Path) -> None:
    url = "postgresql://bridge:s3cret-pass@127.0.0.1:1/nowhere"  # nothing listens on port 1
    with pytest.raises(Exception) as raised:
        asyncio.run(upgrade_at_start(url))
    assert "s3cret-pass" not in str(raised.value)


def test_a_child_that_fails_is_a_start_up_error_with_its_last_line(tmp_path: Path) -> None:
    path = tmp_path / "from-the-future.db"
    with sa.create_engine(f"sqlite:///{path}").begin() as conn:  # stamped by a newer bridge, say
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('9999_from_the_future')"))
    with pytest.raises(MigrationFailed, match="9999_from_the_future"):
        asyncio.run(upgrade_at_start(f"sqlite:///{path}"))
