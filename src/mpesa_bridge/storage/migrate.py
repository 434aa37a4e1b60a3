"""Alembic, driven from code: `mpesa-bridge db upgrade` and start-up in development call these.

Alembic is imported where it is used: a serving bridge never loads it (~10 MB of resident memory,
`make bench` B7). Start-up in development migrates in a child process (`upgrade_at_start`), and only
when the database is not at the head already. `/readyz` asks `at_head`, which reads the head from the
migration files' `revision`/`down_revision` lines and the database's from `alembic_version` — the
same answers as Alembic's (tests/integration/test_migrations.py holds them to it).
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import Connection, make_url

from mpesa_bridge.storage.db import Database, ensure_sqlite_dir, normalise_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def upgrade(url: str, revision: str = "head") -> None:
    """Run migrations up to `revision`. Blocking: call from a thread in async code."""
    from alembic import command

    ensure_sqlite_dir(normalise_url(url))
    command.upgrade(alembic_config(url), revision)


_CHILD_URL = "_MPESA_BRIDGE_MIGRATE_URL"  # the URL reaches the child by environment, never its argv (ps)
_CHILD = "from mpesa_bridge.storage.migrate import _upgrade_in_child; _upgrade_in_child()"


class MigrationFailed(RuntimeError):
    """The start-up migration's child process failed; the message holds the last line it printed."""


async def upgrade_at_start(url: str) -> None:
    """Bring the database to the head before the server starts: nothing when it is there already
    (read without Alembic), else `upgrade` in a child process, so that this process never holds
    Alembic. An in-memory SQLite database lives in this process only: migrated here."""
    normalised = normalise_url(url)
    parsed = make_url(normalised)
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        await asyncio.to_thread(upgrade, url)
        return
    ensure_sqlite_dir(normalised)
    db = Database(url)
    try:
        if await at_head(db):
            return
    finally:
        await db.dispose()
    env = {**os.environ, _CHILD_URL: url}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await child.communicate()
    if child.returncode != 0:
        lines = [line for line in err.decode(errors="replace").splitlines() if line.strip()]
        last = lines[-1] if lines else "no output"
        raise MigrationFailed(f"migrating the database at start-up failed (exit {child.returncode}): {last}")


def _upgrade_in_child() -> None:
    upgrade(os.environ[_CHILD_URL])


def downgrade(url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)


def _current(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


async def current_revision(db: Database) -> str | None:
    async with db.read_engine.connect() as conn:
        return await conn.run_sync(_current)


async def at_head(db: Database) -> bool:
    async with db.read_engine.connect() as conn:
        current = await conn.run_sync(_stamped)
    return current == file_head()


_REVISION = re.compile(r'^revision: str = "([^"]+)"$', re.MULTILINE)
_DOWN = re.compile(r'^down_revision: str \| None = (?:"([^"]+)"|None)$', re.MULTILINE)


@functools.cache
def file_head() -> str:
    """The head revision, read from the migration files without Alembic (one chain, no branches)."""
    revisions: set[str] = set()
    downs: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(text), _DOWN.search(text)
        if revision is None or down is None:  # pragma: no cover - every migration declares both
            raise RuntimeError(f"{path.name}: no revision/down_revision line")
        revisions.add(revision.group(1))
        if down.group(1):
            downs.add(down.group(1))
    heads = revisions - downs
    if len(heads) != 1:  # pragma: no cover - a branch: Alembic would refuse it too
        raise RuntimeError(f"the migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def _stamped(conn: Connection) -> str | None:
    """The revision in `alembic_version` (None: not migrated), as Alembic itself would read it."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
