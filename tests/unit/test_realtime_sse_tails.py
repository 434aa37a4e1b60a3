"""SSE timed reads share one tenant-tail query: an idle stream does not read its page on every
timer tick, yet an event nobody rang for (another process, no Redis) is still delivered."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

import pytest

from mpesa_bridge.core.ids import new_id
from mpesa_bridge.core.payments.entity import OutboxEvent, Subject
from mpesa_bridge.realtime.bus import MemoryBus, Scope
from mpesa_bridge.realtime.sse import EventStream, StreamOptions, TenantTails

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
SCOPE = Scope("proj_1", "test")


@dataclass
class Table:
    """The events table of one tenant, with counts of the queries made against it."""

    events: list[OutboxEvent] = field(default_factory=list)
    tail_reads: int = 0
    page_reads: int = 0

    def append(self) -> OutboxEvent:
        event = OutboxEvent(
            new_id("evt", T0), "proj_1", "test", "payment.succeeded", "payment", "pay_1", {"object": {}}, T0
        )
        self.events.append(event)
        return event


class Events:
    def __init__(self, table: Table) -> None:
        self.table = table

    async def stream_position(self, *args: Any, **kwargs: Any) -> int | None:  # pragma: no cover
        return None

    async def stream_tail(self, project_id: str, mode: str) -> int:
        self.table.tail_reads += 1
        await asyncio.sleep(0)  # a real query yields: concurrent callers must share it
        return len(self.table.events)

    async def stream_after(
        self, project_id: str, mode: str, position: int, *, subject: Subject | None = None, limit: int = 100
    ) -> list[tuple[OutboxEvent, int]]:
        self.table.page_reads += 1
        return [(e, i + 1) for i, e in enumerate(self.table.events) if i + 1 > position][:limit]


class Reader:
    def __init__(self, table: Table) -> None:
        self.events = Events(table)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class Store:
    def __init__(self, table: Table) -> None:
        self.table = table

    def read(self) -> Reader:
        return Reader(self.table)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_tail_is_read_once_per_ttl_for_every_caller() -> None:
    table, clock = Table(), Clock()
    tails = TenantTails(Store(table), ttl=10.0, monotonic=clock)
    assert await asyncio.gather(*(tails.tail("proj_1", "test") for _ in range(50))) == [0] * 50
    assert table.tail_reads == 1
    table.append()
    clock.now = 9.9
    assert await tails.tail("proj_1", "test") == 0  # still fresh enough
    clock.now = 10.0
    assert await tails.tail("proj_1", "test") == 1
    assert table.tail_reads == 2


async def _collect(stream: EventStream, into: list[str]) -> None:
    async for message in stream.messages():
        if message.data is not None:  # events, not the opening resume point
            into.append(message.id or "")


@pytest.mark.timeout(10)
async def test_an_idle_stream_skips_its_page_reads_and_still_gets_an_unannounced_event() -> None:
    table = Table()
    store = Store(table)
    tails = TenantTails(store, ttl=0.0)  # a fresh tail on every timed wake: only the page read is saved
    options = StreamOptions(poll_interval=0.01, max_age=60)
    stream = EventStream(store, MemoryBus(), SCOPE, 0, options, tails=tails)
    seen: list[str] = []
    task = asyncio.create_task(_collect(stream, seen))
    try:
        while table.tail_reads < 20:  # twenty timed wakes with nothing new
            await asyncio.sleep(0.01)
        assert table.page_reads <= 2  # the opening read, and the first timed wake's
        event = table.append()  # committed elsewhere: nobody rings
        async with asyncio.timeout(5):
            while not seen:
                await asyncio.sleep(0.01)
        assert seen == [event.id]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_without_tails_every_timed_wake_reads_the_page() -> None:
    table = Table()
    stream = EventStream(Store(table), MemoryBus(), SCOPE, 0, StreamOptions(poll_interval=0.01), tails=None)
    task = asyncio.create_task(_collect(stream, []))
    try:
        async with asyncio.timeout(5):
            while table.page_reads < 5:
                await asyncio.sleep(0.01)
        assert table.tail_reads == 0
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
