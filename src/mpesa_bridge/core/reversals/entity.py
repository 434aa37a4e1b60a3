"""The reversal entity: one attempt to give a succeeded payment's money back (Daraja Reversal).

    sending ──► sent ──► succeeded | failed
       │          │
       │          └──► unknown ──► succeeded | failed      (a Result, Transaction Status, or a person)
       ├──► failed       (Daraja refused it, or it was never sent: nothing moved)
       └──► unknown      (sent, but Daraja's answer was lost; or stranded by a crash while sending)

A reversal moves money, and Daraja has no idempotency key for it: `sending` is committed before
the request goes out, and a read timeout, a crash while sending or a queue timeout makes it
`unknown` — never sent again. Only Daraja's Result, a settlement by Transaction Status
(`core.reversals.reconcile`: asked by the OriginatorConversationID Daraja gave us, so only for a
reversal whose synchronous answer we recorded) or a person moves an `unknown` reversal on. A payment has at most one
reversal that is open or succeeded: a second is refused while one is in flight or done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

REVERSAL = "reversal"
ID_PREFIX = "rev"


class ReversalStatus(StrEnum):
    SENDING = "sending"
    SENT = "sent"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"

    @property
    def is_final(self) -> bool:
        return self in (ReversalStatus.SUCCEEDED, ReversalStatus.FAILED)


# A payment with a reversal in one of these may not be reversed again.
BLOCKING_STATUSES = frozenset(
    {ReversalStatus.SENDING, ReversalStatus.SENT, ReversalStatus.UNKNOWN, ReversalStatus.SUCCEEDED}
)


class ReversalEventType:
    PAYMENT_REVERSED = "payment.reversed"  # subject: the payment (its object shows the reversal)
    FAILED = "reversal.failed"  # subject: the reversal

    ALL = (PAYMENT_REVERSED, FAILED)


@dataclass(eq=False)
class Reversal:
    """A reversal of the whole amount of a succeeded payment; times aware UTC, money whole shillings."""

    id: str
    project_id: str
    mode: str
    payment_id: str
    status: ReversalStatus
    amount: int
    original_receipt: str  # the payment's M-Pesa receipt: Daraja's TransactionID to reverse
    short_code: str  # the short code that received the payment (ReceiverParty)
    daraja_environment: str
    callback_token_hash: str  # SHA-256 of the token in its ResultURL and QueueTimeOutURL
    remarks: str
    created_at: datetime
    updated_at: datetime
    conversation_id: str | None = None
    originator_conversation_id: str | None = None
    receipt: str | None = None  # the reversal's own M-Pesa receipt (the Result's TransactionID)
    result_code: str | None = None
    result_desc: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    sent_at: datetime | None = None
    completed_at: datetime | None = None
    # Settlement by Transaction Status (core.reversals.reconcile), possible once the
    # OriginatorConversationID is known: when to ask next, how often we asked, "no such transaction" answers.
    next_query_at: datetime | None = None
    query_attempts: int = 0
    not_found_count: int = 0


# Reversal ResultCodes (daraja.md §11) -> our failure codes.
FAILURE_CODES = {
    "R000001": "already_reversed",
    "R000002": "original_transaction_invalid",
    "1": "insufficient_balance",
    "11": "short_code_inactive",
    "21": "initiator_not_allowed",
    "2001": "initiator_invalid",
    "2006": "account_status",
    "2028": "not_permitted",
    "8006": "initiator_locked",
}


def failure_code_for(result_code: str) -> str:
    return FAILURE_CODES.get(result_code, "reversal_failed")
