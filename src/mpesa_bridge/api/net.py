"""Client addresses: who is really calling, behind the proxies we trust, and address allow-lists.

`client_ip` believes `X-Forwarded-For` only when the peer itself is a trusted proxy, and then only
as far as the chain of trusted proxies goes: walking the header from the right (each proxy appends
the address it saw), the first address that is not a trusted proxy is the client. Anything to its
left was written by the client and could be forged. IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`,
what a dual-stack socket reports for an IPv4 peer) are read as the IPv4 address (reference §17).

`address_bucket` is what every per-address limit counts by: an IPv4 address alone, an IPv6 address
by its prefix (a subscriber is given a whole /64 and can use any address in it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from starlette.types import Scope

from mpesa_bridge.config import ConfigError, Settings

IPNetwork = IPv4Network | IPv6Network
IPAddress = IPv4Address | IPv6Address

# A longer chain of trusted proxies than this is not a deployment, it is a header stuffed to burn CPU.
MAX_FORWARDED_HOPS = 32


def parse_ip(text: str | None) -> IPAddress | None:
    """An address from a socket or a header entry, or None if it is not one (never raises).

    Accepts `[v6]:port` and `v4:port` (some proxies add the port) and unwraps `::ffff:` addresses.
    """
    if not text:
        return None
    text = text.strip()
    if text.startswith("["):  # [2001:db8::1]:443 or [2001:db8::1]
        end = text.find("]")
        if end < 0:
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # 203.0.113.7:51234
        text = text.split(":", 1)[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_bucket(address: str, ipv6_prefix: int) -> str:
    """The client a per-address limit counts `address` as: an IPv4 address is itself (`::ffff:`
    forms included), an IPv6 address is its `/ipv6_prefix` network (`2001:db8:1:2::/64`; at 128,
    the address itself). Something that is not an address (a test client's name) is its own bucket.
    """
    if not 1 <= ipv6_prefix <= 128:
        raise ValueError(f"an IPv6 prefix length is 1 to 128, not {ipv6_prefix}")
    parsed = parse_ip(address)
    if parsed is None:
        return address
    if isinstance(parsed, IPv4Address) or ipv6_prefix == 128:
        return str(parsed)
    return str(IPv6Network((parsed, ipv6_prefix), strict=False))


def parse_networks(items: Iterable[str]) -> list[IPNetwork]:
    """Plain addresses (`196.201.214.200`, `::1`) and CIDRs (`10.0.0.0/8`) as networks.

    Blank entries are skipped; an unusable one raises ValueError naming it. Host bits in a CIDR are
    tolerated (`10.0.0.1/8` means `10.0.0.0/8`), and `::ffff:a.b.c.d` means the IPv4 address.
    """
    networks: list[IPNetwork] = []
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        try:
            if "/" in item:
                network = ip_network(item, strict=False)
            else:
                address = ip_address(item)
                if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
                    address = address.ipv4_mapped
                network = ip_network(address)
        except ValueError:
            raise ValueError(f"{raw.strip()!r} is not an IP address or CIDR network") from None
        networks.append(network)
    return networks


def ip_allowed(ip: str | IPAddress | None, networks: Sequence[IPNetwork]) -> bool:
    """True if `ip` is in one of `networks`; an absent or unparseable address never is."""
    address = ip if isinstance(ip, IPv4Address | IPv6Address) else parse_ip(ip)
    if address is None:
        return False
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def _forwarded_for(scope: Scope) -> list[str]:
    """Every `X-Forwarded-For` entry, in order (several headers are one list, as RFC 9110 says)."""
    entries: list[str] = []
    for name, value in scope.get("headers", []):
        if name.lower() == b"x-forwarded-for":
            entries.extend(part.strip() for part in value.decode("latin-1").split(","))
    return entries


def client_ip(scope: Scope, trusted: Sequence[IPNetwork]) -> str | None:
    """The client's address: the peer's, or — when the peer is a trusted proxy — from X-Forwarded-For.

    Walking the header right to left, trusted proxies are skipped and the first other address is
    the client. If every entry is a trusted proxy, the leftmost is the client. An entry that is not
    an address (`unknown`, an obfuscated RFC 7239 name, empty, garbage) stops the walk: what lies beyond
    it cannot be vouched for, so the last trusted hop (the one that reported it) is the answer.
    None when the server gave no peer; a peer that is not an IP address (a test client's name, a
    Unix socket path) is returned as it is, and never trusted as a proxy.
    """
    client = scope.get("client")
    if not client:
        return None
    peer_text = str(client[0])
    peer = parse_ip(peer_text)
    if peer is None:
        return peer_text
    if not trusted or not ip_allowed(peer, trusted):
        return str(peer)
    current = peer
    for hops, entry in enumerate(reversed(_forwarded_for(scope))):
        if hops >= MAX_FORWARDED_HOPS:
            break
        hop = parse_ip(entry)
        if hop is None:
            break
        current = hop
        if not ip_allowed(hop, trusted):
            break
    return str(current)


@dataclass(frozen=True)
class Networks:
    """The configured address lists, parsed once when the app is built."""

    trusted_proxies: list[IPNetwork]  # MPESA_BRIDGE_TRUSTED_PROXIES: whose X-Forwarded-For is believed
    callback_allowed: list[IPNetwork]  # MPESA_BRIDGE_CALLBACK_ALLOWED_IPS: Safaricom's addresses


def networks_from(settings: Settings) -> Networks:
    """Both lists, or a ConfigError naming the variable: a typo must stop the start, not turn every
    callback into a 500."""

    def parsed(variable: str, items: list[str]) -> list[IPNetwork]:
        try:
            return parse_networks(items)
        except ValueError as exc:
            raise ConfigError(f"{variable}: {exc}") from exc

    return Networks(
        trusted_proxies=parsed("MPESA_BRIDGE_TRUSTED_PROXIES", settings.proxy_networks),
        callback_allowed=parsed("MPESA_BRIDGE_CALLBACK_ALLOWED_IPS", settings.callback_networks),
    )
