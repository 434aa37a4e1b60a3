"""The webhook sender's aiohttp transport against a real receiver on loopback: the address guard at
connect time (host names through the guarded resolver, IP literals just before the request), and
the peer address of the connection known for every answer, an empty one included — the rule
"keep an answer only from a public address" stands on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mpesa_bridge.core.webhooks.destinations import AddressRule
from mpesa_bridge.workers.delivery import HttpSender, PeerResponse, SystemResolver, _session
from tests.fixtures.receiver import Receiver, Reply

HEADERS = {"webhook-id": "msg_1", "webhook-timestamp": "1700000000", "webhook-signature": "v1,abc"}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as running:
        yield running


@pytest.fixture
async def production_sender() -> AsyncIterator[HttpSender]:
    """As on a production host: no loopback, not even for test mode."""
    sender = HttpSender(timeout=5.0, allow_private=False, test_loopback=False, resolver=SystemResolver())
    yield sender
    await sender.aclose()


@pytest.mark.parametrize("mode", ["test", "live"])
@pytest.mark.parametrize("host", ["127.0.0.1", "[::ffff:127.0.0.1]", "localhost"])
async def test_loopback_is_refused_at_connect_time_by_literal_or_by_name(
    production_sender: HttpSender, receiver: Receiver, host: str, mode: str
) -> None:
    result = await production_sender.post(f"http://{host}:{receiver.port}/hook", mode, HEADERS, b"{}")
    assert result.status_code is None and (result.error or "").startswith("url_not_allowed"), result
    assert receiver.requests == []


async def test_test_mode_on_a_development_host_reaches_loopback_and_never_keeps_the_answer(receiver: Receiver) -> None:
    receiver.rule("/hook", lambda _request: Reply(200, b"private answer"))
    sender = HttpSender(timeout=5.0, allow_private=False, test_loopback=True, resolver=SystemResolver())
    try:
        result = await sender.post(f"{receiver.url}/hook", "test", HEADERS, b'{"a": 1}')
        refused = await sender.post(f"{receiver.url}/hook", "live", HEADERS, b'{"a": 1}')
    finally:
        await sender.aclose()
    assert result.status_code == 200 and result.error is None and result.body is None
    assert (refused.error or "").startswith("url_not_allowed")
    (request,) = receiver.requests
    assert request.body == b'{"a": 1}' and request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("mpesa-bridge-webhooks/")


@pytest.mark.parametrize("reply", [Reply(204, b""), Reply(200, b""), Reply(500, b"x" * 3000)])
async def test_the_peer_address_is_known_for_every_answer_even_an_empty_one(receiver: Receiver, reply: Reply) -> None:
    receiver.rule("/hook", lambda _request: reply)
    session = _session(AddressRule(allow_loopback=True), SystemResolver(), 5.0, 4)
    try:
        for _ in range(2):  # a fresh connection, then the same one reused
            async with session.post(f"{receiver.url}/hook", data=b"{}") as response:
                assert isinstance(response, PeerResponse) and response.status == reply.status
                assert response.peer is not None and response.peer[:2] == ("127.0.0.1", receiver.port)
    finally:
        await session.close()
