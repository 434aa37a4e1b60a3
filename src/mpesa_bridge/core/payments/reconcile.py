"""Settling payments whose callback has not come: STK Query, backoff, and expiry.

No lost callback may leave a payment pending forever:
- a pending payment with a CheckoutRequestID is queried after `query_delay`, then with backoff;
- past `max_age`, a query that still says "being processed" expires it (our verdict, the weakest
  evidence — a late success callback still corrects it); a query that cannot be answered at all
  turns it `unknown`, and unknown payments keep being queried, more slowly;
- Daraja does not retry a lost callback, so a payment expired on our own timeout is still queried
  for `after_expiry` seconds on a slow backoff: a success found so is a late correction, flagged
  like a late success callback; any other answer, or the window's end, stops the queries;
- a pending payment that never got a CheckoutRequestID (we crashed, or Daraja never answered the
  push) turns `unknown` after `push_grace`: there is nothing to query, and a callback that
  arrives for it later is still matched through its callback token.

A backlog (thousands of lost callbacks) is worked off at the configured query rate: `Reconciler`
claims what is due, paces its queries (`pacing.Pacer`), runs them concurrently and writes their
answers in shared transactions, so neither a query's round trip nor a commit per payment sets the pace.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mpesa_bridge.core.accounts import ProjectService
from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.group_commit import GroupCommit
from mpesa_bridge.core.payments.entity import Payment
from mpesa_bridge.core.payments.outcomes import Outcome, flag_payment, mark_unknown, record_outcome
from mpesa_bridge.core.payments.pacing import Pacer
from mpesa_bridge.core.payments.policy import ReconcilePolicy
from mpesa_bridge.core.payments.result_codes import classify_result, normalise_code
from mpesa_bridge.core.payments.status import Evidence, PaymentStatus, Verdict, query_may_correct
from mpesa_bridge.core.ports import (
    DarajaGateway,
    QueryAnswer,
    QueryClaim,
    QueryFailed,
    QueryPending,
    UnitOfWork,
    UnitOfWorkFactory,
)
from mpesa_bridge.core.projects import DarajaAccount, Mode, Tenant

DEFAULT_QUERY_RATE = 20.0  # STK Queries per second per process (MPESA_BRIDGE_RECONCILE_QUERY_RATE)


@dataclass
class ReconcileReport:
    queried: int = 0
    settled: int = 0
    corrected: int = 0  # of those settled, final payments a query showed paid: late corrections, flagged
    expired: int = 0
    marked_unknown: int = 0
    errors: int = 0
    full: bool = False  # the pass claimed a whole batch: more may be due, so the next one starts at once
    failures: list[Exception] = field(default_factory=list)  # unexpected errors, for the worker to log

    def counts(self) -> dict[str, int | bool]:
        return {name: value for name, value in vars(self).items() if name != "failures"}


async def settle_by_query(
    db: UnitOfWorkFactory,
    daraja: DarajaGateway,
    account: DarajaAccount,
    payment_id: str,
    clock: Clock,
    policy: ReconcilePolicy,
    report: ReconcileReport | None = None,
) -> None:
    """Query Daraja about one payment and apply the answer. No transaction is open during the call."""
    report = report or ReconcileReport()
    async with db.read() as uow:
        payment = await uow.payments.find(payment_id)
    if payment is None or payment.checkout_request_id is None:
        return
    answered = await _ask(daraja, account, payment_id, payment.checkout_request_id, report)
    await _write(db, [answered], clock, policy, report)


@dataclass(frozen=True)
class _Answered:
    """What STK Query said about one payment: an answer, "still processing", or nothing usable."""

    payment_id: str
    answer: QueryAnswer | None
    pending: bool = False


async def _ask(
    daraja: DarajaGateway, account: DarajaAccount, payment_id: str, checkout_request_id: str, report: ReconcileReport
) -> _Answered:
    try:
        answer = await daraja.stk_query(account, checkout_request_id)
    except QueryPending:
        return _Answered(payment_id, None, pending=True)
    except QueryFailed:
        report.errors += 1
        return _Answered(payment_id, None)
    finally:
        report.queried += 1
    return _Answered(payment_id, answer)


async def _write(
    db: UnitOfWorkFactory, batch: Sequence[_Answered], clock: Clock, policy: ReconcilePolicy, report: ReconcileReport
) -> None:
    """Apply answers in one transaction; the counts reach `report` only once it committed."""
    now = clock.now()
    done = ReconcileReport()
    async with db.write() as uow:
        payments = {p.id: p for p in await uow.payments.lock_many([a.payment_id for a in batch])}
        for answered in batch:
            payment = payments.get(answered.payment_id)
            if payment is not None:  # payments are never deleted
                await _apply(uow, payment, answered, now, policy, done)
        await uow.payments.save_many(list(payments.values()))
    report.settled += done.settled
    report.corrected += done.corrected
    report.expired += done.expired
    report.marked_unknown += done.marked_unknown


async def _apply(
    uow: UnitOfWork,
    payment: Payment,
    answered: _Answered,
    now: datetime,
    policy: ReconcilePolicy,
    report: ReconcileReport,
) -> None:
    if answered.answer is not None:
        verdict = await _apply_answer(uow, payment, answered.answer, now)
        report.settled += 1
        if verdict is Verdict.CORRECT:
            report.corrected += 1
        return
    if not payment.status.is_final and _too_old(payment, now, policy):
        await _give_up(uow, payment, pending=answered.pending, now=now, report=report)
    _schedule(payment, now, policy)


async def _apply_answer(uow: UnitOfWork, payment: Payment, answer: QueryAnswer, now: datetime) -> Verdict | None:
    status, reason = classify_result(answer.result_code)
    if payment.awaiting_confirmation:
        return await _confirm(uow, payment, status, answer, now)
    outcome = Outcome(
        status,
        Evidence.DARAJA_ANSWER,
        reason,
        result_code=normalise_code(answer.result_code),
        result_desc=answer.result_desc,
    )
    return await record_outcome(uow, payment, outcome, now)


async def _confirm(
    uow: UnitOfWork, payment: Payment, status: PaymentStatus, answer: QueryAnswer, now: datetime
) -> Verdict | None:
    """Confirm-by-query: the held success callback and Daraja's answer must agree."""
    payment.awaiting_confirmation = False
    if status is PaymentStatus.SUCCEEDED:
        outcome = Outcome(
            PaymentStatus.SUCCEEDED,
            Evidence.CALLBACK,
            "paid",
            result_code=payment.result_code,
            result_desc=payment.result_desc,
            receipt=payment.mpesa_receipt_number,
            transaction_date=payment.transaction_date,
            source="callback+query",
        )
        return await record_outcome(uow, payment, outcome, now)
    # They disagree: never declare it paid, never hide a receipt — a person decides.
    await mark_unknown(uow, payment, "confirmation_disagrees", now)
    flag_payment(payment, "confirmation_disagrees", now)
    payment.next_query_at = None
    return None


