"""What a webhook attempt keeps of the answer (`workers.delivery`): the first 1 KB, from public addresses only.

The integration tests' receivers all live on loopback, whose answers are never kept; the public
branch is checked here, on the decision itself (given the connection's peer address, as
`PeerResponse` records it) and on how the head of an answer is read.
"""

from __future__ import annotations

from typing import Any

import pytest

from mpesa_bridge.core.webhooks.entity import RESPONSE_BODY_LIMIT
from mpesa_bridge.workers.delivery import _read_head, from_public_address, kept_answer


@pytest.mark.parametrize(
    ("peer", "public"),
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
def test_only_a_connection_to_a_public_address_counts_as_public(peer: Any, public: bool) -> None:
    assert from_public_address(peer) is public


class Chunks:
    """An answer's body as aiohttp hands it out: `read(n)` returns at most n bytes, b"" at the end."""

    def __init__(self, body: bytes, size: int) -> None:
        self._body = body
        self._size = size
        self.read_so_far = 0

    async def read(self, n: int = -1) -> bytes:
        chunk = self._body[self.read_so_far : self.read_so_far + min(n, self._size)]
        self.read_so_far += len(chunk)
        return chunk


async def test_the_first_kilobyte_of_a_public_answer_is_kept_and_nothing_of_a_private_one() -> None:
    answer = ("é" + "x" * 5000).encode()
    body = Chunks(answer, size=300)
    head = await _read_head(body)
    assert body.read_so_far == RESPONSE_BODY_LIMIT  # the rest is never read
    kept = kept_answer(head, public=True)
    assert kept is not None and len(kept.encode("utf-8")) == RESPONSE_BODY_LIMIT and kept.startswith("é")
    assert kept_answer(head, public=False) is None
    assert kept_answer(b"\xff\xfe broken", public=True) == "\ufffd\ufffd broken"  # decoded leniently
    assert await _read_head(Chunks(b"short", size=2)) == b"short"
