"""Reversal reconciliation: ask Transaction Status about reversals whose outcome we do not know.

A reversal is due when it is `unknown` (a queue timeout, or a `sent` one that was marked so) or
`sent` with no Result after `result_wait`, its OriginatorConversationID is known, and its
`next_query_at` has come. The pass claims a batch (moving `next_query_at` past a hold, so two
processes never ask about one reversal at once), asks about each by its OriginatorConversationID,
and plans the next question on the backoff. The Result arrives at the `status_result` callback and
settles the reversal there (`core.reversals.settle.settle_by_status`), in the inbox's transaction.
Asking moves no money; a reversal is never sent again. One whose synchronous answer was lost (no
OriginatorConversationID) cannot be named to Daraja: it stays `unknown` for a person.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.payouts.policy import PayoutPolicy
from mpesa_bridge.core.ports import UnitOfWorkFactory
from mpesa_bridge.core.reversals.entity import Reversal
from mpesa_bridge.core.reversals.settle import next_query


class ReversalStatusAsker(Protocol):
    """Sends a Transaction Status query about a reversal (`StatusQueryService.ask_for_reversal`)."""

    async def ask_for_reversal(self, reversal: Reversal) -> object: ...


class ReversalReconciler:
    def __init__(
        self,
        db: UnitOfWorkFactory,
        queries: ReversalStatusAsker,
        clock: Clock,
        policy: PayoutPolicy,
        *,
        batch: int = 50,
        hold: float = 120.0,
    ) -> None:
        self._db = db
        self._queries = queries
        self._clock = clock
        self._policy = policy
        self.batch = batch
        self._hold = hold

    async def run_once(self) -> int:
        """One pass; how many reversals were asked about."""
        now = self._clock.now()
        async with self._db.write() as uow:
            ids = await uow.reversals.claim_due_for_query(now, self.batch, now + timedelta(seconds=self._hold))
        asked = 0
        for reversal_id in ids:
            async with self._db.read() as uow:
                reversal = await uow.reversals.find(reversal_id)
            if reversal is None or reversal.status.is_final or not reversal.originator_conversation_id:
                continue
            await self._queries.ask_for_reversal(reversal)
            asked += 1
            at = self._clock.now()
            async with self._db.write() as uow:
                locked = await uow.reversals.lock(reversal_id)
                if locked is None or locked.status.is_final:
                    continue
                next_query(locked, at, self._policy)
                await uow.reversals.save(locked)
        return asked
