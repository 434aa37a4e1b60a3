"""`mpesa-bridge backup FILE` and `mpesa-bridge restore FILE` (storage/backup.py does the work).

The backup holds the database, never the master key: the key ids its secrets need are in the
manifest beside it, and restore refuses a backup whose secrets the configured master keys cannot
open — before writing anything — then verifies the restored secrets with the same check as
`secrets verify`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mpesa_bridge.cli import DbOpt, app, run, settings_from
from mpesa_bridge.cli.progress import progress_bar
from mpesa_bridge.config import ConfigError, Settings
from mpesa_bridge.core.crypto import SecretBox
from mpesa_bridge.storage.backup import (
    BackupError,
    Manifest,
    backup_database,
    check_restore,
    keys_not_configured,
    manifest_path,
    record_backup,
    restore_database,
)
from mpesa_bridge.storage.db import Database
from mpesa_bridge.storage.migrate import head_revision
from mpesa_bridge.storage.sealed import VerifyReport, describe_problems, verify_sealed

BACKUP_HELP = """Back the database up into FILE while the bridge keeps serving (FILE and FILE.manifest.json, both 0600).

SQLite: a consistent copy through SQLite's online backup API. PostgreSQL: `pg_dump -Fc` of one snapshot
(pg_dump must be installed, of the server's major version or newer).

The master key is NOT in the backup: keep it apart (a password manager, a secrets store). The manifest
names the master key id(s) the backup needs; `mpesa-bridge doctor` reads the note this command leaves in
the data directory. See docs/backups.md.
"""

RESTORE_HELP = """Restore FILE (made by `mpesa-bridge backup`) into a new SQLite file or an empty PostgreSQL database.

Refuses, before writing anything, when the database already holds tables (--force replaces them; stop every
bridge process first) or when the configured master keys cannot open the backup's secrets
(MPESA_BRIDGE_MASTER_KEY must be the key the backup needs). Afterwards it counts every table against the
manifest and opens the restored secrets. See docs/backups.md.
"""

FileArg = Annotated[Path, typer.Argument(help="the backup file (its manifest is FILE.manifest.json)")]


def _fail(exc: BackupError) -> typer.Exit:
    typer.echo(f"error: {exc.message} ({exc.code})", err=True)
    return typer.Exit(1)


def _box(settings: Settings) -> SecretBox:
    try:
        return SecretBox(settings.master_keys())
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _describe(manifest: Manifest) -> str:
    kids = ", ".join(sorted(manifest.master_key_ids)) or "none (no sealed secrets yet)"
    return (
        f"{manifest.rows.get('payments', 0)} payments, {manifest.rows.get('outbox_events', 0)} events,"
        f" {sum(manifest.rows.values())} rows in {len(manifest.rows)} tables; revision {manifest.revision};"
        f" master key id(s) needed: {kids}"
    )


@app.command(help=BACKUP_HELP)
def backup(
    file: FileArg,
    database_url: DbOpt = None,
    force: Annotated[
        bool, typer.Option("--force/--no-force", envvar="MPESA_BRIDGE_BACKUP_FORCE", help="overwrite FILE if it exists")
    ] = False,
) -> None:
    settings = settings_from(database_url=database_url)
    url = settings.resolved_database_url

    async def _backup() -> Manifest:
        with progress_bar("backing up") as report:
            return await backup_database(url, file, force=force, on_progress=report)

    try:
        manifest = run(_backup)
    except BackupError as exc:
        raise _fail(exc) from exc
    record_backup(settings.data_dir, file, manifest)
    typer.echo(f"backed up to {file} (manifest {manifest_path(file)}): {_describe(manifest)}")
    typer.echo(
        "the master key is not in the backup: keep MPESA_BRIDGE_MASTER_KEY apart from it"
        " (a restore needs the key with the id(s) above)"
    )


@app.command(help=RESTORE_HELP)
def restore(
    file: FileArg,
    database_url: DbOpt = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force/--no-force", envvar="MPESA_BRIDGE_RESTORE_FORCE", help="replace what the target database holds"
        ),
    ] = False,
    skip_key_check: Annotated[
        bool,
        typer.Option(
            "--skip-key-check/--check-key",
            envvar="MPESA_BRIDGE_RESTORE_SKIP_KEY_CHECK",
            help="restore even when the configured master keys cannot open the backup's secrets",
        ),
    ] = False,
) -> None:
    settings = settings_from(database_url=database_url)
    url = settings.resolved_database_url
    box = _box(settings)
    try:
        wanted = run(lambda: check_restore(file, url, force=force))
    except BackupError as exc:
        raise _fail(exc) from exc
    missing = keys_not_configured(wanted, box.key_ids)
    if missing and not skip_key_check:
        typer.echo(
            f"error: the backup's secrets are sealed under master key id(s) {', '.join(missing)}, which is not"
            f" configured (configured: {', '.join(box.key_ids)}). Set MPESA_BRIDGE_MASTER_KEY to the key the"
            " backup was made with (`mpesa-bridge backup` printed its id), or pass --skip-key-check."
            " Nothing was restored.",
            err=True,
        )
        raise typer.Exit(1)

    async def _restore() -> tuple[Manifest, VerifyReport]:
        with progress_bar("restoring") as report:
            manifest = await restore_database(file, url, force=force, on_progress=report)
        db = Database(url)
        try:
            return manifest, await verify_sealed(db, box, check_all=True)
        finally:
            await db.dispose()

    try:
        manifest, verified = run(_restore)
    except BackupError as exc:
        raise _fail(exc) from exc
    typer.echo(f"restored {file} into the database: {_describe(manifest)}")
    if manifest.revision != head_revision():
        typer.echo(f"the backup is at migration {manifest.revision}, this version's head is {head_revision()}:")
        typer.echo("  run `mpesa-bridge db upgrade` before starting the bridge")
    if not verified.ok:
        typer.echo(f"error: {describe_problems(verified)}", err=True)
        raise typer.Exit(1)
    typer.echo(f"ok: {verified.total} stored secret(s) open with the configured master key")
