"""Socket.IO's limits on a real loopback server, spoken to over WebSocket packet by packet (a raw
Engine.IO client, as an attacker would): failed CONNECTs spend the address's authentication budget
(the one HTTP 401s spend) and close the connection after a few; oversized packets are not parsed;
a session that does not join in time is closed; new sessions are limited per address.

Engine.IO v4 over WebSocket: the server opens with `0{…}`, a Socket.IO CONNECT to "/" is `40{auth}`,
answered `40{"sid"}` (joined) or `44{"message", "data"}` (refused); `2`/`3` are ping/pong; `1` closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from mpesa_bridge.realtime.socketio import SocketGateway
from mpesa_bridge.storage.db import Database
from tests.fixtures.bridge import wait_until
from tests.fixtures.realtime import LiveBridge, live_bridge, refused_connect, socket_client

ELSEWHERE = "127.0.0.2"  # another client address on loopback


class RawSession:
    """One Engine.IO session over WebSocket, read packet by packet."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.closed = False

    async def next(self, timeout: float = 5.0) -> str | None:
        """The next text packet (pings answered on the way); None once the server has closed."""
        while not self.closed:
            message = await self.ws.receive(timeout=timeout)
            if message.type != aiohttp.WSMsgType.TEXT:
                self.closed = True
                return None
            if message.data == "2":
                await self.ws.send_str("3")
                continue
            if message.data == "1":  # Engine.IO CLOSE: the transport closes next
                continue
            return str(message.data)
        return None

    async def connect_packet(self, auth: Any) -> None:
        await self.ws.send_str("40" + json.dumps(auth))

    async def answers_until_closed(self, timeout: float = 5.0) -> list[str]:
        """Every packet the server sends until it closes the connection (failing at the deadline)."""
        answers: list[str] = []
        try:
            while (packet := await self.next(timeout)) is not None:
                answers.append(packet)
        except TimeoutError:
            raise AssertionError(f"still open after {timeout} s, having answered {answers[:5]}…") from None
        return answers


