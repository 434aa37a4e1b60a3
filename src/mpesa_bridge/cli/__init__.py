"""The `mpesa-bridge` command (Typer). Every option can also be set with an MPESA_BRIDGE_* variable."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from mpesa_bridge.config import ConfigError, Settings, load_settings
from mpesa_bridge.serving import event_loop_factory

T = TypeVar("T")

app = typer.Typer(
    name="mpesa-bridge",
    help="A self-hostable M-Pesa (Daraja) payments gateway. Options also read MPESA_BRIDGE_* variables.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
projects_app = typer.Typer(help="Projects, their Daraja settings and secret keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(projects_app, name="projects")
keys_app = typer.Typer(help="Secret keys: list, rotate with a grace period, revoke.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
users_app = typer.Typer(help="Dashboard accounts: create (the first one too) and list.", no_args_is_help=True)
app.add_typer(users_app, name="users")

HostOpt = Annotated[str | None, typer.Option(envvar="MPESA_BRIDGE_HOST", help="interface to bind", show_default=False)]
PortOpt = Annotated[int | None, typer.Option(envvar="MPESA_BRIDGE_PORT", help="port to listen on", show_default=False)]
DbOpt = Annotated[
    str | None,
    typer.Option("--database-url", envvar="MPESA_BRIDGE_DATABASE_URL", help="SQLAlchemy URL", show_default=False),
]


def settings_from(**given: Any) -> Settings:
    try:
        return load_settings(**{k: v for k, v in given.items() if v is not None})
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from exc


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def _main() -> T:
        return await coro_fn()

    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            return runner.run(_main())
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _print_version(given: bool) -> None:
    if given:
        from importlib.metadata import version

        typer.echo(f"mpesa-bridge {version('mpesa-bridge')}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the installed version and exit."),
    ] = False,
) -> None:
    """A self-hostable M-Pesa (Daraja) payments gateway. Options also read MPESA_BRIDGE_* variables."""


@app.command()
def serve(
    host: HostOpt = None,
    port: PortOpt = None,
    database_url: DbOpt = None,
    dev: Annotated[
        bool,
        typer.Option(
            "--dev/--no-dev",
            envvar="MPESA_BRIDGE_DEV",
            help="create (once) a test project and print its key and a first curl",
        ),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            envvar="MPESA_BRIDGE_WORKERS",
            help=(
                "server processes sharing the port (default 1). Above 1: PostgreSQL only, the simulator not "
                "mounted, not with --dev; set MPESA_BRIDGE_REDIS_URL too (see docs/configuration.md)"
            ),
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the HTTP server (API, Daraja callbacks, in-process workers, simulator in development);
    with --workers N, N such processes on the port."""
    from mpesa_bridge.cli.processes import processes_refusal, serve_several

    settings = settings_from(host=host, port=port, database_url=database_url, workers=workers)
    if dev and settings.production:
        typer.echo("configuration error: --dev (MPESA_BRIDGE_DEV) is for development, not production", err=True)
        raise typer.Exit(2)
    refusal = processes_refusal(settings, dev=dev)
    if refusal:
        typer.echo(f"configuration error: {refusal}", err=True)
        raise typer.Exit(2)
    if settings.workers > 1:
        raise typer.Exit(serve_several(settings))
    from mpesa_bridge.cli.serve import serve_forever

    run(lambda: serve_forever(settings, dev=dev))


@app.command()
def worker(database_url: DbOpt = None) -> None:
    """Run the inbox, reconciliation and webhook delivery workers without the HTTP server (scale them separately)."""
    from mpesa_bridge.cli.serve import work_forever

    settings = settings_from(database_url=database_url)
    run(lambda: work_forever(settings))


simulator_app = typer.Typer(invoke_without_command=True)
app.add_typer(simulator_app, name="simulator")


