"""What the simulator sends to merchants' URLs, as Safaricom does: STK callbacks, initiator Results
and C2B validations and confirmations go out through one `Outbound` each.

An `Outbound` holds the HTTP client (made at the first post: no proxies from the environment —
Safaricom posts straight to the merchant — and one CA bundle load per process) and the background
tasks that post, which `drain` waits for and `aclose` cancels before closing the client.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


@functools.cache
def tls() -> ssl.SSLContext:
    """One CA bundle load per process, shared by every simulator's client."""
    return httpx.create_ssl_context(trust_env=False)


class Outbound:
    def __init__(self, timeout: float, http: httpx.AsyncClient | None = None) -> None:
        """`http`: a client the caller owns (tests route it in-process); else one is made and closed here."""
        self._timeout = timeout
        self._http = http
        self._owns_http = http is None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout, trust_env=False, verify=tls())
        return self._http

    def spawn(
        self, work: Coroutine[Any, Any, T], name: str, done: Callable[[asyncio.Task[T]], None] | None = None
    ) -> asyncio.Task[T]:
        """Run `work` in the background until it ends or `aclose`; `done(task)` once it has ended."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if done is not None:
            task.add_done_callback(done)
        return task

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - the public test API takes seconds
        """Wait until every task has finished; TimeoutError after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while pending := [task for task in self._tasks if not task.done()]:
                await asyncio.wait(pending)

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None
