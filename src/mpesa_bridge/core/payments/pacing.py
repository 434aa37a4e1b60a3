"""Pacing calls to Daraja: at most `rate` a second, evenly spaced.

Daraja refuses callers above their TPS with `500.003.02 Spike Arrest Violation` (reference §19.11:
"use a client-side token bucket per API"). A spike arrest smooths its limit into one call per
1/rate interval, so a burst can be refused even while the per-second count is within the rate:
the pacer therefore spaces calls one interval apart and lets no burst build up.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

Monotonic = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Pacer:
    """Lets callers start at most `rate` times per second, one `interval` apart.

    `wait()` reserves the next free slot and sleeps until it, so concurrent callers line up in the
    order they asked and may then run at the same time. Slots are fixed on the schedule, not on the
    moment a sleeper wakes, so a sleeper woken late does not slow the rate down — but the schedule
    never trails the clock by more than `catch_up` seconds: after an idle spell, or when the process
    itself cannot keep up, the missed slots are dropped instead of being spent in one burst (at most
    `catch_up` seconds' worth of calls go out back to back). The clock and the sleep are injected so
    tests can run on fake time.
    """

    def __init__(
        self,
        rate: float,
        *,
        catch_up: float = 0.1,
        monotonic: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not rate > 0 or math.isinf(rate):
            raise ValueError(f"a pacing rate must be a positive number of calls per second, not {rate!r}")
        self.rate = rate
        self.interval = 1.0 / rate
        self._catch_up = max(catch_up, 0.0)
        self._monotonic = monotonic
        self._sleep = sleep
        self._next = -math.inf  # the earliest moment the next call may start

    def reserve(self) -> float:
        """Take the next slot; return how many seconds from now it starts (0: at once)."""
        now = self._monotonic()
        # On schedule, or a little behind it (a sleeper woke late): keep to the schedule. Further
        # behind (idle, or this process cannot keep up): start afresh from now, no burst.
        start = self._next if self._next >= now - self._catch_up else now
        self._next = start + self.interval
        return max(start - now, 0.0)

    async def wait(self) -> None:
        """Sleep until this caller's slot."""
        delay = self.reserve()
        if delay > 0:
            await self._sleep(delay)
