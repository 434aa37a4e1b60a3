"""`mpesa-bridge doctor` against the simulator configured wrong in each way — SQLite and PostgreSQL.

The in-process bridge's simulator stands in for production Daraja (MPESA_BRIDGE_DARAJA_PRODUCTION_URL
points at it): it knows a paybill `600100` with its passkey and a till `5550001` under store `600200`.
Each test saves one project's live Daraja settings wrong in one way and runs the doctor's checks
(`cli.doctor.diagnose`) over the simulator; the CLI's exit status is tested on a database whose
migrations are behind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from mpesa_bridge.cli import register_commands
from mpesa_bridge.cli.doctor import diagnose
from mpesa_bridge.config import Settings
from mpesa_bridge.core.crypto import generate_master_key
from mpesa_bridge.core.golive import Check, Status
from mpesa_bridge.core.projects import DarajaEnvironment, DarajaSettingsInput, Mode, ShortcodeType
from mpesa_bridge.simulator.config import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET, SANDBOX_PASSKEY
from mpesa_bridge.storage.backup import Manifest, record_backup
from mpesa_bridge.storage.migrate import upgrade
from tests.fixtures.bridge import BRIDGE_URL, SIMULATOR_URL, TEST_MASTER_KEY, InProcessBridge, make_settings
from tests.fixtures.database import create_pg_database, drop_pg_database

PAYBILL, PAYBILL_PASSKEY = "600100", "paybill-passkey-600100"
STORE, STORE_PASSKEY, TILL = "600200", "store-passkey-600200", "5550001"
PUBLIC_BASE = "https://1.1.1.1"  # an IP literal: public, and resolved without DNS


@pytest.fixture
def simulator_overrides() -> dict[str, Any]:
    return {
        "shortcodes": {PAYBILL: PAYBILL_PASSKEY, STORE: STORE_PASSKEY, "174379": SANDBOX_PASSKEY},
        "tills": {TILL: STORE},
    }


@pytest.fixture
def bridge_settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path, daraja_production_url=SIMULATOR_URL, public_base_url=PUBLIC_BASE)


def live(**changes: Any) -> DarajaSettingsInput:
    values: dict[str, Any] = {
        "environment": DarajaEnvironment.PRODUCTION,
        "consumer_key": SANDBOX_CONSUMER_KEY,
        "consumer_secret": SANDBOX_CONSUMER_SECRET,
        "short_code": PAYBILL,
        "passkey": PAYBILL_PASSKEY,
    }
    values.update(changes)
    return DarajaSettingsInput(**values)


async def doctor(bridge: InProcessBridge, given: DarajaSettingsInput | None, **settings: Any) -> dict[str, Check]:
    tenant = await bridge.create_project()
    if given is not None:
        await bridge.runtime.projects.set_daraja(tenant.project_id, Mode.LIVE, given)
    check_transport = settings.pop("check_transport", None)
    checks = await diagnose(
        bridge.settings.model_copy(update=settings),
        mode=Mode.LIVE,
        project_id=tenant.project_id,
        daraja_transport=httpx.ASGITransport(app=bridge.simulator.app),
        check_transport=check_transport,
    )
    return {check.name: check for check in checks}


def failing(checks: dict[str, Check]) -> set[str]:
    return {name for name, check in checks.items() if check.status is Status.FAIL}


async def test_a_well_configured_paybill_passes_every_daraja_check(bridge: InProcessBridge) -> None:
    checks = await doctor(bridge, live())
    for name in ("migrations", "master key", "callback URL", "environment", "till or paybill", "credentials"):
        assert checks[name].status is Status.OK, checks[name]
    assert checks["short code and passkey"].status is Status.OK, checks["short code and passkey"]
    assert checks["reachable from outside"].status is Status.SKIPPED
    assert "not checked" in checks["reachable from outside"].detail
    # No backup recorded yet: for live, that fails.
    assert failing(checks) == {"backup and master key"}


async def test_a_well_configured_till_passes(bridge: InProcessBridge) -> None:
    checks = await doctor(
        bridge, live(short_code=STORE, passkey=STORE_PASSKEY, shortcode_type=ShortcodeType.TILL, till_number=TILL)
    )
    assert checks["short code and passkey"].status is Status.OK
    assert checks["till or paybill"].status is Status.OK
    assert "not checked" in checks["till or paybill"].detail  # the till/store pairing: said plainly


async def test_wrong_consumer_secret(bridge: InProcessBridge) -> None:
    checks = await doctor(bridge, live(consumer_secret="not-the-secret"))
    assert checks["credentials"].status is Status.FAIL
    assert "refused the consumer key and secret" in checks["credentials"].detail
    assert "short code and passkey" not in checks  # nothing more can be asked without a token


async def test_wrong_passkey(bridge: InProcessBridge) -> None:
    checks = await doctor(bridge, live(passkey="a-passkey-of-another-short-code"))
    assert checks["credentials"].status is Status.OK
    assert checks["short code and passkey"].status is Status.FAIL
    assert "Wrong credentials" in checks["short code and passkey"].detail


async def test_a_till_configured_as_a_paybill(bridge: InProcessBridge) -> None:
    checks = await doctor(bridge, live(short_code=TILL, passkey=STORE_PASSKEY))
    check = checks["short code and passkey"]
    assert check.status is Status.FAIL
    assert "Merchant does not exist" in check.detail
    assert "till" in check.fix and "store number" in check.fix


async def test_sandbox_values_with_production(bridge: InProcessBridge) -> None:
    checks = await doctor(bridge, live(short_code="174379", passkey=SANDBOX_PASSKEY))
    assert checks["environment"].status is Status.FAIL
    assert "sandbox" in checks["environment"].detail


async def test_production_url_pointing_at_the_sandbox(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project()
    await bridge.runtime.projects.set_daraja(tenant.project_id, Mode.LIVE, live())
    settings = bridge.settings.model_copy(update={"daraja_production_url": "https://sandbox.safaricom.co.ke"})

    async def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no network in tests", request=request)

    checks = {
        c.name: c
        for c in await diagnose(
            settings, project_id=tenant.project_id, daraja_transport=httpx.MockTransport(unreachable)
        )
    }
    assert checks["environment"].status is Status.FAIL
    assert "MPESA_BRIDGE_DARAJA_PRODUCTION_URL" in checks["environment"].detail


@pytest.mark.parametrize(
    ("base", "words"),
    [
        ("http://1.1.1.1", "not https"),
        ("https://127.0.0.1:8443", "loopback"),
        ("https://192.168.1.20", "public"),
    ],
)
async def test_a_callback_url_daraja_cannot_use(bridge: InProcessBridge, base: str, words: str) -> None:
    checks = await doctor(bridge, live(), public_base_url=base)
    assert checks["callback URL"].status is Status.FAIL
    assert words in checks["callback URL"].detail


async def test_reachability_through_a_check_host(bridge: InProcessBridge) -> None:
    """The check host (a stand-in peer) fetches the URL it is given — here through the bridge's app."""
    asked: list[str] = []

    async def check_host(request: httpx.Request) -> httpx.Response:
        target = str(json.loads(request.content)["url"])
        asked.append(target)
        answer = await bridge.client.get(httpx.URL(target).path)
        return httpx.Response(200, json={"status": answer.status_code})

    checks = await doctor(
        bridge, live(), doctor_check_url="https://check.example/fetch", check_transport=httpx.MockTransport(check_host)
    )
    assert asked == [f"{PUBLIC_BASE}/healthz"]
    assert checks["reachable from outside"].status is Status.OK


