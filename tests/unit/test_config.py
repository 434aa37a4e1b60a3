"""Configuration (`mpesa_bridge.config`): the production guard, master keys, derived values, sources.

Every `Settings(...)` here passes `_env_file=None` unless the test is about `.env`, so a developer's
`.env` in the working directory cannot change the outcome (the autouse fixture already clears the
MPESA_BRIDGE_* variables).
"""

from __future__ import annotations

import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mpesa_bridge.config import ConfigError, Settings, load_settings
from mpesa_bridge.core.crypto import parse_master_key
from tests.fixtures.bridge import TEST_MASTER_KEY

PUBLIC = "https://pay.example.co.ke"


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def production(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "production",
        "data_dir": tmp_path,
        "master_key": TEST_MASTER_KEY,
        "public_base_url": PUBLIC,
    }
    values.update(overrides)
    return settings(**values)


# --------------------------------------------------------------------------- the production guard


def test_a_complete_production_configuration_is_accepted(tmp_path: Path) -> None:
    s = production(tmp_path)
    assert s.production
    assert s.mount_simulator is False
    assert s.resolved_simulator_url is None
    assert s.should_migrate_on_start is False
    assert s.json_logs is True
    assert s.resolved_public_base_url == PUBLIC
    assert s.master_keys() == [parse_master_key(TEST_MASTER_KEY)]
    assert not (tmp_path / "master.key").exists()  # production never generates a key


def test_production_defaults_can_still_be_overridden_explicitly(tmp_path: Path) -> None:
    s = production(tmp_path, migrate_on_start=True, log_json=False, simulator_enabled=False)
    assert s.should_migrate_on_start is True
    assert s.json_logs is False
    assert s.mount_simulator is False


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        pytest.param({"master_key": None}, "MPESA_BRIDGE_MASTER_KEY", id="master-key-missing"),
        pytest.param({"master_key": ""}, "MPESA_BRIDGE_MASTER_KEY", id="master-key-empty"),
        pytest.param({"master_key": "   "}, "MPESA_BRIDGE_MASTER_KEY", id="master-key-blank"),
        pytest.param({"public_base_url": None}, "MPESA_BRIDGE_PUBLIC_BASE_URL", id="public-url-missing"),
        pytest.param({"public_base_url": "http://pay.example.co.ke"}, "MPESA_BRIDGE_PUBLIC_BASE_URL", id="http"),
        pytest.param({"public_base_url": "pay.example.co.ke"}, "MPESA_BRIDGE_PUBLIC_BASE_URL", id="no-scheme"),
        pytest.param({"simulator_enabled": True}, "simulator", id="simulator-enabled"),
        pytest.param({"simulator_url": "http://127.0.0.1:8001"}, "simulator", id="simulator-url"),
        pytest.param({"fault_injection": "crash_after_store"}, "MPESA_BRIDGE_FAULT_INJECTION", id="fault-injection"),
    ],
)
def test_production_refuses_an_unsafe_configuration(tmp_path: Path, overrides: dict[str, Any], variable: str) -> None:
    with pytest.raises(ValidationError, match="production configuration refused") as info:
        production(tmp_path, **overrides)
    assert variable in str(info.value)
    assert isinstance(info.value, ValueError)  # what load_settings (and the CLI) catch


def test_production_lists_every_problem_at_once(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        settings(env="production", data_dir=tmp_path, simulator_enabled=True, fault_injection="x")
    text = str(info.value)
    for variable in ("MASTER_KEY", "PUBLIC_BASE_URL", "simulator", "FAULT_INJECTION"):
        assert variable in text


def test_development_accepts_what_production_refuses(tmp_path: Path) -> None:
    s = settings(data_dir=tmp_path, simulator_url="http://127.0.0.1:8001/", fault_injection="x")
    assert not s.production
    assert s.mount_simulator and s.should_migrate_on_start and not s.json_logs
    assert s.resolved_simulator_url == "http://127.0.0.1:8001"


def test_load_settings_reports_a_clear_message_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env="production", data_dir=tmp_path, admin_token="admin-secret-value-123")
    message = str(info.value)
    assert message.startswith("production configuration refused: MPESA_BRIDGE_MASTER_KEY is required")
    assert "MPESA_BRIDGE_PUBLIC_BASE_URL is required" in message
    assert "admin-secret-value-123" not in message  # input values (maybe secrets) are never echoed
    assert "errors.pydantic.dev" not in message

    with pytest.raises(ConfigError, match=r"^MPESA_BRIDGE_PORT: Input should be less than or equal to 65535$"):
        load_settings(port=70000)
    with pytest.raises(ConfigError, match="MPESA_BRIDGE_ENV: Input should be 'development' or 'production'"):
        load_settings(env="staging")


