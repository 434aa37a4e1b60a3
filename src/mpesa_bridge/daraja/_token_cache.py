"""A process-wide store of Daraja OAuth tokens with single-flight refresh."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = ["AccessToken", "TokenCache", "TokenFetcher", "TokenKey"]

TokenKey = tuple[str, str]
"""(base_url, consumer_key): a token minted for one environment is rejected by the other."""


@dataclass(frozen=True)
class AccessToken:
    """An OAuth bearer token and its lifetime in seconds, as Daraja reported it."""

    value: str = field(repr=False)
    expires_in: int


TokenFetcher = Callable[[], Awaitable[AccessToken]]


@dataclass
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    token: str | None = None
    refresh_at: float = 0.0
    finished_fetches: int = 0
    last_error: Exception | None = None


class TokenCache:
    """OAuth tokens shared by every `DarajaClient` of a process, keyed by `TokenKey`.

    A token is reused until fewer than `refresh_margin` seconds of its lifetime remain. Concurrent
    callers that need a new token wait on one per-key lock, so a burst of requests costs exactly
    one OAuth call (Daraja's FAQ says each new token may invalidate the previous one, so a
    stampede would also make the tokens fight each other).

    `clock` returns monotonic seconds; tests inject a fake one to move time.
    """

    def __init__(self, *, refresh_margin: float = 120.0, clock: Callable[[], float] = time.monotonic) -> None:
        if refresh_margin < 0:
            raise ValueError("refresh_margin must not be negative")
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._slots: dict[TokenKey, _Slot] = {}

    async def get(self, key: TokenKey, fetch: TokenFetcher) -> str:
        """The current token for `key`, calling `fetch` (once, whoever asks) when it is due."""
        slot = self._slots.get(key) or self._slots.setdefault(key, _Slot())
        if (token := self._fresh(slot)) is not None:
            return token
        finished_before = slot.finished_fetches
        async with slot.lock:
            # Double-checked: whoever held the lock before us may have refreshed already.
            if (token := self._fresh(slot)) is not None:
                return token
            if slot.finished_fetches != finished_before and slot.last_error is not None:
                # The fetch we queued behind just failed; share its error rather than have every
                # waiter hit OAuth in turn (200 waiters x a 5 s connect timeout adds up).
                raise slot.last_error
            return await self._refresh(slot, fetch)

    def invalidate(self, key: TokenKey, token: str) -> None:
        """Forget `token` if it is still the current one for `key` (a newer token is kept)."""
        slot = self._slots.get(key)
        if slot is not None and slot.token == token:
            slot.token = None

    def _fresh(self, slot: _Slot) -> str | None:
        if slot.token is not None and self._clock() < slot.refresh_at:
            return slot.token
        return None

    async def _refresh(self, slot: _Slot, fetch: TokenFetcher) -> str:
        started = self._clock()
        try:
            token = await fetch()
        except Exception as exc:  # not BaseException: a cancelled fetch must not cancel the waiters
            slot.last_error = exc
            slot.finished_fetches += 1
            raise
        slot.last_error = None
        slot.finished_fetches += 1
        slot.token = token.value
        slot.refresh_at = started + token.expires_in - self._margin_for(token.expires_in)
        return token.value

    def _margin_for(self, expires_in: int) -> float:
        # A token shorter-lived than the margin would never count as fresh; keep half its life.
        return min(self._refresh_margin, max(expires_in, 0) / 2)
