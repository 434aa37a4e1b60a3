"""Asking the merchant's server whether to accept a C2B payment: one signed POST, one deadline.

The same rules as webhooks (`core.webhooks.destinations`): the address is checked when the URL is
saved and again at connect time (the guarded resolver; a literal IP is vetted here), no redirect is
followed, no cookie kept. The answer is read only for its decision — `{"accept": true}` or
`{"accept": false, "result_code": "C2B00012"}` — never stored, so a private service cannot be
read through it. Nothing here raises: a late answer is `late`, anything else unusable an `error`,
and the validator answers Daraja with the project's default.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import yarl

from mpesa_bridge import __version__
from mpesa_bridge.core.c2b.ports import MerchantAnswer
from mpesa_bridge.core.errors import BridgeError
from mpesa_bridge.core.projects import Mode
from mpesa_bridge.core.webhooks.destinations import AddressRule, Resolver, vetted_addresses
from mpesa_bridge.logging import get_logger
from mpesa_bridge.tls import client_ssl_context
from mpesa_bridge.workers.delivery import GuardedResolver

log = get_logger("mpesa_bridge.c2b")

USER_AGENT = f"mpesa-bridge-c2b-validation/{__version__}"
ANSWER_LIMIT = 4096


class HttpMerchantAsker:
    """`core.c2b.ports.MerchantAsker` over aiohttp, one session per mode (its own address rule)."""

    def __init__(self, *, allow_private: bool, test_loopback: bool, resolver: Resolver) -> None:
        self._resolver = resolver
        self._rules = {
            mode: AddressRule.for_mode(mode, allow_private=allow_private, test_loopback=test_loopback) for mode in Mode
        }
        self._sessions: dict[Mode, aiohttp.ClientSession] = {}

    def _session(self, mode: Mode) -> aiohttp.ClientSession:
        session = self._sessions.get(mode)
        if session is None:
            connector = aiohttp.TCPConnector(
                ssl=client_ssl_context(),
                resolver=GuardedResolver(self._rules[mode], self._resolver),
                use_dns_cache=False,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": USER_AGENT},
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
            self._sessions[mode] = session
        return session

    async def ask(self, url: str, mode: str, headers: dict[str, str], body: bytes, deadline: float) -> MerchantAnswer:
        started = time.monotonic()
        try:
            async with asyncio.timeout(deadline):
                target = yarl.URL(url)
                host = target.raw_host or ""
                if ":" in host or host.replace(".", "").isdigit():
                    await vetted_addresses(host, target.port or 0, self._rules[Mode(mode)], self._resolver)
                async with self._session(Mode(mode)).post(
                    target,
                    data=body,
                    headers={**headers, "Content-Type": "application/json"},
                    allow_redirects=False,
                ) as response:
                    status = response.status
                    head = await response.content.read(ANSWER_LIMIT)
        except TimeoutError:
            log.warning("c2b.validation.merchant_late", timeout=deadline)
            return MerchantAnswer(None, late=True, error="timeout", latency_ms=_ms(started))
        except (aiohttp.ClientError, BridgeError, OSError, ValueError) as exc:
            log.warning("c2b.validation.merchant_failed", error=type(exc).__name__)
            return MerchantAnswer(None, error=type(exc).__name__, latency_ms=_ms(started))
        return read_answer(status, head, _ms(started))

    async def aclose(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions = {}


def read_answer(status: int, head: bytes, latency_ms: int) -> MerchantAnswer:
    """The merchant's decision from a 2xx JSON answer; anything else decides nothing."""
    if not 200 <= status < 300:
        return MerchantAnswer(None, error=f"http_{status}", latency_ms=latency_ms)
    try:
        doc = orjson.loads(head)
    except orjson.JSONDecodeError:
        return MerchantAnswer(None, error="not_json", latency_ms=latency_ms)
    accept = doc.get("accept") if isinstance(doc, dict) else None
    if not isinstance(accept, bool):
        return MerchantAnswer(None, error="no_decision", latency_ms=latency_ms)
    code = doc.get("result_code")
    return MerchantAnswer(accept, result_code=code if isinstance(code, str) else None, latency_ms=latency_ms)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