# --------------------------------------------------------------------------- master keys


@pytest.mark.parametrize("key", ["not base64 !!", "c2hvcnQ", ""])
def test_an_invalid_master_key_is_a_config_error(tmp_path: Path, key: str) -> None:
    s = settings(data_dir=tmp_path, master_key=key)
    with pytest.raises(ConfigError, match=r"^MPESA_BRIDGE_MASTER_KEY is unusable: the master key "):
        s.master_keys()


def test_the_configured_master_key_is_used(tmp_path: Path) -> None:
    assert settings(data_dir=tmp_path, master_key=TEST_MASTER_KEY).master_keys() == [parse_master_key(TEST_MASTER_KEY)]
    assert not (tmp_path / "master.key").exists()


def test_development_generates_a_private_master_key_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    first = settings(data_dir=data_dir).master_keys()
    path = data_dir / "master.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 1 and len(first[0]) == 32
    assert parse_master_key(path.read_text()) == first[0]
    # The same key on the next call, and from a fresh process' settings.
    assert settings(data_dir=data_dir).master_keys() == first
    assert settings(data_dir=data_dir).master_keys() == first
    assert [p.name for p in data_dir.iterdir()] == ["master.key"]  # no temporary file left behind


def test_concurrent_first_starts_agree_on_one_master_key(tmp_path: Path) -> None:
    # A server and a worker starting together must not each generate (and keep) a different key.
    barrier = threading.Barrier(8)
    results: list[list[bytes]] = []

    def start() -> None:
        s = settings(data_dir=tmp_path)
        barrier.wait()
        results.append(s.master_keys())

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    assert all(keys == results[0] for keys in results)
    assert parse_master_key((tmp_path / "master.key").read_text()) == results[0][0]


def test_a_corrupt_generated_key_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "master.key").write_text("garbage\n")
    with pytest.raises(ConfigError, match=r"master\.key is not a usable master key"):
        settings(data_dir=tmp_path).master_keys()


# --------------------------------------------------------------------------- derived values


def test_the_default_database_is_sqlite_in_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings(data_dir=tmp_path).resolved_database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/bridge.db"
    monkeypatch.chdir(tmp_path)
    default = settings()
    assert default.data_dir == Path(".data")
    assert default.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/.data/bridge.db"  # absolute
    given = "postgresql+asyncpg://bridge@db/bridge"
    assert settings(database_url=given).resolved_database_url == given


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"host": "localhost", "port": 9000}, "http://localhost:9000"),
        ({"host": "0.0.0.0", "port": 8080}, "http://127.0.0.1:8080"),
        ({"host": "::"}, "http://[::1]:8000"),
        ({"host": "::1"}, "http://[::1]:8000"),
        ({"public_base_url": "https://pay.example.co.ke/"}, "https://pay.example.co.ke"),
        ({"public_base_url": "https://example.co.ke/bridge/", "port": 9000}, "https://example.co.ke/bridge"),
    ],
)
def test_resolved_public_base_url(values: dict[str, Any], expected: str) -> None:
    assert settings(**values).resolved_public_base_url == expected


def test_resolved_simulator_url() -> None:
    assert settings().resolved_simulator_url == "http://127.0.0.1:8000/simulator"
    assert settings(public_base_url="https://x.test/").resolved_simulator_url == "https://x.test/simulator"
    assert settings(simulator_url="http://sim:8001/").resolved_simulator_url == "http://sim:8001"
    assert settings(simulator_enabled=False).resolved_simulator_url is None
    assert settings(simulator_enabled=False, simulator_url="http://sim:8001").resolved_simulator_url == (
        "http://sim:8001"
    )


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("15,30,60", (15.0, 30.0, 60.0)),
        (" 1.5 , 2 ,", (1.5, 2.0)),
        ("0.3", (0.3,)),
    ],
)
def test_backoff_steps(text: str, steps: tuple[float, ...]) -> None:
    assert settings(reconcile_backoff=text).backoff_steps == steps


