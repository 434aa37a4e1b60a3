"""Timing rules for settling payments, as data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class ReconcilePolicy:
    """When to ask Daraja about a payment whose callback has not come, and when to give up.

    Daraja throttles STK Query (spike arrest), so we wait `query_delay` after the push, then back
    off along `backoff`, repeating its last step. A pending payment is expired only after
    `max_age` and a last query that still says "being processed".

    That expiry is our own verdict, and Daraja does not retry a lost callback: the customer may
    have paid. So for `after_expiry` seconds after it the payment is still queried, along
    `after_expiry_backoff` (its last step repeats, the last query comes at the window's end).
    """

    query_delay: float = 60.0
    max_age: float = 600.0
    backoff: tuple[float, ...] = (15.0, 30.0, 60.0)
    unknown_backoff: tuple[float, ...] = (60.0, 300.0, 900.0)
    push_grace: float = 120.0  # a pending payment with no CheckoutRequestID after this became unknown
    match_window: float = 86_400.0  # how late a callback may adopt an unknown payment
    after_expiry: float = 86_400.0  # 0 turns the re-checks off
    after_expiry_backoff: tuple[float, ...] = (300.0, 900.0, 1800.0, 3600.0, 7200.0, 14_400.0)

    def next_delay(self, attempts: int, *, unknown: bool = False) -> float:
        steps = self.unknown_backoff if unknown else self.backoff
        return steps[min(attempts, len(steps) - 1)]

    def next_recheck(self, expired_at: datetime, attempts: int, now: datetime) -> datetime | None:
        """When to query a payment expired on our own timeout again; None once its window is over."""
        end = expired_at + timedelta(seconds=self.after_expiry)
        if now >= end:
            return None
        step = self.after_expiry_backoff[min(attempts, len(self.after_expiry_backoff) - 1)]
        return min(now + timedelta(seconds=step), end)


@dataclass(frozen=True)
class GuardPolicy:
    """Refusals before a push, so a customer never gets two prompts by accident.

    `duplicate_window`: an open payment with the same phone, amount and reference in the same
    project refuses a second one (`duplicate_in_flight`) — a double click, a retry without an
    Idempotency-Key. `phone_window`: any open push to the same phone on the same shortcode refuses
    another (`phone_busy`): Daraja locks the subscriber for about a minute anyway (reference §19.8),
    and a clear answer beats its "Unable to lock subscriber". 0 turns a guard off.
    """

    duplicate_window: float = 600.0
    phone_window: float = 120.0
