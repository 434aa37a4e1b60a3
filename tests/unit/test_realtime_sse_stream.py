"""One SSE stream on its own (no server): the bytes of its messages, heartbeats while idle (with
no reads), and how it ends when the client leaves or the server stops — both ring its doorbell."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from mpesa_bridge.realtime.bus import MemoryBus
from mpesa_bridge.realtime.sse import HEARTBEAT, EventStream, Message, StreamOptions
from tests.unit.test_realtime_sse_tails import SCOPE, Store, Table

pytestmark = pytest.mark.timeout(10)


def test_messages_keep_their_wire_format() -> None:
    assert Message(id="42", retry=2000).encode() == b"id: 42\r\nretry: 2000\r\n\r\n"
    assert HEARTBEAT.encode() == b": heartbeat\r\n\r\n"
    farewell = Message(comment="server stopping: reconnect", retry=500)
    assert farewell.encode() == b": server stopping: reconnect\r\nretry: 500\r\n\r\n"
    event = Message(data='{"a":1}\n{"b":2}', event="payment.succeeded", id="evt_1")
    assert event.encode() == b'id: evt_1\r\nevent: payment.succeeded\r\ndata: {"a":1}\r\ndata: {"b":2}\r\n\r\n'
    assert Message(id="a\nb", event="x\r\ny").encode() == b"id: ab\r\nevent: xy\r\n\r\n"  # no line breaks


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.01)


class Collected:
    def __init__(self, stream: EventStream) -> None:
        self.messages: list[Message] = []
        self.task = asyncio.create_task(self._collect(stream))

    async def _collect(self, stream: EventStream) -> None:
        async for message in stream.messages():
            self.messages.append(message)

    async def ended(self) -> list[Message]:
        async with asyncio.timeout(5):
            await self.task
        return self.messages


async def test_an_idle_stream_sends_heartbeats_and_reads_nothing_for_them() -> None:
    table = Table()
    options = StreamOptions(heartbeat=0.01, poll_interval=60, max_age=60)
    stream = EventStream(Store(table), MemoryBus(), SCOPE, 0, options)
    collected = Collected(stream)
    await _until(lambda: collected.messages.count(HEARTBEAT) >= 3)
    assert table.page_reads == 1  # the opening read only
    stream.client_gone()
    await collected.ended()


async def test_a_stream_whose_client_left_ends_without_a_word() -> None:
    table = Table()
    stream = EventStream(Store(table), MemoryBus(), SCOPE, 0, StreamOptions(heartbeat=60, poll_interval=60))
    collected = Collected(stream)
    await _until(lambda: table.page_reads == 1)
    stream.client_gone()
    assert await collected.ended() == [Message(id="0", retry=2000)]  # the resume point, nothing after


async def test_a_stream_told_the_server_stops_reads_once_more_then_says_reconnect() -> None:
    table = Table()
    stream = EventStream(Store(table), MemoryBus(), SCOPE, 0, StreamOptions(heartbeat=60, poll_interval=60))
    collected = Collected(stream)
    await _until(lambda: table.page_reads == 1)
    event = table.append()  # committed without a ring: the last read still delivers it
    stream.server_stopping()
    opening, delivered, farewell = await collected.ended()
    assert opening == Message(id="0", retry=2000)
    assert delivered.id == event.id and delivered.event == "payment.succeeded"
    assert farewell == Message(comment="server stopping: reconnect", retry=2000)
