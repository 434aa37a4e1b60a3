"""The `mpesa-bridge` command: help and env vars of every option, db, projects, keygen, the production
guard, and `serve --dev` (what `make run` does) as a real process.

The commands run in-process through Typer's CliRunner on a real SQLite database in tmp_path; the
last test starts `python -m mpesa_bridge serve --dev` twice on the same data directory.
"""

from __future__ import annotations

import importlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer.main
from typer.testing import CliRunner, Result

from mpesa_bridge.cli import register_commands
from mpesa_bridge.core.crypto import parse_master_key
from mpesa_bridge.storage.migrate import head_revision
from tests.fixtures.bridge import TEST_MASTER_KEY
from tests.fixtures.servers import ServerProcess, free_port

app = register_commands()

COMMANDS = [
    [],
    ["serve"],
    ["worker"],
    ["simulator"],
    ["simulator", "pay"],
    ["keygen"],
    ["db"],
    ["db", "upgrade"],
    ["db", "current"],
    ["projects"],
    ["projects", "create"],
    ["keys"],
    ["keys", "list"],
    ["keys", "rotate"],
    ["keys", "revoke"],
    ["listen"],
    ["trigger"],
    ["secrets"],
    ["secrets", "rotate-master"],
    ["secrets", "verify"],
    ["projects", "list"],
    ["projects", "set-daraja"],
    ["projects", "new-key"],
    ["users"],
    ["users", "create"],
    ["users", "list"],
    ["openapi"],
    ["backup"],
    ["restore"],
    ["doctor"],
]
PROJECT_ID = re.compile(r"\bproj_[0-9a-z]+\b")
LIVE_DARAJA = ["--mode", "live", "--environment", "production", "--short-code", "600000"]
LIVE_CREDENTIALS = ["--consumer-key", "k", "--consumer-secret", "s", "--passkey", "p"]


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no developer .env can be read
    return {
        "MPESA_BRIDGE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "MPESA_BRIDGE_DATA_DIR": str(tmp_path / "data"),
        "MPESA_BRIDGE_MASTER_KEY": TEST_MASTER_KEY,
        "COLUMNS": "250",  # wide help: an env var name is never wrapped
    }


@pytest.fixture
def invoke(cli_env: dict[str, str]) -> Any:
    runner = CliRunner()

    def _invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), env={**cli_env, **(env or {})}, input=input)

    return _invoke


def ok(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    return result.stdout


def fails(result: Result, code: int) -> str:
    assert result.exit_code == code, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # a message, not a crash
    assert "Traceback" not in result.output
    return result.stderr


@pytest.fixture
def migrated(invoke: Any) -> None:
    ok(invoke("db", "upgrade"))


@pytest.fixture
def project(invoke: Any, migrated: None) -> str:
    match = PROJECT_ID.search(ok(invoke("projects", "create", "--name", "Shop")))
    assert match
    return match.group(0)


# --------------------------------------------------------------------------- help and env vars


def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, (*path, name))


def _options() -> dict[tuple[str, ...], list[Any]]:
    """Each command's options (not --help, not arguments), from the Click command tree: every leaf, and
    a group that has options of its own (`simulator` runs the server, `simulator pay` is its subcommand)."""
    found = {}
    for path, command in _walk(typer.main.get_command(app)):
        # Eager options (--help, the root's --version) answer and exit: they set nothing.
        own = [p for p in command.params if p.param_type_name == "option" and p.name != "help" and not p.is_eager]
        if not getattr(command, "commands", None) or own:
            found[path] = own
    return found


def test_the_walk_finds_every_command() -> None:
    assert set(_options()) == {
        tuple(c) for c in COMMANDS if c not in ([], ["db"], ["projects"], ["keys"], ["secrets"], ["users"])
    }


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_help_exits_zero(invoke: Any, command: list[str]) -> None:
    out = ok(invoke(*command, "--help"))
    assert "Usage:" in out
    assert "--help" in out


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_help_shows_flags_as_flags(invoke: Any, command: list[str]) -> None:
    """A boolean option is `--x/--no-x` (a variable can switch it on, the command line off), and no help
    shows a value placeholder for a flag (`<bool>`, `BOOLEAN`)."""
    out = ok(invoke(*command, "--help"))
    assert "<bool>" not in out and "BOOLEAN" not in out, out
    for option in _options().get(tuple(command), []):
        if option.is_flag and not option.count:
            assert option.secondary_opts, f"{' '.join(command)} {option.opts[0]} has no --no-… form"
            assert option.secondary_opts[0] in out


