"""Two bridge processes, both running delivery workers on one PostgreSQL database: every webhook
reaches the merchant, and none is sent twice (FOR UPDATE SKIP LOCKED + leases across processes)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mpesa_bridge.storage.migrate import upgrade
from tests.e2e.test_realtime_two_instances import wait_ready
from tests.fixtures.bridge import ADMIN_TOKEN
from tests.fixtures.database import create_pg_database, drop_pg_database
from tests.fixtures.receiver import Receiver
from tests.fixtures.servers import ServerProcess, bridge_process, simulator_process
from tests.fixtures.services import need, postgres_available

pytestmark = pytest.mark.slow
PAYMENTS = 12


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    need("PostgreSQL", postgres_available())
    database_url = asyncio.run(create_pg_database())
    simulator = simulator_process(tmp_path, callback_delay=0.05)
    fast = {"MPESA_BRIDGE_WEBHOOK_POLL_INTERVAL": "0.05", "MPESA_BRIDGE_MIGRATE_ON_START": "false"}
    a = bridge_process(tmp_path, database_url, simulator.url, **fast)
    b = bridge_process(tmp_path, database_url, simulator.url, **fast)
    try:
        upgrade(database_url)
        for process in (simulator, a, b):
            process.spawn()
        wait_ready(simulator, "/oauth/v1/generate")
        wait_ready(a, "/healthz")
        wait_ready(b, "/healthz")
        yield a, b
    finally:
        b.stop()
        a.stop()
        simulator.stop()
        asyncio.run(drop_pg_database(database_url))


async def test_two_processes_deliver_every_webhook_exactly_once(
    two_workers: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = two_workers
    async with Receiver() as receiver, httpx.AsyncClient(timeout=10) as http:
        project = await http.post(
            f"{a.url}/v1/admin/projects", json={"name": "Two"}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        key = project.json()["secret_keys"]["test"]
        auth = {"Authorization": f"Bearer {key}"}
        endpoint = await http.post(
            f"{a.url}/v1/webhook_endpoints",
            json={"url": f"{receiver.url}/hooks", "enabled_events": ["*"]},
            headers=auth,
        )
        assert endpoint.status_code == 201, endpoint.text
        for i in range(PAYMENTS):  # alternately on A and B; each callback lands where the push was made
            body = {"phone": f"07112233{i:02d}", "amount": 10 + i, "account_reference": f"TWO{i}"}
            created = await http.post(f"{(a, b)[i % 2].url}/v1/payments", json=body, headers=auth)
            assert created.status_code == 201, created.text
        deadline = time.monotonic() + 30
        while len({r.headers.get("webhook-id") for r in receiver.requests}) < 2 * PAYMENTS:
            assert time.monotonic() < deadline, f"only {len(receiver.requests)} webhooks arrived"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # a double send would arrive now: give it the chance to show
        ids = Counter(r.headers.get("webhook-id") for r in receiver.requests)
        types = Counter(json.loads(r.body)["type"] for r in receiver.requests)
    assert max(ids.values()) == 1, [i for i, n in ids.items() if n > 1]
    assert types == {"payment.created": PAYMENTS, "payment.succeeded": PAYMENTS}
    sent = [sum(int(n) for n in re.findall(r"webhook\.pass.*?succeeded=(\d+)", p.log_path.read_text())) for p in (a, b)]
    assert sum(sent) == 2 * PAYMENTS, sent
    print(f"webhooks sent by A and B: {sent}")  # both usually share the work; neither ever repeats it
