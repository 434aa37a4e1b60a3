"""Which webhook URLs may be called (`core.webhooks.destinations`): syntax, addresses, modes."""

from __future__ import annotations

import pytest

from mpesa_bridge.core.projects import Mode
from mpesa_bridge.core.webhooks.destinations import AddressRule, check_destination, parse_webhook_url
from mpesa_bridge.core.webhooks.errors import DestinationRefused, InvalidWebhookUrl, UrlUnresolvable

LIVE = AddressRule.for_mode(Mode.LIVE, allow_private=False)
TEST = AddressRule.for_mode(Mode.TEST, allow_private=False)
ANYTHING = AddressRule.for_mode(Mode.LIVE, allow_private=True)


class StaticResolver:
    """DNS as a table (the world, not the thing under test)."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError("Name or service not known")
        return self.answers[host]


@pytest.mark.parametrize(
    ("address", "live", "test", "private_allowed"),
    [
        ("93.184.216.34", True, True, True),
        ("2606:2800:220:1:248:1893:25c8:1946", True, True, True),
        ("127.0.0.1", False, True, True),
        ("127.8.9.10", False, True, True),
        ("::1", False, True, True),
        ("::ffff:127.0.0.1", False, True, True),  # IPv4-mapped loopback
        ("10.0.0.1", False, False, True),
        ("172.16.5.4", False, False, True),
        ("192.168.1.1", False, False, True),
        ("169.254.169.254", False, False, True),  # cloud metadata
        ("fe80::1", False, False, True),
        ("fc00::1", False, False, True),
        ("100.64.0.1", False, False, True),  # carrier-grade NAT
        ("0.0.0.0", False, False, True),
        ("224.0.0.1", False, False, True),  # multicast
        ("255.255.255.255", False, False, True),
        ("::ffff:10.0.0.1", False, False, True),
        ("2002:7f00:1::", False, True, True),  # 6to4 wrapping 127.0.0.1
        ("2002:a00:1::", False, False, True),  # 6to4 wrapping 10.0.0.1
        ("64:ff9b::a9fe:a9fe", False, False, True),  # NAT64 wrapping 169.254.169.254
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False, False, True),  # Teredo wrapping 10.0.0.1
    ],
)
def test_address_rules(address: str, live: bool, test: bool, private_allowed: bool) -> None:
    assert (LIVE.refusal(address) is None) is live
    assert (TEST.refusal(address) is None) is test
    assert (ANYTHING.refusal(address) is None) is private_allowed


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.com/x",
        "file:///etc/passwd",
        "gopher://example.com",
        "example.com/hook",
        "https://",
        "https://user:secret@example.com/",
        "https://example.com/#fragment",
        "https://example.com:99999/",
        "https://exa mple.com/",
        "https://example.com/\nHost: evil",
        "https://[::1/",
        "https://example.com/" + "a" * 2048,
    ],
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidWebhookUrl) as caught:
        parse_webhook_url(url)
    assert caught.value.code == "invalid_url" and caught.value.param == "url"


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("https://Shop.Example.com/hooks?x=1", "shop.example.com", 443),
        ("http://shop.example.com/", "shop.example.com", 80),
        ("http://127.0.0.1:8080/h", "127.0.0.1", 8080),
        ("https://[2606:2800:220:1:248:1893:25c8:1946]:8443/", "2606:2800:220:1:248:1893:25c8:1946", 8443),
    ],
)
def test_good_urls_are_parsed(url: str, host: str, port: int) -> None:
    parsed = parse_webhook_url(url)
    assert (parsed.url, parsed.host, parsed.port) == (url, host, port)


async def test_every_resolved_address_must_pass() -> None:
    resolver = StaticResolver(
        {
            "shop.example.com": ["93.184.216.34"],
            "mixed.example.com": ["93.184.216.34", "10.0.0.7"],  # one bad address spoils the host
            "metadata.example.com": ["169.254.169.254"],
            "local.example.com": ["127.0.0.1", "::1"],
        }
    )
    assert (await check_destination("https://shop.example.com/h", LIVE, resolver)).host == "shop.example.com"
    for host in ("mixed", "metadata", "local"):
        with pytest.raises(DestinationRefused) as caught:
            await check_destination(f"https://{host}.example.com/h", LIVE, resolver)
        assert caught.value.code == "url_not_allowed"
    await check_destination("http://local.example.com:3000/h", TEST, resolver)
    with pytest.raises(UrlUnresolvable):
        await check_destination("https://nowhere.example.com/h", LIVE, resolver)


async def test_literal_addresses_are_not_resolved() -> None:
    resolver = StaticResolver({})
    with pytest.raises(DestinationRefused):
        await check_destination("http://10.0.0.1/h", LIVE, resolver)
    await check_destination("http://[::1]:9/h", TEST, resolver)
    assert resolver.asked == []
