"""`mpesa-bridge projects create|list|set-daraja|new-key`."""

from __future__ import annotations

from typing import Annotated

import typer

from mpesa_bridge.cli import DbOpt, projects_app, run, settings_from
from mpesa_bridge.config import Settings
from mpesa_bridge.core.errors import BridgeError
from mpesa_bridge.core.projects import DarajaEnvironment, DarajaSettingsInput, Mode, ShortcodeType
from mpesa_bridge.runtime import Runtime, build_runtime, simulator_daraja


async def with_runtime(settings: Settings, fn: object) -> object:
    runtime = await build_runtime(settings)
    try:
        return await fn(runtime)  # type: ignore[operator]
    except BridgeError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    finally:
        await runtime.aclose()


@projects_app.command("create")
def create(
    name: Annotated[str, typer.Option(envvar="MPESA_BRIDGE_PROJECT_NAME", help="project name")],
    database_url: DbOpt = None,
    simulator: Annotated[
        bool,
        typer.Option(
            envvar="MPESA_BRIDGE_PROJECT_SIMULATOR",
            help="point test mode at the built-in simulator (sandbox shortcode 174379)",
        ),
    ] = True,
) -> None:
    """Create a project and print its test and live secret keys (shown once)."""
    settings = settings_from(database_url=database_url)

    async def _create(runtime: Runtime) -> None:
        daraja = {Mode.TEST: simulator_daraja(runtime.settings)} if simulator else {}
        project, keys = await runtime.projects.create_project(name, daraja)
        typer.echo(f"project   {project.id}  ({project.name})")
        for mode, issued in keys.items():
            typer.echo(f"{mode.value:<9} {issued.secret}")
        typer.echo("Store these keys now: they are not shown again.")

    run(lambda: with_runtime(settings, _create))


@projects_app.command("list")
def list_(database_url: DbOpt = None) -> None:
    """List projects and the Daraja environment of each mode."""
    settings = settings_from(database_url=database_url)

    async def _list(runtime: Runtime) -> None:
        for project in await runtime.projects.list_projects():
            configs = await runtime.projects.daraja_configs(project.id)
            modes = ", ".join(f"{m.value}={c.environment} {c.short_code}" for m, c in configs.items()) or "no Daraja"
            typer.echo(f"{project.id}  {project.name}  [{modes}]")

    run(lambda: with_runtime(settings, _list))


@projects_app.command("set-daraja")
def set_daraja(
    project_id: Annotated[str, typer.Argument(help="project id (proj_…)")],
    mode: Annotated[Mode, typer.Option(envvar="MPESA_BRIDGE_DARAJA_MODE", help="test or live")],
    environment: Annotated[
        DarajaEnvironment,
        typer.Option(envvar="MPESA_BRIDGE_DARAJA_ENVIRONMENT", help="simulator, sandbox or production"),
    ],
    short_code: Annotated[
        str, typer.Option(envvar="MPESA_BRIDGE_DARAJA_SHORT_CODE", help="paybill number, or a till's store number")
    ],
    consumer_key: Annotated[str, typer.Option(envvar="MPESA_BRIDGE_DARAJA_CONSUMER_KEY", help="Daraja app key")],
    consumer_secret: Annotated[
        str,
        typer.Option(
            envvar="MPESA_BRIDGE_DARAJA_CONSUMER_SECRET",
            prompt=True,
            hide_input=True,
            help="Daraja app secret (prompted for when not given)",
        ),
    ],
    passkey: Annotated[
        str,
        typer.Option(
            envvar="MPESA_BRIDGE_DARAJA_PASSKEY",
            prompt=True,
            hide_input=True,
            help="Lipa Na M-Pesa Online passkey (prompted for when not given)",
        ),
    ],
    shortcode_type: Annotated[
        ShortcodeType, typer.Option(envvar="MPESA_BRIDGE_DARAJA_SHORTCODE_TYPE", help="paybill or till")
    ] = ShortcodeType.PAYBILL,
    till_number: Annotated[
        str | None, typer.Option(envvar="MPESA_BRIDGE_DARAJA_TILL_NUMBER", help="the till number, for tills")
    ] = None,
    initiator_name: Annotated[
        str | None,
        typer.Option(
            envvar="MPESA_BRIDGE_DARAJA_INITIATOR_NAME",
            help="the initiator of payouts, reversals and queries (not given: the stored one is kept; '': removed)",
        ),
    ] = None,
    initiator_password: Annotated[
        str | None,
        typer.Option(
            envvar="MPESA_BRIDGE_DARAJA_INITIATOR_PASSWORD",
            help="the initiator's password (prompted for when --initiator-name is given without it)",
        ),
    ] = None,
    database_url: DbOpt = None,
) -> None:
    """Set a mode's Daraja credentials and its initiator (sealed under the master key)."""
    if initiator_name and initiator_password is None:
        initiator_password = typer.prompt("Initiator password", hide_input=True)
    settings = settings_from(database_url=database_url)
    given = DarajaSettingsInput(
        environment=environment,
        consumer_key=consumer_key,
        consumer_secret=consumer_secret,
        short_code=short_code,
        passkey=passkey,
        shortcode_type=shortcode_type,
        till_number=till_number,
        initiator_name=initiator_name,
        initiator_password=initiator_password,
    )

    async def _set(runtime: Runtime) -> None:
        await runtime.projects.set_daraja(project_id, mode, given)
        typer.echo(f"{mode.value} mode of {project_id} now uses {environment.value} shortcode {short_code}")

    run(lambda: with_runtime(settings, _set))


@projects_app.command("new-key")
def new_key(
    project_id: Annotated[str, typer.Argument(help="project id (proj_…)")],
    mode: Annotated[Mode, typer.Option(envvar="MPESA_BRIDGE_KEY_MODE", help="test or live")],
    database_url: DbOpt = None,
) -> None:
    """Issue another secret key for a mode (shown once)."""
    settings = settings_from(database_url=database_url)

    async def _key(runtime: Runtime) -> None:
        issued = await runtime.projects.issue_key(project_id, mode)
        typer.echo(issued.secret)

    run(lambda: with_runtime(settings, _key))