@pytest.mark.parametrize("text", ["", " , ", "a", "15,thirty", "0", "15,-1", "1e"])
def test_bad_backoff_steps_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="MPESA_BRIDGE_RECONCILE_BACKOFF"):
        _ = settings(reconcile_backoff=text).backoff_steps


def test_after_expiry_re_checks_default_to_a_day_at_growing_intervals() -> None:
    s = settings()
    assert s.reconcile_after_expiry == 86_400.0
    assert s.after_expiry_backoff_steps == (300.0, 900.0, 1800.0, 3600.0, 7200.0, 14_400.0)
    assert settings(reconcile_after_expiry_backoff="60, 120").after_expiry_backoff_steps == (60.0, 120.0)


@pytest.mark.parametrize("text", ["", "0", "5,-1", "inf", "x"])
def test_bad_after_expiry_steps_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="MPESA_BRIDGE_RECONCILE_AFTER_EXPIRY_BACKOFF"):
        _ = settings(reconcile_after_expiry_backoff=text).after_expiry_backoff_steps


# --------------------------------------------------------------------------- sources: environment and .env


def test_prefixed_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MPESA_BRIDGE_PORT", "9001")
    monkeypatch.setenv("MPESA_BRIDGE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MPESA_BRIDGE_MASTER_KEY", TEST_MASTER_KEY)
    monkeypatch.setenv("MPESA_BRIDGE_RECONCILE_BACKOFF", "1,2")
    monkeypatch.setenv("MPESA_BRIDGE_LOG_JSON", "true")
    monkeypatch.setenv("PORT", "1234")  # unprefixed: not ours
    s = settings()
    assert s.port == 9001
    assert s.data_dir == tmp_path
    assert s.master_key is not None and s.master_key.get_secret_value() == TEST_MASTER_KEY
    assert TEST_MASTER_KEY not in repr(s)
    assert s.backoff_steps == (1.0, 2.0)
    assert s.json_logs is True
    assert settings(port=9002).port == 9002  # explicit values (CLI options) win over the environment


def test_the_production_guard_applies_to_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPESA_BRIDGE_ENV", "production")
    monkeypatch.setenv("MPESA_BRIDGE_PUBLIC_BASE_URL", PUBLIC)
    monkeypatch.setenv("MPESA_BRIDGE_MASTER_KEY", "")  # a blank line is not a key
    with pytest.raises(ConfigError, match="MPESA_BRIDGE_MASTER_KEY is required"):
        load_settings()
    monkeypatch.setenv("MPESA_BRIDGE_MASTER_KEY", TEST_MASTER_KEY)
    assert load_settings().production


def test_blank_variables_mean_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # What a user gets by uncommenting `MPESA_BRIDGE_X=` lines of .env.example.
    for name in ("LOG_JSON", "MIGRATE_ON_START", "SIMULATOR_ENABLED", "MASTER_KEY", "DATABASE_URL", "ADMIN_TOKEN"):
        monkeypatch.setenv(f"MPESA_BRIDGE_{name}", "")
    monkeypatch.setenv("MPESA_BRIDGE_DATA_DIR", str(tmp_path))
    s = settings()
    assert s.log_json is None and s.migrate_on_start is None and s.simulator_enabled is None
    assert s.master_key is None and s.admin_token is None and s.database_url is None
    assert len(s.master_keys()[0]) == 32  # development generates one, as when the variable is absent


def test_dotenv_in_the_working_directory_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "# local settings\n"
        "MPESA_BRIDGE_PORT=9100\n"
        "MPESA_BRIDGE_HOST=0.0.0.0\n"
        "MPESA_BRIDGE_ADMIN_TOKEN=from-dotenv\n"
        "MPESA_BRIDGE_LOG_JSON=\n"
        "UNRELATED=1\n",
        encoding="utf-8",
    )
    s = Settings()
    assert s.port == 9100
    assert s.host == "0.0.0.0"
    assert s.admin_token is not None and s.admin_token.get_secret_value() == "from-dotenv"
    assert s.log_json is None
    monkeypatch.setenv("MPESA_BRIDGE_PORT", "9200")  # the environment wins over .env
    assert Settings().port == 9200
    assert load_settings(port=9300).port == 9300  # and explicit values over both
