"""One TLS client context per process for every outgoing HTTP client (Daraja, webhooks).

Building one loads the CA bundle (tens of milliseconds); the runtime makes several clients, tests
make a runtime per test. An `ssl.SSLContext` is safe to share between clients, aiohttp's and
httpx's alike. It is httpx's default: certificates and host names verified against certifi's CA
bundle, the environment's SSL_CERT_FILE / SSL_CERT_DIR ignored.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def client_ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context(trust_env=False)