async def _give_up(uow: UnitOfWork, payment: Payment, *, pending: bool, now: datetime, report: ReconcileReport) -> None:
    if payment.awaiting_confirmation:
        # A success callback is held: never expire it; without a confirming answer, it is unknown.
        payment.awaiting_confirmation = False
        if await mark_unknown(uow, payment, "confirmation_unavailable", now):
            flag_payment(payment, "confirmation_unavailable", now)
            report.marked_unknown += 1
        return
    if pending:
        # Daraja still says "being processed" after max_age: the prompt is long dead.
        outcome = Outcome(PaymentStatus.EXPIRED, Evidence.OWN_TIMEOUT, "no_response", result_desc=None)
        await record_outcome(uow, payment, outcome, now)
        payment.query_attempts = 0  # the re-checks after expiry follow their own schedule from its start
        report.expired += 1
    elif await mark_unknown(uow, payment, "query_unavailable", now):
        report.marked_unknown += 1


def _too_old(payment: Payment, now: datetime, policy: ReconcilePolicy) -> bool:
    return now - payment.created_at >= timedelta(seconds=policy.max_age)


def _schedule(payment: Payment, now: datetime, policy: ReconcilePolicy) -> None:
    if payment.status.is_final:
        _recheck_later(payment, now, policy)
        return
    delay = policy.next_delay(payment.query_attempts, unknown=payment.status is PaymentStatus.UNKNOWN)
    payment.query_attempts += 1
    if payment.status is PaymentStatus.PENDING:
        # Never schedule past max_age by much: the expiring query must come on time.
        deadline = payment.created_at + timedelta(seconds=policy.max_age)
        payment.next_query_at = min(now + timedelta(seconds=delay), max(deadline, now))
    else:
        payment.next_query_at = now + timedelta(seconds=delay)
    payment.updated_at = now