@pytest.mark.parametrize("path", sorted(_options()), ids=" ".join)
def test_every_option_reads_an_mpesa_bridge_variable_shown_in_help(invoke: Any, path: tuple[str, ...]) -> None:
    out = ok(invoke(*path, "--help"))
    for option in _options()[path]:
        assert isinstance(option.envvar, str) and option.envvar.startswith("MPESA_BRIDGE_"), option.name
        assert option.show_envvar, option.name
        assert f"env var: {option.envvar}" in out, f"{' '.join(path)} --help does not show {option.envvar}"


def test_help_shows_the_expected_variables(invoke: Any) -> None:
    serve = ok(invoke("serve", "--help"))
    for name in ("MPESA_BRIDGE_HOST", "MPESA_BRIDGE_PORT", "MPESA_BRIDGE_DATABASE_URL", "MPESA_BRIDGE_DEV"):
        assert name in serve
    assert "MPESA_BRIDGE_SIMULATOR_CALLBACK_DELAY" in ok(invoke("simulator", "--help"))
    set_daraja = ok(invoke("projects", "set-daraja", "--help"))
    for name in ("MODE", "ENVIRONMENT", "SHORT_CODE", "CONSUMER_KEY", "CONSUMER_SECRET", "PASSKEY"):
        assert f"MPESA_BRIDGE_DARAJA_{name}" in set_daraja
    top = ok(invoke("--help"))
    for command in ("serve", "worker", "simulator", "keygen", "db", "projects"):
        assert command in top


# --------------------------------------------------------------------------- db


def test_db_upgrade_then_current_is_head(invoke: Any) -> None:
    assert "current: empty" in ok(invoke("db", "current"))
    assert "database at head" in ok(invoke("db", "upgrade"))
    match = re.search(r"current: (\S+)\s+head: (\S+)", ok(invoke("db", "current")))
    assert match, "db current printed no revisions"
    assert match.group(1) == match.group(2) == head_revision()
    ok(invoke("db", "upgrade"))  # again: nothing to do, still fine
    assert f"current: {head_revision()}" in ok(invoke("db", "current"))


def test_database_url_option_wins_over_the_variable(invoke: Any, tmp_path: Path) -> None:
    other = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    ok(invoke("db", "upgrade", "--database-url", other))
    assert (tmp_path / "other.db").exists()
    assert not (tmp_path / "cli.db").exists()
    assert "current: empty" in ok(invoke("db", "current"))


# --------------------------------------------------------------------------- projects


def test_projects_create_prints_the_id_and_both_keys(invoke: Any, migrated: None) -> None:
    out = ok(invoke("projects", "create", "--name", "Shop"))
    assert PROJECT_ID.search(out)
    assert re.search(r"^test\s+sk_test_[A-Za-z0-9]{32}$", out, re.MULTILINE)
    assert re.search(r"^live\s+sk_live_[A-Za-z0-9]{32}$", out, re.MULTILINE)
    assert "(Shop)" in out


def test_projects_list_shows_the_simulator_test_mode(invoke: Any, project: str) -> None:
    ok(invoke("projects", "create", "--name", "Kiosk", "--no-simulator"))
    out = ok(invoke("projects", "list"))
    shop = next(line for line in out.splitlines() if line.startswith(project))
    assert "Shop" in shop and "test=simulator 174379" in shop
    kiosk = next(line for line in out.splitlines() if "Kiosk" in line)
    assert "no Daraja" in kiosk


def test_set_daraja_live_production(invoke: Any, project: str) -> None:
    out = ok(invoke("projects", "set-daraja", project, *LIVE_DARAJA, *LIVE_CREDENTIALS))
    assert f"live mode of {project} now uses production shortcode 600000" in out
    listed = ok(invoke("projects", "list"))
    assert "test=simulator 174379" in listed and "live=production 600000" in listed
    for secret in (" s ", " p "):  # the credentials are sealed, never listed
        assert secret not in listed


def test_set_daraja_refuses_the_simulator_for_live_with_a_message(invoke: Any, project: str) -> None:
    args = ["--mode", "live", "--environment", "simulator", "--short-code", "600000", *LIVE_CREDENTIALS]
    err = fails(invoke("projects", "set-daraja", project, *args), 1)
    assert err.startswith("error: ")
    assert "live mode" in err and "production" in err
    assert "live=" not in ok(invoke("projects", "list"))


