"""Read deadlines and connection caps for our uvicorn server, below the ASGI app.

uvicorn bounds only the idle time between two requests (`timeout_keep_alive`). A connection that
never sends a byte, a request head that never ends, a body trickled one byte at a time: each was
held for ever, and so was any number of them from one address. `BoundedHttpToolsProtocol` is
uvicorn's httptools protocol plus:

- a head deadline: a request's head (request line and headers) is complete `header_timeout`
  seconds after the connection opened, or after the request's first byte on a kept-alive
  connection, and holds at most `max_head_bytes` (give or take one socket read); otherwise the
  connection is closed;
- a body deadline: the whole body has arrived `body_timeout` seconds after the head, or the client
  gets `408` (if no answer has started) and the connection is closed;
- caps on open connections per process and per client address (the TCP peer; an IPv6 peer with
  its /64, or `ipv6_prefix`). Addresses in
  `exempt_networks` (the trusted reverse proxies, which carry many clients) count only toward the
  total. A connection past a cap is closed as soon as it is accepted, before it is read.

Being below the ASGI app, it covers every route without knowing them, the callback fast path
(`api/callbacks.py`, raw ASGI) included. Its cost per request is a few attribute writes and two
`loop.time()` calls: each connection has at most one timer handle, re-armed only when a deadline
moves earlier than it (a kept-alive connection's next head), or when it fires early. Measured on
`bench.bare` (64 keep-alive connections, 20,000 requests, median of 5): 23 -> 26 us of server CPU per
1 KB POST, 21.5 -> 25 us per GET; a callback through the bridge costs about 2 ms.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol


@dataclass(frozen=True)
class ConnectionLimits:
    """Seconds and counts; a cap of 0 means no cap."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 4096
    max_connections_per_address: int = 256
    max_head_bytes: int = 65_536
    ipv6_prefix: int = 64  # one IPv6 client usually holds a whole /64
    exempt_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


