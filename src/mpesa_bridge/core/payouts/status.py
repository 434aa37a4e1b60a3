"""Payout statuses and the transition table, as one pure function.

    pending_approval ──► approved ──┐
          │                         ├──► sending ──► sent ──► succeeded | failed
          └──► rejected   queued ───┘       │          │
                                            │          └──► unknown ──► succeeded | failed
                                            ├──► failed            (Daraja refused it, or it never left)
                                            ├──► unknown           (the answer was lost: read timeout)
                                            └──► succeeded | failed (the Result came before the answer)

`sending` is committed BEFORE the B2C request leaves, so a crash between sending and recording
Daraja's answer leaves `sending`, which the reconciler turns `unknown` and settles by Transaction
Status — a payout is never sent twice. A queue timeout is not a verdict either: `unknown` too.
`succeeded`, `failed` and `rejected` are final; the one correction allowed is `failed` →
`succeeded` when stronger evidence shows the money moved (never hidden), flagged for a person.
"""

from __future__ import annotations

from enum import StrEnum


class PayoutStatus(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    UNKNOWN = "unknown"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in FINAL

    @property
    def was_sent(self) -> bool:
        """Whether a B2C request may have left for this payout (so money may have moved)."""
        return self in MAYBE_SENT


FINAL = frozenset({PayoutStatus.SUCCEEDED, PayoutStatus.FAILED, PayoutStatus.REJECTED})
# Waiting to be sent: the only states a B2C request may be started from.
READY = frozenset({PayoutStatus.QUEUED, PayoutStatus.APPROVED})
MAYBE_SENT = frozenset(
    {PayoutStatus.SENDING, PayoutStatus.SENT, PayoutStatus.UNKNOWN, PayoutStatus.SUCCEEDED, PayoutStatus.FAILED}
)
# Counted against the daily limit: every payout that is or may become money out.
COMMITTED = frozenset(set(PayoutStatus) - {PayoutStatus.REJECTED, PayoutStatus.FAILED})

_TRANSITIONS: dict[PayoutStatus, frozenset[PayoutStatus]] = {
    PayoutStatus.PENDING_APPROVAL: frozenset({PayoutStatus.APPROVED, PayoutStatus.REJECTED}),
    PayoutStatus.APPROVED: frozenset({PayoutStatus.SENDING}),
    PayoutStatus.QUEUED: frozenset({PayoutStatus.SENDING}),
    PayoutStatus.SENDING: frozenset(
        {PayoutStatus.SENT, PayoutStatus.UNKNOWN, PayoutStatus.SUCCEEDED, PayoutStatus.FAILED}
    ),
    PayoutStatus.SENT: frozenset({PayoutStatus.UNKNOWN, PayoutStatus.SUCCEEDED, PayoutStatus.FAILED}),
    PayoutStatus.UNKNOWN: frozenset({PayoutStatus.SUCCEEDED, PayoutStatus.FAILED}),
    PayoutStatus.FAILED: frozenset({PayoutStatus.SUCCEEDED}),  # a late correction, flagged
    PayoutStatus.SUCCEEDED: frozenset(),
    PayoutStatus.REJECTED: frozenset(),
}


def can_transition(current: PayoutStatus, new: PayoutStatus) -> bool:
    """The whole state machine: may a payout in `current` move to `new`?"""
    return new in _TRANSITIONS[current]


def is_correction(current: PayoutStatus, new: PayoutStatus) -> bool:
    """A final payout changed by later evidence: only failed -> succeeded, and a person is told."""
    return current is PayoutStatus.FAILED and new is PayoutStatus.SUCCEEDED
