"""Server-Sent Events on a real loopback server, on SQLite and PostgreSQL: what a client secret
opens, resuming with Last-Event-ID (nothing lost, nothing repeated), heartbeats and maximum age."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from mpesa_bridge.core.clock import utc_now
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import OutboxEvent
from mpesa_bridge.core.projects import Mode
from mpesa_bridge.storage.db import Database
from tests.fixtures.bridge import Tenant
from tests.fixtures.realtime import FAIL_PHONE, SUCCESS_PHONE, LiveBridge, live_bridge


@pytest.fixture
async def live(database: Database, db_url: str, tmp_path: Path) -> AsyncIterator[LiveBridge]:
    async with live_bridge(db_url, tmp_path, simulator_callback_delay=0.05) as bridge:
        yield bridge


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_a_client_secret_stream_sees_the_payment_created_then_succeeded(live: LiveBridge) -> None:
    shop = await live.create_project()
    payment = await live.pay(shop, SUCCESS_PHONE)
    secret = payment["client_secret"]
    assert secret.startswith(f"{payment['id']}_secret_")

    path, origin = f"/v1/payments/{payment['id']}/events", {"Origin": "https://shop.example"}
    async with live.stream(path, params={"client_secret": secret}, headers=origin) as stream:
        assert stream.response.headers["access-control-allow-origin"] == "*"  # for browsers
        opening = await stream.next()
        assert opening is not None and opening.retry == 2000  # the reconnect hint comes first
        created, succeeded = await stream.events(2)

    assert [created.event, succeeded.event] == ["payment.created", "payment.succeeded"]
    assert [created.id, succeeded.id] == await live.event_ids(payment["id"])
    body = json.loads(succeeded.data or "")
    assert body["id"] == succeeded.id and body["object"] == "event" and body["type"] == "payment.succeeded"
    assert body["mode"] == "test" and body["late_correction"] is False
    assert body["data"]["object"]["id"] == payment["id"] and body["data"]["object"]["status"] == "succeeded"
    assert "client_secret" not in body["data"]["object"]  # only the creation answer carries it
    assert "client_secret" not in json.loads(created.data or "")["data"]["object"]
    read = await live.http.get(f"/v1/payments/{payment['id']}", headers=shop.headers())
    assert "client_secret" not in read.json()

    # The same secret as a bearer token, and the project's secret key, open the same stream.
    for headers in (bearer(secret), shop.headers()):
        async with live.stream(path, headers={**headers, **origin}) as stream:
            assert [m.id for m in await stream.events(2)] == [created.id, succeeded.id]
            browsers = "access-control-allow-origin" in stream.response.headers
            assert browsers is (headers != shop.headers())  # never for a secret key


async def test_a_client_secret_opens_its_own_payment_stream_and_nothing_else(live: LiveBridge) -> None:
    shop, other = await live.create_project("Shop"), await live.create_project("Other")
    a, b = await live.pay(shop, SUCCESS_PHONE), await live.pay(shop, FAIL_PHONE)
    secret_a = a["client_secret"]

    async def status(path: str, **kwargs: object) -> tuple[int, str]:
        response = await live.http.get(path, **kwargs)  # type: ignore[arg-type]
        return response.status_code, response.json()["error"]["code"]

    # Payment A's secret on payment B's stream: B does not exist for it.
    assert await status(f"/v1/payments/{b['id']}/events", params={"client_secret": secret_a}) == (
        404,
        "resource_missing",
    )
    assert await status(f"/v1/payments/{b['id']}/events", headers=bearer(secret_a)) == (404, "resource_missing")
    # ... nor the project stream, nor the REST API (a client secret is not an API key).
    assert await status("/v1/events/stream", headers=bearer(secret_a)) == (401, "invalid_api_key")
    assert await status("/v1/events/stream", params={"client_secret": secret_a}) == (401, "invalid_api_key")
    assert await status(f"/v1/payments/{a['id']}", headers=bearer(secret_a)) == (401, "invalid_api_key")
    # A wrong or altered secret, no credentials, and another project's key.
    forged = secret_a[:-4] + ("AAAA" if not secret_a.endswith("AAAA") else "BBBB")
    for params in ({"client_secret": forged}, {"client_secret": f"{b['id']}_secret_x"}, {"client_secret": "x"}):
        assert await status(f"/v1/payments/{a['id']}/events", params=params) == (401, "invalid_client_secret")
    assert await status(f"/v1/payments/{a['id']}/events") == (401, "authentication_required")
    assert await status(f"/v1/payments/{a['id']}/events", headers=other.headers()) == (404, "resource_missing")
    assert await status(f"/v1/payments/{a['id']}/events", headers=shop.headers("live")) == (404, "resource_missing")

    # What A's secret does open carries A's events only.
    await live.wait_status(shop, b["id"], "failed")
    async with live.stream(f"/v1/payments/{a['id']}/events", params={"client_secret": secret_a}) as stream:
        seen = await stream.events(2)
    assert {json.loads(m.data or "")["data"]["object"]["id"] for m in seen} == {a["id"]}


async def test_resuming_with_last_event_id_loses_and_repeats_nothing(live: LiveBridge) -> None:
    shop = await live.create_project()
    before = await live.pay(shop, SUCCESS_PHONE)  # not news: a project stream starts with what comes next
    await live.wait_status(shop, before["id"], "succeeded")

    received: list[str] = []
    async with live.stream("/v1/events/stream", headers=shop.headers()) as stream:
        first = await live.pay(shop, SUCCESS_PHONE)
        received += [m.id for m in await stream.events(2) if m.id]
        second = await live.pay(shop, FAIL_PHONE)
        received += [m.id for m in await stream.events(1) if m.id]  # dropped after second's created
    last_seen = received[-1]

    # Disconnected: more events happen.
    third = await live.pay(shop, SUCCESS_PHONE)
    await live.wait_status(shop, second["id"], "failed")
    await live.wait_status(shop, third["id"], "succeeded")

    headers = {**shop.headers(), "Last-Event-ID": last_seen}
    async with live.stream("/v1/events/stream", headers=headers) as stream:
        received += [m.id for m in await stream.events(3) if m.id]
        fourth = await live.pay(shop, FAIL_PHONE)  # and live again after the catch-up
        received += [m.id for m in await stream.events(2) if m.id]

    expected = []
    for payment in (first, second, third, fourth):
        expected += await live.event_ids(payment["id"])
    assert sorted(received) == sorted(expected)
    assert len(received) == len(set(received)) == 8
    assert not set(received) & set(await live.event_ids(before["id"]))


async def test_an_event_committed_late_with_a_smaller_id_is_not_skipped_by_a_resume(live: LiveBridge) -> None:
    """Ids are time-ordered but written by several processes: an event can commit after one with a
    larger id. A client that saw the larger one and reconnects must still get it — exactly once."""
    shop = await live.create_project()
    now = utc_now()
    older_id, newer_id = new_id("evt", now), new_id("evt", now + timedelta(milliseconds=5))
    assert older_id < newer_id

    async def commit(event_id: str) -> None:
        async with live.runtime.db.write() as uow:
            await uow.events.add(
                OutboxEvent(event_id, shop.project_id, "test", "payment.created", "pay_x", {"object": {}}, now)
            )

    async with live.stream("/v1/events/stream", headers=shop.headers()) as stream:
        await commit(newer_id)
        assert (await stream.next_event()).id == newer_id
    await commit(older_id)  # committed while the client was away, with the smaller id

    async with live.stream("/v1/events/stream", headers={**shop.headers(), "Last-Event-ID": newer_id}) as stream:
        assert (await stream.next_event()).id == older_id
        payment = await live.pay(shop, SUCCESS_PHONE)
        after = [m.id for m in await stream.events(2)]
    assert after == await live.event_ids(payment["id"])  # and newer_id never came again


async def test_last_event_id_must_name_an_event_of_the_stream(live: LiveBridge) -> None:
    shop, other = await live.create_project("Shop"), await live.create_project("Other")
    mine, theirs = await live.pay(shop, SUCCESS_PHONE), await live.pay(other, SUCCESS_PHONE)
    [theirs_created, *_] = await live.event_ids(theirs["id"])
    [mine_created, *_] = await live.event_ids(mine["id"])

    async def code(path: str, last_event_id: str, tenant: Tenant) -> tuple[int, str]:
        response = await live.http.get(path, headers={**tenant.headers(), "Last-Event-ID": last_event_id})
        return response.status_code, response.json()["error"]["code"]

    for malformed in ("not-an-id", "12abc", "-1", "007", "9" * 19):
        assert await code("/v1/events/stream", malformed, shop) == (400, "invalid_request")
    assert await code("/v1/events/stream", theirs_created, shop) == (400, "last_event_id_unknown")
    assert await code(f"/v1/payments/{mine['id']}/events", theirs_created, shop) == (400, "last_event_id_unknown")
    # ?last_event_id= works too, and the header wins over it.
    await live.wait_status(shop, mine["id"], "succeeded")
    path = f"/v1/payments/{mine['id']}/events"
    async with live.stream(path, headers=shop.headers(), params={"last_event_id": mine_created}) as stream:
        assert (await stream.next_event()).event == "payment.succeeded"
    headers = {**shop.headers(), "Last-Event-ID": mine_created}
    async with live.stream(path, headers=headers, params={"last_event_id": "bogus"}) as stream:
        assert (await stream.next_event()).event == "payment.succeeded"


@pytest.fixture
async def short_lived(database: Database, db_url: str, tmp_path: Path) -> AsyncIterator[LiveBridge]:
    settings = {"sse_heartbeat_interval": 0.1, "sse_max_connection_age": 0.6, "sse_retry_delay": 0.5}
    async with live_bridge(db_url, tmp_path, **settings) as bridge:
        yield bridge


async def test_heartbeats_then_the_server_ends_the_stream_with_a_retry_hint(short_lived: LiveBridge) -> None:
    shop = await short_lived.create_project()
    started = time.monotonic()
    messages = []
    async with short_lived.stream("/v1/events/stream", headers=shop.headers()) as stream:
        while (message := await stream.next(timeout=3)) is not None:
            messages.append(message)
    lasted = time.monotonic() - started

    assert messages[0].retry == 500
    heartbeats = [m for m in messages if m.comments == ["heartbeat"]]
    assert len(heartbeats) >= 3
    farewell = [m for m in messages if m.comments == ["maximum connection age reached: reconnect"]]
    assert len(farewell) == 1 and farewell[0].retry == 500
    assert farewell[0] in messages[-2:]  # last, but for a heartbeat that may cross it
    assert all(m.id is None and m.data is None for m in messages[1:])  # nothing happened, and the id is kept
    assert 0.6 <= lasted < 2.5


async def test_a_stopping_server_ends_its_streams_with_a_retry_hint(live: LiveBridge) -> None:
    shop = await live.create_project()
    async with live.stream("/v1/events/stream", headers=shop.headers()) as stream:
        assert await stream.next() is not None
        assert live.server is not None
        live.server.should_exit = True  # what SIGTERM does: clients should reconnect, to another instance
        messages = []
        while (message := await stream.next(timeout=5)) is not None:
            messages.append(message)
    assert messages[-1].comments == ["server stopping: reconnect"] and messages[-1].retry == 2000


@pytest.fixture
async def rechecking(database: Database, db_url: str, tmp_path: Path) -> AsyncIterator[LiveBridge]:
    async with live_bridge(db_url, tmp_path, realtime_key_recheck_interval=0.2) as bridge:
        yield bridge


async def revoke_test_key(live: LiveBridge, tenant: Tenant) -> None:
    keys = await live.runtime.projects.list_keys(tenant.project_id, Mode.TEST)
    for key in keys:
        await live.runtime.projects.revoke_key(key.id)


async def test_a_key_stream_ends_once_its_key_is_revoked_and_a_client_secret_stream_goes_on(
    rechecking: LiveBridge,
) -> None:
    live = rechecking
    shop = await live.create_project()
    payment = await live.pay(shop, SUCCESS_PHONE)
    await live.wait_status(shop, payment["id"], "succeeded")
    secret_path = f"/v1/payments/{payment['id']}/events"
    async with (
        live.stream("/v1/events/stream", headers=shop.headers()) as key_stream,
        live.stream(secret_path, params={"client_secret": payment["client_secret"]}) as secret_stream,
    ):
        assert await key_stream.next() is not None
        await revoke_test_key(live, shop)
        farewell = await key_stream.next(timeout=3)
        assert farewell is not None and farewell.comments == ["credentials no longer valid"]
        assert farewell.retry is None
        assert await key_stream.next(timeout=3) is None  # the server closed it
        assert len(await secret_stream.events(2)) == 2  # a client secret is not a key: still open
    response = await live.http.get("/v1/events/stream", headers=shop.headers())
    assert response.status_code == 401


async def test_an_unsigned_key_stream_ends_once_its_project_requires_signed_requests(rechecking: LiveBridge) -> None:
    """One rule with Socket.IO's: a key's connection stays open while the key could still open it.
    Once the project requires signed requests, a stream opened without a signature could not be."""
    live = rechecking
    shop = await live.create_project()
    async with live.stream("/v1/events/stream", headers=shop.headers()) as stream:
        assert await stream.next() is not None
        await live.runtime.projects.update_security(shop.project_id, require_signed_requests=True)
        farewell = await stream.next(timeout=3)
        assert farewell is not None and farewell.comments == ["credentials no longer valid"]
        assert await stream.next(timeout=3) is None


async def commit_event(live: LiveBridge, tenant: Tenant, payment_id: str = "pay_x") -> str:
    now = utc_now()
    event_id = new_id("evt", now)
    event = OutboxEvent(event_id, tenant.project_id, "test", "payment.created", payment_id, {"object": {}}, now)
    async with live.runtime.db.write() as uow:
        await uow.events.add(event)
    return event_id


async def test_an_idle_project_stream_ended_at_its_maximum_age_resumes_without_losing_events(
    short_lived: LiveBridge,
) -> None:
    """Issue 9 C14: with no `id:` until its first event, an idle stream's client reconnected without
    Last-Event-ID and started at the new tail, losing what committed while it waited `retry:`."""
    live = short_lived
    shop = await live.create_project()
    await commit_event(live, shop)  # history: a project stream starts after it
    messages = []
    async with live.stream("/v1/events/stream", headers=shop.headers()) as stream:
        while (message := await stream.next(timeout=3)) is not None:
            messages.append(message)
    opening, *rest = messages
    assert opening.id and opening.data is None and opening.retry == 500  # an id-only message: the resume point
    assert all(m.id is None for m in rest)  # heartbeats and the farewell keep it
    assert any(m.comments == ["maximum connection age reached: reconnect"] for m in rest)

    # While the client waits before reconnecting, two events commit.
    first, second = await commit_event(live, shop), await commit_event(live, shop)
    async with live.stream("/v1/events/stream", headers={**shop.headers(), "Last-Event-ID": opening.id}) as stream:
        again = await stream.next()
        assert again is not None and again.id == opening.id  # resumed where it was asked to
        assert [m.id for m in await stream.events(2)] == [first, second]


async def test_every_payment_stream_opens_with_a_resume_point_that_reveals_nothing_else(live: LiveBridge) -> None:
    shop = await live.create_project()
    await commit_event(live, shop)  # another subject's event: the project's count is not the customer's business
    payment = await live.pay(shop, SUCCESS_PHONE)
    await live.wait_status(shop, payment["id"], "succeeded")
    created, succeeded = await live.event_ids(payment["id"])
    path = f"/v1/payments/{payment['id']}/events"
    for credentials in ({"client_secret": payment["client_secret"]}, {}):
        headers = shop.headers() if not credentials else {}
        async with live.stream(path, params=credentials, headers=headers) as stream:
            opening = await stream.next()
            assert opening is not None and opening.id == "0" and opening.data is None  # the payment's start
        resumed = {**headers, "Last-Event-ID": opening.id}
        async with live.stream(path, params=credentials, headers=resumed) as stream:
            assert [m.id for m in await stream.events(2)] == [created, succeeded]

    # Resumed after an event, a stream's resume point is that event until the next one.
    async with live.stream(path, headers={**shop.headers(), "Last-Event-ID": created}) as stream:
        opening = await stream.next()
        assert opening is not None and opening.id == created and opening.data is None
        assert (await stream.next_event()).id == succeeded
