"""`mpesa-bridge backup` / `restore` through the CLI, on SQLite and PostgreSQL: the files, the manifest,
and every refusal — each made before anything is written. (A backup of a serving bridge under load:
tests/e2e/test_backup_under_load.py.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from mpesa_bridge.cli import register_commands
from mpesa_bridge.core.crypto import SecretBox, generate_master_key, parse_master_key
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.backup import summarise_url
from mpesa_bridge.storage.db import Database
from tests.fixtures.bridge import TEST_MASTER_KEY, InProcessBridge
from tests.fixtures.database import create_pg_database, drop_pg_database

app = register_commands()
KEY_ID = SecretBox([parse_master_key(TEST_MASTER_KEY)]).current_key_id


@pytest.fixture
def target_url(engine_name: str, tmp_path: Path) -> Iterator[str]:
    if engine_name == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'restored' / 'bridge.db'}"
        return
    url = asyncio.run(create_pg_database())
    yield url
    asyncio.run(drop_pg_database(url))


def cli(*args: str, url: str, tmp_path: Path, key: str = TEST_MASTER_KEY) -> Result:
    env = {
        "MPESA_BRIDGE_DATABASE_URL": url,
        "MPESA_BRIDGE_DATA_DIR": str(tmp_path / "data"),
        "MPESA_BRIDGE_MASTER_KEY": key,
    }
    return CliRunner().invoke(app, list(args), env=env)


def ok(result: Result) -> str:
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.stdout


def refused(result: Result) -> str:
    assert result.exit_code == 1, f"{result.output}\n{result.exception!r}"
    assert "Traceback" not in result.output
    return result.stderr


async def rows_of(url: str) -> dict[str, int]:
    path = make_url(url).database
    if url.startswith("sqlite") and path and not Path(path).exists():
        return {}
    return (await summarise_url(url))[1]


async def _paid(bridge: InProcessBridge) -> list[str]:
    tenant = await bridge.create_project()
    ids = [(await bridge.pay(tenant, phone=f"07111111{n:02d}"))["id"] for n in range(3)]
    for payment_id in ids:
        await bridge.wait_status(tenant, payment_id, "succeeded")
    return ids


async def test_backup_and_restore_round_trip(
    bridge: InProcessBridge, db_url: str, target_url: str, tmp_path: Path
) -> None:
    ids = await _paid(bridge)
    source = await summarise_url(db_url)
    backup = tmp_path / "out" / "bridge.backup"
    out = await asyncio.to_thread(lambda: ok(cli("backup", str(backup), url=db_url, tmp_path=tmp_path)))
    assert f"master key id(s) needed: {KEY_ID}" in out
    assert backup.stat().st_mode & 0o777 == 0o600
    manifest_file = tmp_path / "out" / "bridge.backup.manifest.json"
    assert manifest_file.stat().st_mode & 0o777 == 0o600
    manifest: dict[str, Any] = json.loads(manifest_file.read_text())
    assert manifest["rows"] == source[1] and manifest["master_key_ids"] == source[2]
    assert list(source[2]) == [KEY_ID]
    assert TEST_MASTER_KEY not in manifest_file.read_text()

    # A second backup to the same file is refused unless --force.
    again = await asyncio.to_thread(lambda: cli("backup", str(backup), url=db_url, tmp_path=tmp_path))
    assert "file_exists" in refused(again)

    out = await asyncio.to_thread(lambda: ok(cli("restore", str(backup), url=target_url, tmp_path=tmp_path)))
    assert "ok:" in out
    restored = await summarise_url(target_url)
    assert restored == source
    db = Database(target_url)
    try:
        async with db.read() as uow:
            query = sa.select(tables.payments.c.id, tables.payments.c.status).where(tables.payments.c.id.in_(ids))
            assert dict((await uow.connection.execute(query)).all()) == dict.fromkeys(ids, "succeeded")
    finally:
        await db.dispose()

    # The target now holds the database: refused without --force, replaced with it.
    assert "target_not_empty" in refused(
        await asyncio.to_thread(lambda: cli("restore", str(backup), url=target_url, tmp_path=tmp_path))
    )
    await asyncio.to_thread(lambda: ok(cli("restore", "--force", str(backup), url=target_url, tmp_path=tmp_path)))
    assert await summarise_url(target_url) == source


async def test_restore_refuses_a_master_key_the_backup_does_not_need(
    bridge: InProcessBridge, db_url: str, target_url: str, tmp_path: Path
) -> None:
    await _paid(bridge)
    backup = tmp_path / "bridge.backup"
    await asyncio.to_thread(lambda: ok(cli("backup", str(backup), url=db_url, tmp_path=tmp_path)))
    other = generate_master_key()
    message = refused(
        await asyncio.to_thread(lambda: cli("restore", str(backup), url=target_url, tmp_path=tmp_path, key=other))
    )
    assert KEY_ID in message and "Nothing was restored" in message
    assert await rows_of(target_url) == {}  # nothing written

    # --skip-key-check restores, then says the secrets do not open.
    result = await asyncio.to_thread(
        lambda: cli("restore", "--skip-key-check", str(backup), url=target_url, tmp_path=tmp_path, key=other)
    )
    assert "not configured" in refused(result)
    assert (await summarise_url(target_url))[1]["payments"] == 3


async def test_restore_refuses_without_a_manifest_or_across_engines(
    bridge: InProcessBridge, db_url: str, engine_name: str, tmp_path: Path
) -> None:
    await _paid(bridge)
    backup = tmp_path / "bridge.backup"
    await asyncio.to_thread(lambda: ok(cli("backup", str(backup), url=db_url, tmp_path=tmp_path)))
    other_engine = (
        "postgresql://postgres@127.0.0.1:5432/not_used"
        if engine_name == "sqlite"
        else f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    )
    message = refused(await asyncio.to_thread(lambda: cli("restore", str(backup), url=other_engine, tmp_path=tmp_path)))
    assert "engine_mismatch" in message
    (tmp_path / "bridge.backup.manifest.json").unlink()
    message = refused(await asyncio.to_thread(lambda: cli("restore", str(backup), url=other_engine, tmp_path=tmp_path)))
    assert "manifest_missing" in message
