"""A callback cut short by a disconnect is not a callback: not stored, not acknowledged.

Real uvicorn on loopback and a raw socket client, because only a real server turns a peer that
goes away into ASGI's `http.disconnect`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from mpesa_bridge.storage import tables
from mpesa_bridge.storage.db import Database
from tests.fixtures.bridge import wait_until
from tests.fixtures.realtime import LiveBridge, live_bridge
from tests.integration.test_callbacks_inbox import success_body

PATH = "/v1/callbacks/daraja/stk/some-token"


@pytest.fixture
async def live(database: Database, db_url: str, tmp_path: Path) -> AsyncIterator[LiveBridge]:
    async with live_bridge(db_url, tmp_path) as bridge:
        yield bridge


async def _raw_post(live: LiveBridge, body: bytes, *, declared: int) -> bytes:
    """POST `body` declaring `declared` bytes and read to the end; a short body ends with our
    sending side closed (uvicorn then sees the peer gone and says `http.disconnect`)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", live.settings.port)
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    if len(body) < declared:
        writer.write_eof()
    try:
        return await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
        await writer.wait_closed()


async def stored(live: LiveBridge) -> list[bytes]:
    async with live.runtime.db.read_engine.connect() as conn:
        return [bytes(body) for body in (await conn.execute(sa.select(tables.inbound_callbacks.c.body))).scalars()]


async def test_a_whole_callback_from_the_raw_client_is_stored_and_acknowledged(live: LiveBridge) -> None:
    body = success_body("ws_CO_1", amount=1.0)
    answer = await _raw_post(live, body, declared=len(body))
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b'{"ResultCode":0,"ResultDesc":"Accepted"}')
    assert await stored(live) == [body]


async def test_a_callback_cut_short_by_a_disconnect_is_neither_stored_nor_acknowledged(live: LiveBridge) -> None:
    body = success_body("ws_CO_1", amount=1.0)
    with capture_logs() as logs:
        answer = await _raw_post(live, body[:40], declared=len(body))

        async def handled() -> bool:
            dropped = any(e["event"] == "callback.incomplete" for e in logs)
            return dropped or bool(await stored(live))

        await wait_until(handled)

    assert answer == b""
    assert await stored(live) == []
    [dropped] = [e for e in logs if e["event"] == "callback.incomplete"]
    assert dropped["received_bytes"] == 40 and dropped["log_level"] == "warning"