async def test_the_backup_marker_under_the_current_master_key(bridge: InProcessBridge) -> None:
    tenant_checks = await doctor(bridge, live())
    assert tenant_checks["backup and master key"].status is Status.FAIL
    box_id = bridge.runtime.box.current_key_id
    manifest = Manifest("sqlite", "2026-01-01T00:00:00+00:00", None, master_key_ids={box_id: 3})
    record_backup(bridge.settings.data_dir, bridge.settings.data_dir / "b.db", manifest)
    checks = await doctor(bridge, live())
    assert checks["backup and master key"].status is Status.WARN  # older than a day: warned, not failed
    manifest = dataclasses.replace(manifest, master_key_ids={"0badc0de": 3})
    record_backup(bridge.settings.data_dir, bridge.settings.data_dir / "b.db", manifest)
    checks = await doctor(bridge, live())
    assert checks["backup and master key"].status is Status.FAIL
    assert "0badc0de" in checks["backup and master key"].detail


async def test_a_master_key_that_does_not_open_the_secrets(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project()
    settings = bridge.settings.model_copy(update={"master_key": SecretStr(generate_master_key())})
    checks = {c.name: c for c in await diagnose(settings, project_id=tenant.project_id)}
    assert checks["master key"].status is Status.FAIL
    assert "not configured" in checks["master key"].detail


def test_migrations_behind_fail_the_cli(tmp_path: Path, engine_name: str) -> None:
    if engine_name == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'behind.db'}"
    else:
        url = asyncio.run(create_pg_database())
    try:
        _doctor_on_a_database_behind(url, tmp_path)
    finally:
        if engine_name != "sqlite":
            asyncio.run(drop_pg_database(url))


def _doctor_on_a_database_behind(url: str, tmp_path: Path) -> None:
    upgrade(url, "0016")
    env = {
        "MPESA_BRIDGE_DATABASE_URL": url,
        "MPESA_BRIDGE_DATA_DIR": str(tmp_path / "data"),
        "MPESA_BRIDGE_MASTER_KEY": TEST_MASTER_KEY,
        "MPESA_BRIDGE_PUBLIC_BASE_URL": BRIDGE_URL,
    }
    result = CliRunner().invoke(register_commands(), ["doctor"], env=env)
    assert result.exit_code == 1, result.output
    assert "FAIL  migrations: the database is at 0016" in result.stdout
    assert "mpesa-bridge db upgrade" in result.stdout
