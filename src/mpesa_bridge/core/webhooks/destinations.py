"""Which URLs the bridge may POST to: server-side request forgery is refused here.

A webhook URL is chosen by whoever holds a secret key, and the bridge calls it from inside the
operator's network. So only absolute http(s) URLs without credentials are taken, and in live
mode only hosts whose every address is public: loopback, private (RFC 1918, ULA), link-local
(169.254.169.254, the cloud metadata service), shared, reserved, multicast and unspecified
addresses are refused. An IPv6 address that carries an IPv4 one (IPv4-mapped, 6to4, NAT64
64:ff9b::/96) is judged by that IPv4 address too; the forms that are not globally routable
(IPv4-compatible ::/96, IPv4-translated ::ffff:0:0:0/96, local-use NAT64 64:ff9b:1::/48, Teredo
2001::/32) are refused whatever they carry.
Test mode also allows loopback, so that developers can point a test endpoint at their laptop —
outside production only (`MPESA_BRIDGE_WEBHOOK_TEST_ALLOW_LOOPBACK`): on a production host any
test key could otherwise reach the host's own services.
`MPESA_BRIDGE_WEBHOOK_ALLOW_PRIVATE_URLS=true` lifts the address rule (a bridge on a private
network delivering to its neighbours). Whatever the rule, what a non-public address answers is
never kept (`is_public_address`): an endpoint must not become a way to read a private service.

The rule is applied to the literal host and to every address it resolves to, when an endpoint
is created or changed, and again when the delivery transport connects: DNS can change between
the two (rebinding), and the transport connects to the very address it checked.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_address
from typing import Protocol
from urllib.parse import SplitResult, urlsplit

from mpesa_bridge.core.projects import Mode
from mpesa_bridge.core.webhooks.errors import DestinationRefused, InvalidWebhookUrl, UrlUnresolvable

MAX_URL_LENGTH = 2048
RESOLVE_TIMEOUT = 5.0
_NAT64 = IPv6Network("64:ff9b::/96")  # RFC 6052: routable, judged by the IPv4 address it carries
# IPv6 forms that carry an IPv4 address but are not globally routable: refused whatever they carry
# (the stdlib's `is_global` accepts some of them, e.g. ::a9fe:a9fe on Python 3.11).
_NOT_ROUTED = (
    (IPv6Network("::/96"), "IPv4-compatible"),  # RFC 4291, deprecated (:: and ::1 are judged apart)
    (IPv6Network("::ffff:0:0:0/96"), "IPv4-translated"),  # RFC 2765 (SIIT)
    (IPv6Network("64:ff9b:1::/48"), "local-use NAT64"),  # RFC 8215
    (IPv6Network("2001::/32"), "Teredo"),  # RFC 4380
)


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[str]:
        """Every address `host` resolves to (empty or OSError when it does not)."""
        ...


@dataclass(frozen=True)
class AddressRule:
    """Which non-public addresses a destination may have."""

    allow_loopback: bool = False
    allow_private: bool = False

    @classmethod
    def for_mode(cls, mode: Mode | str, *, allow_private: bool, test_loopback: bool) -> AddressRule:
        """Live mode: public addresses only. Test mode: loopback too, when `test_loopback` (the
        operator's choice: on in development, off in production). `allow_private`: anything."""
        return cls(allow_loopback=test_loopback and Mode(mode) is Mode.TEST, allow_private=allow_private)

    def refusal(self, address: str) -> str | None:
        """Why `address` may not be called, or None when it may."""
        if self.allow_private:
            return None
        try:
            ip = ip_address(address.split("%", 1)[0])
        except ValueError:
            return f"{address!r} is not an IP address"
        if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack socket connects to exactly this IPv4 address
        if ip.is_loopback:
            return None if self.allow_loopback else f"{ip} is a loopback address"
        return non_public_reason(ip)


def is_public_address(address: str) -> bool:
    """True when `address` is globally routable by the rules above (no setting lifts this one)."""
    return AddressRule().refusal(address) is None


def non_public_reason(ip: IPv4Address | IPv6Address) -> str | None:
    """Why `ip` is not a public address, or None when it is — judging an IPv6 address that carries
    an IPv4 one by that IPv4 address too, so that 169.254.169.254 cannot hide inside."""
    if isinstance(ip, IPv6Address) and not ip.is_unspecified and not ip.is_loopback:
        for network, name in _NOT_ROUTED:
            if ip in network:
                return f"{ip} is an {name} address, not a public one"
        embedded = _embedded_ipv4(ip)
        if embedded is not None and non_public_reason(embedded) is not None:
            return f"{ip} carries {embedded}, which is not a public address"
    if ip.is_global and not ip.is_multicast:
        return None
    return f"{ip} is not a public address"


def _embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address a routable IPv6 form carries: IPv4-mapped, 6to4, well-known NAT64."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class WebhookUrl:
    """A URL that passed the syntax checks: its host and port, ready for the address rule."""

    url: str
    host: str
    port: int


def parse_webhook_url(url: str) -> WebhookUrl:
    """Absolute http(s), a host, no user:password@, no fragment, at most 2048 characters."""
    text = url.strip()
    if not text or len(text) > MAX_URL_LENGTH:
        raise InvalidWebhookUrl(f"url must be 1 to {MAX_URL_LENGTH} characters", param="url")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        raise InvalidWebhookUrl("url must not contain spaces or control characters", param="url")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidWebhookUrl(f"url is not a valid URL ({exc})", param="url") from None
    _check_parts(parts)
    host = parts.hostname or ""
    return WebhookUrl(text, host, port or (443 if parts.scheme == "https" else 80))


def _check_parts(parts: SplitResult) -> None:
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhookUrl("url must start with https:// or http://", param="url")
    if not parts.hostname:
        raise InvalidWebhookUrl("url must name a host", param="url")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl("url must not carry a user name or password", param="url")
    if parts.fragment:
        raise InvalidWebhookUrl("url must not have a #fragment", param="url")


async def check_destination(url: str, rule: AddressRule, resolver: Resolver) -> WebhookUrl:
    """Parse `url` and apply `rule` to its literal host and to every address it resolves to."""
    parsed = parse_webhook_url(url)
    await vetted_addresses(parsed.host, parsed.port, rule, resolver)
    return parsed


async def vetted_addresses(host: str, port: int, rule: AddressRule, resolver: Resolver) -> list[str]:
    """The addresses of `host`, all of them allowed by `rule` — or DestinationRefused / UrlUnresolvable."""
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT):
                addresses = await resolver.resolve(host, port)
        except (OSError, TimeoutError, UnicodeError):
            addresses = []
        if not addresses:
            raise UrlUnresolvable(f"the host {host!r} does not resolve", param="url")
    for address in addresses:
        reason = rule.refusal(address)
        if reason is not None:
            raise DestinationRefused(f"url is not allowed: {host} → {reason}", param="url")
    return addresses


def _literal(host: str) -> str | None:
    try:
        return str(ip_address(host.strip("[]").split("%", 1)[0]))
    except ValueError:
        return None
