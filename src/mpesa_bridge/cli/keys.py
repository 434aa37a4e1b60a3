"""`mpesa-bridge keys list|rotate|revoke`: the operator's side of secret-key rotation."""

from __future__ import annotations

from typing import Annotated

import typer

from mpesa_bridge.cli import DbOpt, keys_app, run, settings_from
from mpesa_bridge.cli.projects import with_runtime
from mpesa_bridge.core.payments.public import iso
from mpesa_bridge.core.projects import Mode
from mpesa_bridge.runtime import Runtime

ProjectArg = Annotated[str, typer.Argument(envvar="MPESA_BRIDGE_PROJECT_ID", help="project id (proj_…)")]
ModeOpt = Annotated[Mode, typer.Option(envvar="MPESA_BRIDGE_KEY_MODE", help="test or live")]


@keys_app.command("list")
def list_keys(project_id: ProjectArg, database_url: DbOpt = None) -> None:
    """List a project's keys: id, mode, the visible part, last use, expiry, revocation."""
    settings = settings_from(database_url=database_url)

    async def _list(runtime: Runtime) -> None:
        for key in await runtime.projects.list_keys(project_id):
            state = "revoked" if key.revoked_at else f"expires {iso(key.expires_at)}" if key.expires_at else "active"
            typer.echo(f"{key.id}  {key.mode}  {key.display}  last used {iso(key.last_used_at) or 'never'}  {state}")

    run(lambda: with_runtime(settings, _list))


@keys_app.command("rotate")
def rotate(
    project_id: ProjectArg,
    mode: ModeOpt,
    grace: Annotated[
        float | None,
        typer.Option(
            envvar="MPESA_BRIDGE_KEY_ROTATION_GRACE", help="seconds the old keys keep working (default 86400; 0: now)"
        ),
    ] = None,
    database_url: DbOpt = None,
) -> None:
    """Issue a new key for a mode (shown once); the mode's current keys stop after the grace period."""
    settings = settings_from(database_url=database_url)
    seconds = settings.key_rotation_grace if grace is None else grace

    async def _rotate(runtime: Runtime) -> None:
        issued, old = await runtime.projects.rotate_mode_keys(project_id, mode, seconds)
        typer.echo(issued.secret)
        for key in old:
            typer.echo(f"{key.id} ({key.display}) stops at {iso(key.expires_at)}", err=True)

    run(lambda: with_runtime(settings, _rotate))


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(envvar="MPESA_BRIDGE_KEY_ID", help="key id (key_…)")],
    database_url: DbOpt = None,
) -> None:
    """Revoke a key now (other running instances drop it within MPESA_BRIDGE_KEY_CACHE_TTL)."""
    settings = settings_from(database_url=database_url)

    async def _revoke(runtime: Runtime) -> None:
        key = await runtime.projects.revoke_key(key_id)
        typer.echo(f"{key.id} revoked at {iso(key.revoked_at)}")

    run(lambda: with_runtime(settings, _revoke))
