"""Master-key rotation: `secrets rotate-master`, `secrets verify`, `reseal_all`, and the startup check.

Secrets are sealed first under the OLD key (TEST_MASTER_KEY, the key every other test uses) by a
runtime configured with it alone — the deployment before the rotation. The bridge of this module
runs with NEW and OLD (step 2 of the procedure: it reads both, seals with NEW). Everything runs on
SQLite and on PostgreSQL; the CLI runs in-process (in a thread: it starts its own event loop).
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import typer.main
from typer.testing import CliRunner, Result

from mpesa_bridge.cli import register_commands
from mpesa_bridge.config import ConfigError, Settings
from mpesa_bridge.core.crypto import SecretBox, key_id, parse_master_key
from mpesa_bridge.core.projects import DarajaEnvironment, DarajaSettingsInput, Mode
from mpesa_bridge.core.projects import Tenant as TenantScope
from mpesa_bridge.core.sealing import idempotency_context, idempotency_secret_context
from mpesa_bridge.runtime import build_runtime, simulator_daraja
from mpesa_bridge.storage import sealed
from mpesa_bridge.storage.db import Database
from mpesa_bridge.storage.sealed import reseal_all, sealed_values, verify_sealed
from mpesa_bridge.storage.tables import idempotency_keys, metadata, projects
from tests.fixtures.bridge import ADMIN_TOKEN, TEST_MASTER_KEY, InProcessBridge, Tenant, make_settings

app = register_commands()  # the `secrets` commands, as `main()` registers them
OLD = TEST_MASTER_KEY
NEW = "n_NAtPmjRM2rXyaT1Oqg0EFHF9NAB-Hnil4dieDBgQM"  # tests only
WRONG = "uHV6QMhJv_iyqSNQK1zDDKMJqF-Zcbo_MRKPTSqayRE"  # tests only
OLD_ID, NEW_ID = (key_id(parse_master_key(k)) for k in (OLD, NEW))
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# Two projects (a signing secret; three Daraja credentials in each of two modes, and in test mode,
# on the simulator, the initiator's password) and a webhook endpoint's current and previous
# signing secrets.
OLD_VALUES = 2 * (1 + 4 + 3) + 2
SHOP_VALUES = 1 + 4  # a project on the simulator with a signing secret: test mode only
NEXT_STEP = "remove the old key from MPESA_BRIDGE_OLD_MASTER_KEYS once every instance runs with the new key"


def box(*keys: str) -> SecretBox:
    return SecretBox([parse_master_key(k) for k in keys])


def key_material(*keys: str) -> list[str]:
    """Every way a key could be written down: as given, standard base64, hex."""
    forms = []
    for key in keys:
        raw = parse_master_key(key)
        forms += [key, base64.b64encode(raw).decode().rstrip("="), raw.hex()]
    return forms


def assert_no_key_material(text: str) -> None:
    for form in key_material(OLD, NEW, WRONG):
        assert form not in text


async def plaintexts(db: Database, opener: SecretBox) -> dict[str, str]:
    return {v.location: opener.open(v.sealed, context=v.context) async for v in sealed_values(db)}


async def key_ids(db: Database) -> Counter[str]:
    return Counter([v.key_id async for v in sealed_values(db)])


async def dump(db: Database) -> str:
    rows = []
    async with db.read() as uow:
        for table in metadata.sorted_tables:
            rows += [repr(row) for row in (await uow.connection.execute(sa.select(table))).all()]
    return "\n".join(rows)


async def startup_error(settings: Settings) -> str:
    with pytest.raises(ConfigError) as caught:
        await build_runtime(settings)
    message = str(caught.value)
    assert_no_key_material(message)
    return message


async def starts(settings: Settings) -> None:
    runtime = await build_runtime(settings)
    await runtime.aclose()


@pytest.fixture
def bridge_settings(db_url: str, tmp_path: Path) -> Settings:
    """This module's bridge is deployed mid-rotation: new key to seal, old key still read."""
    return make_settings(db_url, tmp_path, master_key=NEW, old_master_keys=OLD)


