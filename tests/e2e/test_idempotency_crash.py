"""One Idempotency-Key, one payment, one prompt — even when the bridge is killed mid-push.

A real bridge process (SQLite and PostgreSQL) is killed with SIGKILL while its STK push is in
flight: the simulator (a real HTTP server in this test's event loop) has accepted the push and
holds its answer back. A new bridge process on the same database then gets the client's retry
with the same key and body. It must answer with the payment the first process created and must
not push again — before the fix it took the key over, created a second payment and prompted the
phone a second time.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from mpesa_bridge.api.app import simulator_config
from mpesa_bridge.config import Settings
from mpesa_bridge.simulator import Simulator
from mpesa_bridge.simulator.server import create_app
from tests.fixtures.bridge import ADMIN_TOKEN, wait_until
from tests.fixtures.database import process_database
from tests.fixtures.servers import ServerProcess, bridge_process, free_port

pytestmark = pytest.mark.slow

PAYMENT = {"phone": "0708374149", "amount": 250, "account_reference": "ORDER-7", "description": "e2e"}
LOCK_TIMEOUT = 1.0


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from process_database(request.param, tmp_path)


@pytest.fixture
async def simulator() -> AsyncIterator[tuple[Simulator, str]]:
    """The simulator on a free port, answering each push after 30 s (the prompt is shown at once);
    the customer pays 0.3 s after the prompt, so a second push would be accepted and counted."""
    defaults = simulator_config(Settings(_env_file=None))  # type: ignore[call-arg]
    config = dataclasses.replace(defaults, callback_delay=0.3, push_answer_delay=30.0, callback_timeout=1.0)
    app = create_app(config)  # its lifespan runs the simulated customer (the callback sender)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started or serving.done(), timeout=10)
    try:
        yield app.state.simulator, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True  # the held push answer must not delay the test's end
        await serving


async def start(process: ServerProcess) -> ServerProcess:
    return await asyncio.to_thread(process.start)


async def test_a_bridge_killed_while_its_push_is_in_flight_never_charges_twice(
    database_url: str, simulator: tuple[Simulator, str], tmp_path: Path
) -> None:
    sim, sim_url = simulator
    env = {
        "MPESA_BRIDGE_IDEMPOTENCY_LOCK_TIMEOUT": str(LOCK_TIMEOUT),
        "MPESA_BRIDGE_RECONCILE_MAX_AGE": "600",
        # The duplicate guards only hold while the first payment is open; once it is final (here
        # the customer paid and the callback was lost with the process) the key alone must hold.
        "MPESA_BRIDGE_DUPLICATE_GUARD_WINDOW": "0",
        "MPESA_BRIDGE_PHONE_LOCK_WINDOW": "0",
    }
    first = await start(bridge_process(tmp_path, database_url, sim_url, **env))
    second: ServerProcess | None = None
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            created = await http.post(
                f"{first.url}/v1/admin/projects",
                json={"name": "Shop"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert created.status_code == 201, created.text
            headers = {"Authorization": f"Bearer {created.json()['secret_keys']['test']}", "Idempotency-Key": "order-7"}

            in_flight = asyncio.create_task(http.post(f"{first.url}/v1/payments", json=PAYMENT, headers=headers))
            await wait_until(lambda: len(sim.pushes()) == 1 or in_flight.done(), timeout=20)
            assert not in_flight.done(), "the push was answered before the kill"
            assert first.process is not None
            first.process.kill()  # SIGKILL: between Daraja receiving the push and the bridge hearing back
            await asyncio.to_thread(first.process.wait, 10)
            with pytest.raises(httpx.TransportError):
                await in_flight

            second = await start(bridge_process(tmp_path, database_url, sim_url, **env))

            async def retried() -> httpx.Response | str | None:
                try:
                    response = await http.post(f"{second.url}/v1/payments", json=PAYMENT, headers=headers, timeout=5)
                except httpx.ReadTimeout:
                    return "no answer"  # the retry is itself waiting on a push: it ran the request again
                return None if response.status_code == 409 else response  # 409 until the lock timeout

            retry = await wait_until(retried, timeout=15, interval=0.2)
            assert len(sim.pushes()) == 1, "the phone was prompted twice"
            assert isinstance(retry, httpx.Response)
            again = await http.post(f"{second.url}/v1/payments", json=PAYMENT, headers=headers)
            listed = await http.get(f"{second.url}/v1/payments", headers={"Authorization": headers["Authorization"]})
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