def test_set_daraja_reads_variables_and_prompts_for_secrets(invoke: Any, project: str) -> None:
    env = {
        "MPESA_BRIDGE_DARAJA_MODE": "live",
        "MPESA_BRIDGE_DARAJA_ENVIRONMENT": "production",
        "MPESA_BRIDGE_DARAJA_SHORT_CODE": "600111",
        "MPESA_BRIDGE_DARAJA_CONSUMER_KEY": "k",
    }
    result = invoke("projects", "set-daraja", project, env=env, input="the-secret\nthe-passkey\n")
    out = ok(result)
    assert "now uses production shortcode 600111" in out
    assert "the-secret" not in result.output and "the-passkey" not in result.output  # hidden input
    assert "live=production 600111" in ok(invoke("projects", "list"))


def test_an_unknown_project_is_a_message(invoke: Any, migrated: None) -> None:
    err = fails(invoke("projects", "new-key", "proj_nope", "--mode", "test"), 1)
    assert "error:" in err and "proj_nope" in err


def test_new_key_prints_a_key_of_the_mode(invoke: Any, project: str) -> None:
    assert re.fullmatch(r"sk_test_[A-Za-z0-9]{32}\n", ok(invoke("projects", "new-key", project, "--mode", "test")))
    live = ok(invoke("projects", "new-key", project, env={"MPESA_BRIDGE_KEY_MODE": "live"}))
    assert re.fullmatch(r"sk_live_[A-Za-z0-9]{32}\n", live)


def test_create_reads_its_name_from_a_variable(invoke: Any, migrated: None) -> None:
    ok(invoke("projects", "create", env={"MPESA_BRIDGE_PROJECT_NAME": "From env"}))
    assert "From env" in ok(invoke("projects", "list"))


# --------------------------------------------------------------------------- keygen


def test_keygen_prints_a_usable_master_key(invoke: Any) -> None:
    first, second = ok(invoke("keygen")).strip(), ok(invoke("keygen")).strip()
    for key in (first, second):
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key)
        assert len(parse_master_key(key)) == 32
    assert first != second


# --------------------------------------------------------------------------- configuration errors


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a command gets as far as starting a server or the workers."""

    async def refuse(*_: object, **__: object) -> None:
        raise AssertionError("a server was started")

    # By module object: the attribute `mpesa_bridge.cli.serve` may be the `serve` command function.
    module = importlib.import_module("mpesa_bridge.cli.serve")
    monkeypatch.setattr(module, "serve_forever", refuse)
    monkeypatch.setattr(module, "work_forever", refuse)


def test_serve_in_production_without_a_master_key_exits_2(invoke: Any, no_server: None) -> None:
    env = {"MPESA_BRIDGE_ENV": "production", "MPESA_BRIDGE_MASTER_KEY": ""}
    err = fails(invoke("serve", env=env), 2)
    assert err.startswith("configuration error:")
    assert "MPESA_BRIDGE_MASTER_KEY is required" in err
    assert "MPESA_BRIDGE_PUBLIC_BASE_URL is required" in err
    assert "input_value" not in err and "pydantic" not in err


def test_worker_in_production_with_the_simulator_exits_2(invoke: Any, no_server: None) -> None:
    env = {
        "MPESA_BRIDGE_ENV": "production",
        "MPESA_BRIDGE_PUBLIC_BASE_URL": "https://pay.example.co.ke",
        "MPESA_BRIDGE_SIMULATOR_ENABLED": "true",
    }
    err = fails(invoke("worker", env=env), 2)
    assert "configuration error:" in err and "simulator cannot be used in production" in err


def test_serve_dev_is_refused_in_production(invoke: Any, no_server: None) -> None:
    env = {"MPESA_BRIDGE_ENV": "production", "MPESA_BRIDGE_PUBLIC_BASE_URL": "https://pay.example.co.ke"}
    err = fails(invoke("serve", "--dev", env=env), 2)
    assert "configuration error:" in err and "--dev" in err


def test_a_bad_value_names_the_variable(invoke: Any, no_server: None) -> None:
    err = fails(invoke("serve", env={"MPESA_BRIDGE_MAX_AMOUNT": "999999"}), 2)
    assert err.startswith("configuration error: MPESA_BRIDGE_MAX_AMOUNT:")
    # Click itself checks the types of the options it parses.
    result = invoke("serve", "--port", "eighty")
    assert result.exit_code == 2 and "Invalid value for '--port'" in result.stderr


def test_an_invalid_master_key_is_a_configuration_error(invoke: Any, migrated: None) -> None:
    err = fails(invoke("projects", "list", env={"MPESA_BRIDGE_MASTER_KEY": "not-a-key"}), 2)
    assert err.startswith("configuration error: MPESA_BRIDGE_MASTER_KEY is unusable")


# --------------------------------------------------------------------------- serve --dev, as `make run`


def _banner(server: ServerProcess, timeout: float = 10.0) -> tuple[str, str, str, dict[str, Any]]:
    """(project id, test key, payments URL, curl JSON body) from the server's log."""
    deadline = time.monotonic() + timeout
    while True:
        text = server.output()
        key = re.search(r"test secret key\s+(sk_test_[A-Za-z0-9]+)", text)
        project = re.search(r"project\s+(proj_[0-9a-z]+)", text)
        curl = re.search(r"curl -s (\S+/v1/payments) \\\n(.*?)-d '(\{.*?\})'", text, re.DOTALL)
        if key and project and curl:
            assert f"Authorization: Bearer {key.group(1)}" in curl.group(2)
            return project.group(1), key.group(1), curl.group(1), json.loads(curl.group(3))
        assert time.monotonic() < deadline, f"no key and curl in the log:\n{text}"
        time.sleep(0.05)