class ConnectionGate:
    """Counts the open connections of one server, in total and per client address."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.refused = 0  # since `reported_at` (loop time), for the log line
        self.reported_at = float("-inf")
        self.total = 0
        self.by_address: dict[str, int] = {}
        self._max_total = limits.max_connections or None
        self._max_each = limits.max_connections_per_address or None
        self._exempt = limits.exempt_networks
        self._ipv6_prefix = limits.ipv6_prefix

    def admit(self, address: str) -> str | None:
        """Take a place for a connection from `address`: the key to release it with, or None if a cap
        refuses it. An IPv6 address counts with its `/ipv6_prefix` network."""
        if self._max_total is not None and self.total >= self._max_total:
            return None
        key = _bucket(address, self._ipv6_prefix) if ":" in address else address
        count = self.by_address.get(key, 0)
        # No address (a Unix socket): only the total applies.
        if self._max_each is not None and count >= self._max_each and key and not self._is_exempt(address):
            return None
        self.by_address[key] = count + 1
        self.total += 1
        return key

    def release(self, key: str) -> None:
        self.total -= 1
        count = self.by_address.pop(key) - 1
        if count:
            self.by_address[key] = count

    def _is_exempt(self, address: str) -> bool:
        # Only asked once an address is at its cap: the common path parses nothing.
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
        return any(ip in net for net in self._exempt)


def _bucket(address: str, prefix: int) -> str:
    try:
        ip = ipaddress.IPv6Address(address.split("%", 1)[0])
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)  # a dual-stack socket's view of an IPv4 peer
    return str(ipaddress.IPv6Network((ip, prefix), strict=False))


_TIMEOUT_BODY = b"Request Timeout"
REFUSAL_REPORT_INTERVAL = 60.0


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the deadlines and caps of `bounded_protocol`'s limits."""

    limits: ClassVar[ConnectionLimits]
    gate: ClassVar[ConnectionGate]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._address: str | None = None  # set once admitted: the gate's key to release the place with
        self._deadline: float | None = None  # loop time the current head or body must be in by
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._reading_head = False
        self._head_bytes = 0
        self._head_began_in_chunk = False

    # Connection --------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        key = self.gate.admit(self.client[0] if self.client else "")
        if key is None:
            transport.close()
            self._report_refusal()
            return
        self._address = key
        self._arm(self.limits.header_timeout)  # a connection that never sends a byte

    def _report_refusal(self) -> None:
        # One line a minute at most: a flood must not become a flood of log lines.
        gate, now = self.gate, self.loop.time()
        gate.refused += 1
        if now - gate.reported_at >= REFUSAL_REPORT_INTERVAL:
            self.logger.warning(
                "server.connections_refused: %d connection(s) past MPESA_BRIDGE_MAX_CONNECTIONS(_PER_ADDRESS) "
                "since the last report (open: %d)",
                gate.refused,
                gate.total,
            )
            gate.refused, gate.reported_at = 0, now

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self._release()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._deadline is None:
            # Bytes that start no request (httptools skips CRLFs) still start the next head's clock.
            self._arm(self.limits.header_timeout)
        self._head_began_in_chunk = False
        super().data_received(data)
        if self.transport.is_closing():
            return  # a 400 from uvicorn, or a websocket now owns the transport
        if self._reading_head and not self._head_began_in_chunk:
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_head_bytes:
                self._refuse(431, b"Request Header Fields Too Large")

    def handle_websocket_upgrade(self) -> None:
        # The websocket protocol takes the transport: our deadlines stop, its place in the gate stays
        # taken until the websocket closes.
        self._cancel_timer()
        address, self._address = self._address, None
        super().handle_websocket_upgrade()
        if address is not None:
            _release_when_lost(self.transport.get_protocol(), self.gate, address)

    # Parser callbacks ----------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True
        self._head_bytes = 0
        self._head_began_in_chunk = True
        self._arm(self.limits.header_timeout)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._reading_head = False
        if self.parser.should_upgrade() and self._should_upgrade():
            self._deadline = None
        else:
            self._arm(self.limits.body_timeout)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._deadline = None  # the app has the request; the timer, if still set, will find nothing to do

    # Deadlines -----------------------------------------------------------------------------------
    def _arm(self, seconds: float) -> None:
        deadline = self.loop.time() + seconds
        self._deadline = deadline
        if self._timer is not None:
            if self._timer_at <= deadline:
                return  # it fires first and re-arms itself for the rest
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._deadline is None or self.transport.is_closing():
            return
        if self.loop.time() < self._deadline:
            self._timer_at = self._deadline
            self._timer = self.loop.call_at(self._deadline, self._on_timer)
            return
        cycle = self.cycle
        if self._reading_head or cycle is None or cycle.response_started or self.pipeline:
            # An idle connection or a slow head: nothing to answer. (A request queued behind another's
            # answer must not write into it.)
            self.transport.close()
        else:
            self._refuse(408, _TIMEOUT_BODY)

    def _cancel_timer(self) -> None:
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _refuse(self, status: int, message: bytes) -> None:
        """Answer `status` and close, unless the app has started an answer (then only close)."""
        self._cancel_timer()
        cycle = self.cycle  # on a kept-alive connection, the previous request's while a head is read
        if cycle is None or cycle.response_complete or not cycle.response_started:
            head = [STATUS_LINE[status]]
            head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
            head.append(b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\n")
            head.append(b"content-length: %d\r\n\r\n" % len(message))
            self.transport.write(b"".join(head) + message)
        if cycle is not None:
            # The app sees a disconnect at once, and its own answer, if any, goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()

    def _release(self) -> None:
        if self._address is not None:
            self.gate.release(self._address)
            self._address = None


def _release_when_lost(protocol: Any, gate: ConnectionGate, address: str) -> None:
    lost = protocol.connection_lost

    def connection_lost(exc: Exception | None) -> None:
        gate.release(address)
        lost(exc)

    protocol.connection_lost = connection_lost


def bounded_protocol(limits: ConnectionLimits) -> type[BoundedHttpToolsProtocol]:
    """A protocol class for one server: its own gate, so two servers in a process count apart."""
    attributes = {"limits": limits, "gate": ConnectionGate(limits)}
    return type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), attributes)
