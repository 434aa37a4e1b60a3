"""`mpesa-bridge users create|list`: dashboard accounts from the command line (the first one too)."""

from __future__ import annotations

from typing import Annotated

import typer

from mpesa_bridge.cli import DbOpt, run, settings_from, users_app
from mpesa_bridge.cli.projects import with_runtime
from mpesa_bridge.core.people.entity import Role
from mpesa_bridge.runtime import Runtime


@users_app.command("create")
def create(
    email: Annotated[
        str, typer.Option(envvar="MPESA_BRIDGE_USER_EMAIL", help="the person's email: their sign-in name")
    ],
    password: Annotated[
        str | None,
        typer.Option(
            envvar="MPESA_BRIDGE_USER_PASSWORD",
            help="their password (default: asked for, not echoed); at least 10 characters",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str, typer.Option(envvar="MPESA_BRIDGE_USER_NAME", help="their name, as the dashboard shows it")
    ] = "",
    admin: Annotated[
        bool,
        typer.Option(
            "--admin/--no-admin", envvar="MPESA_BRIDGE_USER_ADMIN", help="platform admin: every project, all accounts"
        ),
    ] = False,
    project: Annotated[
        str | None,
        typer.Option(
            envvar="MPESA_BRIDGE_USER_PROJECT", help="a project id to add them to (with --role)", show_default=False
        ),
    ] = None,
    role: Annotated[Role, typer.Option(envvar="MPESA_BRIDGE_USER_ROLE", help="their role in --project")] = Role.OWNER,
    database_url: DbOpt = None,
) -> None:
    """Create a dashboard account. Sign in at <public base URL>/dashboard/."""
    settings = settings_from(database_url=database_url)
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def _create(runtime: Runtime) -> None:
        user = await runtime.people.create_user(email, password or "", name=name, is_admin=admin)
        if project is not None:
            await runtime.people.add_member(project, user.id, role)
        kind = "platform admin" if admin else "account"
        typer.echo(f"{kind} {user.id} created for {user.email}")
        typer.echo(f"sign in at {runtime.settings.resolved_public_base_url}/dashboard/")

    run(lambda: with_runtime(settings, _create))


@users_app.command("list")
def list_(database_url: DbOpt = None) -> None:
    """List dashboard accounts: id, email, admin or not, disabled or not."""
    settings = settings_from(database_url=database_url)

    async def _list(runtime: Runtime) -> None:
        for user in await runtime.people.users():
            flags = ", ".join(f for f, on in (("admin", user.is_admin), ("disabled", user.disabled)) if on)
            typer.echo(f"{user.id}  {user.email}" + (f"  ({flags})" if flags else ""))

    run(lambda: with_runtime(settings, _list))
