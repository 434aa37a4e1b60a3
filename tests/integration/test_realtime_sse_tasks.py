"""What an idle SSE stream holds, on a real loopback server, on SQLite and PostgreSQL: its request's
own task and one task waiting for the client to leave — no task group, no ping task, no shutdown
listener of its own (issue 10: ten thousand idle streams on one process). Counted, not timed.

The rate limiter is off here: its in-memory storage (`limits`' MemoryStorage) starts a short-lived
expiry task on a hit when none is running — shared by the process, not held by a stream, but it
came and went inside the count often enough to fail this test under load (CI, 2026-12-06)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mpesa_bridge.storage.db import Database
from tests.fixtures.bridge import wait_until
from tests.fixtures.realtime import LiveBridge, SseReader, live_bridge

STREAMS = 5
TASKS_PER_STREAM = 2  # uvicorn's task running the request, and the one waiting on receive()


@pytest.fixture
async def live(database: Database, db_url: str, tmp_path: Path) -> AsyncIterator[LiveBridge]:
    async with live_bridge(db_url, tmp_path, rate_limit_enabled=False) as bridge:
        yield bridge


async def test_an_idle_stream_holds_two_tasks_and_gives_them_back(live: LiveBridge) -> None:
    shop = await live.create_project()
    path = "/v1/events/stream"
    async with contextlib.AsyncExitStack() as first:
        # The first stream starts what every stream of the process shares (the shutdown watcher).
        opening = await first.enter_async_context(live.stream(path, headers=shop.headers()))
        assert await opening.next() is not None
        before = asyncio.all_tasks()
        async with contextlib.AsyncExitStack() as more:
            readers: list[SseReader] = [
                await more.enter_async_context(live.stream(path, headers=shop.headers())) for _ in range(STREAMS)
            ]
            for reader in readers:
                assert await reader.next() is not None  # open: its resume point came
            held = asyncio.all_tasks() - before
            assert len(held) <= TASKS_PER_STREAM * STREAMS, sorted(repr(task.get_coro()) for task in held)
        await wait_until(lambda: not asyncio.all_tasks() - before, timeout=5)  # closed: all given back


async def test_a_stream_answers_with_the_event_stream_headers(live: LiveBridge) -> None:
    shop = await live.create_project()
    async with live.stream("/v1/events/stream", headers=shop.headers()) as stream:
        headers = stream.response.headers
        assert headers["content-type"] == "text/event-stream; charset=utf-8"
        assert headers["cache-control"] == "no-store"
        assert headers["x-accel-buffering"] == "no"  # nginx passes each message on at once
        assert "content-length" not in headers
