"""`pip install ./sdks/python` works in an empty virtual environment (httpx is its only dependency),
and the installed SDK talks to a real bridge."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fixtures.servers import sandbox_bridge

pytestmark = pytest.mark.slow

SDK = Path(__file__).resolve().parents[2] / "sdks" / "python"

SCRIPT = textwrap.dedent(
    """
    import importlib.util, pathlib, sys
    import mpesa_bridge_sdk
    from mpesa_bridge_sdk import Client, NotFoundError

    assert importlib.util.find_spec("mpesa_bridge") is None, "the bridge itself must not be installed"
    assert (pathlib.Path(mpesa_bridge_sdk.__file__).parent / "py.typed").exists()
    url, key = sys.argv[1], sys.argv[2]
    with Client(key, base_url=url) as bridge:
        payment = bridge.payments.create(phone="0712000777", amount=10, account_reference="PIP")
        assert bridge.payments.retrieve(payment.id).id == payment.id
        try:
            bridge.payments.retrieve("pay_nope")
        except NotFoundError as error:
            print(payment.id, error.code)
    """
)


def test_pip_install_in_an_empty_venv_then_one_call(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    # The machine's pip configuration (index, find-links, certificates) applies as for the repo's venv.
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(SDK)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True
    )
    names = {line.split("==")[0].lower() for line in listed.stdout.splitlines()}
    assert {"mpesa-bridge-sdk", "httpx"} <= names and "fastapi" not in names and "mpesa-bridge" not in names
    with sandbox_bridge(tmp_path, "Pip", callback_delay=0.5) as (server, key):
        result = subprocess.run(
            [str(python), "-c", SCRIPT, server.url, key], capture_output=True, text=True, timeout=60, check=False
        )
    assert result.returncode == 0, result.stderr
    payment_id, code = result.stdout.split()
    assert payment_id.startswith("pay_") and code == "resource_missing"
