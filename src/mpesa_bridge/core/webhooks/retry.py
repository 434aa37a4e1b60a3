"""When a failed delivery is tried again, and when it is given up: the schedule as data.

With the defaults, the attempts of a delivery that keeps failing come this long after the first
(before jitter):

    #1 0   #2 5 s   #3 35 s   #4 2 min 35 s   #5 12 min 35 s   #6 42 min 35 s   #7 1 h 42 min
    #8 3 h 42 min   #9 7 h 42 min   #10 15 h 42 min   #11 27 h 42 min   #12 39 h 42 min
    #13 51 h 42 min   #14 63 h 42 min   #15 72 h (the window's end: the last try)

Each delay is stretched or shrunk by up to `jitter` (±10 %) so that endpoints coming back from an
outage are not hit by every delivery at once; the try that would fall past the window is moved
to the window's end, so the last try is always three days after the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_DELAYS: tuple[float, ...] = (
    5.0,
    30.0,
    120.0,
    600.0,
    1_800.0,
    3_600.0,
    7_200.0,
    14_400.0,
    28_800.0,
    43_200.0,  # then every 12 hours
)


@dataclass(frozen=True)
class RetryPolicy:
    """`delays[n]` follows the (n+1)-th failed attempt; the last delay repeats.

    `window` is how long after its first attempt a delivery is still tried, and how long an
    endpoint must fail without one success before it is disabled.
    """

    delays: tuple[float, ...] = DEFAULT_DELAYS
    window: float = 3 * 86_400.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if not self.delays or min(self.delays) <= 0:
            raise ValueError("retry delays must be positive")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def delay(self, failed_attempts: int, rand: float) -> float:
        """Seconds to wait after `failed_attempts` (≥ 1) failures; `rand` in [0, 1) picks the jitter."""
        base = self.delays[min(failed_attempts, len(self.delays)) - 1]
        return base * (1 + self.jitter * (2 * rand - 1))

    def next_attempt(
        self, failed_attempts: int, first_attempt_at: datetime, now: datetime, rand: Callable[[], float]
    ) -> datetime | None:
        """When to try again after a failure at `now`, or None: the window is over, give up."""
        deadline = first_attempt_at + timedelta(seconds=self.window)
        if now >= deadline:
            return None
        due = now + timedelta(seconds=self.delay(failed_attempts, rand()))
        return min(due, deadline)

    def endpoint_exhausted(self, failing_since: datetime | None, now: datetime) -> bool:
        """True when an endpoint has failed, without a single success, for the whole window."""
        return failing_since is not None and now - failing_since >= timedelta(seconds=self.window)
