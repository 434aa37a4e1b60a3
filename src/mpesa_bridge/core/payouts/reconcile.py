"""Payout reconciliation: what a pass does, and nothing else (the loop is `workers.payouts`).

1. A payout `sending` for longer than `send_grace` was being sent by a process that died (or
   never heard back): it becomes `unknown` — never sent again.
2. A payout `queued`/`approved` for longer than `send_grace` was recorded by a process that died
   before sending: it is sent now (the move to `sending` is conditional, so only one sender wins).
3. A payout `unknown` (or `sent` with no Result after `result_wait`) whose query is due is asked
   about by Transaction Status (by its OriginatorConversationID); the Result settles it
   asynchronously (`core.payouts.settle`), and another query follows on the backoff if none comes.
   A query whose Result never comes is given up later (`failed`, `no_result`,
   `core.result_deadline`) without touching the payout: this pass reads the payout's
   `next_query_at`, never a query's status, so the payout is asked about again all the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.payouts.policy import PayoutPolicy
from mpesa_bridge.core.payouts.service import PayoutService, mark_unknown
from mpesa_bridge.core.payouts.settle import next_query
from mpesa_bridge.core.payouts.status import READY, PayoutStatus
from mpesa_bridge.core.ports import UnitOfWorkFactory
from mpesa_bridge.core.status_queries.service import StatusQueryService


@dataclass
class PayoutReport:
    stranded: int = 0
    sent: int = 0
    queried: int = 0
    failures: list[BaseException] = field(default_factory=list)
    full: bool = False

    def counts(self) -> dict[str, int]:
        return {"stranded": self.stranded, "sent": self.sent, "queried": self.queried, "errors": len(self.failures)}


class PayoutReconciler:
    def __init__(
        self,
        db: UnitOfWorkFactory,
        payouts: PayoutService,
        queries: StatusQueryService,
        clock: Clock,
        policy: PayoutPolicy,
        *,
        batch: int = 50,
        hold: float = 120.0,
    ) -> None:
        self._db = db
        self._payouts = payouts
        self._queries = queries
        self._clock = clock
        self._policy = policy
        self._batch = batch
        self._hold = hold

    async def run_once(self) -> PayoutReport:
        report = PayoutReport()
        await self._unstrand(report)
        await self._send_ready(report)
        await self._query_due(report)
        return report

    async def _unstrand(self, report: PayoutReport) -> None:
        now = self._clock.now()
        before = now - timedelta(seconds=self._policy.send_grace)
        async with self._db.write() as uow:
            for payout_id in await uow.payouts.stale([PayoutStatus.SENDING], before, self._batch):
                payout = await uow.payouts.lock(payout_id)
                if payout is None or payout.status is not PayoutStatus.SENDING:
                    continue
                if await mark_unknown(uow, payout, "no_answer_recorded", now, self._policy):
                    payout.next_query_at = now  # ask at once: it may have been a while
                    report.stranded += 1
                await uow.payouts.save(payout)

    async def _send_ready(self, report: PayoutReport) -> None:
        before = self._clock.now() - timedelta(seconds=self._policy.send_grace)
        async with self._db.read() as uow:
            ids = await uow.payouts.stale(sorted(READY), before, self._batch)
        for payout_id in ids:
            try:
                payout = await self._payouts.send(payout_id)
            except Exception as exc:  # one payout's trouble never stops the pass
                report.failures.append(exc)
                continue
            if payout.status is not PayoutStatus.QUEUED and payout.status is not PayoutStatus.APPROVED:
                report.sent += 1

    async def _query_due(self, report: PayoutReport) -> None:
        now = self._clock.now()
        async with self._db.write() as uow:
            ids = await uow.payouts.claim_due_for_query(now, self._batch, now + timedelta(seconds=self._hold))
        report.full = len(ids) >= self._batch
        for payout_id in ids:
            try:
                await self._query_one(payout_id)
            except Exception as exc:
                report.failures.append(exc)
                continue
            report.queried += 1

    async def _query_one(self, payout_id: str) -> None:
        async with self._db.read() as uow:
            payout = await uow.payouts.find(payout_id)
        if payout is None or payout.status.is_final or not payout.originator_conversation_id:
            return
        await self._queries.ask_for_payout(payout)
        now = self._clock.now()
        async with self._db.write() as uow:
            locked = await uow.payouts.lock(payout_id)
            if locked is None or locked.status.is_final:
                return
            next_query(locked, now, self._policy)
            await uow.payouts.save(locked)
