"""Queries whose Result is lost, given up by the maintenance loop (`core.result_deadline`) — over the
API with the simulator as Daraja, on SQLite and PostgreSQL.

The way back from the simulator to the bridge loses the Results of the kinds a test names: the POST
fails like a cut connection (Daraja never sends a Result twice) and is kept, so the test can deliver
it late. The bridge runs its timed loops on a manual clock; the test runs a maintenance pass itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mpesa_bridge.api.app import create_app, simulator_config
from mpesa_bridge.config import Settings
from mpesa_bridge.core.clock import ManualClock
from mpesa_bridge.simulator import Simulator
from mpesa_bridge.storage.db import Database
from mpesa_bridge.workers.maintenance import MaintenanceLoop
from tests.fixtures.bridge import BRIDGE_URL, InProcessBridge, Tenant, initiator_key_pem, wait_until
from tests.integration.test_callbacks_inbox import stored

DEADLINE = 600.0


class LossyWay:
    """The simulator's way to the bridge: a POST whose path holds one of `lose`'s kinds is kept in
    `lost` and fails as if the connection were cut; every other one reaches the bridge."""

    def __init__(self) -> None:
        self.app: Any = None
        self.lose: set[str] = set()
        self.lost: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if any(f"/{kind}/" in request.url.path for kind in self.lose):
            await request.aread()
            self.lost.append(request)
            raise httpx.ConnectError("the Result was lost on the way", request=request)
        return await httpx.ASGITransport(app=self.app).handle_async_request(request)


@pytest.fixture
def way() -> LossyWay:
    return LossyWay()


@pytest.fixture
async def bridge(
    database: Database, bridge_settings: Settings, clock: ManualClock, way: LossyWay
) -> AsyncIterator[InProcessBridge]:
    """`tests.fixtures.bridge.bridge` with a lossy way back, and its timed loops started."""
    config = dataclasses.replace(
        simulator_config(bridge_settings), initiator_key_pem=initiator_key_pem(), result_delay=0.01
    )
    simulator = Simulator(config, http=httpx.AsyncClient(transport=httpx.MockTransport(way)))
    app = create_app(bridge_settings, clock=clock, daraja_transport=httpx.ASGITransport(app=simulator.app))
    way.app = app
    async with app.router.lifespan_context(app):
        await simulator.start()
        await app.state.runtime.start_workers(timed=True)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BRIDGE_URL) as client:
            yield InProcessBridge(app, client, simulator, clock, bridge_settings)
            with contextlib.suppress(TimeoutError):
                await simulator.drain(timeout=0.5)
        await simulator.aclose()


async def maintenance_pass(bridge: InProcessBridge) -> None:
    """One pass of the running maintenance loop, as its timer would start it."""
    [loop] = [loop for loop in bridge.runtime.loops if isinstance(loop, MaintenanceLoop)]
    await loop.pass_once()


def keyed(tenant: Tenant) -> dict[str, str]:
    return {**tenant.headers(), "Idempotency-Key": str(uuid.uuid4())}


async def read(bridge: InProcessBridge, tenant: Tenant, path: str) -> dict[str, Any]:
    answer = await bridge.client.get(path, headers=tenant.headers())
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def events(bridge: InProcessBridge, tenant: Tenant, subject: str) -> list[dict[str, Any]]:
    return (await read(bridge, tenant, f"/v1/events?subject={subject}"))["data"]  # type: ignore[no-any-return]


async def lost(way: LossyWay, count: int) -> list[httpx.Request]:
    await wait_until(lambda: len(way.lost) >= count)
    return way.lost


async def deliver_late(bridge: InProcessBridge, request: httpx.Request) -> dict[str, Any]:
    """POST a lost Result as Daraja sent it, and the callback row once the inbox has judged it."""
    answer = await bridge.client.post(
        request.url.path, content=request.content, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 200, answer.text

    async def judged() -> dict[str, Any] | None:
        rows = [r for r in await stored(bridge) if r["body"] == request.content and r["state"] != "received"]
        return rows[-1] if len(rows) == 1 else None

    row: dict[str, Any] = await wait_until(judged)
    return row


async def test_a_transaction_status_query_whose_result_is_lost_fails_no_result(
    bridge: InProcessBridge, way: LossyWay
) -> None:
    shop = await bridge.create_project()
    way.lose = {"status_result"}
    ask = {"transaction_id": "SG632NMUAB"}
    old = (await bridge.client.post("/v1/transaction_status_queries", json=ask, headers=keyed(shop))).json()
    [old_result] = await lost(way, 1)
    bridge.clock.advance(300)
    recent = (await bridge.client.post("/v1/transaction_status_queries", json=ask, headers=keyed(shop))).json()
    await lost(way, 2)
    way.lose = set()
    answered = await bridge.client.post("/v1/transaction_status_queries?wait=5", json=ask, headers=keyed(shop))
    assert answered.json()["status"] == "completed", answered.text
    assert (old["status"], recent["status"]) == ("pending", "pending")
    bridge.clock.advance(DEADLINE - 300 + 1)

    await maintenance_pass(bridge)
    given_up = await read(bridge, shop, f"/v1/transaction_status_queries/{old['id']}")
    assert (given_up["status"], given_up["failure_code"]) == ("failed", "no_result"), given_up
    assert "600 seconds" in given_up["failure_message"] and given_up["completed_at"] is not None
    [event] = await events(bridge, shop, old["id"])
    assert event["type"] == "transaction_status_query.failed"
    assert event["data"]["object"] == given_up
    assert (await read(bridge, shop, f"/v1/transaction_status_queries/{recent['id']}"))["status"] == "pending"
    completed = await read(bridge, shop, f"/v1/transaction_status_queries/{answered.json()['id']}")
    assert completed == answered.json()

    row = await deliver_late(bridge, old_result)
    assert (row["kind"], row["state"], row["flag_reason"]) == ("status_result", "recorded", "late_result")
    assert await read(bridge, shop, f"/v1/transaction_status_queries/{old['id']}") == given_up
    assert len(await events(bridge, shop, old["id"])) == 1
    await maintenance_pass(bridge)  # a second pass finds nothing more to give up
    assert len(await events(bridge, shop, old["id"])) == 1


async def test_a_balance_query_whose_result_is_lost_fails_no_result(bridge: InProcessBridge, way: LossyWay) -> None:
    shop = await bridge.create_project()
    way.lose = {"balance_result"}
    old = (await bridge.client.post("/v1/balance_queries", headers=shop.headers())).json()
    [old_result] = await lost(way, 1)
    bridge.clock.advance(300)
    recent = (await bridge.client.post("/v1/balance_queries", headers=shop.headers())).json()
    await lost(way, 2)
    way.lose = set()
    answered = await bridge.client.post("/v1/balance_queries", json={"wait": 5}, headers=shop.headers())
    assert answered.json()["status"] == "completed", answered.text
    bridge.clock.advance(DEADLINE - 300 + 1)

    await maintenance_pass(bridge)
    given_up = await read(bridge, shop, f"/v1/balance_queries/{old['id']}")
    assert (given_up["status"], given_up["failure_code"]) == ("failed", "no_result"), given_up
    assert (given_up["result_code"], given_up["result_desc"], given_up["accounts"]) == (None, None, [])
    [event] = await events(bridge, shop, old["id"])
    assert event["type"] == "balance_query.failed" and event["data"]["object"] == given_up
    assert (await read(bridge, shop, f"/v1/balance_queries/{recent['id']}"))["status"] == "pending"
    assert await read(bridge, shop, f"/v1/balance_queries/{answered.json()['id']}") == answered.json()

    row = await deliver_late(bridge, old_result)  # a success, after the query was given up
    assert (row["kind"], row["state"], row["flag_reason"]) == ("balance_result", "recorded", "late_result")
    assert await read(bridge, shop, f"/v1/balance_queries/{old['id']}") == given_up
    assert len(await events(bridge, shop, old["id"])) == 1
