"""Open SSE streams are capped per credential and per client address (issue 9 B10: one key and one
address held 600), and a stream's place is given back however it ends — on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mpesa_bridge.api.v1.stream import stream_counts
from mpesa_bridge.storage.db import Database
from tests.fixtures.bridge import wait_until
from tests.fixtures.realtime import SUCCESS_PHONE, LiveBridge, live_bridge


@pytest.fixture
async def capped(database: Database, db_url: str, tmp_path: Path) -> AsyncIterator[LiveBridge]:
    settings = {"sse_max_streams_per_key": 2, "sse_max_streams_per_address": 3, "sse_retry_delay": 3.0}
    async with live_bridge(db_url, tmp_path, **settings) as bridge:
        yield bridge


def open_streams(live: LiveBridge) -> dict[str, int]:
    """Every non-empty bucket of the process's open-stream counts."""
    return stream_counts(live.app)


async def test_open_streams_are_capped_per_key_and_per_address(capped: LiveBridge) -> None:
    live = capped
    shop, other = await live.create_project("Shop"), await live.create_project("Other")
    payment = await live.pay(shop, SUCCESS_PHONE)
    by_secret = {"params": {"client_secret": payment["client_secret"]}}
    secret_path = f"/v1/payments/{payment['id']}/events"

    async with contextlib.AsyncExitStack() as held:
        readers = []  # kept: a reader dropped is a connection closed

        async def hold(path: str, **kwargs: Any) -> None:
            reader = await held.enter_async_context(live.stream(path, **kwargs))
            assert await reader.next() is not None
            readers.append(reader)

        for _ in range(2):
            await hold("/v1/events/stream", headers=shop.headers())
        _assert_refused(await live.http.get("/v1/events/stream", headers=shop.headers()), "key")
        # The key's payment streams count against the same key.
        _assert_refused(await live.http.get(secret_path, headers=shop.headers()), "key")

        # Another key from the same address takes the address's last place ...
        await hold("/v1/events/stream", headers=other.headers())
        # ... and then nothing more opens from this address, not even with a client secret.
        _assert_refused(await live.http.get(secret_path, **by_secret), "address")
        assert sum(open_streams(live).values()) == 3 + 2 + 1  # the address, shop's key, other's key

    await wait_until(lambda: open_streams(live) == {}, timeout=5)
    async with live.stream(secret_path, **by_secret) as stream:  # places given back: it opens again
        assert await stream.next() is not None


def _assert_refused(response: Any, bucket: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == "3"
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "too_many_streams"
    assert bucket in error["message"]
    assert "sk_test_" not in response.text and "_secret_" not in response.text


@pytest.fixture(params=["client_gone", "max_age", "server_stopping"])
async def ending(request: pytest.FixtureRequest, database: Database, db_url: str, tmp_path: Path) -> Any:
    settings: dict[str, Any] = {"sse_max_streams_per_key": 2}
    if request.param == "max_age":
        settings.update(sse_max_connection_age=0.5, sse_heartbeat_interval=0.1)
    async with live_bridge(db_url, tmp_path, **settings) as bridge:
        yield request.param, bridge


async def test_a_stream_gives_its_place_back_however_it_ends(ending: tuple[str, LiveBridge]) -> None:
    how, live = ending
    shop = await live.create_project()
    async with live.stream("/v1/events/stream", headers=shop.headers()) as stream:
        assert await stream.next() is not None
        assert sorted(open_streams(live).values()) == [1, 1]  # one key, one address
        if how == "server_stopping":
            assert live.server is not None
            live.server.should_exit = True
        if how != "client_gone":
            while await stream.next(timeout=5) is not None:  # the server ends it
                pass
    await wait_until(lambda: open_streams(live) == {}, timeout=5)
