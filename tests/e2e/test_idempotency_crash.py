"""One Idempotency-Key, one payment, one prompt — even when the bridge is killed mid-push.

A real bridge process (SQLite and PostgreSQL) is killed with SIGKILL while its STK push is in
flight: the simulator (`mpesa-bridge simulator`, another process) has accepted the push and holds
its answer back (`--push-answer-delay`). A new bridge process on the same database then gets the client's retry
with the same key and body. It must answer with the payment the first process created and must
not push again — before the fix it took the key over, created a second payment and prompted the
phone a second time. Pushes are counted at Daraja's door, by the simulator's inspection route
(`/simulator/requests`, not Daraja's).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.bridge import ADMIN_TOKEN, wait_until
from tests.fixtures.database import process_database
from tests.fixtures.servers import ServerProcess, bridge_process, simulator_process

pytestmark = pytest.mark.slow

PAYMENT = {"phone": "0708374149", "amount": 250, "account_reference": "ORDER-7", "description": "e2e"}
LOCK_TIMEOUT = 1.0
# Long enough for the kill to land while the simulator holds its answer to the push.
HELD_ANSWER = 10.0
STARTUP_TIMEOUT = 90.0  # the machine may be busy: a start-up migration on PostgreSQL takes a while


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from process_database(request.param, tmp_path)


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[ServerProcess]:
    """The simulator process on a free port, answering each push after HELD_ANSWER s (the prompt is
    shown at once); the customer pays 0.3 s after the prompt, so a second push would be accepted."""
    process = simulator_process(tmp_path, callback_delay=0.3, push_answer_delay=HELD_ANSWER)
    try:
        process.start(health_path="/simulator/requests", timeout=STARTUP_TIMEOUT)
        yield process
    finally:
        process.stop()


async def start(process: ServerProcess) -> ServerProcess:
    return await asyncio.to_thread(process.start, "/healthz", STARTUP_TIMEOUT)


async def pushes(http: httpx.AsyncClient, simulator: ServerProcess) -> int:
    """STK push requests that reached the simulator, whatever became of them."""
    received = (await http.get(f"{simulator.url}/simulator/requests")).json()["received"]
    return int(received["stk_push"])


async def test_a_bridge_killed_while_its_push_is_in_flight_never_charges_twice(
    database_url: str, simulator: ServerProcess, tmp_path: Path
) -> None:
    sim_url = simulator.url
    env = {
        "MPESA_BRIDGE_IDEMPOTENCY_LOCK_TIMEOUT": str(LOCK_TIMEOUT),
        "MPESA_BRIDGE_RECONCILE_MAX_AGE": "600",
        # The duplicate guards only hold while the first payment is open; once it is final (here
        # the customer paid and the callback was lost with the process) the key alone must hold.
        "MPESA_BRIDGE_DUPLICATE_GUARD_WINDOW": "0",
        "MPESA_BRIDGE_PHONE_LOCK_WINDOW": "0",
    }
    first = bridge_process(tmp_path, database_url, sim_url, **env)
    second: ServerProcess | None = None
    try:
        await start(first)
        async with httpx.AsyncClient(timeout=60) as http:
            created = await http.post(
                f"{first.url}/v1/admin/projects",
                json={"name": "Shop"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert created.status_code == 201, created.text
            headers = {"Authorization": f"Bearer {created.json()['secret_keys']['test']}", "Idempotency-Key": "order-7"}

            in_flight = asyncio.create_task(http.post(f"{first.url}/v1/payments", json=PAYMENT, headers=headers))

            async def pushed() -> bool:
                return in_flight.done() or await pushes(http, simulator) == 1

            await wait_until(pushed, timeout=20, interval=0.02)
            assert not in_flight.done(), "the push was answered before the kill"
            assert first.process is not None
            first.process.kill()  # SIGKILL: between Daraja receiving the push and the bridge hearing back
            await asyncio.to_thread(first.process.wait, 10)
            with pytest.raises(httpx.TransportError):
                await in_flight

            second = bridge_process(tmp_path, database_url, sim_url, **env)
            await start(second)

            async def retried() -> httpx.Response | str | None:
                try:
                    response = await http.post(f"{second.url}/v1/payments", json=PAYMENT, headers=headers, timeout=5)
                except httpx.ReadTimeout:
                    return "no answer"  # the retry is itself waiting on a push: it ran the request again
                return None if response.status_code == 409 else response  # 409 until the lock timeout

            retry = await wait_until(retried, timeout=15, interval=0.2)
            assert await pushes(http, simulator) == 1, "the phone was prompted twice"
            assert isinstance(retry, httpx.Response)
            again = await http.post(f"{second.url}/v1/payments", json=PAYMENT, headers=headers)
            listed = await http.get(f"{second.url}/v1/payments", headers={"Authorization": headers["Authorization"]})
            pushed_in_all = await pushes(http, simulator)
    finally:
        first.stop()
        if second is not None:
            second.stop()

    payments = listed.json()["data"]
    assert len(payments) == 1, payments
    assert retry.status_code == 201, retry.text
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert retry.json()["id"] == payments[0]["id"]
    assert retry.json()["client_secret"].startswith(payments[0]["id"])
    assert again.content == retry.content
    assert pushed_in_all == 1, "the phone was prompted twice"
