"""The connection gate's arithmetic and the settings that feed it; the behaviour on real sockets is
in `tests/integration/test_server_limits.py`."""

from __future__ import annotations

import ipaddress

import pytest

from mpesa_bridge.cli.serve import connection_limits
from mpesa_bridge.config import ConfigError, Settings
from mpesa_bridge.serving_limits import ConnectionGate, ConnectionLimits


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]  # no developer .env


def test_the_gate_caps_each_address_and_the_total_and_gives_places_back() -> None:
    gate = ConnectionGate(ConnectionLimits(max_connections=3, max_connections_per_address=2))
    assert [gate.admit("10.0.0.1") for _ in range(3)] == ["10.0.0.1", "10.0.0.1", None]
    assert gate.admit("10.0.0.2") and gate.admit("10.0.0.3") is None  # the total is reached
    gate.release("10.0.0.1")
    assert gate.admit("10.0.0.3")
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        gate.release(address)
    assert gate.total == 0 and gate.by_address == {}


def test_trusted_proxies_count_only_toward_the_total() -> None:
    proxies = (ipaddress.ip_network("127.0.0.0/8"),)
    gate = ConnectionGate(ConnectionLimits(max_connections=4, max_connections_per_address=1, exempt_networks=proxies))
    assert all(gate.admit("127.0.0.1") for _ in range(3))
    assert gate.admit("::ffff:127.0.0.1")  # an IPv4 proxy seen through a dual-stack socket
    assert gate.admit("127.0.0.1") is None  # the total still holds


def test_an_ipv6_client_is_counted_with_its_network() -> None:
    gate = ConnectionGate(ConnectionLimits(max_connections_per_address=2, ipv6_prefix=64))
    assert gate.admit("2001:db8:1:2::1") == gate.admit("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert gate.admit("2001:db8:1:2::3") is None  # another address of the same /64
    assert gate.admit("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert gate.admit("::ffff:10.0.0.1") == "10.0.0.1"  # IPv4 seen through a dual-stack socket


def test_a_peer_without_an_address_is_held_to_the_total_alone() -> None:
    gate = ConnectionGate(ConnectionLimits(max_connections=3, max_connections_per_address=1))
    assert [gate.admit("") for _ in range(4)] == ["", "", "", None]


def test_zero_means_no_cap() -> None:
    gate = ConnectionGate(ConnectionLimits(max_connections=0, max_connections_per_address=0))
    assert all(gate.admit("10.0.0.1") for _ in range(10_000))


def test_the_settings_reach_the_server_and_a_bad_proxy_list_is_a_config_error() -> None:
    chosen = settings(
        header_timeout=2,
        body_timeout=3,
        keep_alive_timeout=4,
        max_connections=5,
        max_connections_per_address=6,
        rate_limit_ipv6_prefix=56,
        trusted_proxies="10.0.0.0/8, ::1",
    )
    limits = connection_limits(chosen)
    assert (limits.header_timeout, limits.body_timeout, limits.keep_alive_timeout) == (2, 3, 4)
    assert (limits.max_connections, limits.max_connections_per_address, limits.ipv6_prefix) == (5, 6, 56)
    assert [str(net) for net in limits.exempt_networks] == ["10.0.0.0/8", "::1/128"]
    with pytest.raises(ConfigError, match="MPESA_BRIDGE_TRUSTED_PROXIES"):
        connection_limits(settings(trusted_proxies="not-an-address"))


def test_the_defaults_of_the_server_and_of_the_settings_agree() -> None:
    """`serving.py` cannot import the settings (the benchmarks' bare app uses it alone)."""
    limits, defaults = ConnectionLimits(), settings()
    assert limits.header_timeout == defaults.header_timeout and limits.body_timeout == defaults.body_timeout
    assert limits.keep_alive_timeout == defaults.keep_alive_timeout
    assert limits.max_connections == defaults.max_connections
    assert limits.max_connections_per_address == defaults.max_connections_per_address
    assert limits.ipv6_prefix == defaults.rate_limit_ipv6_prefix
