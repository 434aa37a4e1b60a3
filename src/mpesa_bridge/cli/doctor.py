"""`mpesa-bridge doctor`: is this bridge ready to take real payments? Checks in plain words.

This module gathers the facts (the database, the master key, the backup marker, DNS, a check host,
Daraja); `core/golive.py` judges them. Nothing here prompts a customer or moves money: Daraja is
asked for a token and about a made-up CheckoutRequestID (an STK Query), nothing else.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Annotated
from urllib.parse import urlsplit

import httpx
import typer

from mpesa_bridge.cli import DbOpt, app, run, settings_from
from mpesa_bridge.config import ConfigError, Settings
from mpesa_bridge.core import golive
from mpesa_bridge.core.crypto import MasterKeyError, SecretBox
from mpesa_bridge.core.golive import Check, Status
from mpesa_bridge.core.ports import PushNotSent
from mpesa_bridge.core.projects import DarajaAccount, DarajaConfig, DarajaEnvironment, Mode
from mpesa_bridge.daraja import DarajaError, DarajaResponseError, DarajaTransportError
from mpesa_bridge.daraja.gateway import DarajaGatewayAdapter
from mpesa_bridge.daraja.pool import close_http, open_daraja_http
from mpesa_bridge.routes import CALLBACK_PATH
from mpesa_bridge.storage.backup import last_backup
from mpesa_bridge.storage.db import Database
from mpesa_bridge.storage.migrate import current_revision, head_revision
from mpesa_bridge.storage.sealed import describe_problems, verify_sealed
from mpesa_bridge.tls import client_ssl_context

DOCTOR_HELP = """Check that this bridge is ready for real payments, and say in plain words what is not.

