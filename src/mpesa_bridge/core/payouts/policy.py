"""The payout timings and limits, as data (the settings fill it in; tests pass their own)."""

from __future__ import annotations

from dataclasses import dataclass

DARAJA_MIN_AMOUNT = 10  # daraja.md 7.1: B2C min KES 10, max 250,000 per transaction
DARAJA_MAX_AMOUNT = 250_000


@dataclass(frozen=True)
class PayoutPolicy:
    """- `max_amount` / `daily_limit`: defaults for a project that set none (shillings; `daily_limit`
      counts every payout created that Africa/Nairobi day that is not failed or rejected).
    - `send_grace`: seconds a payout may stay `sending` (or `queued`/`approved`) before the
      reconciler decides its process died: `sending` becomes `unknown`; a ready one is sent.
    - `result_wait`: seconds to wait for the Result of a `sent` payout before asking Transaction Status.
    - `query_backoff`: seconds between Transaction Status queries of one payout (the last repeats).
    - `not_found_limit`: "no such transaction" answers, spaced by the backoff, before an unknown
      payout is declared failed (a request Daraja never received cannot pay).
    - `version`: "v3" (with our OriginatorConversationID) or "v1"."""

    max_amount: int = 150_000
    daily_limit: int = 1_000_000
    send_grace: float = 120.0
    result_wait: float = 300.0
    query_backoff: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0)
    not_found_limit: int = 3
    version: str = "v3"

    def backoff(self, attempt: int) -> float:
        steps = self.query_backoff or (60.0,)
        return steps[min(attempt, len(steps) - 1)]
