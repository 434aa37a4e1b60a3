"""Which configurations `serve --workers N` refuses, and the settings each process gets."""

from __future__ import annotations

import functools
import pickle

import pytest
import uvicorn

from mpesa_bridge.cli.processes import child_settings, processes_refusal
from mpesa_bridge.config import Settings
from mpesa_bridge.serving import ConnectionLimits, ProcessesConfig, server_config
from mpesa_bridge.serving_limits import BoundedHttpToolsProtocol

PG = "postgresql://bridge@db.internal/bridge"


def settings(**given: object) -> Settings:
    values = {"database_url": PG, "simulator_enabled": False, "workers": 2} | given
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_one_process_is_always_fine() -> None:
    assert processes_refusal(settings(workers=1, database_url=None, simulator_enabled=True), dev=True) is None


def test_postgresql_without_the_mounted_simulator_may_run_several() -> None:
    assert processes_refusal(settings(), dev=False) is None


@pytest.mark.parametrize("url", [None, "sqlite+aiosqlite:////tmp/bridge.db", "sqlite:///bridge.db"])
def test_sqlite_is_refused_naming_the_setting(url: str | None) -> None:
    message = processes_refusal(settings(database_url=url), dev=False)
    assert message is not None and "MPESA_BRIDGE_WORKERS" in message and "PostgreSQL" in message


def test_dev_is_one_process() -> None:
    message = processes_refusal(settings(), dev=True)
    assert message is not None and "--dev" in message


def test_the_mounted_simulator_is_refused_naming_its_setting() -> None:
    message = processes_refusal(settings(simulator_enabled=None), dev=False)
    assert message is not None and "MPESA_BRIDGE_SIMULATOR_ENABLED" in message


def test_each_process_gets_the_settings_without_migrating_again() -> None:
    # The supervisor migrates once before the processes start; they must not race to do it again.
    given = settings(migrate_on_start=True)
    child = pickle.loads(pickle.dumps(child_settings(given)))
    assert child.should_migrate_on_start is False
    assert child.database_url == PG and child.workers == 2 and child.port == given.port


def _config(header_timeout: float) -> uvicorn.Config:
    return server_config(_app, "127.0.0.1", 8000, ConnectionLimits(header_timeout=header_timeout))


async def _app(scope: object, receive: object, send: object) -> None:  # pragma: no cover - never called
    raise AssertionError("not served")


def test_each_process_builds_its_own_config_with_the_connection_limits() -> None:
    # What crosses to a process is the recipe; the app and the protocol class are made there.
    supervisor = ProcessesConfig(functools.partial(_config, 7.0), "127.0.0.1", 8000, 2)
    child = pickle.loads(pickle.dumps(supervisor))
    child.load()
    assert child.loaded and child.loaded_app is not None
    protocol = child.http_protocol_class
    assert issubclass(protocol, BoundedHttpToolsProtocol) and protocol.limits.header_timeout == 7.0
    again = pickle.loads(pickle.dumps(supervisor))
    again.load()
    assert again.http_protocol_class.gate is not protocol.gate  # each process counts its own connections
