"""`mpesa-bridge secrets rotate-master|verify`: the secrets sealed under the master key.

Neither command prints key material: only key ids (eight hex characters of the key's SHA-256),
counts and where a value lives.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mpesa_bridge.cli import DbOpt, app, run, settings_from
from mpesa_bridge.cli.progress import progress_bar
from mpesa_bridge.config import ConfigError, Settings
from mpesa_bridge.core.crypto import SecretBox
from mpesa_bridge.storage.db import Database
from mpesa_bridge.storage.sealed import (
    MALFORMED,
    ResealReport,
    VerifyReport,
    count_sealed,
    describe_problems,
    reseal_all,
    verify_sealed,
)

secrets_app = typer.Typer(
    help="Secrets sealed under the master key: verify them, re-seal them under a new master key.",
    no_args_is_help=True,
)
app.add_typer(secrets_app, name="secrets")

NEXT_STEP = "next: remove the old key from MPESA_BRIDGE_OLD_MASTER_KEYS once every instance runs with the new key"
ROTATION_HELP = """Re-seal every stored secret under the master key MPESA_BRIDGE_MASTER_KEY.

Secrets sealed under a key of MPESA_BRIDGE_OLD_MASTER_KEYS are re-encrypted under MPESA_BRIDGE_MASTER_KEY in small
transactions, while the servers keep running; secrets already under it are skipped, so the command can be
interrupted and run again. It prints how many were re-sealed and how many were already current, and exits 1 if
some secret does not open (the others are still re-sealed).

Rotating the master key without downtime:

1) Generate a new key: `mpesa-bridge keygen`.

2) Deploy every instance (servers and workers) with MPESA_BRIDGE_MASTER_KEY=<new key> and
MPESA_BRIDGE_OLD_MASTER_KEYS=<old key>: they read secrets sealed under either key and seal new ones under the new key.

3) Run `mpesa-bridge secrets rotate-master` with the same two variables: every secret is re-sealed under the new key.

4) Once every instance runs with the new key, remove the old key from MPESA_BRIDGE_OLD_MASTER_KEYS and redeploy
(`mpesa-bridge secrets verify` with only the new key configured confirms nothing still needs the old one).
"""
_LISTED = 20

BatchOpt = Annotated[
    int,
    typer.Option(envvar="MPESA_BRIDGE_RESEAL_BATCH", min=1, help="rows re-sealed per transaction"),
]
AllOpt = Annotated[
    bool,
    typer.Option(
        "--all/--sample", envvar="MPESA_BRIDGE_VERIFY_ALL", help="open every stored secret, not one per master key id"
    ),
]


def _box(settings: Settings) -> SecretBox:
    try:
        return SecretBox(settings.master_keys())
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from exc


@secrets_app.command("rotate-master", help=ROTATION_HELP)
def rotate_master(database_url: DbOpt = None, batch: BatchOpt = 100) -> None:
    settings = settings_from(database_url=database_url)
    if settings.master_key is None:
        typer.echo(
            "configuration error: set MPESA_BRIDGE_MASTER_KEY to the new master key and MPESA_BRIDGE_OLD_MASTER_KEYS"
            " to the old one (see `mpesa-bridge secrets rotate-master --help`)",
            err=True,
        )
        raise typer.Exit(2)
    box = _box(settings)

    async def _rotate() -> ResealReport:
        db = Database(settings.resolved_database_url)
        try:
            total = await count_sealed(db)
            with progress_bar("re-sealing", unit="secrets") as report:
                return await reseal_all(db, box, batch=batch, on_progress=lambda done: report(done, total))
        finally:
            await db.dispose()

    report = run(_rotate)
    typer.echo(f"resealed {report.resealed} under master key {report.key_id}; {report.already_current} already current")
    if report.failed:
        by_reason: dict[str, list[str]] = {}
        for failure in report.failed:
            by_reason.setdefault(f"{failure.value.key_id}: {failure.reason}", []).append(failure.value.location)
        typer.echo(f"error: {len(report.failed)} stored secret(s) do not open and were left as they were:", err=True)
        for reason, locations in sorted(by_reason.items()):
            more = f" and {len(locations) - _LISTED} more" if len(locations) > _LISTED else ""
            typer.echo(f"  master key id {reason} ({len(locations)}): {', '.join(locations[:_LISTED])}{more}", err=True)
        typer.echo(
            "Add the key each listed id belongs to to MPESA_BRIDGE_OLD_MASTER_KEYS and run this again;"
            " keep the old keys configured until it succeeds.",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(NEXT_STEP)


@secrets_app.command("verify")
def verify(database_url: DbOpt = None, check_all: AllOpt = False) -> None:
    """Check that the configured master keys open the stored secrets; exit 1 naming the key ids that do not."""
    settings = settings_from(database_url=database_url)
    box = _box(settings)

    async def _verify() -> VerifyReport:
        db = Database(settings.resolved_database_url)
        try:
            return await verify_sealed(db, box, check_all=check_all)
        finally:
            await db.dispose()

    report = run(_verify)
    for kid, count in sorted(report.counts.items(), key=lambda item: (item[0] != box.current_key_id, item[0])):
        if kid == box.current_key_id:
            state = "current key"
        elif kid in box.key_ids:
            state = "old key (MPESA_BRIDGE_OLD_MASTER_KEYS): run `mpesa-bridge secrets rotate-master`"
        elif kid == MALFORMED:
            state = "MALFORMED"
        else:
            state = "NOT CONFIGURED"
        typer.echo(f"master key {kid}: {count} stored secret(s), {state}")
    if not report.ok:
        for value in report.failed[:_LISTED]:
            typer.echo(f"does not open: {value.location} (master key {value.key_id})", err=True)
        typer.echo(f"error: {describe_problems(report)}", err=True)
        raise typer.Exit(1)
    scope = "every one opened" if check_all else "one per master key id opened (--all opens every one)"
    typer.echo(f"ok: {report.total} stored secret(s), {scope}")
