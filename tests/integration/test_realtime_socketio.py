"""Socket.IO at /socket.io on a real loopback server, with python-socketio's AsyncClient, on SQLite
and PostgreSQL: who may connect, and that each socket gets the events of its rooms and no others."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mpesa_bridge.core.projects import Mode
from mpesa_bridge.realtime.socketio import SocketGateway
from mpesa_bridge.storage.db import Database
from tests.fixtures.bridge import ADMIN_TOKEN
from tests.fixtures.realtime import (
    FAIL_PHONE,
    SUCCESS_PHONE,
    LiveBridge,
    SocketClient,
    live_bridge,
    refused_connect,
    socket_client,
)

LATE_PHONE = "0700000902"  # the simulator answers after `simulator_late_callback_delay`


@pytest.fixture
async def live(database: Database, db_url: str, tmp_path: Path) -> AsyncIterator[LiveBridge]:
    async with live_bridge(
        db_url, tmp_path, simulator_callback_delay=0.05, simulator_late_callback_delay=0.3
    ) as bridge:
        yield bridge


def gateway(live: LiveBridge) -> SocketGateway:
    sockets = live.runtime.realtime.sockets
    assert isinstance(sockets, SocketGateway)
    return sockets


async def barrier(live: LiveBridge, *clients: SocketClient) -> None:
    """Once this returns, every emit made so far has reached each client (a socket's packets keep
    their order): afterwards, what a client has not got, it never will."""
    await live.runtime.realtime.drained()
    for client in clients:
        await gateway(live).server.emit("barrier", {}, to=client.sio.get_sid())
    for client in clients:
        await client.wait_for(lambda c: c.named("barrier"))


def payment_ids(client: SocketClient) -> set[str]:
    return {event["data"]["object"]["id"] for event in client.named("payment.updated")}


def statuses(client: SocketClient, payment_id: str) -> list[str]:
    return [e["type"] for e in client.named("payment.updated") if e["data"]["object"]["id"] == payment_id]


async def test_each_socket_gets_the_events_of_its_rooms_only(live: LiveBridge) -> None:
    shop, other = await live.create_project("Shop"), await live.create_project("Other")
    async with (
        socket_client(live.url, {"key": shop.test_key}) as shop_key,
        socket_client(live.url, {"key": shop.live_key}) as shop_live_key,
        socket_client(live.url, {"key": other.test_key}) as other_key,
    ):
        a = await live.pay(shop, LATE_PHONE)  # succeeds late: after b, whose events come first
        await live.runtime.realtime.drained()  # a's "created" went out before its secret's socket came
        async with socket_client(live.url, {"client_secret": a["client_secret"]}) as secret_a:
            b = await live.pay(shop, FAIL_PHONE)
            await live.wait_status(shop, b["id"], "failed")
            await live.wait_status(shop, a["id"], "succeeded")
            c = await live.pay(other, SUCCESS_PHONE)
            await live.wait_status(other, c["id"], "succeeded")
            await barrier(live, shop_key, shop_live_key, other_key, secret_a)

            # The project's test-mode key sees all of its test-mode payments, in order.
            assert statuses(shop_key, a["id"]) == ["payment.created", "payment.succeeded"]
            assert statuses(shop_key, b["id"]) == ["payment.created", "payment.failed"]
            assert payment_ids(shop_key) == {a["id"], b["id"]}
            # Payment A's client secret: A only (it connected after A's creation), never B nor C.
            assert payment_ids(secret_a) == {a["id"]}
            assert statuses(secret_a, a["id"]) == ["payment.succeeded"]
            # Another project, and the live mode of the same project, see nothing of these.
            assert other_key.named("payment.updated") and payment_ids(other_key) == {c["id"]}
            assert shop_live_key.received == [("barrier", {})]

            # The earlier system's event names carry the payment object itself.
            [legacy] = secret_a.named(f"transaction:{a['id']}")
            assert legacy["id"] == a["id"] and legacy["object"] == "payment" and legacy["status"] == "succeeded"
            assert "client_secret" not in legacy
            assert [p["status"] for p in secret_a.named("transaction-updated")] == ["succeeded"]
            assert len(shop_key.named("transaction-updated")) == 4
            assert {name for name, _ in other_key.received} == {
                "payment.updated",
                f"transaction:{c['id']}",
                "transaction-updated",
                "barrier",
            }
            updated = secret_a.named("payment.updated")[0]
            assert updated["object"] == "event" and updated["type"] == "payment.succeeded"
            assert set(updated) == {"id", "object", "type", "created", "mode", "late_correction", "data"}


async def test_a_connect_without_valid_credentials_or_with_the_wrong_kind_is_refused(live: LiveBridge) -> None:
    refused: list[Any] = [
        None,
        {},
        "sk_test_not_a_dict",
        {"key": "sk_test_" + "x" * 32},
        {"key": 42},
        {"client_secret": "pay_01m8bdd9pv71nvxjbh97p8sy8q_secret_nope"},
        {"client_secret": "nonsense"},
    ]
    for auth in refused:
        assert "failed to connect" in await refused_connect(live.url, auth), auth
    assert not gateway(live).server.manager.rooms.get("/", {}).get(None)  # nobody stayed connected

    shop = await live.create_project()
    payment = await live.pay(shop, SUCCESS_PHONE)
    # A client secret is not a key, and a key is not a client secret.
    assert "invalid_api_key" in await refused_connect(live.url, {"key": payment["client_secret"]})
    assert "invalid_client_secret" in await refused_connect(live.url, {"client_secret": shop.test_key})
    # A project that requires signed requests: a connect cannot be signed, so its key opens nothing.
    response = await live.http.patch(
        f"/v1/admin/projects/{shop.project_id}",
        json={"require_signed_requests": True},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 200, response.text
    assert "signed_requests_required" in await refused_connect(live.url, {"key": shop.test_key})
    async with socket_client(live.url, {"client_secret": payment["client_secret"]}) as client:
        assert client.sio.connected


@pytest.fixture
async def rechecking(database: Database, db_url: str, tmp_path: Path) -> AsyncIterator[LiveBridge]:
    async with live_bridge(db_url, tmp_path, realtime_key_recheck_interval=0.2) as bridge:
        yield bridge


async def test_a_key_socket_is_disconnected_once_its_key_is_revoked(rechecking: LiveBridge) -> None:
    live = rechecking
    shop = await live.create_project()
    payment = await live.pay(shop, SUCCESS_PHONE)
    async with (
        socket_client(live.url, {"key": shop.test_key}) as key_socket,
        socket_client(live.url, {"client_secret": payment["client_secret"]}) as secret_socket,
    ):
        for key in await live.runtime.projects.list_keys(shop.project_id, Mode.TEST):
            await live.runtime.projects.revoke_key(key.id)
        await key_socket.wait_for(lambda c: not c.sio.connected, timeout=3)
        assert secret_socket.sio.connected  # a client secret is not a key
    assert "invalid_api_key" in await refused_connect(live.url, {"key": shop.test_key})


async def test_a_client_secret_with_a_nul_is_refused_like_any_wrong_one(live: LiveBridge) -> None:
    """A Socket.IO CONNECT never passes the HTTP edge checks: a NUL in the client secret reached
    PostgreSQL as an id and raised there (found by issue 9's NUL review); it is malformed instead."""
    for secret in ("pay_\u0000_secret_x", "pay_01m8bdd9pv71nvxjbh97p8sy8q\u0000_secret_x", "pay_x_secret_\u0000"):
        assert "invalid_client_secret" in await refused_connect(live.url, {"client_secret": secret}), repr(secret)
