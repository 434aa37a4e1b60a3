"""What a webhook attempt keeps of the answer (`workers.delivery`): the first 1 KB, from public addresses only.

The integration tests' receivers all live on loopback, whose answers are never kept; the public
branch is checked here, on the decision itself and on an answer read through httpx.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mpesa_bridge.core.webhooks.entity import RESPONSE_BODY_LIMIT
from mpesa_bridge.workers.delivery import _read_head, from_public_address, kept_answer


class PeerStream:
    """The one thing `from_public_address` asks a connection: the address it goes to."""

    def __init__(self, server_addr: Any) -> None:
        self.server_addr = server_addr

    def get_extra_info(self, info: str) -> Any:
        return self.server_addr if info == "server_addr" else None


@pytest.mark.parametrize(
    ("server_addr", "public"),
    [
        (("93.184.216.34", 443), True),
        (("2606:2800:220:1:248:1893:25c8:1946", 443, 0, 0), True),
        (("127.0.0.1", 8080), False),
        (("::1", 8080, 0, 0), False),
        (("10.0.0.7", 80), False),
        (("::ffff:169.254.169.254", 80, 0, 0), False),
        (None, False),  # unknown: treated as private
    ],
)
def test_only_a_connection_to_a_public_address_counts_as_public(server_addr: Any, public: bool) -> None:
    response = httpx.Response(200, extensions={"network_stream": PeerStream(server_addr)})
    assert from_public_address(response) is public
    assert from_public_address(httpx.Response(200)) is False  # no connection known at all


async def test_the_first_kilobyte_of_a_public_answer_is_kept_and_nothing_of_a_private_one() -> None:
    answer = "é" + "x" * 5000
    transport = httpx.MockTransport(lambda _request: httpx.Response(500, text=answer))
    async with httpx.AsyncClient(transport=transport) as client, client.stream("POST", "http://a.test/") as response:
        head = await _read_head(response)
    kept = kept_answer(head, public=True)
    assert kept is not None and len(kept.encode("utf-8")) == RESPONSE_BODY_LIMIT and kept.startswith("é")
    assert kept_answer(head, public=False) is None
    assert kept_answer(b"\xff\xfe broken", public=True) == "\ufffd\ufffd broken"  # decoded leniently
