"""/v1/events: filters, cursor pages, deliveries and attempts, redelivery, tenants, retention — SQLite, PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from mpesa_bridge.core.payments.entity import EventType
from mpesa_bridge.core.payments.public import iso
from mpesa_bridge.storage import tables
from tests.fixtures.bridge import InProcessBridge, Tenant
from tests.fixtures.receiver import FAIL, Receiver, add_events, webhook_worker


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as running:
        yield running


async def endpoint(bridge: InProcessBridge, tenant: Tenant, url: str, events: list[str] | None = None) -> str:
    body = {"url": url, "enabled_events": events or ["*"]}
    response = await bridge.client.post("/v1/webhook_endpoints", json=body, headers=tenant.headers())
    assert response.status_code == 201, response.text
    endpoint_id: str = response.json()["id"]
    return endpoint_id


async def listing(bridge: InProcessBridge, tenant: Tenant, mode: str = "test", **params: Any) -> dict[str, Any]:
    response = await bridge.client.get("/v1/events", params=params, headers=tenant.headers(mode))
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_events_are_listed_newest_first_with_filters_and_cursor_pages(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project()
    early = await add_events(bridge, tenant.project_id, [(EventType.CREATED, "pay_1"), (EventType.SUCCEEDED, "pay_1")])
    bridge.clock.advance(30)
    middle = bridge.clock.now()
    bridge.clock.advance(30)
    late = await add_events(bridge, tenant.project_id, [(EventType.CREATED, "pay_2"), (EventType.FAILED, "pay_2")])
    everything = [e.id for e in reversed(early + late)]

    assert [e["id"] for e in (await listing(bridge, tenant))["data"]] == everything
    assert [e["id"] for e in (await listing(bridge, tenant, type=EventType.CREATED))["data"]] == [
        late[0].id,
        early[0].id,
    ]
    assert [e["id"] for e in (await listing(bridge, tenant, payment="pay_1"))["data"]] == everything[2:]
    assert [e["id"] for e in (await listing(bridge, tenant, created_gte=iso(middle)))["data"]] == everything[:2]
    assert [e["id"] for e in (await listing(bridge, tenant, created_lte=iso(middle)))["data"]] == everything[2:]

    pages, cursor = [], None
    while True:
        page = await listing(bridge, tenant, limit=3, **({"starting_after": cursor} if cursor else {}))
        pages.append([e["id"] for e in page["data"]])
        cursor = page["next_cursor"]
        assert page["has_more"] is (cursor is not None)
        if cursor is None:
            break
    assert pages == [everything[:3], everything[3:]]

    naive = await bridge.client.get("/v1/events?created_gte=2026-01-01T00:00:00", headers=tenant.headers())
    assert naive.status_code == 400 and naive.json()["error"]["param"] == "created_gte"


async def test_events_are_filtered_by_subject_and_payment_stays_its_alias(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project()
    first = await add_events(bridge, tenant.project_id, [(EventType.CREATED, "pay_1"), (EventType.SUCCEEDED, "pay_1")])
    await add_events(bridge, tenant.project_id, [(EventType.CREATED, "pay_2"), ("webhook_endpoint.disabled", None)])
    about_pay_1 = [first[1].id, first[0].id]

    assert [e["id"] for e in (await listing(bridge, tenant, subject="pay_1"))["data"]] == about_pay_1
    assert [e["id"] for e in (await listing(bridge, tenant, payment="pay_1"))["data"]] == about_pay_1
    assert [e["id"] for e in (await listing(bridge, tenant, subject="pay_1", payment="pay_1"))["data"]] == about_pay_1

    for params in ({"subject": "zz_1"}, {"subject": "pay_1", "payment": "pay_2"}):
        response = await bridge.client.get("/v1/events", params=params, headers=tenant.headers())
        assert response.status_code == 400, params
        assert response.json()["error"]["param"] == "subject"


async def test_an_event_shows_every_delivery_and_attempt(bridge: InProcessBridge, receiver: Receiver) -> None:
    tenant = await bridge.create_project()
    flaky = await endpoint(bridge, tenant, f"{receiver.url}/flaky")
    steady = await endpoint(bridge, tenant, f"{receiver.url}/steady")
    receiver.script("/flaky", FAIL)
    (event,) = await add_events(bridge, tenant.project_id, [(EventType.SUCCEEDED, "pay_1")])
    async with webhook_worker(bridge) as worker:
        await worker.run_once()
        bridge.clock.advance(5)
        await worker.run_once()

    detail = (await bridge.client.get(f"/v1/events/{event.id}", headers=tenant.headers())).json()
    assert detail["id"] == event.id and detail["object"] == "event" and detail["type"] == EventType.SUCCEEDED
    deliveries = {d["endpoint_id"]: d for d in detail["deliveries"]}
    assert set(deliveries) == {flaky, steady}
    first, second = deliveries[flaky]["attempts"]
    assert (first["succeeded"], first["status_code"], first["response_body"]) == (False, 500, None)  # loopback
    assert (second["succeeded"], second["status_code"]) == (True, 200)
    assert second["attempted_at"] > first["attempted_at"]
    assert deliveries[flaky]["status"] == deliveries[steady]["status"] == "succeeded"
    assert deliveries[flaky]["attempt_count"] == 2 and len(deliveries[steady]["attempts"]) == 1


async def test_redelivery_to_one_endpoint_or_to_all(bridge: InProcessBridge, receiver: Receiver) -> None:
    tenant = await bridge.create_project()
    one = await endpoint(bridge, tenant, f"{receiver.url}/one")
    await endpoint(bridge, tenant, f"{receiver.url}/two", [EventType.SUCCEEDED])
    unsubscribed = await endpoint(bridge, tenant, f"{receiver.url}/three", [EventType.FAILED])
    (event,) = await add_events(bridge, tenant.project_id, [(EventType.SUCCEEDED, "pay_1")])
    url = f"/v1/events/{event.id}/redeliver"
    async with webhook_worker(bridge) as worker:
        await worker.run_once()
        assert len(receiver.requests) == 2

        to_one = await bridge.client.post(url, json={"endpoint_id": one}, headers=tenant.headers())
        assert to_one.status_code == 201, to_one.text
        (created,) = to_one.json()["data"]
        assert created["endpoint_id"] == one and created["redelivery"] is True and created["status"] == "pending"
        await worker.run_once()
        assert [r.path for r in receiver.requests[2:]] == ["/one"]

        to_all = await bridge.client.post(url, headers=tenant.headers())
        assert to_all.status_code == 201 and len(to_all.json()["data"]) == 2  # /three does not subscribe
        await worker.run_once()
        assert sorted(r.path for r in receiver.requests[3:]) == ["/one", "/two"]

        explicit = await bridge.client.post(url, json={"endpoint_id": unsubscribed}, headers=tenant.headers())
        assert explicit.status_code == 201  # asked by name: sent even though it does not subscribe
        await worker.run_once()
    assert receiver.requests[-1].path == "/three"
    assert {r.webhook_id for r in receiver.requests} == {event.id}  # the same id every time
    detail = (await bridge.client.get(f"/v1/events/{event.id}", headers=tenant.headers())).json()
    assert len(detail["deliveries"]) == 6 and sum(d["redelivery"] for d in detail["deliveries"]) == 4

    await bridge.client.patch(f"/v1/webhook_endpoints/{one}", json={"enabled": False}, headers=tenant.headers())
    refused = await bridge.client.post(url, json={"endpoint_id": one}, headers=tenant.headers())
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "endpoint_disabled"
    missing = await bridge.client.post(url, json={"endpoint_id": "we_nope"}, headers=tenant.headers())
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "endpoint_id"


async def pending_redeliveries(bridge: InProcessBridge, event_id: str) -> list[tuple[str, str]]:
    d = tables.webhook_deliveries.c
    stmt = sa.select(d.id, d.endpoint_id).where(d.event_id == event_id, d.redelivery.is_(True), d.status == "pending")
    async with bridge.db.read() as uow:
        return [(row.id, row.endpoint_id) for row in (await uow.connection.execute(stmt)).all()]


async def test_a_second_redeliver_while_one_is_pending_answers_the_pending_one(
    bridge: InProcessBridge, receiver: Receiver
) -> None:
    tenant = await bridge.create_project()
    one = await endpoint(bridge, tenant, f"{receiver.url}/one")
    two = await endpoint(bridge, tenant, f"{receiver.url}/two")
    (event,) = await add_events(bridge, tenant.project_id, [(EventType.SUCCEEDED, "pay_1")])
    url = f"/v1/events/{event.id}/redeliver"

    first = await bridge.client.post(url, json={"endpoint_id": one}, headers=tenant.headers())
    again = await bridge.client.post(url, json={"endpoint_id": one}, headers=tenant.headers())
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert again.json() == first.json()  # the very same pending delivery, nothing new queued
    (pending_one,) = first.json()["data"]
    assert await pending_redeliveries(bridge, event.id) == [(pending_one["id"], one)]

    to_all = await bridge.client.post(url, headers=tenant.headers())  # /one has one pending; /two gets its own
    assert to_all.status_code == 201
    by_endpoint = {d["endpoint_id"]: d["id"] for d in to_all.json()["data"]}
    assert by_endpoint[one] == pending_one["id"] and set(by_endpoint) == {one, two}
    to_all_again = await bridge.client.post(url, headers=tenant.headers())
    assert to_all_again.status_code == 200 and to_all_again.json() == to_all.json()
    assert len(await pending_redeliveries(bridge, event.id)) == 2

    async with webhook_worker(bridge) as worker:
        await worker.run_once()  # sent: nothing pending any more
        assert sorted(r.path for r in receiver.requests) == ["/one", "/one", "/two", "/two"]
        after = await bridge.client.post(url, json={"endpoint_id": one}, headers=tenant.headers())
    assert after.status_code == 201 and after.json()["data"][0]["id"] != pending_one["id"]


async def test_concurrent_redelivers_queue_one_delivery(bridge: InProcessBridge, receiver: Receiver) -> None:
    tenant = await bridge.create_project()
    one = await endpoint(bridge, tenant, f"{receiver.url}/one")
    (event,) = await add_events(bridge, tenant.project_id, [(EventType.SUCCEEDED, "pay_1")])
    url = f"/v1/events/{event.id}/redeliver"

    calls = [bridge.client.post(url, json={"endpoint_id": one}, headers=tenant.headers()) for _ in range(8)]
    calls += [bridge.client.post(url, headers=tenant.headers()) for _ in range(4)]
    answers = await asyncio.gather(*calls)
    assert sorted(a.status_code for a in answers) == [200] * 11 + [201], [a.text for a in answers]
    (pending,) = await pending_redeliveries(bridge, event.id)
    assert {d["id"] for a in answers for d in a.json()["data"]} == {pending[0]}


async def test_events_and_endpoints_of_other_tenants_are_404(bridge: InProcessBridge, receiver: Receiver) -> None:
    owner, intruder = await bridge.create_project("Owner"), await bridge.create_project("Intruder")
    owned_endpoint = await endpoint(bridge, owner, f"{receiver.url}/owner")
    intruder_endpoint = await endpoint(bridge, intruder, f"{receiver.url}/intruder")
    (event,) = await add_events(bridge, owner.project_id, [(EventType.SUCCEEDED, "pay_owner")])
    (live_event,) = await add_events(bridge, owner.project_id, [(EventType.SUCCEEDED, "pay_live")], mode="live")

    for tenant, mode in ((intruder, "test"), (intruder, "live"), (owner, "live")):
        headers = tenant.headers(mode)
        for call in (
            bridge.client.get(f"/v1/events/{event.id}", headers=headers),
            bridge.client.post(f"/v1/events/{event.id}/redeliver", headers=headers),
        ):
            response = await call
            assert response.status_code == 404, response.text
            assert response.json()["error"]["message"] == f"No such event: '{event.id}'"
        assert event.id not in str(await listing(bridge, tenant, mode))
        assert event.id not in str(await listing(bridge, tenant, mode, payment="pay_owner"))
    assert [e["id"] for e in (await listing(bridge, owner, "live"))["data"]] == [live_event.id]

    # the owner's event cannot be sent to the intruder's endpoint, nor the intruder's to the owner's
    across = await bridge.client.post(
        f"/v1/events/{event.id}/redeliver", json={"endpoint_id": intruder_endpoint}, headers=owner.headers()
    )
    assert across.status_code == 404 and across.json()["error"]["code"] == "resource_missing"
    async with webhook_worker(bridge) as worker:
        await worker.run_once()
    assert [r.path for r in receiver.requests] == ["/owner"] and owned_endpoint


async def test_old_events_are_pruned_unless_a_delivery_is_pending(bridge: InProcessBridge, receiver: Receiver) -> None:
    tenant = await bridge.create_project()
    await endpoint(bridge, tenant, f"{receiver.url}/hook")
    delivered, stuck = await add_events(
        bridge, tenant.project_id, [(EventType.SUCCEEDED, "pay_done"), (EventType.SUCCEEDED, "pay_stuck")]
    )
    async with webhook_worker(bridge, name="crashes") as crashing, webhook_worker(bridge) as worker:
        await worker.service.dispatch()
        claimed = await crashing.service.claim()  # pay_stuck's delivery stays claimed: pending, never answered
        assert len(claimed) == 2
        await crashing.service.attempt(next(c for c in claimed if c.event.id == delivered.id))

        bridge.clock.advance(timedelta(days=29).total_seconds())
        fresh = await add_events(bridge, tenant.project_id, [(EventType.CREATED, "pay_new")])
        bridge.clock.advance(timedelta(days=1, seconds=1).total_seconds())
        undispatched = await add_events(bridge, tenant.project_id, [(EventType.CREATED, "pay_later")])
        async with bridge.db.write() as uow:  # an event older than retention that was never dispatched
            await uow.connection.execute(
                sa.update(tables.outbox_events)
                .where(tables.outbox_events.c.id == undispatched[0].id)
                .values(created_at=bridge.clock.now() - timedelta(days=60))
            )
        assert await worker.prune() == 1

    left = {e["id"] for e in (await listing(bridge, tenant, limit=100))["data"]}
    assert left == {stuck.id, fresh[0].id, undispatched[0].id}
    async with bridge.db.read() as uow:
        rows = (await uow.connection.execute(sa.select(tables.webhook_deliveries.c.event_id))).scalars().all()
        count_attempts = sa.select(sa.func.count()).select_from(tables.webhook_attempts)
        attempts = (await uow.connection.execute(count_attempts)).scalar()
    assert delivered.id not in rows and stuck.id in rows and attempts == 0