@pytest.fixture
async def old_data(database: Database, db_url: str, tmp_path: Path) -> list[Tenant]:
    """Two projects and a webhook endpoint whose secrets were sealed by an instance that knew only the OLD key."""
    settings = make_settings(db_url, tmp_path, master_key=OLD)
    live = DarajaSettingsInput(
        environment=DarajaEnvironment.PRODUCTION,
        consumer_key="live-consumer-key",
        consumer_secret="live-consumer-secret-value",
        short_code="600000",
        passkey="live-passkey-value-0123456789",
    )
    runtime = await build_runtime(settings)
    tenants = []
    try:
        for name in ("Duka", "Kiosk"):
            daraja = {Mode.TEST: simulator_daraja(settings), Mode.LIVE: live}
            project, keys = await runtime.projects.create_project(name, daraja)
            await runtime.projects.update_security(project.id, signing_secret="generate")
            tenants.append(Tenant(project.id, keys[Mode.TEST].secret, keys[Mode.LIVE].secret))
        # A webhook endpoint whose secret was rotated: a current and a previous sealed secret.
        scope = TenantScope(tenants[0].project_id, Mode.TEST)
        issued = await runtime.webhook_endpoints.create(scope, "http://127.0.0.1:9/hook", ["*"])
        await runtime.webhook_endpoints.rotate_secret(scope, issued.endpoint.id, grace_seconds=3600)
    finally:
        await runtime.aclose()
    return tenants