Checks: migrations at head; the master key opens the stored secrets; a backup was made under the current
master key (`mpesa-bridge backup`); the callback URL is https, public and — when MPESA_BRIDGE_DOCTOR_CHECK_URL
names a check host — reachable from outside; and for each project's Daraja settings of --mode: the environment
matches its URLs and values, till or paybill, a token can be fetched (consumer key and secret), the short code
and passkey belong together (an STK Query about a made-up payment: no one is prompted), and this machine's clock
against Daraja's. Exits 1 when a check fails. See docs/going-live.md.
"""

_MARK = {Status.OK: "ok  ", Status.WARN: "WARN", Status.FAIL: "FAIL", Status.SKIPPED: "--  "}


def _base_urls(settings: Settings) -> dict[DarajaEnvironment, str | None]:
    return {
        DarajaEnvironment.SIMULATOR: settings.resolved_simulator_url,
        DarajaEnvironment.SANDBOX: settings.daraja_sandbox_url,
        DarajaEnvironment.PRODUCTION: settings.daraja_production_url,
    }


async def _resolve(host: str) -> tuple[list[str] | None, str]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        return None, str(exc)
    return [str(info[4][0]) for info in infos], ""


async def _callback_checks(settings: Settings, check_transport: httpx.AsyncBaseTransport | None) -> list[Check]:
    base = settings.resolved_public_base_url
    url = f"{base}{CALLBACK_PATH}…"
    host = urlsplit(base).hostname or ""
    addresses, error = await _resolve(host)
    checks = [golive.callback_url(url, addresses, error)]
    health = f"{base}/healthz"
    status: int | None = None
    problem = ""
    if settings.doctor_check_url:
        try:
            async with httpx.AsyncClient(transport=check_transport, timeout=30) as http:
                answer = await http.post(settings.doctor_check_url, json={"url": health})
            answer.raise_for_status()
            seen = answer.json().get("status")
            status = int(seen) if seen is not None else None
            problem = str(answer.json().get("error") or "")
        except (httpx.HTTPError, ValueError, TypeError, AttributeError) as exc:
            problem = f"the check host failed: {type(exc).__name__}"
    checks.append(golive.reachability(health, settings.doctor_check_url, status, problem))
    return checks


async def _master_key_checks(
    settings: Settings, db: Database, migrated: bool, *, live: bool
) -> tuple[list[Check], SecretBox | None]:
    try:
        box = SecretBox(settings.master_keys())
    except (ConfigError, MasterKeyError) as exc:
        return [golive.failed("master key", str(exc), "set MPESA_BRIDGE_MASTER_KEY")], None
    checks = []
    if migrated:
        report = await verify_sealed(db, box)
        if report.ok:
            checks.append(golive.ok("master key", f"master key {box.current_key_id} opens the stored secrets"))
        else:
            checks.append(golive.failed("master key", describe_problems(report), "see `mpesa-bridge secrets verify`"))
    marker = last_backup(settings.data_dir)
    at = datetime.fromisoformat(marker.at) if marker else None
    ids = marker.master_key_ids if marker else []
    checks.append(golive.master_key_backup(at, ids, box.current_key_id, datetime.now(UTC), live=live))
    return checks, box


async def _date_of(http: httpx.AsyncClient, base_url: str) -> datetime | None:
    try:
        answer = await http.get(
            f"{base_url.rstrip('/')}/oauth/v1/generate", params={"grant_type": "client_credentials"}
        )
    except httpx.HTTPError:
        return None
    header = answer.headers.get("date")
    try:
        return parsedate_to_datetime(header) if header else None
    except (TypeError, ValueError):
        return None


async def _pairing(gateway: DarajaGatewayAdapter, account: DarajaAccount, scope: str) -> Check:
    try:
        await gateway.client(account).stk_query(account.short_code, account.passkey, golive.PROBE_CHECKOUT_REQUEST_ID)
    except DarajaResponseError as exc:
        return golive.pairing(account.shortcode_type, exc.error_message or str(exc), reached=True, scope=scope)
    except DarajaTransportError as exc:
        return golive.pairing(account.shortcode_type, None, reached=False, other=f"Daraja unreachable ({exc.code})")
    except DarajaError as exc:
        return golive.pairing(account.shortcode_type, None, reached=False, other=f"Daraja answered {exc.code}")
    return golive.pairing(account.shortcode_type, None, reached=True, scope=scope)


async def _project_checks(
    settings: Settings,
    configs: list[DarajaConfig],
    box: SecretBox,
    daraja_transport: httpx.AsyncBaseTransport | None,
    now: Callable[[], datetime],
) -> list[Check]:
    checks: list[Check] = []
    timeout = httpx.Timeout(settings.daraja_timeout, connect=settings.daraja_connect_timeout)
    pool = open_daraja_http(timeout, client_ssl_context(), transport=daraja_transport)
    gateway = DarajaGatewayAdapter(pool, _base_urls(settings), timeout=timeout)
    clocks: set[str] = set()
    try:
        async with httpx.AsyncClient(transport=daraja_transport, timeout=timeout) as http:
            for config in configs:
                scope = f"{config.project_id} {config.mode.value}"
                try:
                    account = config.open(box)
                except MasterKeyError as exc:
                    checks.append(golive.failed("credentials", str(exc), "see `mpesa-bridge secrets verify`", scope))
                    continue
                base = _base_urls(settings)[account.environment]
                checks.append(
                    golive.environment_mismatch(account.environment, base, account.short_code, account.passkey, scope)
                )
                checks.append(
                    golive.till_or_paybill(account.shortcode_type, account.short_code, account.till_number, scope)
                )
                try:
                    await gateway.check_credentials(account)
                except PushNotSent as exc:
                    checks.append(golive.credentials(exc.code, exc.message, scope))
                    continue
                checks.append(golive.credentials(None, "", scope))
                checks.append(await _pairing(gateway, account, scope))
                if base and base not in clocks:
                    clocks.add(base)
                    checks.append(golive.clock_skew(now(), await _date_of(http, base), f"Daraja ({base})"))
    finally:
        await close_http(pool)
    return checks


async def diagnose(
    settings: Settings,
    *,
    mode: Mode = Mode.LIVE,
    project_id: str | None = None,
    daraja_transport: httpx.AsyncBaseTransport | None = None,
    check_transport: httpx.AsyncBaseTransport | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[Check]:
    """Every check, in the order they are shown. The transports let tests reach in-process peers."""
    checks: list[Check] = []
    db = Database(settings.resolved_database_url)
    try:
        try:
            current = await current_revision(db)
        except Exception as exc:  # any driver error: the database is the first thing to fix
            return [
                golive.failed(
                    "database",
                    f"cannot read the database: {type(exc).__name__}: {exc}",
                    "check MPESA_BRIDGE_DATABASE_URL",
                )
            ]
        checks.append(golive.migrations(current, head_revision()))
        migrated = current == head_revision()
        key_checks, box = await _master_key_checks(settings, db, migrated, live=mode is Mode.LIVE)
        checks += key_checks
        checks += await _callback_checks(settings, check_transport)
        if not migrated or box is None:
            checks.append(Check("Daraja", Status.SKIPPED, "not checked: fix the database and master key first"))
            return checks
        async with db.read() as uow:
            configs = [
                c
                for c in await uow.projects.all_daraja_configs()
                if c.mode is mode and (project_id is None or c.project_id == project_id)
            ]
    finally:
        await db.dispose()
    if not configs:
        which = f"project {project_id}" if project_id else "no project"
        checks.append(
            Check(
                "Daraja",
                Status.SKIPPED if project_id is None else Status.FAIL,
                f"{which} has {mode.value} Daraja settings",
            )
        )
        return checks
    checks += await _project_checks(settings, sorted(configs, key=lambda c: c.project_id), box, daraja_transport, now)
    return checks


def render(checks: list[Check]) -> None:
    for check in checks:
        where = f" [{check.scope}]" if check.scope else ""
        typer.echo(f"{_MARK[check.status]}  {check.name}{where}: {check.detail}")
        if check.fix and check.status is not Status.OK:
            typer.echo(f"      -> {check.fix}")
    failures = sum(1 for c in checks if c.status is Status.FAIL)
    warnings = sum(1 for c in checks if c.status is Status.WARN)
    typer.echo(f"{failures} failed, {warnings} warning(s), {len(checks)} check(s)")


@app.command(help=DOCTOR_HELP)
def doctor(
    database_url: DbOpt = None,
    mode: Annotated[
        Mode, typer.Option(envvar="MPESA_BRIDGE_DOCTOR_MODE", help="which Daraja settings to check")
    ] = Mode.LIVE,
    project: Annotated[
        str | None,
        typer.Option(envvar="MPESA_BRIDGE_DOCTOR_PROJECT", help="check this project only", show_default=False),
    ] = None,
) -> None:
    settings = settings_from(database_url=database_url)
    checks = run(lambda: diagnose(settings, mode=mode, project_id=project))
    render(checks)
    if any(c.status is Status.FAIL for c in checks):
        raise typer.Exit(1)
