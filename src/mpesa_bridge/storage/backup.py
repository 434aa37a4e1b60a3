"""Backups that restore: SQLite through its online backup API, PostgreSQL through pg_dump/pg_restore.

A backup is two files, both 0600 from their first byte: FILE (a SQLite database, or a `pg_dump -Fc`
archive) and FILE.manifest.json beside it. The manifest says what the backup holds — the engine, the
migration revision, the rows of every table, and the master key ids the sealed secrets need — and
never key material: the master key is backed up apart, so that one stolen file opens nothing.

Both backups are one consistent instant, taken while the bridge keeps serving:

- SQLite: one read transaction on the source is held across every step of the backup API, so the
  steps copy one snapshot (in WAL mode the bridge keeps writing meanwhile; the copy does not restart).
  The copy is switched to `journal_mode=DELETE`, one self-contained file.
- PostgreSQL: a REPEATABLE READ transaction exports its snapshot, `pg_dump --snapshot` dumps exactly
  it, and the manifest's counts and key ids are read in that same transaction.

Restore goes into a new SQLite file or an empty PostgreSQL database (anything else needs `force`),
then counts the rows again and compares them with the manifest.

    BackupError (code)
      + BackupRefused     nothing was written: the file exists, the target is not empty, a tool is
                          missing or too old, the manifest is missing or does not match
      + BackupFailed      the copy or the tool failed part of the way
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from mpesa_bridge.files import PRIVATE_FILE, create_private_file, private_dir
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.db import ensure_sqlite_dir, is_sqlite, normalise_url
from mpesa_bridge.storage.sealed import MALFORMED, SOURCES

FORMAT = 1
MARKER_FILE = "last-backup.json"
_SQLITE_PAGES_PER_STEP = 1024
_PG_MAJOR = re.compile(r"\(PostgreSQL\)\s+(\d+)")

Progress = Callable[[int, int], None]  # (done, total): pages for SQLite, tables for PostgreSQL


class BackupError(Exception):
    code = "backup_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class BackupRefused(BackupError):
    code = "backup_refused"


class BackupFailed(BackupError):
    code = "backup_failed"


@dataclass
class Manifest:
    """What a backup holds. `master_key_ids`: stored sealed values per master key id."""

    engine: str  # "sqlite" or "postgresql"
    created_at: str  # ISO 8601, UTC: the instant of the snapshot
    revision: str | None
    rows: dict[str, int] = field(default_factory=dict)
    master_key_ids: dict[str, int] = field(default_factory=dict)
    tool: str = ""  # sqlite3 library version, or pg_dump's version line
    format: int = FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise BackupRefused("the manifest is not one this version reads", code="manifest_unreadable")
        return cls(
            engine=str(data["engine"]),
            created_at=str(data["created_at"]),
            revision=data.get("revision"),
            rows={str(k): int(v) for k, v in data.get("rows", {}).items()},
            master_key_ids={str(k): int(v) for k, v in data.get("master_key_ids", {}).items()},
            tool=str(data.get("tool", "")),
        )


def manifest_path(backup: Path) -> Path:
    return backup.with_name(backup.name + ".manifest.json")


def read_manifest(backup: Path) -> Manifest:
    path = manifest_path(backup)
    if not path.exists():
        raise BackupRefused(f"{path} is missing: it says which master key the backup needs", code="manifest_missing")
    try:
        return Manifest.from_json(path.read_text())
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupRefused(f"{path} is not a readable manifest ({exc})", code="manifest_unreadable") from exc


def keys_not_configured(manifest: Manifest, configured: tuple[str, ...]) -> list[str]:
    """The master key ids the backup's secrets need that are not among `configured`."""
    return sorted(kid for kid in manifest.master_key_ids if kid not in configured)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(PRIVATE_FILE)


# --------------------------------------------------------------------------- what a database holds


def _key_id(value: str | bytes) -> str:
    text = value.decode(errors="replace") if isinstance(value, bytes) else value
    parts = text.split(".", 2)
    return parts[1] if len(parts) == 3 and parts[1] else MALFORMED


