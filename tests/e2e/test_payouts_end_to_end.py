"""Payouts end to end: a bridge process (SQLite and PostgreSQL) and the simulator as a real HTTP server.

The simulator runs in this test's event loop behind a tap that counts every B2C request it receives
(and can hold its answer back), so "never a second payout" is counted at Daraja's door:
- a payout succeeds; fails on insufficient balance; fails on a wrong initiator password (2001);
- one times out in Safaricom's queue and is settled by Transaction Status, with one B2C request;
- one needing approval is not sent before approval, and its creator cannot approve it;
- Results replayed, duplicated and spoofed change nothing;
- a bridge killed (SIGKILL) between sending a payout and recording Daraja's answer, restarted,
  settles it by Transaction Status and never sends it again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mpesa_bridge.api.app import simulator_config
from mpesa_bridge.config import SANDBOX_PASSKEY, SANDBOX_SHORTCODE, Settings
from mpesa_bridge.simulator import Simulator
from mpesa_bridge.simulator.server import create_app
from tests.fixtures.bridge import ADMIN_TOKEN, wait_until
from tests.fixtures.database import process_database
from tests.fixtures.servers import ServerProcess, bridge_process, free_port

pytestmark = pytest.mark.slow

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FAST = {
    "MPESA_BRIDGE_PAYOUT_SEND_GRACE": "1",
    "MPESA_BRIDGE_PAYOUT_QUERY_BACKOFF": "0.3,1",
    "MPESA_BRIDGE_PAYOUT_RESULT_WAIT": "30",
    "MPESA_BRIDGE_IDEMPOTENCY_LOCK_TIMEOUT": "1",
}


class B2cTap:
    """Counts the B2C requests reaching the simulator; with `hold` set, answers each only once it is set
    (the simulator has processed the request — paid — before the answer is held)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests = 0
        self.hold: asyncio.Event | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/mpesa/b2c/"):
            await self.app(scope, receive, send)
            return
        self.requests += 1
        if self.hold is None:
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def keep(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, keep)
        await self.hold.wait()
        for message in held:
            await send(message)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from process_database(request.param, tmp_path)


