"""`mpesa-bridge c2b register|registrations|payments`: C2B from the operator's shell (docs/c2b.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from mpesa_bridge.cli import DbOpt, app, run, settings_from
from mpesa_bridge.cli.projects import with_runtime
from mpesa_bridge.core.projects import Mode, Tenant
from mpesa_bridge.runtime import Runtime

c2b_app = typer.Typer(
    help="C2B: register a short code's URLs with Daraja, list registrations and payments.", no_args_is_help=True
)
app.add_typer(c2b_app, name="c2b")

ProjectArg = Annotated[str, typer.Argument(envvar="MPESA_BRIDGE_PROJECT_ID", help="project id (proj_…)")]
ModeOpt = Annotated[Mode, typer.Option(envvar="MPESA_BRIDGE_C2B_MODE", help="test or live")]


@c2b_app.command("register")
def register(
    project_id: ProjectArg,
    mode: ModeOpt = Mode.TEST,
    short_code: Annotated[
        str | None,
        typer.Option(
            envvar="MPESA_BRIDGE_C2B_SHORT_CODE",
            help="paybill or till short code (default: the mode's)",
            show_default=False,
        ),
    ] = None,
    response_type: Annotated[
        str,
        typer.Option(
            envvar="MPESA_BRIDGE_C2B_RESPONSE_TYPE", help="Completed or Cancelled: Daraja's choice when we are late"
        ),
    ] = "Completed",
    validation: Annotated[
        bool,
        typer.Option(
            "--validation/--no-validation",
            envvar="MPESA_BRIDGE_C2B_VALIDATION",
            help="answer validation calls by the project's rule (--no-validation: accept at once)",
        ),
    ] = True,
    api_version: Annotated[
        int | None,
        typer.Option(
            envvar="MPESA_BRIDGE_C2B_API_VERSION", help="Daraja register URL version, 1 or 2", show_default=False
        ),
    ] = None,
    database_url: DbOpt = None,
) -> None:
    """Register this bridge's validation and confirmation URLs for a short code with Daraja."""
    settings = settings_from(database_url=database_url)

    async def _register(runtime: Runtime) -> None:
        registration = await runtime.c2b.register(
            Tenant(project_id, mode),
            short_code=short_code,
            response_type=response_type,
            validation=validation,
            api_version=api_version,
        )
        typer.echo(f"{registration.id}  short code {registration.short_code}  registered (v{registration.api_version})")
        typer.echo(f"  validation    {registration.validation_url}")
        typer.echo(f"  confirmation  {registration.confirmation_url}")

    run(lambda: with_runtime(settings, _register))


@c2b_app.command("registrations")
def registrations(project_id: ProjectArg, mode: ModeOpt = Mode.TEST, database_url: DbOpt = None) -> None:
    """List a project mode's C2B registrations."""
    settings = settings_from(database_url=database_url)

    async def _list(runtime: Runtime) -> None:
        for r in await runtime.c2b.registrations(Tenant(project_id, mode)):
            check = "validation on" if r.validation else "validation off"
            typer.echo(f"{r.id}  {r.short_code}  {r.response_type}  {check}  v{r.api_version}  {r.status}")

    run(lambda: with_runtime(settings, _list))


@c2b_app.command("payments")
def payments(
    project_id: ProjectArg,
    mode: ModeOpt = Mode.TEST,
    status: Annotated[
        str | None,
        typer.Option(envvar="MPESA_BRIDGE_C2B_STATUS", help="unmatched (the review queue), matched or dismissed"),
    ] = None,
    limit: Annotated[int, typer.Option(envvar="MPESA_BRIDGE_C2B_LIMIT", help="at most this many", min=1)] = 20,
    database_url: DbOpt = None,
) -> None:
    """List C2B payments, newest first."""
    settings = settings_from(database_url=database_url)

    async def _list(runtime: Runtime) -> None:
        rows = await runtime.c2b.payments(Tenant(project_id, mode), status=status, limit=limit)
        for p in rows[:limit]:
            matched = f"{p.matched_type.value} {p.matched_id}" if p.matched_type else ""
            duplicate = f"  duplicate of {p.duplicate_of}" if p.duplicate_of else ""
            reference = p.bill_ref_number or "-"
            typer.echo(f"{p.id}  {p.trans_id}  KES {p.amount}  {reference}  {p.status.value}  {matched}{duplicate}")

    run(lambda: with_runtime(settings, _list))
