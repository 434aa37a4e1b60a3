"""Scale-out, end to end: two bridge processes on loopback sharing one PostgreSQL database and Redis.

A payment is created on instance A, whose public URL is the one the simulator calls back: the
callback lands on A, A applies it and commits the events. Clients connected to instance B — SSE
(project stream with the secret key, payment stream with the client secret) and Socket.IO (a key
socket, a client-secret socket) — receive them through Redis: the bus for SSE, python-socketio's
AsyncRedisManager for Socket.IO. B runs no workers, so nothing is ever committed on B.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mpesa_bridge.storage.migrate import upgrade
from tests.fixtures.bridge import ADMIN_TOKEN
from tests.fixtures.database import create_pg_database, drop_pg_database
from tests.fixtures.realtime import SocketClient, SseReader, socket_client
from tests.fixtures.servers import ServerProcess, bridge_process, simulator_process
from tests.fixtures.services import REDIS_URL, need, postgres_available, redis_available

pytestmark = pytest.mark.slow

LATE_PHONE = "0700000902"  # the simulator's customer answers after --late-callback-delay


@dataclass
class TwoInstances:
    a: ServerProcess
    b: ServerProcess
    simulator: ServerProcess


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[TwoInstances]:
    need("PostgreSQL", postgres_available())
    need("Redis", redis_available())
    database_url = asyncio.run(create_pg_database())
    simulator = simulator_process(tmp_path, callback_delay=0.05, late_delay=1.0)
    # Only the callback settles payments here: no query, no expiry while the test runs.
    shared = {
        "MPESA_BRIDGE_REDIS_URL": REDIS_URL,
        "MPESA_BRIDGE_RECONCILE_QUERY_DELAY": "60",
        "MPESA_BRIDGE_RECONCILE_MAX_AGE": "600",
    }
    a = bridge_process(tmp_path, database_url, simulator.url, **shared)
    b = bridge_process(tmp_path, database_url, simulator.url, MPESA_BRIDGE_RECONCILE_ENABLED="false", **shared)
    try:
        upgrade(database_url)  # once, here: then all three processes can start at the same time
        for process in (simulator, a, b):
            process.env["MPESA_BRIDGE_MIGRATE_ON_START"] = "false"
            process.spawn()
        wait_ready(simulator, "/oauth/v1/generate")
        wait_ready(a, "/healthz")
        wait_ready(b, "/healthz")
        yield TwoInstances(a, b, simulator)
    finally:
        b.stop()
        a.stop()
        simulator.stop()
        asyncio.run(drop_pg_database(database_url))


def wait_ready(process: ServerProcess, path: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert process.process is not None
        assert process.process.poll() is None, f"exited:\n{process.output()}"
        try:
            if httpx.get(process.url + path, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"not ready in {timeout}s:\n{process.output()}"
        time.sleep(0.05)


async def test_an_event_committed_on_instance_a_reaches_sse_and_socketio_clients_of_instance_b(
    instances: TwoInstances, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = instances.a, instances.b
    async with httpx.AsyncClient(timeout=10) as http:
        created = await http.post(
            f"{a.url}/v1/admin/projects", json={"name": "Two"}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert created.status_code == 201, created.text
        key = created.json()["secret_keys"]["test"]
        headers = {"Authorization": f"Bearer {key}"}

        async with (
            socket_client(b.url, {"key": key}) as key_socket,
            http.stream("GET", f"{b.url}/v1/events/stream", headers=headers) as project_response,
        ):
            assert project_response.status_code == 200
            project_stream = SseReader(project_response)
            assert (await project_stream.next()) is not None  # open: its starting point is fixed

            body = {"phone": LATE_PHONE, "amount": 10, "account_reference": "TWO", "description": "two"}
            paid = await http.post(f"{a.url}/v1/payments", json=body, headers=headers)
            assert paid.status_code == 201, paid.text
            payment = paid.json()
            started = time.monotonic()
            secret = payment["client_secret"]
            payment_url = f"{b.url}/v1/payments/{payment['id']}/events"

            async with (
                socket_client(b.url, {"client_secret": secret}) as secret_socket,
                http.stream("GET", payment_url, params={"client_secret": secret}) as payment_response,
            ):
                assert payment_response.status_code == 200
                payment_stream = SseReader(payment_response)
                project_events = await project_stream.events(2, timeout=10)
                payment_events = await payment_stream.events(2, timeout=10)
                await secret_socket.wait_for(lambda c: c.named(f"transaction:{payment['id']}"), timeout=10)
                await secret_socket.wait_for(lambda c: _types(c)[-1:] == ["payment.succeeded"], timeout=10)
                await key_socket.wait_for(lambda c: len(c.named("payment.updated")) == 2, timeout=10)
                elapsed = time.monotonic() - started

            done = await http.get(f"{b.url}/v1/payments/{payment['id']}", headers=headers)

    expected = ["payment.created", "payment.succeeded"]
    assert [m.event for m in project_events] == expected
    assert [m.event for m in payment_events] == expected
    assert [m.id for m in project_events] == [m.id for m in payment_events]
    assert json.loads(payment_events[1].data or "")["data"]["object"]["status"] == "succeeded"
    assert _types(key_socket) == expected
    # The client-secret socket connected right after the creation: it may or may not see "created".
    assert _types(secret_socket) in (expected, expected[1:])
    assert [p["status"] for p in secret_socket.named(f"transaction:{payment['id']}")][-1] == "succeeded"
    assert [p["status"] for p in key_socket.named("transaction-updated")] == ["pending", "succeeded"]
    assert done.json()["status"] == "succeeded"
    # The callback landed on A (and was applied there); B, with no workers, committed nothing.
    assert "callback.received" in a.output() and "callback.processed" in a.output()
    assert "callback.received" not in b.output() and "callback.processed" not in b.output()
    with capsys.disabled():
        print(
            f"\nrealtime two instances: payment {payment['id']} created and settled on A ({a.url}); on B "
            f"({b.url}) project SSE got {[m.event for m in project_events]}, payment SSE (client secret) "
            f"got {[m.event for m in payment_events]}, key socket got "
            f"{_types(key_socket)}, client-secret socket got {_types(secret_socket)} — {elapsed:.2f}s after creation "
            f"(the simulator answers after 1.0s)"
        )


def _types(client: SocketClient) -> list[str]:
    return [event["type"] for event in client.named("payment.updated")]
