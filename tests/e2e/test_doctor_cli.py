"""`mpesa-bridge doctor` as a process against the simulator as a process: Daraja's real `Date` header
(uvicorn's) for the clock check, and the backup marker that `mpesa-bridge backup` leaves.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.bridge import TEST_MASTER_KEY
from tests.fixtures.servers import simulator_process

pytestmark = pytest.mark.slow


def test_doctor_over_real_http_then_after_a_backup(tmp_path: Path) -> None:
    simulator = simulator_process(tmp_path).start(health_path="/oauth/v1/generate")
    try:
        env = {
            **os.environ,
            "MPESA_BRIDGE_DATA_DIR": str(tmp_path / "data"),
            "MPESA_BRIDGE_MASTER_KEY": TEST_MASTER_KEY,
            "MPESA_BRIDGE_SIMULATOR_ENABLED": "false",
            "MPESA_BRIDGE_SIMULATOR_URL": simulator.url,
            "MPESA_BRIDGE_PUBLIC_BASE_URL": "https://1.1.1.1",
            "COLUMNS": "250",
        }

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "mpesa_bridge", *args], env=env, capture_output=True, text=True, timeout=120
            )

        assert cli("db", "upgrade").returncode == 0
        assert cli("projects", "create", "--name", "Shop").returncode == 0
        first = cli("doctor", "--mode", "test")
        assert first.returncode == 0, first.stdout + first.stderr
        out = first.stdout
        assert "ok    credentials" in out
        assert "ok    short code and passkey" in out
        assert "ok    clock" in out and "within 30s" in out  # the simulator's Date header, from uvicorn
        assert "WARN  backup and master key: no backup recorded" in out  # test mode: a warning

        assert cli("backup", str(tmp_path / "b.backup")).returncode == 0
        second = cli("doctor", "--mode", "test")
        assert second.returncode == 0, second.stdout + second.stderr
        assert "ok    backup and master key" in second.stdout
    finally:
        simulator.stop()