def _wait_status(client: httpx.Client, url: str, statuses: set[str], timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(url)
        assert response.status_code == 200, response.text
        payment: dict[str, Any] = response.json()
        if payment["status"] in statuses:
            return payment
        assert time.monotonic() < deadline, f"still {payment['status']} after {timeout}s: {payment}"
        time.sleep(0.05)


@pytest.mark.slow
def test_serve_dev_prints_a_key_and_a_curl_that_works_and_keeps_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the child's working directory: no developer .env, nothing written elsewhere
    data_dir = tmp_path / "data"

    def dev_server(log_name: str) -> ServerProcess:
        port = free_port()
        env = {
            "MPESA_BRIDGE_DATA_DIR": str(data_dir),
            "MPESA_BRIDGE_PORT": str(port),
            "MPESA_BRIDGE_SIMULATOR_CALLBACK_DELAY": "0.05",
        }
        return ServerProcess(["serve", "--dev"], env, port, tmp_path / log_name)

    first = dev_server("first.log").start()
    try:
        project_id, key, payments_url, body = _banner(first)
        assert payments_url == f"{first.url}/v1/payments"
        assert body["phone"] == "0708374149"
        with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=5.0) as client:
            created = client.post(payments_url, json=body)
            assert created.status_code == 201, created.text
            payment_id = created.json()["id"]
            paid = _wait_status(client, f"{payments_url}/{payment_id}", {"succeeded", "failed", "cancelled"})
        assert paid["status"] == "succeeded", paid
    finally:
        first.stop()
    assert (data_dir / "bridge.db").exists() and (data_dir / "master.key").exists()
    assert (data_dir / "dev-project.json").stat().st_mode & 0o077 == 0

    second = dev_server("second.log").start()
    try:
        again_project, again_key, again_url, _ = _banner(second)
        assert (again_project, again_key) == (project_id, key)  # the same key, kept in the data directory
        assert again_url == f"{second.url}/v1/payments"
        with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=5.0) as client:
            kept = client.get(f"{again_url}/{payment_id}")
            assert kept.status_code == 200 and kept.json()["status"] == "succeeded"
    finally:
        second.stop()


def test_keys_rotate_list_and_revoke(invoke: Any, project: str) -> None:
    new_key = ok(invoke("keys", "rotate", project, "--mode", "test", "--grace", "0")).strip().splitlines()[0]
    listed = ok(invoke("keys", "list", project))
    new_id = next(line.split()[0] for line in listed.splitlines() if new_key[-4:] in line and "active" in line)
    revoked = ok(invoke("keys", "revoke", new_id))

    assert re.fullmatch(r"sk_test_[A-Za-z0-9]{32}", new_key)
    assert re.search(r"test .* expires ", listed)  # the previous test key stops at once (grace 0)
    assert f"{new_id} revoked at" in revoked
    assert new_key not in listed  # only the visible part is ever listed
    missing = invoke("keys", "revoke", "key_nope")
    assert missing.exit_code == 1 and "No such key" in missing.output
