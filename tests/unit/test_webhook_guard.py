"""The webhook sender checks IP literals itself because aiohttp connects to them without asking a
resolver: its test for "an IP literal" must stay aiohttp's own, or a host could slip past both."""

from __future__ import annotations

import pytest
from aiohttp.helpers import is_ip_address

from mpesa_bridge.workers.delivery import _looks_like_ip


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "fe80::1%eth0",
        "2130706433",
        "127.1",
        "0x7f.1",
        "localhost",
        "example.com",
        "1.2.3.4.example",
        "10.0.0.7",
        "",
    ],
)
def test_the_sender_takes_for_an_ip_literal_exactly_what_aiohttp_takes_for_one(host: str) -> None:
    assert _looks_like_ip(host) is is_ip_address(host)
