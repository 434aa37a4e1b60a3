"""The two HTTP clients the Daraja client can run over, behind one small interface.

`DarajaClient` builds an `Outgoing` request and asks a `Transport` to send it; the transport
returns the whole answer as an `Answer` or raises its library's own errors, which
`_exceptions.map_transport_errors` translates (the one choke point, for both libraries).

- `AiohttpTransport`, over a caller-owned `aiohttp.ClientSession`: what the bridge uses. It costs
  ~0.1-0.35 ms of CPU per POST here, against httpx's ~2 ms.
- `HttpxTransport`, over a caller-owned `httpx.AsyncClient`: kept for callers, and for tests that
  script Daraja with `httpx.MockTransport` or reach the simulator through `httpx.ASGITransport`.

Neither follows a redirect. The client's Authorization header is the only one sent: httpx is
told to skip its default auth, and an aiohttp session with a default auth refuses the header
(ValueError) rather than send both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import httpx

__all__ = ["AiohttpTransport", "Answer", "HttpClient", "HttpxTransport", "Outgoing", "Transport", "transport_for"]

HttpClient = httpx.AsyncClient | aiohttp.ClientSession
"""What `DarajaClient(http=...)` accepts."""


@dataclass(frozen=True)
class Outgoing:
    """One request: the body already encoded, the query string already in the URL."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None = None


@dataclass(frozen=True)
class Answer:
    """A complete HTTP answer: status, Content-Type and the whole body."""

    status: int
    content_type: str
    content: bytes


class Transport(Protocol):
    async def send(self, request: Outgoing) -> Answer:
        """Send `request` and read the whole answer; raise the library's own errors."""
        ...


class HttpxTransport:
    """Over a caller-owned `httpx.AsyncClient`; `timeout` goes with every request."""

    def __init__(self, http: httpx.AsyncClient, timeout: httpx.Timeout) -> None:
        self._http = http
        self._timeout = timeout

    async def send(self, request: Outgoing) -> Answer:
        built = self._http.build_request(
            request.method, request.url, headers=request.headers, content=request.body, timeout=self._timeout
        )
        # auth=None: our Authorization header must win over any default auth set on `http`.
        response = await self._http.send(built, auth=None, follow_redirects=False)
        return Answer(response.status_code, response.headers.get("content-type", ""), response.content)


class AiohttpTransport:
    """Over a caller-owned `aiohttp.ClientSession`, with `timeout` translated once (`client_timeout`)."""

    def __init__(self, session: aiohttp.ClientSession, timeout: httpx.Timeout) -> None:
        self._session = session
        self._timeout = client_timeout(timeout)

    async def send(self, request: Outgoing) -> Answer:
        async with self._session.request(
            request.method,
            request.url,
            headers=request.headers,
            data=request.body,
            timeout=self._timeout,
            allow_redirects=False,
        ) as response:
            content = await response.read()
            return Answer(response.status, response.headers.get("Content-Type", ""), content)


def client_timeout(timeout: httpx.Timeout) -> aiohttp.ClientTimeout:
    """httpx's four timeouts as aiohttp's: waiting for a pooled connection plus connecting bound
    `connect`, connecting alone `sock_connect`, each read `sock_read`; and `total`, the connect
    phase plus one read timeout, bounds the whole exchange — a slow-dripping answer, and a stuck
    write (aiohttp has no write timeout; a ~1 KB body goes out in one send)."""
    acquire = None if timeout.pool is None or timeout.connect is None else timeout.pool + timeout.connect
    total = None if acquire is None or timeout.read is None else acquire + timeout.read
    return aiohttp.ClientTimeout(total=total, connect=acquire, sock_connect=timeout.connect, sock_read=timeout.read)


def transport_for(http: HttpClient, timeout: httpx.Timeout) -> Transport:
    if isinstance(http, aiohttp.ClientSession):
        return AiohttpTransport(http, timeout)
    if isinstance(http, httpx.AsyncClient):
        return HttpxTransport(http, timeout)
    raise TypeError("http must be an httpx.AsyncClient or an aiohttp.ClientSession")
