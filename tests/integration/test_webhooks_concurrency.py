"""Two delivery workers over one database, each with its own connections as two processes would have:
claims never overlap, so no event is sent twice — SQLite (one writer at a time) and PostgreSQL (SKIP LOCKED)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from mpesa_bridge.core.payments.entity import EventType
from mpesa_bridge.storage.db import Database
from tests.fixtures.bridge import InProcessBridge
from tests.fixtures.receiver import OK, Receiver, Reply, add_events, webhook_worker

EVENTS = 50


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as running:
        yield running


async def test_two_workers_claiming_at_once_never_send_an_event_twice(
    bridge: InProcessBridge, receiver: Receiver
) -> None:
    tenant = await bridge.create_project()
    response = await bridge.client.post(
        "/v1/webhook_endpoints",
        json={"url": f"{receiver.url}/both", "enabled_events": ["*"]},
        headers=tenant.headers(),
    )
    assert response.status_code == 201, response.text
    # A short wait per answer keeps both workers' batches in flight together.
    receiver.rule("/both", lambda _request: Reply(delay=0.01))
    events = await add_events(bridge, tenant.project_id, [(EventType.SUCCEEDED, f"pay_{n}") for n in range(EVENTS)])
    other_process = Database(bridge.db.url)
    try:
        async with (
            webhook_worker(bridge, name="worker-a") as a,
            webhook_worker(bridge, name="worker-b", db=other_process) as b,
        ):
            await asyncio.gather(a.service.dispatch(), b.service.dispatch())
            reports = []
            for _ in range(EVENTS):
                reports += await asyncio.gather(a.run_once(), b.run_once())
                if len(receiver.requests) >= EVENTS:
                    break
            reports += await asyncio.gather(a.run_once(), b.run_once())  # nothing may be left to send
    finally:
        await other_process.dispose()

    sent = Counter(r.webhook_id for r in receiver.requests)
    assert set(sent) == {e.id for e in events}
    assert set(sent.values()) == {1}, [k for k, n in sent.items() if n > 1]
    assert sum(r.succeeded for r in reports) == EVENTS and sum(r.dispatched for r in reports) == 0
    by_worker = [sum(r.succeeded for r in reports[i::2]) for i in (0, 1)]
    print(f"\n[two workers, {bridge.db.dialect}] deliveries per worker: {by_worker}")


async def test_concurrent_dispatchers_make_one_delivery_per_event(bridge: InProcessBridge, receiver: Receiver) -> None:
    tenant = await bridge.create_project()
    for path in ("/one", "/two"):
        response = await bridge.client.post(
            "/v1/webhook_endpoints",
            json={"url": receiver.url + path, "enabled_events": ["*"]},
            headers=tenant.headers(),
        )
        assert response.status_code == 201
    receiver.rule("/one", lambda _request: OK)
    events = await add_events(bridge, tenant.project_id, [(EventType.CREATED, f"pay_{n}") for n in range(20)])
    other_process = Database(bridge.db.url)
    try:
        async with (
            webhook_worker(bridge, name="a") as a,
            webhook_worker(bridge, name="b", db=other_process) as b,
        ):
            first = await asyncio.gather(*(w.service.dispatch() for w in (a, b, a, b)))
            assert sum(r.dispatched for r in first) == len(events) and sum(r.created for r in first) == 2 * len(events)
            for _ in range(10):
                await asyncio.gather(a.run_once(), b.run_once())
                if len(receiver.requests) >= 2 * len(events):
                    break
    finally:
        await other_process.dispose()
    assert Counter((r.path, r.webhook_id) for r in receiver.requests) == Counter(
        {(path, e.id): 1 for path in ("/one", "/two") for e in events}
    )
