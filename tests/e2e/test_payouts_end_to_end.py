"""Payouts end to end: a bridge process (SQLite and PostgreSQL) and the simulator as another process
(`mpesa-bridge simulator`), over real HTTP.

"Never a second payout" is counted at Daraja's door: the simulator's inspection routes (not Daraja's,
docs/simulator.md) say how many B2C requests it received, which Results it POSTed, and its balances.
- a payout succeeds; fails on insufficient balance; fails on a wrong initiator password (2001);
- one times out in Safaricom's queue and is settled by Transaction Status, with one B2C request;
- one needing approval is not sent before approval, and its creator cannot approve it;
- every Result the simulator delivered (B2C Result, queue-timeout notice, Transaction Status
  Result) replayed and duplicated, and a spoofed one, change nothing; the balance moved once per
  payout paid;
- a bridge killed (SIGKILL) between sending a payout and recording Daraja's answer (the simulator
  has paid and holds its answer: `--initiator-answer-delay`), restarted on the same database,
  settles it by Transaction Status and never sends it again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mpesa_bridge.config import SANDBOX_PASSKEY, SANDBOX_SHORTCODE, Settings
from tests.fixtures.bridge import ADMIN_TOKEN, wait_until
from tests.fixtures.database import process_database
from tests.fixtures.servers import ServerProcess, bridge_process, simulator_process

pytestmark = pytest.mark.slow

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FAST = {
    "MPESA_BRIDGE_PAYOUT_SEND_GRACE": "1",
    "MPESA_BRIDGE_PAYOUT_QUERY_BACKOFF": "0.3,1",
    "MPESA_BRIDGE_PAYOUT_RESULT_WAIT": "30",
    "MPESA_BRIDGE_IDEMPOTENCY_LOCK_TIMEOUT": "1",
}
# Long enough for the kill to land while the simulator holds its answer to the payout.
HELD_ANSWER = 10.0
STARTUP_TIMEOUT = 90.0
# The crash test's Results come 1.5 s late: a second status query only long after that.
PATIENT = {**FAST, "MPESA_BRIDGE_PAYOUT_QUERY_BACKOFF": "0.3,10"}


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from process_database(request.param, tmp_path)


async def start(process: ServerProcess, health_path: str = "/healthz") -> ServerProcess:
    # The machine may be busy: a bridge's start-up migration on PostgreSQL can take a while.
    return await asyncio.to_thread(process.start, health_path, STARTUP_TIMEOUT)


async def b2c_requests(http: httpx.AsyncClient, simulator: ServerProcess) -> int:
    """B2C requests (v3 and v1) that reached the simulator, whatever became of them."""
    received = (await http.get(f"{simulator.url}/simulator/requests")).json()["received"]
    return int(received["b2c_v3"] + received["b2c_v1"])


async def balance(http: httpx.AsyncClient, simulator: ServerProcess, short_code: str = SANDBOX_SHORTCODE) -> int:
    return int((await http.get(f"{simulator.url}/simulator/balances")).json()["balances"][short_code])


async def delivered_results(http: httpx.AsyncClient, simulator: ServerProcess) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = (await http.get(f"{simulator.url}/simulator/results")).json()["data"]
    return data


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


async def test_payouts_against_the_simulator(database_url: str, tmp_path: Path) -> None:
    simulator = simulator_process(tmp_path, result_delay=0.3)
    bridge = bridge_process(tmp_path, database_url, simulator.url, **FAST)
    try:
        await start(simulator, "/simulator/requests")
        await start(bridge)
        async with httpx.AsyncClient(timeout=30) as http:
            url = bridge.url
            shop = await new_project(http, url)
            auth = {"Authorization": shop["Authorization"]}
            opening = await balance(http, simulator)

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
            assert await b2c_requests(http, simulator) == 3, "a payout was sent twice"

            # Replayed, duplicated and spoofed Results: nothing changes. Every Result the simulator
            # delivered (the B2C Results, the queue-timeout notice, the Transaction Status Result)
            # is posted to the bridge twice more, exactly as the simulator sent it.
            results = await delivered_results(http, simulator)
            kinds = {httpx.URL(r["url"]).path.split("/")[-2] for r in results}
            assert kinds == {"b2c_result", "b2c_timeout", "status_result"}
            assert all(r["delivered"] and r["status_code"] == 200 for r in results), results
            for attempt in results * 2:
                path = httpx.URL(attempt["url"]).path
                assert (await http.post(f"{url}{path}", json=attempt["body"])).status_code == 200
            forged = {"Result": {**results[0]["body"]["Result"], "ResultCode": 2001}}
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
            assert await b2c_requests(http, simulator) == 3, "sent before approval"
            second = (await http.post(f"{url}/v1/admin/projects/{shop['id']}/keys/test", headers=ADMIN)).json()
            approved = await http.post(
                f"{url}/v1/payouts/{held['id']}/approve", headers={"Authorization": f"Bearer {second['secret_key']}"}
            )
            assert approved.status_code == 200, approved.text
            await settled(http, url, shop, held["id"], "succeeded")
            assert await b2c_requests(http, simulator) == 4

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
            assert await b2c_requests(http, simulator) == 5
            # Paid once each: 150, the queue-timed-out 100 and the approved 40; the others paid nothing.
            assert await balance(http, simulator) == opening - 150 - 100 - 40
    finally:
        bridge.stop()
        simulator.stop()


async def test_a_bridge_killed_while_its_payout_is_in_flight_never_pays_twice(
    database_url: str, tmp_path: Path
) -> None:
    # The simulator pays at once and holds its answer: the kill lands in between. Its Result comes
    # later than the kill, to the dead process's port: only Transaction Status can settle the payout.
    simulator = simulator_process(tmp_path, result_delay=1.5, initiator_answer_delay=HELD_ANSWER)
    first = bridge_process(tmp_path, database_url, simulator.url, **PATIENT)
    second: ServerProcess | None = None
    try:
        await start(simulator, "/simulator/requests")
        await start(first)
        async with httpx.AsyncClient(timeout=60) as http:
            shop = await new_project(http, first.url)
            before = await balance(http, simulator)
            headers = {"Authorization": shop["Authorization"], "Idempotency-Key": "payout-7"}
            body = {"phone": "0708374149", "amount": 700, "remarks": "crash test"}
            in_flight = asyncio.create_task(http.post(f"{first.url}/v1/payouts", json=body, headers=headers))

            async def paid_at_daraja() -> bool:
                if in_flight.done():
                    return True
                return await b2c_requests(http, simulator) == 1 and await balance(http, simulator) == before - 700

            await wait_until(paid_at_daraja, timeout=20, interval=0.02)
            assert not in_flight.done(), "the payout was answered before the kill"
            assert first.process is not None
            first.process.kill()  # SIGKILL: Daraja has the payout, the bridge never hears back
            await asyncio.to_thread(first.process.wait, 10)
            with pytest.raises(httpx.TransportError):
                await in_flight

            second = bridge_process(tmp_path, database_url, simulator.url, **PATIENT)
            await start(second)
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
            sent = await b2c_requests(http, simulator)
            after = await balance(http, simulator)
            results = await delivered_results(http, simulator)
    finally:
        first.stop()
        if second is not None:
            second.stop()
        simulator.stop()
    assert sent == 1, "the payout was sent twice"
    assert after == before - 700
    assert done["receipt"] and done["failure_code"] is None
    assert [q["payout_id"] for q in queries] == [done["id"]]
    # The payout's Result went to the killed bridge and was lost; the status query's was delivered.
    b2c, status = results
    assert httpx.URL(b2c["url"]).port == first.port and not b2c["delivered"]
    assert httpx.URL(status["url"]).port == second.port and status["delivered"]