async def summarise(conn: AsyncConnection) -> tuple[str | None, dict[str, int], dict[str, int]]:
    """(migration revision, rows per table, sealed values per master key id), in `conn`'s transaction."""
    names = set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
    revision = None
    if "alembic_version" in names:
        revision = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()
    rows: dict[str, int] = {}
    for name, table in sorted(tables.metadata.tables.items()):
        if name in names:
            rows[name] = int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())
    kids: Counter[str] = Counter()
    for source in SOURCES:
        if source.table.name not in names:
            continue
        for column in source.columns:
            col = source.table.c[column]
            result = await conn.stream(sa.select(col).where(col.is_not(None)))
            async for (value,) in result:
                kids[_key_id(value)] += 1
    return revision, rows, dict(kids)


async def summarise_url(url: str) -> tuple[str | None, dict[str, int], dict[str, int]]:
    engine = create_async_engine(normalise_url(url))
    try:
        async with engine.connect() as conn:
            return await summarise(conn)
    finally:
        await engine.dispose()


async def _is_empty(url: str) -> bool:
    engine = create_async_engine(normalise_url(url))
    try:
        async with engine.connect() as conn:
            return not await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- backup


async def backup_database(url: str, out: Path, *, force: bool = False, on_progress: Progress | None = None) -> Manifest:
    """Back the database at `url` up into `out` (and its manifest); the bridge may keep serving."""
    progress = on_progress or (lambda done, total: None)
    _prepare(out, force=force)
    try:
        if is_sqlite(url):
            manifest = await _backup_sqlite(_sqlite_file(url), out, progress)
        else:
            manifest = await _backup_postgres(url, out, progress)
    except BaseException:
        out.unlink(missing_ok=True)  # noqa: ASYNC240 - one unlink on the way out
        raise
    _write_private(manifest_path(out), manifest.to_json())
    return manifest


def _prepare(out: Path, *, force: bool) -> None:
    if out.exists() and not force:
        raise BackupRefused(f"{out} exists; choose another file or pass --force", code="file_exists")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    # 0600 from the first byte: the copy holds payment data and sealed secrets.
    create_private_file(out)


def _require(path: Path, code: str) -> None:
    if not path.exists():
        raise BackupRefused(f"{path} does not exist", code=code)


