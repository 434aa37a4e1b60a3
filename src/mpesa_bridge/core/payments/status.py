"""Payment statuses, evidence ranks and the transition table.

    pending ──► succeeded | failed | cancelled | expired
       │
       └──► unknown ──► succeeded | failed | cancelled | expired

`unknown` means we could not learn Daraja's answer to our push (read timeout, 5xx after
sending, a crash between recording and sending). A final state may later be *corrected* only
towards `succeeded`, only by stronger evidence than the one that set it: money that really
moved must never be hidden, and a state set by a callback never changes.

A reversal (`core.reversals`) is not a status: it is a second money movement, the other way, with
its own aggregate and states. A reversed payment stays `succeeded` (the collection happened and its
evidence stands; `decide()` is unchanged) and shows `reversal_id` and `reversed_at`; only a
`succeeded` payment with a receipt can be reversed, and at most once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class PaymentStatus(StrEnum):
    PENDING = "pending"
    UNKNOWN = "unknown"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.CANCELLED, PaymentStatus.EXPIRED}
)
OPEN_STATUSES = frozenset({PaymentStatus.PENDING, PaymentStatus.UNKNOWN})


class Evidence(IntEnum):
    """How much a piece of evidence about a payment's outcome is worth; higher beats lower."""

    OWN_TIMEOUT = 1  # our verdict: Daraja never answered in time
    DARAJA_ANSWER = 2  # Daraja's synchronous answer: an STK Query result or a refused push
    CALLBACK = 3  # Safaricom's callback for this CheckoutRequestID


class Verdict(StrEnum):
    """What to do with a new observation of a payment's outcome."""

    APPLY = "apply"  # open payment reaches a final state
    CORRECT = "correct"  # a weaker final non-success becomes succeeded: late correction, flagged
    CONFIRM = "confirm"  # same outcome, stronger evidence: keep status, record the better evidence
    DUPLICATE = "duplicate"  # same outcome, no stronger evidence: nothing changes
    RECORD = "record"  # a different non-success that hides no money: recorded only
    CONFLICT = "conflict"  # contradicts a settled state: recorded and flagged, never applied


@dataclass(frozen=True)
class Observation:
    """An outcome reported for a payment, with the evidence it came from."""

    status: PaymentStatus
    evidence: Evidence

    def __post_init__(self) -> None:
        if not self.status.is_final:
            raise ValueError(f"an observation reports a final status, not {self.status}")


# Transitions that do not come from an outcome observation.
_OPEN_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.PENDING: frozenset({PaymentStatus.UNKNOWN}),
    PaymentStatus.UNKNOWN: frozenset(),
}


def can_mark_unknown(current: PaymentStatus) -> bool:
    return PaymentStatus.UNKNOWN in _OPEN_TRANSITIONS.get(current, frozenset())


def decide(current: PaymentStatus, current_evidence: Evidence | None, obs: Observation) -> Verdict:
    """The whole state machine for outcomes, as one pure function (see the module docstring)."""
    if not current.is_final:
        return Verdict.APPLY
    held = current_evidence or Evidence.OWN_TIMEOUT
    if obs.status is current:
        return Verdict.CONFIRM if obs.evidence > held else Verdict.DUPLICATE
    if held is Evidence.CALLBACK or current is PaymentStatus.SUCCEEDED:
        return Verdict.CONFLICT
    if obs.status is PaymentStatus.SUCCEEDED:
        return Verdict.CORRECT if obs.evidence > held else Verdict.CONFLICT
    return Verdict.RECORD


def query_may_correct(current: PaymentStatus, evidence: Evidence | None) -> bool:
    """A final status that an STK Query answer of success would still correct.

    Only the bridge's own timeout verdict (an `expired` after "being processed") is that weak, so
    only such a payment is worth asking Daraja about again once it is final.
    """
    success = Observation(PaymentStatus.SUCCEEDED, Evidence.DARAJA_ANSWER)
    return current.is_final and decide(current, evidence, success) is Verdict.CORRECT
