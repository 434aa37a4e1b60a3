"""When a stored callback whose handling failed is tried again, and when it is given up.

Whatever Daraja sends is judged without failing: applied, a duplicate, flagged, or `malformed`.
A failure is ours (a bug, a database error, a lost connection), so it is retried a few times,
close together, and then left `failed` for a person — never retried for ever, because a row that
fails on every attempt must not hold the inbox's attention from the callbacks behind it.

With the defaults (10 attempts, 10 s doubling, at most an hour apart) the attempts of a callback
that keeps failing come this long after the first:

    #2 10 s   #3 30 s   #4 1 min 10 s   #5 2 min 30 s   #6 5 min 10 s   #7 10 min 30 s
    #8 21 min 10 s   #9 42 min 30 s   #10 1 h 25 min 10 s, then `failed`
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mpesa_bridge.core.payments.entity import InboundCallback

FAILED = "failed"


@dataclass(frozen=True)
class InboxRetryPolicy:
    """`max_attempts` tries in all; after the n-th failure wait `first_delay * 2**(n-1)`, at most `max_delay`."""

    max_attempts: int = 10
    first_delay: float = 10.0
    max_delay: float = 3_600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("a callback is tried at least once")
        if not 0 < self.first_delay <= self.max_delay:
            raise ValueError("retry delays must be positive, the first no longer than the longest")

    def next_attempt(self, failed_attempts: int, now: datetime) -> datetime | None:
        """When to try again after `failed_attempts` (≥ 1) failures, the last at `now`; None: give up."""
        if failed_attempts >= self.max_attempts:
            return None
        delay = min(self.first_delay * 2 ** min(failed_attempts - 1, 62), self.max_delay)
        return now + timedelta(seconds=delay)


def record_failure(callback: InboundCallback, error: str, at: datetime, policy: InboxRetryPolicy) -> bool:
    """Count one failed attempt on a `received` callback; True when it is given up (now `failed`).

    Call it in a transaction of its own, on the row locked afresh: the transaction that failed is
    rolled back, and the attempt it counted with it. `error` is a stable code (an exception's class
    name), never a message, which could hold what the callback or the database said.
    """
    callback.attempts += 1
    callback.last_error = error[:64]
    retry_at = policy.next_attempt(callback.attempts, at)
    if retry_at is None:
        callback.state = FAILED
        callback.processed_at = at
        return True
    callback.next_attempt_at = retry_at
    return False
