"""Settling payments whose callback has not come: STK Query, backoff, and expiry.

No lost callback may leave a payment pending forever:
- a pending payment with a CheckoutRequestID is queried after `query_delay`, then with backoff;
- past `max_age`, a query that still says "being processed" expires it (our verdict, the weakest
  evidence — a late success callback still corrects it); a query that cannot be answered at all
  turns it `unknown`, and unknown payments keep being queried, more slowly;
- a pending payment that never got a CheckoutRequestID (we crashed, or Daraja never answered the
  push) turns `unknown` after `push_grace`: there is nothing to query, and a callback that
  arrives for it later is still matched through its callback token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mpesa_bridge.core.accounts import ProjectService
from mpesa_bridge.core.clock import Clock
from mpesa_bridge.core.payments.entity import Payment
from mpesa_bridge.core.payments.outcomes import Outcome, flag_payment, mark_unknown, record_outcome
from mpesa_bridge.core.payments.policy import ReconcilePolicy
from mpesa_bridge.core.payments.result_codes import classify_result, normalise_code
from mpesa_bridge.core.payments.status import Evidence, PaymentStatus
from mpesa_bridge.core.ports import (
    DarajaGateway,
    QueryAnswer,
    QueryFailed,
    QueryPending,
    UnitOfWork,
    UnitOfWorkFactory,
)
from mpesa_bridge.core.projects import DarajaAccount, Mode, Tenant


@dataclass
class ReconcileReport:
    queried: int = 0
    settled: int = 0
    expired: int = 0
    marked_unknown: int = 0
    errors: int = 0


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
    answer: QueryAnswer | None = None
    pending = False
    try:
        answer = await daraja.stk_query(account, payment.checkout_request_id)
    except QueryPending:
        pending = True
    except QueryFailed:
        report.errors += 1
    report.queried += 1
    now = clock.now()
    async with db.write() as uow:
        fresh = await uow.payments.lock(payment_id)
        if fresh is None:  # pragma: no cover - payments are never deleted
            return
        if answer is not None:
            await _apply_answer(uow, fresh, answer, now)
            report.settled += 1
        elif fresh.status.is_final:
            return
        elif _too_old(fresh, now, policy):
            await _give_up(uow, fresh, pending=pending, now=now, report=report)
            _schedule(fresh, now, policy)
        else:
            _schedule(fresh, now, policy)


async def _apply_answer(uow: UnitOfWork, payment: Payment, answer: QueryAnswer, now: datetime) -> None:
    status, reason = classify_result(answer.result_code)
    if payment.awaiting_confirmation:
        await _confirm(uow, payment, status, answer, now)
        return
    outcome = Outcome(
        status,
        Evidence.DARAJA_ANSWER,
        reason,
        result_code=normalise_code(answer.result_code),
        result_desc=answer.result_desc,
    )
    await record_outcome(uow, payment, outcome, now)


async def _confirm(
    uow: UnitOfWork, payment: Payment, status: PaymentStatus, answer: QueryAnswer, now: datetime
) -> None:
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
        await record_outcome(uow, payment, outcome, now)
        return
    # They disagree: never declare it paid, never hide a receipt — a person decides.
    await mark_unknown(uow, payment, "confirmation_disagrees", now)
    flag_payment(payment, "confirmation_disagrees", now)
    payment.next_query_at = None


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
        report.expired += 1
    elif await mark_unknown(uow, payment, "query_unavailable", now):
        report.marked_unknown += 1


def _too_old(payment: Payment, now: datetime, policy: ReconcilePolicy) -> bool:
    return now - payment.created_at >= timedelta(seconds=policy.max_age)


def _schedule(payment: Payment, now: datetime, policy: ReconcilePolicy) -> None:
    if payment.status.is_final:
        payment.next_query_at = None
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


class Reconciler:
    """One pass over everything due; the worker calls `run_once` on an interval."""

    def __init__(
        self,
        db: UnitOfWorkFactory,
        daraja: DarajaGateway,
        projects: ProjectService,
        clock: Clock,
        policy: ReconcilePolicy,
        batch: int = 100,
    ) -> None:
        self._db = db
        self._daraja = daraja
        self._projects = projects
        self._clock = clock
        self._policy = policy
        self._batch = batch

    async def run_once(self) -> ReconcileReport:
        report = ReconcileReport()
        now = self._clock.now()
        await self._strand_unanswered(now, report)
        async with self._db.read() as uow:
            due = list(await uow.payments.due_for_query(now, self._batch))
        for payment_id in due:
            async with self._db.read() as uow:
                payment = await uow.payments.find(payment_id)
            if payment is None:
                continue
            tenant = Tenant(payment.project_id, Mode(payment.mode))
            try:
                account = await self._projects.account(tenant)
            except Exception:
                report.errors += 1
                continue
            await settle_by_query(self._db, self._daraja, account, payment_id, self._clock, self._policy, report)
        return report

    async def _strand_unanswered(self, now: datetime, report: ReconcileReport) -> None:
        before = now - timedelta(seconds=self._policy.push_grace)
        async with self._db.write() as uow:
            for payment_id in await uow.payments.stranded(before, self._batch):
                payment = await uow.payments.lock(payment_id)
                if payment is not None and await mark_unknown(uow, payment, "push_unanswered", now):
                    payment.next_query_at = None
                    report.marked_unknown += 1