@contextlib.asynccontextmanager
async def raw_session(url: str, local_address: str = "127.0.0.1") -> AsyncIterator[RawSession]:
    """A new Engine.IO session over WebSocket from `local_address`, past its open packet."""
    connector = aiohttp.TCPConnector(local_addr=(local_address, 0), force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.ws_connect(url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket") as ws,
    ):
        session = RawSession(ws)
        opened = await session.next()
        assert opened is not None and opened.startswith("0{"), opened
        yield session


def refusal_codes(answers: list[str]) -> list[str]:
    assert all(a.startswith("44") for a in answers), answers
    return [json.loads(a[2:])["data"]["code"] for a in answers]


def bad_key() -> dict[str, str]:
    return {"key": f"sk_test_{secrets.token_hex(16)}"}


def gateway(live: LiveBridge) -> SocketGateway:
    sockets = live.runtime.realtime.sockets
    assert isinstance(sockets, SocketGateway)
    return sockets


@contextlib.asynccontextmanager
async def limited_bridge(db_url: str, tmp_path: Path, **overrides: Any) -> AsyncIterator[LiveBridge]:
    async with live_bridge(db_url, tmp_path, rate_limit_enabled=True, **overrides) as bridge:
        yield bridge


async def test_failed_connects_spend_the_address_budget_that_http_shares(
    database: Database, db_url: str, tmp_path: Path
) -> None:
    # The connection's own cap (10) is above the address's budget (3): the budget is what stops it.
    async with limited_bridge(db_url, tmp_path, rate_limit_ip="3/minute", realtime_max_connect_failures=10) as live:
        shop = await live.create_project()  # the admin token is valid: nothing spent
        async with raw_session(live.url) as attacker:
            for _ in range(40):  # sent at once, as a script would
                await attacker.connect_packet(bad_key())
            answers = await attacker.answers_until_closed()
        assert refusal_codes(answers) == ["invalid_api_key"] * 3 + ["rate_limited"]

        # The same budget: HTTP with a made-up key from this address is refused before any look-up…
        response = await live.http.get("/v1/payments", headers={"Authorization": f"Bearer {bad_key()['key']}"})
        assert response.status_code == 429, response.text
        # …and so is a Socket.IO connect from it, even with a valid key.
        assert "rate_limited" in await refused_connect(live.url, {"key": shop.test_key})

        # Another address has its own budget.
        async with raw_session(live.url, ELSEWHERE) as merchant:
            await merchant.connect_packet({"key": shop.test_key})
            joined = await merchant.next()
            assert joined is not None and joined.startswith("40{"), joined


async def test_http_authentication_failures_spend_the_budget_of_socket_connects(
    database: Database, db_url: str, tmp_path: Path
) -> None:
    async with limited_bridge(db_url, tmp_path, rate_limit_ip="3/minute") as live:
        shop = await live.create_project()
        for _ in range(3):
            response = await live.http.get("/v1/payments", headers={"Authorization": f"Bearer {bad_key()['key']}"})
            assert response.status_code == 401
        async with raw_session(live.url) as attacker:
            await attacker.connect_packet({"key": shop.test_key})
            assert refusal_codes(await attacker.answers_until_closed()) == ["rate_limited"]


async def test_a_connection_is_closed_after_a_few_failed_connects(
    database: Database, db_url: str, tmp_path: Path
) -> None:
    async with limited_bridge(db_url, tmp_path, realtime_max_connect_failures=3) as live:
        async with raw_session(live.url) as attacker:
            for _ in range(40):
                await attacker.connect_packet(bad_key())
            answers = await attacker.answers_until_closed()
        assert refusal_codes(answers) == ["invalid_api_key"] * 3
        assert not gateway(live).server.eio.sockets  # the session is gone, not just quiet


async def test_an_oversized_connect_packet_closes_the_connection_unparsed(
    database: Database, db_url: str, tmp_path: Path
) -> None:
    async with limited_bridge(db_url, tmp_path) as live:
        shop = await live.create_project()
        async with raw_session(live.url) as attacker:
            await attacker.connect_packet({"key": "sk_test_" + "x" * 200_000})
            assert await attacker.answers_until_closed() == []  # not even a refusal: never parsed
        # Over long-polling, the body is refused before Engine.IO reads it.
        opened = await live.http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
        sid = json.loads(opened.text[1:])["sid"]
        packet = "40" + json.dumps({"key": "sk_test_" + "x" * 200_000})
        posted = await live.http.post(
            "/socket.io/", params={"EIO": "4", "transport": "polling", "sid": sid}, content=packet
        )
        assert posted.status_code == 413, posted.text
        # A connect of ordinary size is answered as usual.
        async with raw_session(live.url) as merchant:
            await merchant.connect_packet({"key": shop.test_key, "padding": "x" * 1000})
            joined = await merchant.next()
            assert joined is not None and joined.startswith("40{"), joined


async def test_a_session_that_does_not_join_in_time_is_closed(database: Database, db_url: str, tmp_path: Path) -> None:
    async with limited_bridge(db_url, tmp_path, realtime_join_timeout=0.3) as live:
        shop = await live.create_project()
        # Joined first, so its deadline passes before the idle session's.
        async with socket_client(live.url, {"key": shop.test_key}) as joined:
            async with raw_session(live.url) as idle:
                assert await idle.answers_until_closed(timeout=5) == []
            assert joined.sio.connected
            await gateway(live).server.emit("barrier", {}, to=joined.sio.get_sid())
            await joined.wait_for(lambda c: c.named("barrier"))
        await wait_until(lambda: not gateway(live).server.eio.sockets)

        # A long-polling session that opens and then neither polls nor joins is closed as well.
        polling = {"EIO": "4", "transport": "polling"}
        sid = json.loads((await live.http.get("/socket.io/", params=polling)).text[1:])["sid"]
        await wait_until(lambda: sid not in gateway(live).server.eio.sockets)
        assert (await live.http.get("/socket.io/", params={**polling, "sid": sid})).status_code == 400

        # Connects that are answered but never join (another namespace's) do not push the deadline back.
        async with raw_session(live.url) as stalling, asyncio.timeout(5):
            while True:
                await stalling.ws.send_str("40/elsewhere,")
                if await stalling.next() is None:
                    break


async def test_new_sessions_are_limited_per_address(database: Database, db_url: str, tmp_path: Path) -> None:
    async with limited_bridge(db_url, tmp_path, rate_limit_handshake="3/minute") as live:
        for _ in range(3):
            async with raw_session(live.url):
                pass
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            async with raw_session(live.url):
                pass
        assert refused.value.status == 429
        # Long-polling opens count the same, and are refused with the usual error shape.
        polling = await live.http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
        assert polling.status_code == 429, polling.text
        assert polling.json()["error"]["type"] == "rate_limit_error"
        assert 1 <= int(polling.headers["retry-after"]) <= 60

        # Another address opens sessions as usual, over either transport.
        async with raw_session(live.url, ELSEWHERE):
            pass
        transport = httpx.AsyncHTTPTransport(local_address=ELSEWHERE)
        async with httpx.AsyncClient(transport=transport, base_url=live.url) as elsewhere:
            opened = await elsewhere.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
            assert opened.status_code == 200 and opened.text.startswith("0{"), opened.text