@pytest.fixture
async def simulator() -> AsyncIterator[tuple[Simulator, B2cTap, str]]:
    defaults = simulator_config(Settings(_env_file=None))  # type: ignore[call-arg]
    app = create_app(dataclasses.replace(defaults, callback_delay=0.05, result_delay=0.3, callback_timeout=2.0))
    tap = B2cTap(app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(tap, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started or serving.done(), timeout=10)
    try:
        yield app.state.simulator, tap, f"http://127.0.0.1:{port}"
    finally:
        if tap.hold is not None:
            tap.hold.set()
        server.should_exit = True
        server.force_exit = True
        await serving


async def start(process: ServerProcess) -> ServerProcess:
    return await asyncio.to_thread(process.start)


async def new_project(http: httpx.AsyncClient, url: str) -> dict[str, str]:
    created = await http.post(f"{url}/v1/admin/projects", json={"name": "Shop"}, headers=ADMIN)
    assert created.status_code == 201, created.text
    return {"id": created.json()["id"], "Authorization": f"Bearer {created.json()['secret_keys']['test']}"}


async def send_payout(http: httpx.AsyncClient, url: str, shop: dict[str, str], **body: Any) -> dict[str, Any]:
    payload = {"phone": "0708374149", "amount": 100, "remarks": "e2e payout", **body}
    headers = {"Authorization": shop["Authorization"], "Idempotency-Key": str(uuid.uuid4())}
    response = await http.post(f"{url}/v1/payouts", json=payload, headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def settled(
    http: httpx.AsyncClient, url: str, shop: dict[str, str], payout_id: str, *want: str
) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        got = (await http.get(f"{url}/v1/payouts/{payout_id}", headers={"Authorization": shop["Authorization"]})).json()
        return got if got["status"] in want else None

    result: dict[str, Any] = await wait_until(reached, timeout=20, interval=0.1)
    return result


async def test_payouts_against_the_simulator(
    database_url: str, simulator: tuple[Simulator, B2cTap, str], tmp_path: Path
) -> None:
    sim, tap, sim_url = simulator
    bridge = await start(bridge_process(tmp_path, database_url, sim_url, **FAST))
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            url = bridge.url
            shop = await new_project(http, url)
            auth = {"Authorization": shop["Authorization"]}

            paid = await send_payout(http, url, shop, amount=150)
            done = await settled(http, url, shop, paid["id"], "succeeded")
            assert done["receipt"] and done["result_code"] == "0"

            broke = await send_payout(http, url, shop, phone="0700000001")
            assert (await settled(http, url, shop, broke["id"], "failed"))["failure_code"] == "insufficient_balance"

            timed_out = await send_payout(http, url, shop, phone="0700000900")
            done = await settled(http, url, shop, timed_out["id"], "succeeded")
            assert done["receipt"], done
            queries = (await http.get(f"{url}/v1/transaction_status_queries", headers=auth)).json()["data"]
            assert [q["payout_id"] for q in queries] == [timed_out["id"]]
            assert tap.requests == 3, "a payout was sent twice"

            # Replayed, duplicated and spoofed Results: nothing changes.
            for attempt in sim.results():
                path = httpx.URL(attempt.delivery.url).path
                assert (await http.post(f"{url}{path}", json=attempt.delivery.body)).status_code == 200
            forged = {"Result": {**sim.results()[0].delivery.body["Result"], "ResultCode": 2001}}
            assert (await http.post(f"{url}/v1/callbacks/daraja/b2c_result/forged", json=forged)).status_code == 200

            # Two-person approval.
            put = await http.put(
                f"{url}/v1/admin/projects/{shop['id']}/payout_settings/test",
                json={"approval_required": True},
                headers=ADMIN,
            )
            assert put.status_code == 200, put.text
            held = await send_payout(http, url, shop, amount=40)
            assert held["status"] == "pending_approval"
            refused = await http.post(f"{url}/v1/payouts/{held['id']}/approve", headers=auth)
            assert refused.status_code == 403
            assert tap.requests == 3, "sent before approval"
            second = (await http.post(f"{url}/v1/admin/projects/{shop['id']}/keys/test", headers=ADMIN)).json()
            approved = await http.post(
                f"{url}/v1/payouts/{held['id']}/approve", headers={"Authorization": f"Bearer {second['secret_key']}"}
            )
            assert approved.status_code == 200, approved.text
            await settled(http, url, shop, held["id"], "succeeded")
            assert tap.requests == 4

            # A wrong initiator password: Daraja's 2001, in the Result.
            other = await new_project(http, url)
            settings = Settings(_env_file=None)  # type: ignore[call-arg]
            wrong = {
                "environment": "simulator",
                "consumer_key": settings.simulator_consumer_key,
                "consumer_secret": settings.simulator_consumer_secret.get_secret_value(),
                "short_code": SANDBOX_SHORTCODE,
                "passkey": SANDBOX_PASSKEY,
                "initiator_name": "testapi",
                "initiator_password": "wrong-password",
            }
            put = await http.put(f"{url}/v1/admin/projects/{other['id']}/daraja/test", json=wrong, headers=ADMIN)
            assert put.status_code == 200, put.text
            denied = await send_payout(http, url, other)
            failed = await settled(http, url, other, denied["id"], "failed")
            assert (failed["failure_code"], failed["result_code"]) == ("initiator_invalid", "2001")

            # The replays came before the Results applied since (one inbox, oldest first): they moved nothing.
            for payout_id, status in (
                (paid["id"], "succeeded"),
                (broke["id"], "failed"),
                (timed_out["id"], "succeeded"),
            ):
                got = (await http.get(f"{url}/v1/payouts/{payout_id}", headers=auth)).json()
                assert got["status"] == status
            assert tap.requests == 5
    finally:
        bridge.stop()


async def test_a_bridge_killed_while_its_payout_is_in_flight_never_pays_twice(
    database_url: str, simulator: tuple[Simulator, B2cTap, str], tmp_path: Path
) -> None:
    sim, tap, sim_url = simulator
    tap.hold = asyncio.Event()  # Daraja processes the payout and holds its answer: the kill lands in between
    first = await start(bridge_process(tmp_path, database_url, sim_url, **FAST))
    second: ServerProcess | None = None
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            shop = await new_project(http, first.url)
            before = sim.balance(SANDBOX_SHORTCODE)
            headers = {"Authorization": shop["Authorization"], "Idempotency-Key": "payout-7"}
            body = {"phone": "0708374149", "amount": 700, "remarks": "crash test"}
            in_flight = asyncio.create_task(http.post(f"{first.url}/v1/payouts", json=body, headers=headers))
            await wait_until(lambda: tap.requests == 1 or in_flight.done(), timeout=20)
            assert not in_flight.done(), "the payout was answered before the kill"
            assert first.process is not None
            first.process.kill()  # SIGKILL: Daraja has the payout, the bridge never hears back
            await asyncio.to_thread(first.process.wait, 10)
            with pytest.raises(httpx.TransportError):
                await in_flight
            tap.hold.set()

            second = await start(bridge_process(tmp_path, database_url, sim_url, **FAST))
            auth = {"Authorization": shop["Authorization"]}
            listed = (await http.get(f"{second.url}/v1/payouts", headers=auth)).json()["data"]
            # Left `sending` by the killed process; the new one's reconciler makes it `unknown` once
            # the send grace has passed (perhaps already), then asks Transaction Status.
            assert len(listed) == 1 and listed[0]["status"] in ("sending", "unknown", "succeeded")
            done = await settled(http, second.url, shop, listed[0]["id"], "succeeded")

            async def retried() -> httpx.Response | None:
                response = await http.post(f"{second.url}/v1/payouts", json=body, headers=headers)
                return None if response.status_code == 409 else response  # 409 until the lock timeout

            retry = await wait_until(retried, timeout=15, interval=0.2)
            assert retry.status_code == 201 and retry.json()["id"] == done["id"]
            assert retry.headers.get("Idempotent-Replayed") == "true"
            queries = (await http.get(f"{second.url}/v1/transaction_status_queries", headers=auth)).json()["data"]
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert tap.requests == 1, "the payout was sent twice"
    assert sim.balance(SANDBOX_SHORTCODE) == before - 700
    assert done["receipt"] and done["failure_code"] is None
    assert [q["payout_id"] for q in queries] == [done["id"]]
