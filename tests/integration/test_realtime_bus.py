"""What live streams stand on, on SQLite and PostgreSQL (and Redis): events are announced after
COMMIT only, numbered in commit order by the database, and fanned out between instances."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from mpesa_bridge.core.clock import utc_now
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import PAYMENT, OutboxEvent, Subject
from mpesa_bridge.realtime.bus import Notice, RedisBus, Scope
from mpesa_bridge.storage.db import Database, normalise_url
from mpesa_bridge.storage.migrate import upgrade
from mpesa_bridge.storage.tables import outbox_events
from tests.fixtures.bridge import wait_until
from tests.fixtures.database import create_pg_database, drop_pg_database
from tests.fixtures.services import REDIS_URL, need, postgres_available, redis_available


def event(project_id: str = "proj_a", mode: str = "test", event_id: str | None = None) -> OutboxEvent:
    now = utc_now()
    return OutboxEvent(
        event_id or new_id("evt", now), project_id, mode, "payment.created", "payment", "pay_x", {"object": {}}, now
    )


async def positions(db: Database, project_id: str, mode: str = "test") -> list[tuple[str, int]]:
    c = outbox_events.c
    stmt = sa.select(c.id, c.position).where(c.project_id == project_id, c.mode == mode).order_by(c.position)
    async with db.read() as uow:
        return [(row.id, row.position) for row in await uow.connection.execute(stmt)]


async def test_committed_events_are_announced_after_the_commit_and_rolled_back_ones_never(database: Database) -> None:
    announced: list[list[str]] = []

    def listener(events: Sequence[OutboxEvent]) -> None:
        announced.append([e.id for e in events])
        raise RuntimeError("a listener's failure is logged, never passed on")

    database.on_commit(listener)
    first, second, doomed = event(), event(), event()
    async with database.write() as uow:
        await uow.events.add(first)
        await uow.events.add(second)
        assert announced == []  # not before the commit
    with pytest.raises(ZeroDivisionError):
        async with database.write() as uow:
            await uow.events.add(doomed)
            raise ZeroDivisionError
    async with database.write() as uow:  # a write without events announces nothing
        await uow.connection.execute(sa.select(1))
    assert announced == [[first.id, second.id]]


async def test_the_database_numbers_each_project_modes_events_in_commit_order(database: Database) -> None:
    # The larger id commits first: its position comes first all the same.
    now = utc_now()
    smaller, larger = new_id("evt", now), new_id("evt", now)
    assert smaller < larger
    for event_id in (larger, smaller):
        async with database.write() as uow:
            await uow.events.add(event("proj_a", event_id=event_id))
    async with database.write() as uow:  # other project modes count on their own
        await uow.events.add(event("proj_a", "live"))
        await uow.events.add(event("proj_b"))
    # A rolled-back event gives its number back: no gap for a reader to wait on.
    with pytest.raises(ZeroDivisionError):
        async with database.write() as uow:
            await uow.events.add(event("proj_a"))
            raise ZeroDivisionError
    last = event("proj_a")
    async with database.write() as uow:
        await uow.events.add(last)

    assert await positions(database, "proj_a") == [(larger, 1), (smaller, 2), (last.id, 3)]
    assert [p for _, p in await positions(database, "proj_a", "live")] == [1]
    assert [p for _, p in await positions(database, "proj_b")] == [1]
    async with database.read() as uow:
        assert await uow.events.stream_tail("proj_a", "test") == 3
        assert await uow.events.stream_position("proj_a", "test", smaller) == 2
        assert await uow.events.stream_position("proj_b", "test", smaller) is None  # not that tenant's
        page = await uow.events.stream_after("proj_a", "test", 1)
        assert [(e.id, p) for e, p in page] == [(smaller, 2), (last.id, 3)]


async def test_concurrent_writers_of_one_project_mode_get_distinct_gapless_positions(database: Database) -> None:
    async def write() -> None:
        async with database.write() as uow:
            await uow.events.add(event("proj_busy"))

    await asyncio.gather(*(write() for _ in range(20)))
    assert [p for _, p in await positions(database, "proj_busy")] == list(range(1, 21))


# outbox_events as revision 0003 left it (the models have moved on: migration 0008).
OUTBOX_AT_0003 = sa.table(
    "outbox_events",
    *(sa.column(name) for name in ("id", "project_id", "mode", "type", "payment_id", "data", "late_correction")),
    sa.column("created_at", outbox_events.c.created_at.type),
)


@pytest.fixture(params=["sqlite", "postgres"])
def url_at_0003(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        upgrade(url, "0003")
        yield url
        return
    need("PostgreSQL", postgres_available())
    url = asyncio.run(create_pg_database())
    upgrade(url, "0003")
    yield url
    asyncio.run(drop_pg_database(url))


def test_the_migration_numbers_existing_events_by_id_and_goes_on_from_there(url_at_0003: str) -> None:
    async def before() -> list[str]:
        engine = create_async_engine(normalise_url(url_at_0003))
        ids = sorted(new_id("evt", utc_now()) for _ in range(3))
        async with engine.begin() as conn:
            for event_id in reversed(ids):  # inserted in the reverse order of their ids
                values = {"id": event_id, "project_id": "proj_a", "mode": "test", "type": "payment.created"}
                values |= {"payment_id": "pay_x", "data": "{}", "created_at": utc_now(), "late_correction": False}
                await conn.execute(sa.insert(OUTBOX_AT_0003).values(values))
        await engine.dispose()
        return ids

    async def after(ids: list[str]) -> None:
        db = Database(url_at_0003)
        try:
            newest = event("proj_a")
            async with db.write() as uow:
                await uow.events.add(newest)
            assert await positions(db, "proj_a") == [(ids[0], 1), (ids[1], 2), (ids[2], 3), (newest.id, 4)]
        finally:
            await db.dispose()

    ids = asyncio.run(before())
    upgrade(url_at_0003)
    asyncio.run(after(ids))


async def test_a_notice_published_on_one_instance_rings_the_streams_of_another() -> None:
    need("Redis", redis_available())
    channel = f"mpesa-bridge:test:{secrets.token_hex(4)}"
    here, there = RedisBus(REDIS_URL, channel=channel), RedisBus(REDIS_URL, channel=channel)
    try:
        with (
            there.subscribe(Scope("proj_a", "test")) as tenant,
            there.subscribe(Scope("proj_a", "test", Subject(PAYMENT, "pay_1"))) as payment_1,
            there.subscribe(Scope("proj_a", "live")) as live_mode,
            here.subscribe(Scope("proj_a", "test")) as local,
        ):
            await wait_until(lambda: there.listening.is_set() and here.listening.is_set())
            for subscription in (tenant, payment_1, live_mode, local):
                subscription.clear()  # forget the ring every stream gets when listening starts
            here.publish([Notice("proj_a", "test", Subject(PAYMENT, "pay_2"), "evt_1")])
            assert local.rung  # at once, not through Redis
            assert await tenant.wait(5)
            assert not payment_1.rung and not live_mode.rung  # the same notice rings every stream it concerns
            here.publish([Notice("proj_a", "test", Subject(PAYMENT, "pay_1"), "evt_2")])
            assert await payment_1.wait(5)
            assert not live_mode.rung
    finally:
        await here.aclose()
        await there.aclose()


async def test_a_notice_about_another_subject_type_crosses_redis_with_its_type() -> None:
    need("Redis", redis_available())
    channel = f"mpesa-bridge:test:{secrets.token_hex(4)}"
    here, there = RedisBus(REDIS_URL, channel=channel), RedisBus(REDIS_URL, channel=channel)
    try:
        with (
            there.subscribe(Scope("proj_a", "test", Subject(PAYMENT, "po_1"))) as payment_named_alike,
            there.subscribe(Scope("proj_a", "test", Subject("payout", "po_1"))) as payout,
        ):
            await wait_until(there.listening.is_set)
            for subscription in (payment_named_alike, payout):
                subscription.clear()
            here.publish([Notice("proj_a", "test", Subject("payout", "po_1"), "evt_1")])
            assert await payout.wait(5)
            assert not payment_named_alike.rung  # the type is part of the subject
    finally:
        await here.aclose()
        await there.aclose()


async def test_a_notice_from_a_process_before_subjects_is_about_a_payment() -> None:
    need("Redis", redis_available())
    channel = f"mpesa-bridge:test:{secrets.token_hex(4)}"
    there = RedisBus(REDIS_URL, channel=channel)
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        with there.subscribe(Scope("proj_a", "test", Subject(PAYMENT, "pay_1"))) as payment_1:
            await wait_until(lambda: there.listening.is_set())
            payment_1.clear()
            # What a process before migration 0008 publishes: [project, mode, payment id, event id].
            old = {"origin": "an-older-process", "notices": [["proj_a", "test", "pay_1", "evt_1"]]}
            await client.publish(channel, orjson.dumps(old))
            assert await payment_1.wait(5)
    finally:
        await client.aclose()
        await there.aclose()