def _recheck_later(payment: Payment, now: datetime, policy: ReconcilePolicy) -> None:
    """A final payment is queried again only while a success could still correct it (our own expiry)."""
    expired_at = payment.completed_at or payment.updated_at
    due = policy.next_recheck(expired_at, payment.query_attempts, now) if _rechecked(payment) else None
    payment.next_query_at = due
    if due is not None:
        payment.query_attempts += 1
    elif payment.awaiting_confirmation:
        # A success callback came after the expiry and no query confirmed it in time: a person decides.
        payment.awaiting_confirmation = False
        flag_payment(payment, "confirmation_unavailable", now)


def _rechecked(payment: Payment) -> bool:
    return query_may_correct(payment.status, payment.evidence) and payment.checkout_request_id is not None


class Reconciler:
    """One pass over what is due; the worker calls `run_once` again at once while passes come back full.

    A pass claims up to `batch` due payments (their next query moves `hold` seconds past the last
    one's pacing slot, so no other pass or process queries them meanwhile, and a crash leaves them
    due again), then starts their queries one `pacer` slot apart and lets them run concurrently:
    the Daraja rate, not a query's round trip, sets the pace. Answers are written as they come, all
    that arrived while the previous write ran in one transaction (group commit): at a high rate a
    transaction carries many, at a low rate each goes alone. `batch` defaults to about
    `PASS_SECONDS` of queries at the pacer's rate, and never fewer than 100.
    """

    PASS_SECONDS = 2.0
    WRITE_BATCH = 100  # answers per transaction, at most

    def __init__(
        self,
        db: UnitOfWorkFactory,
        daraja: DarajaGateway,
        projects: ProjectService,
        clock: Clock,
        policy: ReconcilePolicy,
        batch: int | None = None,
        *,
        pacer: Pacer | None = None,
        hold: float = 120.0,
    ) -> None:
        self._db = db
        self._daraja = daraja
        self._projects = projects
        self._clock = clock
        self._policy = policy
        self._pacer = pacer or Pacer(DEFAULT_QUERY_RATE)
        self._batch = batch or max(100, math.ceil(self.PASS_SECONDS * self._pacer.rate))
        self._hold = hold
        self._running: set[asyncio.Task[None]] = set()

    async def run_once(self) -> ReconcileReport:
        report = ReconcileReport()
        now = self._clock.now()
        await self._strand_unanswered(now, report)
        hold_until = now + timedelta(seconds=self._batch * self._pacer.interval + self._hold)
        async with self._db.write() as uow:
            claims = list(await uow.payments.claim_due_for_query(now, self._batch, hold_until))
        report.full = len(claims) >= self._batch
        writer = self._writer(report)
        queries: list[asyncio.Task[None]] = []
        try:
            for claim in claims:
                await self._pacer.wait()
                queries.append(self._start(self._query(claim, report, writer)))
        finally:
            # Cancelled mid-pass, the queries already started still finish and are written: a write
            # is never cut off, and the payments not started yet are due again when their hold ends.
            if queries:
                await asyncio.wait(queries)
            await writer.flush()
        return report

    def _start(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._running.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._running.discard)
        return task

    def _writer(self, report: ReconcileReport) -> GroupCommit[_Answered]:
        """Answers are written as they come: all that arrived while the last write ran, at once."""

        async def failed(_: _Answered, exc: Exception) -> None:
            # One payment's trouble holds back no other; it stays claimed, due again when its hold ends.
            report.errors += 1
            report.failures.append(exc)

        async def write(batch: Sequence[_Answered]) -> None:
            await _write(self._db, batch, self._clock, self._policy, report)

        return GroupCommit(write, max_batch=self.WRITE_BATCH, on_failure=failed, start=self._start)

    async def _query(self, claim: QueryClaim, report: ReconcileReport, writer: GroupCommit[_Answered]) -> None:
        # A payment whose query goes wrong stays claimed: it is due again when its hold runs out.
        try:
            account = await self._projects.account(Tenant(claim.project_id, Mode(claim.mode)))
        except Exception:
            report.errors += 1
            return
        try:
            answered = await _ask(self._daraja, account, claim.payment_id, claim.checkout_request_id, report)
        except Exception as exc:  # an unexpected failure of one query must not end the pass
            report.errors += 1
            report.failures.append(exc)
            return
        writer.put(answered)

    async def _strand_unanswered(self, now: datetime, report: ReconcileReport) -> None:
        before = now - timedelta(seconds=self._policy.push_grace)
        async with self._db.write() as uow:
            for payment_id in await uow.payments.stranded(before, self._batch):
                payment = await uow.payments.lock(payment_id)
                if payment is not None and await mark_unknown(uow, payment, "push_unanswered", now):
                    payment.next_query_at = None
                    await uow.payments.save(payment)
                    report.marked_unknown += 1
