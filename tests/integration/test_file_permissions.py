"""The data directory is 0700 and every file holding payment data or keys 0600 (security.md "Files on
disk"): on a fresh data directory, and after a start on one an older version left readable.

SQLite only: PostgreSQL keeps its files itself. Modes are read with os.stat while the files exist
(SQLite removes -wal and -shm when its last connection closes).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from mpesa_bridge.cli import register_commands
from mpesa_bridge.storage.db import Database
from tests.fixtures.bridge import ADMIN_TOKEN, TEST_MASTER_KEY
from tests.fixtures.servers import ServerProcess, free_port

DATABASE_FILES = ["bridge.db", "bridge.db-wal", "bridge.db-shm"]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def assert_private(data_dir: Path, files: list[str]) -> None:
    modes = {name: oct(mode(data_dir / name)) for name in files}
    assert mode(data_dir) == 0o700, oct(mode(data_dir))
    assert all(value == oct(0o600) for value in modes.values()), modes


def serve(tmp: Path, *args: str, **env: str) -> ServerProcess:
    port = free_port()
    values = {"MPESA_BRIDGE_PORT": str(port), "MPESA_BRIDGE_DATA_DIR": str(tmp / "data"), **env}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp)  # no developer .env
        return ServerProcess(["serve", *args], values, port, tmp / "bridge.log").start()


@pytest.mark.slow
def test_serve_dev_on_a_fresh_data_dir_creates_it_private(tmp_path: Path) -> None:
    server = serve(tmp_path, "--dev")
    try:
        assert_private(tmp_path / "data", [*DATABASE_FILES, "master.key", "dev-project.json"])
    finally:
        server.stop()


@pytest.mark.slow
def test_serve_tightens_a_data_dir_an_older_version_left_readable(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    left_open = _readable_wal_database(data_dir / "bridge.db")
    try:
        server = serve(tmp_path, MPESA_BRIDGE_MASTER_KEY=TEST_MASTER_KEY, MPESA_BRIDGE_ADMIN_TOKEN=ADMIN_TOKEN)
        try:
            assert_private(data_dir, DATABASE_FILES)
        finally:
            server.stop()
    finally:
        left_open.close()
    assert "storage.permissions_tightened" in server.output()


def test_db_upgrade_on_a_fresh_data_dir_makes_private_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"MPESA_BRIDGE_DATA_DIR": str(data_dir), "MPESA_BRIDGE_MASTER_KEY": TEST_MASTER_KEY}
    result = CliRunner().invoke(register_commands(), ["db", "upgrade"], env=env)
    assert result.exit_code == 0, result.output
    assert_private(data_dir, ["bridge.db"])
    asyncio.run(_write_and_check(data_dir))


async def _write_and_check(data_dir: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{data_dir / 'bridge.db'}")
    try:
        async with db.write() as uow:  # the bridge's own connections create -wal and -shm
            await uow.connection.execute(sa.text("PRAGMA user_version = 1"))
            assert_private(data_dir, DATABASE_FILES)
    finally:
        await db.dispose()


def _readable_wal_database(path: Path) -> sqlite3.Connection:
    """A WAL database whose files are 0644, as SQLite makes them under umask 022: -wal and -shm are
    kept on disk by a connection left open, as a crashed process leaves them."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE t (x)")
    connection.commit()
    for name in DATABASE_FILES:
        (path.parent / name).chmod(0o644)
    return connection
