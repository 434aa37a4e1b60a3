"""Client addresses behind proxies, and address allow-lists (api/net.py)."""

from __future__ import annotations

from ipaddress import ip_address, ip_network
from typing import Any

import pytest

from mpesa_bridge.api.net import (
    MAX_FORWARDED_HOPS,
    address_bucket,
    client_ip,
    ip_allowed,
    networks_from,
    parse_ip,
    parse_networks,
)
from mpesa_bridge.config import ConfigError, Settings

PROXIES = parse_networks(["10.0.0.0/8", "192.168.1.1", "2001:db8::/32"])


def scope(peer: str | None, *forwarded: str) -> dict[str, Any]:
    return {
        "type": "http",
        "client": (peer, 50000) if peer is not None else None,
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded],
    }


# --- client_ip -------------------------------------------------------------------------------------


def test_the_peer_is_the_client_without_proxies() -> None:
    assert client_ip(scope("203.0.113.7"), []) == "203.0.113.7"
    assert client_ip(scope("203.0.113.7", "198.51.100.1"), []) == "203.0.113.7"


def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    assert client_ip(scope("203.0.113.7", "196.201.214.200"), PROXIES) == "203.0.113.7"
    assert client_ip(scope("203.0.113.7", "10.0.0.1, 196.201.214.200"), PROXIES) == "203.0.113.7"


def test_a_trusted_proxy_is_believed() -> None:
    assert client_ip(scope("10.0.0.5", "198.51.100.9"), PROXIES) == "198.51.100.9"


def test_multiple_hops_walk_from_the_right_past_trusted_proxies_only() -> None:
    # client → 192.168.1.1 → 10.1.2.3 → us (peer 10.0.0.5); the client forged "1.1.1.1" itself.
    headers = "1.1.1.1, 198.51.100.9, 192.168.1.1, 10.1.2.3"
    assert client_ip(scope("10.0.0.5", headers), PROXIES) == "198.51.100.9"


def test_several_forwarded_for_headers_are_one_list() -> None:
    assert client_ip(scope("10.0.0.5", "1.1.1.1, 198.51.100.9", "10.1.2.3"), PROXIES) == "198.51.100.9"


def test_all_trusted_gives_the_leftmost() -> None:
    assert client_ip(scope("10.0.0.5", "10.9.9.9, 10.1.2.3"), PROXIES) == "10.9.9.9"
    assert client_ip(scope("10.0.0.5"), PROXIES) == "10.0.0.5"  # no header: the proxy itself


def test_ipv4_mapped_addresses_are_unwrapped() -> None:
    assert client_ip(scope("::ffff:203.0.113.7"), []) == "203.0.113.7"
    assert client_ip(scope("::ffff:10.0.0.5", "::ffff:198.51.100.9"), PROXIES) == "198.51.100.9"
    assert client_ip(scope("::ffff:203.0.113.7", "198.51.100.9"), PROXIES) == "203.0.113.7"


def test_ipv6_and_ports() -> None:
    assert client_ip(scope("2001:db8::1", "[2001:4860::8]:443"), PROXIES) == "2001:4860::8"
    assert client_ip(scope("10.0.0.5", "198.51.100.9:51234"), PROXIES) == "198.51.100.9"
    assert client_ip(scope("2001:DB8:0:0::1", "2001:4860:0000::8"), PROXIES) == "2001:4860::8"


@pytest.mark.parametrize(
    "header",
    ["unknown", "not an ip", "999.1.1.1", "", " , ", "[2001:db8::1", "_hidden", "1.2.3.4/24", "\x00\xff", ","],
)
def test_garbage_never_crashes_and_never_lets_the_left_side_in(header: str) -> None:
    # Garbage reported by the trusted hop: what lies beyond it cannot be vouched for.
    assert client_ip(scope("10.0.0.5", f"6.6.6.6, {header}"), PROXIES) == "10.0.0.5"
    assert client_ip(scope("10.0.0.5", f"6.6.6.6, {header}, 10.1.2.3"), PROXIES) == "10.1.2.3"
    # Garbage left of the real client is never reached.
    assert client_ip(scope("10.0.0.5", f"{header}, 198.51.100.9"), PROXIES) == "198.51.100.9"


def test_undecodable_header_bytes_are_safe() -> None:
    raw = {"type": "http", "client": ("10.0.0.5", 1), "headers": [(b"x-forwarded-for", b"\xff\xfe, 198.51.100.9")]}
    assert client_ip(raw, PROXIES) == "198.51.100.9"


def test_a_stuffed_header_is_not_walked_forever() -> None:
    stuffed = ", ".join(["198.51.100.9"] + ["10.0.0.1"] * (MAX_FORWARDED_HOPS * 10))
    assert client_ip(scope("10.0.0.5", stuffed), PROXIES) == "10.0.0.1"


def test_missing_or_odd_peers() -> None:
    assert client_ip(scope(None, "198.51.100.9"), PROXIES) is None
    assert client_ip({"type": "http", "headers": []}, PROXIES) is None
    assert client_ip(scope("testclient", "198.51.100.9"), PROXIES) == "testclient"  # never trusted


# --- parse_networks / ip_allowed ---------------------------------------------------------------------


