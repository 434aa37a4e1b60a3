"""`mpesa-bridge trigger` and `mpesa-bridge listen` against a real bridge: events forwarded, signed, to a
local receiver with no tunnel — the way a developer uses them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from tests.fixtures.receiver import Receiver
from tests.fixtures.servers import ServerProcess, sandbox_bridge

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    with sandbox_bridge(tmp_path_factory.mktemp("listen"), "Listen", callback_delay=0.1) as started:
        yield started


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mpesa_bridge", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.parametrize(
    ("event", "status"),
    [
        ("payment.succeeded", "succeeded"),
        ("payment.failed", "failed"),
        ("payment.cancelled", "cancelled"),
        ("payment.expired", "expired"),
    ],
)
def test_trigger_drives_a_test_payment_to_each_outcome(
    bridge: tuple[ServerProcess, str], event: str, status: str
) -> None:
    server, key = bridge
    result = cli("trigger", event, "--key", key, "--api-url", server.url, "--wait", "20")
    assert result.returncode == 0, result.stderr
    payment_id, final = result.stdout.split()
    assert payment_id.startswith("pay_") and final == status


def test_trigger_refuses_live_keys_and_unknown_events(bridge: tuple[ServerProcess, str]) -> None:
    server, _ = bridge
    live = cli("trigger", "payment.succeeded", "--key", "sk_live_" + "A" * 32, "--api-url", server.url)
    unknown = cli("trigger", "payment.refunded", "--key", "sk_test_" + "A" * 32, "--api-url", server.url)
    assert live.returncode != 0 and "test key" in live.stderr
    assert unknown.returncode != 0 and "choose one of" in unknown.stderr


async def test_listen_forwards_signed_events_and_prints_one_line_each(
    bridge: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    server, key = bridge
    async with Receiver() as receiver:
        target = receiver.url + "/webhooks"
        log = (tmp_path / "listen.log").open("w")
        listener = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mpesa_bridge",
                "listen",
                "--forward-to",
                target,
                "--key",
                key,
                "--api-url",
                server.url,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            secret = await _wait_for_secret(tmp_path / "listen.log")
            body = {"phone": "0708374149", "amount": 42, "account_reference": "LISTEN"}
            created = httpx.post(
                f"{server.url}/v1/payments", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10
            ).json()
            await _wait_for_events(receiver, created["id"], 2)
            requests = list(receiver.requests)
        finally:
            listener.terminate()
            listener.wait(10)
            log.close()
    output = (tmp_path / "listen.log").read_text()
    received = [(r, json.loads(r.body)) for r in requests]
    mine = [(r, e) for r, e in received if e["data"]["object"]["id"] == created["id"]]
    assert [e["type"] for _, e in mine] == ["payment.created", "payment.succeeded"]
    for request, event in mine:
        Webhook(secret).verify(request.body, request.headers)  # signed the Standard Webhooks way
        assert f"--> {event['type']} [{event['id']}]  <-- [200] POST {target}" in output


async def _wait_for_events(receiver: Receiver, payment_id: str, count: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        mine = [r for r in receiver.requests if json.loads(r.body)["data"]["object"].get("id") == payment_id]
        if len(mine) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{payment_id}: fewer than {count} events forwarded")


async def _wait_for_secret(path: Path) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        for line in text.splitlines():
            if "signing secret is whsec_" in line:
                return line.rsplit(" ", 1)[1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"listen printed no secret: {path.read_text()}")
