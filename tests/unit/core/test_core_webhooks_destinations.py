"""Which webhook URLs may be called (`core.webhooks.destinations`): syntax, addresses, modes."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpesa_bridge.core.projects import Mode
from mpesa_bridge.core.webhooks.destinations import (
    AddressRule,
    check_destination,
    is_public_address,
    parse_webhook_url,
)
from mpesa_bridge.core.webhooks.errors import DestinationRefused, InvalidWebhookUrl, UrlUnresolvable

LIVE = AddressRule.for_mode(Mode.LIVE, allow_private=False, test_loopback=True)
TEST = AddressRule.for_mode(Mode.TEST, allow_private=False, test_loopback=True)  # development
TEST_IN_PRODUCTION = AddressRule.for_mode(Mode.TEST, allow_private=False, test_loopback=False)
ANYTHING = AddressRule.for_mode(Mode.LIVE, allow_private=True, test_loopback=False)


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
        ("2002:7f00:1::", False, False, True),  # 6to4 wrapping 127.0.0.1 is no loopback address
        ("2002:a00:1::", False, False, True),  # 6to4 wrapping 10.0.0.1
        ("64:ff9b::a9fe:a9fe", False, False, True),  # NAT64 wrapping 169.254.169.254
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False, False, True),  # Teredo wrapping 10.0.0.1
    ],
)
def test_address_rules(address: str, live: bool, test: bool, private_allowed: bool) -> None:
    assert (LIVE.refusal(address) is None) is live
    assert (TEST.refusal(address) is None) is test
    assert (ANYTHING.refusal(address) is None) is private_allowed
    # Test mode without loopback (production's default) is live mode's rule; only public answers are kept.
    assert (TEST_IN_PRODUCTION.refusal(address) is None) is live
    assert is_public_address(address) is live


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


async def test_loopback_in_test_mode_is_the_operator_s_choice() -> None:
    resolver = StaticResolver({"localhost": ["127.0.0.1", "::1"]})
    await check_destination("http://localhost:3000/h", TEST, resolver)
    for url in ("http://localhost:3000/h", "http://127.0.0.1:3000/h", "http://[::1]:3000/h"):
        with pytest.raises(DestinationRefused):
            await check_destination(url, TEST_IN_PRODUCTION, resolver)
    assert not is_public_address("127.0.0.1") and not is_public_address("::1")  # never a kept answer


async def test_literal_addresses_are_not_resolved() -> None:
    resolver = StaticResolver({})
    with pytest.raises(DestinationRefused):
        await check_destination("http://10.0.0.1/h", LIVE, resolver)
    await check_destination("http://[::1]:9/h", TEST, resolver)
    assert resolver.asked == []


# --- IPv4 inside IPv6 (issue 9 B8) -------------------------------------------------------------------
# Every IPv6 form that carries an IPv4 address is judged by that address, and the forms that are not
# globally routable (IPv4-compatible, IPv4-translated, local-use NAT64, Teredo) are refused whatever
# they carry: in live mode and in test mode alike (test mode's loopback is 127.0.0.0/8 and ::1 only).

EMBEDDED_REFUSED = [
    "::169.254.169.254",  # IPv4-compatible (deprecated, ::/96)
    "::127.0.0.1",
    "::10.0.0.1",
    "::8.8.8.8",  # IPv4-compatible is refused even around a public address
    "::ffff:0:127.0.0.1",  # IPv4-translated (::ffff:0:0:0/96)
    "::ffff:0:169.254.169.254",
    "::ffff:0:8.8.8.8",
    "::ffff:169.254.169.254",  # IPv4-mapped
    "::ffff:192.168.0.1",
    "64:ff9b:1::a9fe:a9fe",  # local-use NAT64 (64:ff9b:1::/48)
    "64:ff9b:1::808:808",
    "64:ff9b::127.0.0.1",  # well-known NAT64 prefix around loopback
    "64:ff9b::10.1.2.3",
    "64:ff9b::100.64.0.1",
    "2002:a9fe:a9fe::1",  # 6to4 around the metadata address
    "2002:c0a8:1::",  # 6to4 around 192.168.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo (2001::/32)
    "2001:0:808:808::1",
    "2002:7f00:1::",  # 6to4 around 127.0.0.1 is no loopback address
    "::",
]
EMBEDDED_ALLOWED = [
    "::ffff:8.8.8.8",  # IPv4-mapped public address: the dual-stack form of 8.8.8.8
    "64:ff9b::808:808",  # the well-known NAT64 prefix around a public address (DNS64)
    "2002:808:808::1",  # 6to4 around a public address
]


@pytest.mark.parametrize("address", EMBEDDED_REFUSED)
def test_ipv6_forms_embedding_a_non_public_ipv4_are_refused(address: str) -> None:
    assert LIVE.refusal(address) is not None
    assert TEST.refusal(address) is not None
    assert ANYTHING.refusal(address) is None


@pytest.mark.parametrize("address", EMBEDDED_ALLOWED)
def test_ipv6_forms_embedding_a_public_ipv4_are_public(address: str) -> None:
    assert LIVE.refusal(address) is None and TEST.refusal(address) is None


@pytest.mark.parametrize(
    "url", ["http://[::169.254.169.254]/h", "http://[::ffff:0:127.0.0.1]:8080/h", "http://[64:ff9b:1::a9fe:a9fe]/h"]
)
async def test_the_reported_urls_are_refused_in_both_modes(url: str) -> None:
    for rule in (LIVE, TEST):
        with pytest.raises(DestinationRefused):
            await check_destination(url, rule, StaticResolver({}))


async def test_resolved_addresses_get_the_same_rule() -> None:
    resolver = StaticResolver({"nat64.example.com": ["64:ff9b::a9fe:a9fe"], "compat.example.com": ["::7f00:1"]})
    for host in ("nat64", "compat"):
        for rule in (LIVE, TEST):
            with pytest.raises(DestinationRefused):
                await check_destination(f"https://{host}.example.com/h", rule, resolver)


_V4 = st.integers(min_value=0, max_value=2**32 - 1).map(IPv4Address)


def _embeddings(v4: IPv4Address) -> dict[str, IPv6Address]:
    n = int(v4)
    return {
        "mapped": IPv6Address((0xFFFF << 32) | n),
        "compatible": IPv6Address(n),
        "translated": IPv6Address((0xFFFF << 48) | n),
        "nat64": IPv6Address((0x64FF9B << 96) | n),
        "nat64_local": IPv6Address((0x64FF9B0001 << 80) | n),
        "6to4": IPv6Address((0x2002 << 112) | (n << 80)),
        "teredo": IPv6Address((0x20010000 << 96) | (n << 64) | 1),
    }


def _public_v4(v4: IPv4Address) -> bool:
    return v4.is_global and not v4.is_multicast


@given(_V4)
def test_no_ipv4_address_hides_inside_ipv6(v4: IPv4Address) -> None:
    forms = _embeddings(v4)
    for name in ("compatible", "translated", "nat64_local", "teredo"):  # never globally routable
        if name == "compatible" and int(v4) <= 1:
            continue  # :: and ::1 are the unspecified and loopback addresses, judged as such
        assert LIVE.refusal(str(forms[name])) is not None, name
        assert TEST.refusal(str(forms[name])) is not None, name
    for name in ("mapped", "nat64", "6to4"):  # judged by the IPv4 address they carry
        assert (LIVE.refusal(str(forms[name])) is None) is _public_v4(v4), name
        assert (LIVE.refusal(str(forms[name])) is None) is (LIVE.refusal(str(v4)) is None), name
