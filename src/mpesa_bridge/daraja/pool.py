"""The bridge's one pooled HTTP client for Daraja, opened and closed by the runtime.

aiohttp in production: it costs ~0.1-0.35 ms of CPU per POST here, httpx ~2 ms. When tests route
Daraja in-process (`httpx.ASGITransport` to the simulator), an httpx client over that transport.
Either way: `DARAJA_CONNECTIONS` connections, all kept alive (requests past them wait for one, up
to the pool timeout), the process's one TLS context, explicit timeouts, no cookies kept (one
client serves every merchant's credentials). A proxy from the environment (HTTPS_PROXY...) is
used as httpx used it; without one, aiohttp is told not to look (`trust_env` would also read
~/.netrc in a thread on every request).
"""

from __future__ import annotations

import ssl
import urllib.request

import aiohttp
import httpx

from ._transport import HttpClient, client_timeout

__all__ = ["DARAJA_CONNECTIONS", "KEEPALIVE_EXPIRY", "HttpClient", "close_http", "open_daraja_http"]

# A small pool, all of it kept alive: connections dropped past a keep-alive limit had to be
# reopened (TCP and TLS) in every burst. Measured with `make bench` (B2, B5).
DARAJA_CONNECTIONS = 32
KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept, as httpx's default was


def open_daraja_http(
    timeout: httpx.Timeout, ssl_context: ssl.SSLContext, *, transport: httpx.AsyncBaseTransport | None = None
) -> HttpClient:
    """A pooled client for `DarajaClient`; call from a running event loop, close with `close_http`."""
    if transport is not None:
        return httpx.AsyncClient(
            transport=transport,
            verify=ssl_context,
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=DARAJA_CONNECTIONS,
                max_keepalive_connections=DARAJA_CONNECTIONS,
                keepalive_expiry=KEEPALIVE_EXPIRY,
            ),
        )
    connector = aiohttp.TCPConnector(limit=DARAJA_CONNECTIONS, ssl=ssl_context, keepalive_timeout=KEEPALIVE_EXPIRY)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=client_timeout(timeout),
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=bool(urllib.request.getproxies()),
    )


async def close_http(http: HttpClient) -> None:
    if isinstance(http, aiohttp.ClientSession):
        await http.close()
    else:
        await http.aclose()
