"""`mpesa-bridge trigger` and `mpesa-bridge listen` against a real bridge: events forwarded, signed, to a
local receiver with no tunnel — the way a developer uses them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from tests.fixtures.receiver import HANG, Receiver, Reply
from tests.fixtures.servers import ServerProcess, sandbox_bridge
from tests.fixtures.sse_bridge import short_stream_bridge

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
            for request in requests:  # listen prints a delivery's line once its answer is in: after the receiver has it
                event = json.loads(request.body)
                if event["data"]["object"]["id"] == created["id"]:
                    await _wait_for_line(tmp_path / "listen.log", f"--> {event['type']} [{event['id']}]  <-- [200]")
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


@contextlib.contextmanager
def _listening(api_url: str, key: str, target: str, log: Path) -> Iterator[None]:
    args = [sys.executable, "-m", "mpesa_bridge", "listen", "--forward-to", target, "--key", key, "--api-url", api_url]
    with log.open("w") as output:
        listener = subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT, text=True)
        try:
            yield
        finally:
            listener.terminate()
            listener.wait(10)


SSE = {"Content-Type": "text/event-stream"}
EVENT = {"id": "evt_1", "object": "event", "type": "payment.created", "data": {"object": {"id": "pay_1"}}}


async def test_listen_reconnects_with_the_last_id_it_saw_even_from_an_id_only_message(tmp_path: Path) -> None:
    """Issue 9 C14: `listen` kept ids only from messages with data, so after an idle stream ended it
    reconnected without Last-Event-ID. The bridge's side is scripted here, to see the exact requests."""
    async with Receiver() as bridge:
        idle = b"id: 41\r\nretry: 100\r\n\r\n: heartbeat\r\n\r\n: maximum connection age reached\r\nretry: 100\r\n\r\n"
        event = f"id: evt_1\r\nevent: payment.created\r\ndata: {json.dumps(EVENT)}\r\n\r\n".encode()
        bridge.script("/v1/events/stream", Reply(body=idle, headers=SSE), Reply(body=event, headers=SSE), then=HANG)
        with _listening(bridge.url, "sk_test_" + "A" * 32, bridge.url + "/webhooks", tmp_path / "listen.log"):
            await _wait_for_events(bridge, "pay_1", 1)
            await bridge.wait_for(4)  # two streams, the forwarded event, the third stream
    streams = bridge.at("/v1/events/stream")
    assert [r.headers.get("last-event-id") for r in streams[:3]] == [None, "41", "evt_1"]


@pytest.fixture(scope="module")
def short_streams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    # Streams end after 1 s; clients are told to wait 3 s before reconnecting: room to commit in between.
    with short_stream_bridge(tmp_path_factory.mktemp("listen-resume"), max_age=1.0, retry=3.0) as started:
        yield started


async def test_listen_forwards_what_was_committed_while_it_reconnected(
    short_streams: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    server, key = short_streams
    log = tmp_path / "listen.log"
    async with Receiver() as receiver:
        with _listening(server.url, key, receiver.url + "/webhooks", log):
            await _wait_for_secret(log)
            await _wait_for_line(log, "reconnecting in 3s")  # the bridge ended the idle stream
            made = [_pay(server.url, key, phone) for phone in ("0708374149", "0700000001")]
            for payment_id in made:  # their first events, committed while listen was away
                await _wait_for_events(receiver, payment_id, 1, kind="payment.created")


def _pay(url: str, key: str, phone: str) -> str:
    body = {"phone": phone, "amount": 10, "account_reference": "RESUME"}
    response = httpx.post(f"{url}/v1/payments", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _wait_for_line(path: Path, text: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"listen never printed {text!r}: {path.read_text()}")


async def _wait_for_events(receiver: Receiver, payment_id: str, count: int, kind: str | None = None) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        events = [json.loads(r.body) for r in receiver.at("/webhooks")]
        mine = [e for e in events if e["data"]["object"].get("id") == payment_id and kind in (None, e["type"])]
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