@simulator_app.callback()
def simulator(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(envvar="MPESA_BRIDGE_SIMULATOR_HOST", help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="MPESA_BRIDGE_SIMULATOR_PORT", help="port to listen on")] = 8001,
    callback_delay: Annotated[
        float, typer.Option(envvar="MPESA_BRIDGE_SIMULATOR_CALLBACK_DELAY", help="seconds before the callback")
    ] = 3.0,
    late_callback_delay: Annotated[
        float, typer.Option(envvar="MPESA_BRIDGE_SIMULATOR_LATE_CALLBACK_DELAY", help="delay of the 'late' number")
    ] = 120.0,
    push_answer_delay: Annotated[
        float,
        typer.Option(
            envvar="MPESA_BRIDGE_SIMULATOR_PUSH_ANSWER_DELAY",
            help="seconds an accepted push's answer is held back (the prompt is shown at once)",
        ),
    ] = 0.0,
    lose_callbacks: Annotated[
        bool,
        typer.Option(
            "--lose-callbacks/--keep-callbacks",
            envvar="MPESA_BRIDGE_SIMULATOR_LOSE_CALLBACKS",
            help="send no callback at all: STK Query alone tells the outcome",
        ),
    ] = False,
    c2b_validation_timeout: Annotated[
        float,
        typer.Option(
            envvar="MPESA_BRIDGE_SIMULATOR_C2B_VALIDATION_TIMEOUT",
            help="seconds a C2B payment waits for the ValidationURL before the ResponseType decides (Daraja: ~8)",
        ),
    ] = 8.0,
    result_delay: Annotated[
        float,
        typer.Option(
            envvar="MPESA_BRIDGE_SIMULATOR_RESULT_DELAY",
            help="seconds before the Result of a payout, reversal, status or balance query is posted",
        ),
    ] = 2.0,
    initiator_answer_delay: Annotated[
        float,
        typer.Option(
            envvar="MPESA_BRIDGE_SIMULATOR_INITIATOR_ANSWER_DELAY",
            help="seconds an accepted payout's or reversal's answer is held back (the money moves at once)",
        ),
    ] = 0.0,
    initiator_key: Annotated[
        Path | None,
        typer.Option(
            envvar="MPESA_BRIDGE_SIMULATOR_INITIATOR_KEY",
            help="RSA private key (PEM) whose certificate the simulator publishes; default: a new one per start",
        ),
    ] = None,
) -> None:
    """Run the offline Daraja simulator on its own (OAuth, STK Push, STK Query, C2B, B2C, reversal,
    transaction status, account balance, callbacks); `simulator pay` makes a customer payment on a
    running one."""
    if ctx.invoked_subcommand is not None:
        return
    import dataclasses

    import uvicorn

    from mpesa_bridge.api.app import simulator_config
    from mpesa_bridge.simulator import create_app

    settings = settings_from(simulator_callback_delay=callback_delay, simulator_late_callback_delay=late_callback_delay)
    config = dataclasses.replace(
        simulator_config(settings),
        lose_callbacks=lose_callbacks,
        push_answer_delay=push_answer_delay,
        c2b_validation_timeout=c2b_validation_timeout,
        result_delay=result_delay,
        initiator_answer_delay=initiator_answer_delay,
        initiator_key_pem=initiator_key.read_bytes() if initiator_key is not None else None,
    )
    typer.echo(f"Daraja simulator on http://{host}:{port} (consumer key {settings.simulator_consumer_key})")
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning")


@app.command()
def keygen() -> None:
    """Print a new random master key for MPESA_BRIDGE_MASTER_KEY."""
    from mpesa_bridge.core.crypto import generate_master_key

    typer.echo(generate_master_key())


@db_app.command("upgrade")
def db_upgrade(
    database_url: DbOpt = None,
    revision: Annotated[str, typer.Argument(help="target revision")] = "head",
) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from mpesa_bridge.storage.migrate import upgrade

    settings = settings_from(database_url=database_url)
    upgrade(settings.resolved_database_url, revision)
    typer.echo(f"database at {revision}")


@db_app.command("current")
def db_current(database_url: DbOpt = None) -> None:
    """Show the database's migration revision and the code's head."""
    from mpesa_bridge.storage.db import Database
    from mpesa_bridge.storage.migrate import current_revision, head_revision

    settings = settings_from(database_url=database_url)

    async def _current() -> str | None:
        db = Database(settings.resolved_database_url)
        try:
            return await current_revision(db)
        finally:
            await db.dispose()

    typer.echo(f"current: {run(_current) or 'empty'}  head: {head_revision()}")


def register_commands() -> typer.Typer:
    """Import the modules that add their commands to `app` (kept out of import time on purpose)."""
    from mpesa_bridge.cli import apifiles, c2b, keys, listen, projects, simulator_pay, users  # noqa: F401
    from mpesa_bridge.cli import backup as _backup  # noqa: F401
    from mpesa_bridge.cli import doctor as _doctor  # noqa: F401
    from mpesa_bridge.cli import secrets as _secrets  # noqa: F401
    from mpesa_bridge.cli.flags import show_flags_as_flags

    show_flags_as_flags()
    return app


def main() -> None:
    register_commands()
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)