def test_parse_networks_accepts_addresses_and_cidrs() -> None:
    networks = parse_networks([" 196.201.214.200 ", "10.0.0.0/8", "", "::1", "2001:db8::/32", "::ffff:1.2.3.4"])
    assert networks == [
        ip_network("196.201.214.200/32"),
        ip_network("10.0.0.0/8"),
        ip_network("::1/128"),
        ip_network("2001:db8::/32"),
        ip_network("1.2.3.4/32"),
    ]
    assert parse_networks(["10.0.0.1/8"]) == [ip_network("10.0.0.0/8")]  # host bits tolerated


@pytest.mark.parametrize("bad", ["10.0.0.300", "example.com", "10.0.0.0/33", "1.2.3.4:80", "[::1]"])
def test_parse_networks_names_the_bad_entry(bad: str) -> None:
    with pytest.raises(ValueError, match=repr(bad).replace("[", r"\[").replace("]", r"\]")):
        parse_networks(["10.0.0.1", bad])


def test_ip_allowed() -> None:
    allow = parse_networks(["196.201.214.200", "196.201.212.0/24"])
    assert ip_allowed("196.201.214.200", allow)
    assert ip_allowed("196.201.212.74", allow)
    assert ip_allowed("::ffff:196.201.214.200", allow)
    assert ip_allowed(ip_address("196.201.212.1"), allow)
    assert ip_allowed(ip_address("::ffff:196.201.212.1"), allow)
    assert not ip_allowed("196.201.214.201", allow)
    assert not ip_allowed("2001:db8::1", allow)
    assert not ip_allowed(None, allow)
    assert not ip_allowed("garbage", allow)
    assert not ip_allowed("196.201.214.200", [])


def test_parse_ip() -> None:
    assert parse_ip("::ffff:127.0.0.1") == ip_address("127.0.0.1")
    assert parse_ip("[::1]:8000") == ip_address("::1")
    assert parse_ip(None) is None
    assert parse_ip("") is None
    assert parse_ip("1.2.3.4:5:6") is None


# --- address_bucket ---------------------------------------------------------------------------------


def test_an_ipv4_address_is_its_own_bucket() -> None:
    assert address_bucket("203.0.113.7", 64) == "203.0.113.7"
    assert address_bucket("203.0.113.8", 64) == "203.0.113.8"


def test_ipv6_addresses_are_bucketed_by_their_prefix() -> None:
    # One subscriber is usually given a whole /64: every address in it is the same client.
    assert address_bucket("2001:db8:1:2::1", 64) == "2001:db8:1:2::/64"
    assert address_bucket("2001:db8:1:2:ffff:ffff:ffff:fffe", 64) == "2001:db8:1:2::/64"
    assert address_bucket("2001:DB8:1:2:0:0:0:1", 64) == "2001:db8:1:2::/64"  # any spelling
    assert address_bucket("[2001:db8:1:2::9]:443", 64) == "2001:db8:1:2::/64"
    assert address_bucket("2001:db8:1:3::1", 64) == "2001:db8:1:3::/64"
    assert address_bucket("::1", 64) == "::/64"


def test_the_ipv6_prefix_is_configurable() -> None:
    assert address_bucket("2001:db8:1:2::1", 48) == address_bucket("2001:db8:1:ffff::1", 48) == "2001:db8:1::/48"
    assert address_bucket("2001:db8:1:2::1", 128) == "2001:db8:1:2::1"  # every address alone
    assert address_bucket("2001:db8:1:2::2", 128) == "2001:db8:1:2::2"


def test_an_ipv4_mapped_address_counts_as_the_ipv4_address() -> None:
    assert address_bucket("::ffff:198.51.100.7", 64) == "198.51.100.7"
    assert address_bucket("::FFFF:c633:6407", 64) == "198.51.100.7"


def test_what_is_not_an_address_is_its_own_bucket() -> None:
    assert address_bucket("testclient", 64) == "testclient"
    assert address_bucket("unknown", 64) == "unknown"


@pytest.mark.parametrize("prefix", [-1, 0, 129])
def test_an_impossible_prefix_is_refused(prefix: int) -> None:
    with pytest.raises(ValueError, match="prefix"):
        address_bucket("2001:db8::1", prefix)


def test_the_address_lists_are_parsed_once_at_start_and_a_typo_names_its_variable(tmp_path: Any) -> None:
    base: dict[str, Any] = {"_env_file": None, "env": "development", "data_dir": tmp_path}
    networks = networks_from(
        Settings(**base, trusted_proxies="10.0.0.0/8, ::1", callback_allowed_ips="196.201.214.200")
    )
    assert networks.trusted_proxies == [ip_network("10.0.0.0/8"), ip_network("::1")]
    assert networks.callback_allowed == [ip_network("196.201.214.200")]
    for variable, field in (
        ("MPESA_BRIDGE_TRUSTED_PROXIES", "trusted_proxies"),
        ("MPESA_BRIDGE_CALLBACK_ALLOWED_IPS", "callback_allowed_ips"),
    ):
        with pytest.raises(ConfigError, match=variable):
            networks_from(Settings(**base, **{field: "10.0.0.0/8, not-an-address"}))
