"""`mpesa-bridge backup` of a SERVING bridge, `restore` into a new database — SQLite and PostgreSQL.

A bridge process and the simulator as processes; two threads create payments (the simulator
completes them) before, during and after the backup, which runs as its own process. The backup is
restored into a new data directory (SQLite) or a new database (PostgreSQL), and the restored
database holds every payment and event committed before the backup began, each finished payment
with the state it had, every finished payment's outcome event beside it (the snapshot never cuts a
state change from its event), and a bridge started on it serves the payments.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from mpesa_bridge.storage.db import normalise_url
from tests.fixtures.bridge import ADMIN_TOKEN, TEST_MASTER_KEY
from tests.fixtures.database import process_database
from tests.fixtures.servers import bridge_process, simulator_process

pytestmark = pytest.mark.slow

FINAL = {"succeeded", "failed", "cancelled", "expired"}
LOAD_ENV = {
    "MPESA_BRIDGE_PHONE_LOCK_WINDOW": "0",
    "MPESA_BRIDGE_DUPLICATE_GUARD_WINDOW": "0",
    "MPESA_BRIDGE_RATE_LIMIT_PHONE": "10000/minute",
    "MPESA_BRIDGE_RATE_LIMIT_KEY": "10000/second",
    "MPESA_BRIDGE_RATE_LIMIT_CREATE": "10000/second",
}


async def _read_state(url: str) -> tuple[dict[str, str], set[str], set[tuple[str, str]]]:
    """(payment id -> status, event ids, (event type, payment id)) as committed now."""
    engine = create_async_engine(normalise_url(url))
    try:
        async with engine.connect() as conn:
            payments = dict((await conn.execute(sa.text("SELECT id, status FROM payments"))).all())
            events = (await conn.execute(sa.text("SELECT id, type, subject_id FROM outbox_events"))).all()
    finally:
        await engine.dispose()
    return payments, {e[0] for e in events}, {(e[1], e[2]) for e in events}


def read_state(url: str) -> tuple[dict[str, str], set[str], set[tuple[str, str]]]:
    return asyncio.run(_read_state(url))


def cli(*args: str, url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MPESA_BRIDGE_DATABASE_URL": url,
        "MPESA_BRIDGE_DATA_DIR": str(data_dir),
        "MPESA_BRIDGE_MASTER_KEY": TEST_MASTER_KEY,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "mpesa_bridge", *args], env=env, capture_output=True, text=True, timeout=120
    )


class Load:
    """Threads creating payments against the bridge until stopped; each remembers when it was created."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.key = key
        self.created: list[tuple[float, str]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(2)]

    def _run(self, n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=10) as http:
            while not self._stop.is_set():
                phone = f"07{n + 1}{rng.randrange(10**7):07d}"
                body = {"phone": phone, "amount": 10, "account_reference": "LOAD", "description": "load"}
                try:
                    response = http.post("/v1/payments", json=body)
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))
                    continue
                if response.status_code == 201:
                    self.created.append((time.monotonic(), response.json()["id"]))
                else:
                    self.errors.append(f"{response.status_code} {response.text[:200]}")

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.created) < count:
            assert time.monotonic() < deadline, f"only {len(self.created)} payments created: {self.errors[:3]}"
            time.sleep(0.05)

    def between(self, start: float, end: float) -> int:
        return sum(1 for at, _ in list(self.created) if start <= at <= end)


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_backup_of_a_serving_bridge_restores_every_payment_and_event(engine: str, tmp_path: Path) -> None:
    (tmp_path / "source").mkdir()
    (tmp_path / "target").mkdir()
    (tmp_path / "restored-data").mkdir(mode=0o700)
    with contextlib.ExitStack() as stack:
        source_url = stack.enter_context(contextlib.contextmanager(process_database)(engine, tmp_path / "source"))
        if engine == "sqlite":
            target_url = f"sqlite:///{tmp_path / 'restored-data' / 'bridge.db'}"
        else:
            target_url = stack.enter_context(contextlib.contextmanager(process_database)(engine, tmp_path / "target"))
        simulator = simulator_process(tmp_path, callback_delay=0.05).start(health_path="/oauth/v1/generate")
        stack.callback(simulator.stop)
        bridge = bridge_process(tmp_path / "source", source_url, simulator.url, **LOAD_ENV).start()
        stack.callback(bridge.stop)
        created = httpx.post(
            f"{bridge.url}/v1/admin/projects",
            json={"name": "Backed up shop"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        key = created.json()["secret_keys"]["test"]

        backup_file = tmp_path / "backups" / "bridge.backup"
        with Load(bridge.url, key) as load:
            load.wait_for(30)
            before_payments, before_events, _ = read_state(source_url)
            assert any(status in FINAL for status in before_payments.values())  # completed ones too
            started = time.monotonic()
            result = cli("backup", str(backup_file), url=source_url, data_dir=tmp_path / "source" / "data")
            finished = time.monotonic()
            assert result.returncode == 0, result.stdout + result.stderr
            load.wait_for(len(load.created) + 5)
            during = load.between(started, finished)
        assert during > 0, "no payment was created while the backup ran"
        assert not load.errors, load.errors[:5]
        assert oct(backup_file.stat().st_mode & 0o777) == "0o600"
        manifest = json.loads((tmp_path / "backups" / "bridge.backup.manifest.json").read_text())
        assert manifest["master_key_ids"], manifest
        marker = json.loads((tmp_path / "source" / "data" / "last-backup.json").read_text())
        assert marker["file"] == str(backup_file.resolve())

        result = cli("restore", str(backup_file), url=target_url, data_dir=tmp_path / "restored-data")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "ok:" in result.stdout

        payments, events, subjects = read_state(target_url)
        assert manifest["rows"]["payments"] == len(payments) >= len(before_payments)
        assert manifest["rows"]["outbox_events"] == len(events) >= len(before_events)
        missing = set(before_payments) - set(payments)
        assert not missing, f"{len(missing)} payments missing from the restore"
        assert before_events <= events, f"{len(before_events - events)} events missing from the restore"
        for payment_id, status in before_payments.items():
            if status in FINAL:
                assert payments[payment_id] == status, payment_id
        for payment_id, status in payments.items():
            if status in FINAL:  # the state change and its event: one transaction, one snapshot
                assert (f"payment.{status}", payment_id) in subjects, payment_id

        # A bridge started on the restored database serves what was backed up.
        restored = bridge_process(tmp_path / "restored-data", target_url, simulator.url).start()
        stack.callback(restored.stop)
        some = sorted(p for p, s in before_payments.items() if s in FINAL)[:3]
        for payment_id in some:
            answer = httpx.get(
                f"{restored.url}/v1/payments/{payment_id}", headers={"Authorization": f"Bearer {key}"}, timeout=10
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == before_payments[payment_id]