CliFn = Callable[..., Awaitable[Result]]


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliFn:
    monkeypatch.chdir(tmp_path)  # no developer .env can be read
    runner = CliRunner()
    base = {"MPESA_BRIDGE_DATABASE_URL": db_url, "MPESA_BRIDGE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "250"}

    async def invoke(*args: str, master: str | None = NEW, old: str | None = OLD) -> Result:
        env = {**base, "MPESA_BRIDGE_MASTER_KEY": master, "MPESA_BRIDGE_OLD_MASTER_KEYS": old}
        result = await asyncio.to_thread(runner.invoke, app, list(args), env=env)
        assert "Traceback" not in result.output
        assert_no_key_material(result.output)
        return result

    return invoke


def ok(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    return result.stdout


def fails(result: Result, code: int) -> str:
    assert result.exit_code == code, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # a message, not a crash
    return result.stderr


# --------------------------------------------------------------------------- rotation


async def test_rotate_master_reseals_everything_under_the_new_key(
    bridge: InProcessBridge, old_data: list[Tenant], cli: CliFn
) -> None:
    # A project created by the bridge after the new key was deployed is already under it.
    shop = await bridge.create_project("Shop")
    patched = await bridge.client.patch(
        f"/v1/admin/projects/{shop.project_id}", json={"signing_secret": "generate"}, headers=ADMIN
    )
    assert patched.status_code == 200, patched.text
    assert await key_ids(bridge.db) == {OLD_ID: OLD_VALUES, NEW_ID: SHOP_VALUES}
    before = await plaintexts(bridge.db, box(NEW, OLD))

    out = ok(await cli("secrets", "rotate-master", "--batch", "1"))
    assert f"resealed {OLD_VALUES} under master key {NEW_ID}; {SHOP_VALUES} already current" in out
    assert NEXT_STEP in out

    assert await key_ids(bridge.db) == {NEW_ID: OLD_VALUES + SHOP_VALUES}
    assert await plaintexts(bridge.db, box(NEW)) == before  # the new key alone opens the same secrets
    assert_no_key_material(await dump(bridge.db))

    again = ok(await cli("secrets", "rotate-master"))  # nothing left to do
    assert f"resealed 0 under master key {NEW_ID}; {OLD_VALUES + SHOP_VALUES} already current" in again
    verified = ok(await cli("secrets", "verify", "--all", old=None))
    assert f"master key {NEW_ID}: {OLD_VALUES + SHOP_VALUES} stored secret(s), current key" in verified
    assert f"ok: {OLD_VALUES + SHOP_VALUES} stored secret(s), every one opened" in verified


async def test_an_interrupted_rotation_resumes_and_two_runs_at_once_reseal_each_value_once(
    old_data: list[Tenant], db_url: str
) -> None:
    rotating = box(NEW, OLD)
    first, second = Database(db_url), Database(db_url)
    try:
        before = await plaintexts(first, rotating)
        # Interrupted after one batch of one row: one project's signing secret is done.
        value, *_ = [v async for v in sealed_values(first)]
        resealed = rotating.seal(rotating.open(value.sealed, context=value.context), context=value.context)
        async with first.write() as uow:
            update = sa.update(projects).where(projects.c.id == value.key[0]).values(signing_secret_sealed=resealed)
            await uow.connection.execute(update)
        # Two operators run it at once: every value is re-sealed exactly once, the other run sees it current.
        a, b = await asyncio.gather(reseal_all(first, rotating, batch=1), reseal_all(second, rotating, batch=2))
        assert a.ok and b.ok
        assert a.resealed + b.resealed == OLD_VALUES - 1
        assert a.resealed + a.already_current == b.resealed + b.already_current == OLD_VALUES
        assert await key_ids(first) == {NEW_ID: OLD_VALUES}
        assert await plaintexts(first, box(NEW)) == before
    finally:
        await first.dispose()
        await second.dispose()


async def test_a_value_written_during_the_rotation_is_kept(
    old_data: list[Tenant], database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between reading a batch and writing it back, a server stores a new secret: the server's write wins."""
    rotating = box(NEW, OLD)
    written = rotating.seal("mbsig_written_meanwhile", context=f"signing:{old_data[0].project_id}")
    read_page = sealed._page
    wrote: list[bool] = []

    async def page_then_a_concurrent_write(session: Any, source: Any, after: Any, limit: int) -> list[Any]:
        rows = await read_page(session, source, after, limit)
        if source.table is projects and after is None and not wrote:  # once: the rotation's first page
            where = projects.c.id == old_data[0].project_id
            await session.execute(sa.update(projects).where(where).values(signing_secret_sealed=written))
            wrote.append(True)
        return rows

    monkeypatch.setattr(sealed, "_page", page_then_a_concurrent_write)
    report = await reseal_all(database, rotating)
    assert report.ok and (report.resealed, report.already_current) == (OLD_VALUES - 1, 1)
    after = await plaintexts(database, box(NEW))
    assert after[f"projects[{old_data[0].project_id}].signing_secret_sealed"] == "mbsig_written_meanwhile"


async def test_rotation_reseals_the_stored_idempotent_answers_and_client_secrets(database: Database) -> None:
    """An `Idempotency-Key` keeps its answer (sealed) and what it created (a sealed client secret) for
    the key's TTL: both must move to the new key, or a retry after the old key is gone cannot open them."""
    old, scope, key = box(OLD), "proj_x:test", "order-1"
    answer = old.seal('{"id":"pay_1"}', context=idempotency_context(scope, key)).encode()
    secret = old.seal("pay_1_secret_abc", context=idempotency_secret_context(scope, key))
    now = datetime.now(UTC)
    row = {"scope": scope, "key": key, "request_hash": "h", "state": "completed", "response_status": 201}
    row |= {"response_body": answer, "resource_id": "pay_1", "resource_secret": secret}
    async with database.write() as uow:
        await uow.connection.execute(sa.insert(idempotency_keys).values(created_at=now, expires_at=now, **row))

    report = await reseal_all(database, box(NEW, OLD))
    assert report.ok and report.resealed == 2
    assert await key_ids(database) == {NEW_ID: 2}
    assert await plaintexts(database, box(NEW)) == {
        f"idempotency_keys[{scope}/{key}].response_body": '{"id":"pay_1"}',
        f"idempotency_keys[{scope}/{key}].resource_secret": "pay_1_secret_abc",
    }
    async with database.read() as uow:
        stored = (await uow.connection.execute(sa.select(idempotency_keys.c.response_body))).scalar_one()
    assert isinstance(stored, bytes) and box(NEW).open(stored.decode(), context=idempotency_context(scope, key))


async def test_rotation_refuses_values_no_configured_key_opens(old_data: list[Tenant], cli: CliFn) -> None:
    # The operator forgot MPESA_BRIDGE_OLD_MASTER_KEYS: nothing can be re-sealed, nothing is lost.
    err = fails(await cli("secrets", "rotate-master", old=None), 1)
    assert f"{OLD_VALUES} stored secret(s) do not open" in err
    assert f"master key id {OLD_ID}: key not configured ({OLD_VALUES})" in err
    assert "MPESA_BRIDGE_OLD_MASTER_KEYS" in err

    err = fails(await cli("secrets", "verify", old=None), 1)
    assert OLD_ID in err and "MPESA_BRIDGE_OLD_MASTER_KEYS" in err
    err = fails(await cli("secrets", "rotate-master", master=None, old=None), 2)
    assert "MPESA_BRIDGE_MASTER_KEY" in err

    out = ok(await cli("secrets", "verify"))  # with both keys, everything opens
    assert f"master key {OLD_ID}: {OLD_VALUES} stored secret(s), old key" in out


# --------------------------------------------------------------------------- the startup check


async def test_startup_refuses_a_master_key_that_cannot_open_the_stored_secrets(
    old_data: list[Tenant], db_url: str, tmp_path: Path
) -> None:
    only_new = await startup_error(make_settings(db_url, tmp_path, master_key=NEW))
    assert OLD_ID in only_new and NEW_ID in only_new  # the missing key id, and the configured one
    assert "MPESA_BRIDGE_MASTER_KEY" in only_new and "MPESA_BRIDGE_OLD_MASTER_KEYS" in only_new
    assert OLD_ID in await startup_error(make_settings(db_url, tmp_path, master_key=WRONG))
    await starts(make_settings(db_url, tmp_path, master_key=NEW, old_master_keys=OLD))

    db = Database(db_url)
    try:
        assert (await reseal_all(db, box(NEW, OLD))).resealed == OLD_VALUES
    finally:
        await db.dispose()
    await starts(make_settings(db_url, tmp_path, master_key=NEW))  # the old key can go
    assert NEW_ID in await startup_error(make_settings(db_url, tmp_path, master_key=OLD))


async def test_startup_refuses_secrets_that_do_not_open_with_their_key(
    old_data: list[Tenant], database: Database, db_url: str, tmp_path: Path
) -> None:
    # Same key, wrong row: a signing secret sealed for another project fails its associated data.
    foreign = box(OLD).seal("mbsig_elsewhere", context="signing:proj_elsewhere")
    async with database.write() as uow:
        await uow.connection.execute(sa.update(projects).values(signing_secret_sealed=foreign))
    message = await startup_error(make_settings(db_url, tmp_path, master_key=OLD))
    assert f"sealed under master key id {OLD_ID} do not open" in message

    report = await verify_sealed(database, box(OLD), check_all=True)
    assert not report.ok and report.problem_key_ids == [OLD_ID]
    expected = sorted(f"projects[{t.project_id}].signing_secret_sealed" for t in old_data)
    assert sorted(v.location for v in report.failed) == expected
    assert report.opened == OLD_VALUES - 2


async def test_startup_passes_on_an_empty_database(database: Database, db_url: str, tmp_path: Path) -> None:
    await starts(make_settings(db_url, tmp_path, master_key=WRONG))


async def test_startup_passes_on_a_database_not_yet_migrated(tmp_path: Path) -> None:
    await starts(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}", tmp_path, master_key=WRONG))


# --------------------------------------------------------------------------- payments keep working


async def test_payments_work_before_and_after_the_rotation(bridge: InProcessBridge, old_data: list[Tenant]) -> None:
    duka, kiosk = old_data
    paid = await bridge.pay(duka)  # old secrets, read with the old key
    assert (await bridge.wait_status(duka, paid["id"], "succeeded"))["status"] == "succeeded"

    assert (await reseal_all(bridge.db, box(NEW, OLD))).resealed == OLD_VALUES

    paid = await bridge.pay(kiosk)  # first opened after the rotation: under the new key
    assert (await bridge.wait_status(kiosk, paid["id"], "succeeded"))["status"] == "succeeded"
    report = await verify_sealed(bridge.db, box(NEW), check_all=True)
    assert report.ok and report.counts == {NEW_ID: OLD_VALUES}


# --------------------------------------------------------------------------- help


def _secrets_commands() -> dict[str, Any]:
    group: Any = typer.main.get_command(app)
    commands: dict[str, Any] = group.commands["secrets"].commands
    return commands


def test_secrets_commands_document_the_procedure_and_their_variables() -> None:
    runner = CliRunner()
    assert set(_secrets_commands()) == {"rotate-master", "verify"}
    for name, command in _secrets_commands().items():
        out = runner.invoke(app, ["secrets", name, "--help"], env={"COLUMNS": "250"}).stdout
        for option in command.params:
            if option.param_type_name == "option" and option.name != "help":
                assert isinstance(option.envvar, str) and option.envvar.startswith("MPESA_BRIDGE_"), option.name
                assert f"env var: {option.envvar}" in out, f"{name}: {option.envvar}"
    rotate = re.sub(r"\s+", " ", runner.invoke(app, ["secrets", "rotate-master", "--help"]).stdout)
    for step in (
        "1) Generate a new key: `mpesa-bridge keygen`",
        "2) Deploy every instance",
        "MPESA_BRIDGE_MASTER_KEY=<new key> and MPESA_BRIDGE_OLD_MASTER_KEYS=<old key>",
        "3) Run `mpesa-bridge secrets rotate-master`",
        "4) Once every instance runs with the new key, remove the old key from MPESA_BRIDGE_OLD_MASTER_KEYS",
    ):
        assert step in rotate