def _sqlite_file(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupRefused(f"cannot back up this SQLite database ({database or 'in memory'})", code="not_a_file")
    return Path(database)


def _copy_sqlite(source: Path, target: Path, progress: Progress, *, hold_snapshot: bool) -> None:
    src = sqlite3.connect(source, timeout=30, isolation_level=None)
    dst = sqlite3.connect(target, timeout=30, isolation_level=None)
    try:
        if hold_snapshot:
            # One read transaction across every step: the copy is one instant, and writers
            # (WAL) go on meanwhile without restarting it.
            src.execute("BEGIN")
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()

        def step(_status: int, remaining: int, total: int) -> None:
            progress(total - remaining, total)

        src.backup(dst, pages=_SQLITE_PAGES_PER_STEP, progress=step)
        if hold_snapshot:
            src.execute("COMMIT")
    finally:
        src.close()
        dst.close()


async def _backup_sqlite(source: Path, out: Path, progress: Progress) -> Manifest:
    _require(source, "no_database")
    created = datetime.now(UTC)
    await asyncio.to_thread(_copy_sqlite, source, out, progress, hold_snapshot=True)

    def _self_contained() -> None:
        conn = sqlite3.connect(out, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=DELETE").fetchone()
        finally:
            conn.close()
        out.chmod(PRIVATE_FILE)

    await asyncio.to_thread(_self_contained)
    revision, rows, kids = await summarise_url(f"sqlite+aiosqlite:///{out}")
    return Manifest("sqlite", created.isoformat(), revision, rows, kids, tool=f"sqlite {sqlite3.sqlite_version}")


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL without the password, and the environment that carries it (never argv)."""
    parsed: URL = make_url(url)
    env = {}
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    user = quote(parsed.username or "", safe="")
    host = parsed.host or ""
    port = f":{parsed.port}" if parsed.port else ""
    query = "&".join(f"{k}={v}" for k, v in parsed.query.items() if k in ("sslmode", "sslrootcert", "options"))
    auth = f"{user}@" if user else ""
    text = f"postgresql://{auth}{host}{port}/{quote(parsed.database or '', safe='')}"
    return (f"{text}?{query}" if query else text), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BackupRefused(
            f"{name} is not installed; install the PostgreSQL client tools of your server's version"
            " (Debian/Ubuntu: apt-get install postgresql-client)",
            code="tool_missing",
        )
    return found


async def _tool_version(path: str) -> tuple[str, int]:
    proc = await asyncio.create_subprocess_exec(path, "--version", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    line = out.decode().strip()
    match = _PG_MAJOR.search(line)
    return line, int(match.group(1)) if match else 0


async def _run_tool(argv: list[str], env: dict[str, str], marker: str, total: int, progress: Progress) -> None:
    """Run pg_dump/pg_restore --verbose, counting the tables it reports (`marker` lines)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, env={**os.environ, **env}, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    tail: list[str] = []
    done = 0
    progress(0, total)
    async for raw in proc.stderr:
        line = raw.decode(errors="replace").rstrip()
        if marker in line:
            done = min(done + 1, total)
            progress(done, total)
        elif "error" in line.lower() or "warning" in line.lower():
            tail = [*tail[-19:], line]
    code = await proc.wait()
    if code != 0:
        name = Path(argv[0]).name
        raise BackupFailed(f"{name} exited with {code}: " + (" | ".join(tail) or "no message"), code="tool_failed")
    progress(total, total)


async def _server_major(conn: AsyncConnection) -> int:
    number = (await conn.execute(sa.text("SHOW server_version_num"))).scalar_one()
    return int(number) // 10000


async def _backup_postgres(url: str, out: Path, progress: Progress) -> Manifest:
    pg_dump = _tool("pg_dump")
    version, major = await _tool_version(pg_dump)
    dsn, env = _libpq(url)
    engine = create_async_engine(normalise_url(url))
    try:
        async with engine.connect() as conn:
            server = await _server_major(conn)
        if major < server:
            raise BackupRefused(
                f"pg_dump is version {major} but the server is {server}: install pg_dump {server} or later",
                code="tool_too_old",
            )
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            snapshot = (await conn.execute(sa.text("SELECT pg_export_snapshot()"))).scalar_one()
            created = datetime.now(UTC)
            revision, rows, kids = await summarise(conn)
            argv = [pg_dump, "-Fc", "--verbose", "--no-owner", f"--snapshot={snapshot}", "-f", str(out), dsn]
            await _run_tool(argv, env, "dumping contents of table", len(rows) + 1, progress)
            await conn.rollback()
    finally:
        await engine.dispose()
    return Manifest("postgresql", created.isoformat(), revision, rows, kids, tool=version)


# --------------------------------------------------------------------------- restore


async def check_restore(backup: Path, url: str, *, force: bool = False) -> Manifest:
    """What `restore_database` refuses, checked without writing anything: the backup's manifest,
    the engine, an empty target (unless `force`), the PostgreSQL tool. Returns the manifest."""
    _require(backup, "no_backup")
    manifest = read_manifest(backup)
    engine = "sqlite" if is_sqlite(url) else "postgresql"
    if manifest.engine != engine:
        raise BackupRefused(
            f"the backup is of a {manifest.engine} database; restore it into {manifest.engine}"
            " (moving between engines is not supported)",
            code="engine_mismatch",
        )
    if engine == "postgresql":
        _tool("pg_restore")
        occupied = not await _is_empty(url)
    else:
        target = _sqlite_file(url)
        occupied = _holds_bytes(target) and not await _is_empty(f"sqlite+aiosqlite:///{target}")
    if occupied and not force:
        raise BackupRefused(
            "the target database already holds tables; restore into a new data directory or a new empty"
            " database (createdb), or pass --force to replace what it holds (stop every bridge process first)",
            code="target_not_empty",
        )
    return manifest


async def restore_database(
    backup: Path, url: str, *, force: bool = False, on_progress: Progress | None = None
) -> Manifest:
    """Restore `backup` into the database at `url` (new or empty unless `force`); the rows are
    counted again and compared with the manifest. The caller checks the master key first."""
    progress = on_progress or (lambda done, total: None)
    manifest = await check_restore(backup, url, force=force)
    if manifest.engine == "sqlite":
        await _restore_sqlite(backup, _sqlite_file(url), force=force, progress=progress)
    else:
        await _restore_postgres(backup, url, manifest, force=force, progress=progress)
    _revision, rows, _kids = await summarise_url(url)
    if rows != manifest.rows:
        differ = sorted(name for name in set(rows) | set(manifest.rows) if rows.get(name) != manifest.rows.get(name))
        raise BackupFailed(
            "the restored database does not hold what the manifest lists (tables: " + ", ".join(differ) + ")",
            code="rows_differ",
        )
    return manifest


async def _restore_sqlite(backup: Path, target: Path, *, force: bool, progress: Progress) -> None:
    url = f"sqlite+aiosqlite:///{target}"
    if _holds_bytes(target) and not await _is_empty(url) and not force:
        raise BackupRefused(
            f"{target} already holds a database; restore into a new data directory, or pass --force"
            " (stop every bridge process using it first)",
            code="target_not_empty",
        )
    private_dir(target.parent)
    ensure_sqlite_dir(url)
    await asyncio.to_thread(_copy_sqlite, backup, target, progress, hold_snapshot=False)

    def _wal() -> None:  # as the bridge opens it
        conn = sqlite3.connect(target, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL").fetchone()
        finally:
            conn.close()
        target.chmod(PRIVATE_FILE)

    await asyncio.to_thread(_wal)


def _holds_bytes(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


async def _restore_postgres(backup: Path, url: str, manifest: Manifest, *, force: bool, progress: Progress) -> None:
    pg_restore = _tool("pg_restore")
    _version, major = await _tool_version(pg_restore)
    made_by = _PG_MAJOR.search(manifest.tool)
    if made_by and major < int(made_by.group(1)):
        raise BackupRefused(
            f"pg_restore is version {major} but the backup was made by pg_dump {made_by.group(1)}:"
            f" install pg_restore {made_by.group(1)} or later",
            code="tool_too_old",
        )
    empty = await _is_empty(url)
    if not empty and not force:
        raise BackupRefused(
            "the target database already has tables; restore into a new empty database"
            " (createdb), or pass --force to replace what it holds",
            code="target_not_empty",
        )
    dsn, env = _libpq(url)
    argv = [pg_restore, "--verbose", "--no-owner", "--exit-on-error", "--single-transaction", "-d", dsn]
    if not empty:
        argv += ["--clean", "--if-exists"]
    await _run_tool([*argv, str(backup)], env, "processing data for table", len(manifest.rows) + 1, progress)


# --------------------------------------------------------------------------- the marker the doctor reads


@dataclass(frozen=True)
class BackupMarker:
    """Written to the data directory after each backup: when, where, and which master key it needs."""

    at: str
    file: str
    engine: str
    master_key_ids: list[str]


def record_backup(data_dir: Path, out: Path, manifest: Manifest) -> BackupMarker:
    marker = BackupMarker(manifest.created_at, str(out.resolve()), manifest.engine, sorted(manifest.master_key_ids))
    private_dir(data_dir)
    _write_private(data_dir / MARKER_FILE, json.dumps(asdict(marker), indent=2) + "\n")
    return marker


def last_backup(data_dir: Path) -> BackupMarker | None:
    path = data_dir / MARKER_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return BackupMarker(str(data["at"]), str(data["file"]), str(data["engine"]), list(data["master_key_ids"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
