"""An expiry on the bridge's own timeout is re-checked by STK Query for a bounded window.

`ReconcilePolicy.next_recheck` is the schedule (pure, time passed in); the Reconciler tests run it
on the in-memory database and fake time of `test_core_reconcile_pacing`, with a scripted Daraja.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from mpesa_bridge.core.payments.entity import EventType, Payment
from mpesa_bridge.core.payments.pacing import Pacer
from mpesa_bridge.core.payments.policy import ReconcilePolicy
from mpesa_bridge.core.payments.reconcile import Reconciler, ReconcileReport
from mpesa_bridge.core.payments.status import Evidence, PaymentStatus, query_may_correct
from mpesa_bridge.core.ports import QueryAnswer, QueryFailed, QueryPending
from mpesa_bridge.core.projects import DarajaAccount
from tests.unit.core.test_core_reconcile_pacing import START, FakeDb, FakeProjects, VirtualTime, make_payment

HOUR = 3600.0
DAY = 86_400.0

# --- the schedule ---------------------------------------------------------------------------------


def schedule(policy: ReconcilePolicy, expired_at: datetime) -> list[float]:
    """Seconds after the expiry of every re-check, each query made exactly when it is due."""
    offsets: list[float] = []
    now = expired_at
    while (due := policy.next_recheck(expired_at, len(offsets), now)) is not None:
        offsets.append((due - expired_at).total_seconds())
        now = due
    return offsets


def test_the_default_window_is_a_day_at_growing_intervals_ending_with_a_query_at_its_end() -> None:
    policy = ReconcilePolicy()

    offsets = schedule(policy, START)

    assert policy.after_expiry == DAY
    assert policy.after_expiry_backoff == (300.0, 900.0, 1800.0, 3600.0, 7200.0, 14_400.0)
    assert offsets == [
        300.0,  # 5 min
        1200.0,  # 20 min
        3000.0,  # 50 min
        6600.0,  # 1 h 50 min
        13_800.0,  # 3 h 50 min
        28_200.0,  # 7 h 50 min, then every 4 h
        42_600.0,
        57_000.0,
        71_400.0,
        85_800.0,
        DAY,  # the last step is cut to the window's end: one last query at 24 h
    ]


def test_after_the_window_nothing_is_due_however_few_queries_were_made() -> None:
    policy = ReconcilePolicy()

    assert policy.next_recheck(START, 0, START + timedelta(seconds=DAY)) is None
    assert policy.next_recheck(START, 3, START + timedelta(seconds=DAY + 1)) is None
    assert policy.next_recheck(START, 0, START + timedelta(seconds=DAY - 1)) == START + timedelta(seconds=DAY)


def test_a_zero_window_turns_the_re_checks_off() -> None:
    assert ReconcilePolicy(after_expiry=0.0).next_recheck(START, 0, START) is None


def test_custom_steps_repeat_their_last() -> None:
    policy = ReconcilePolicy(after_expiry=100.0, after_expiry_backoff=(10.0, 30.0))

    assert schedule(policy, START) == [10.0, 40.0, 70.0, 100.0]


@pytest.mark.parametrize(
    ("status", "evidence", "may_correct"),
    [
        (PaymentStatus.EXPIRED, Evidence.OWN_TIMEOUT, True),  # our own verdict: the weakest
        (PaymentStatus.EXPIRED, Evidence.DARAJA_ANSWER, False),  # Daraja said 1019: definitive
        (PaymentStatus.EXPIRED, Evidence.CALLBACK, False),
        (PaymentStatus.FAILED, Evidence.DARAJA_ANSWER, False),
        (PaymentStatus.CANCELLED, Evidence.CALLBACK, False),
        (PaymentStatus.SUCCEEDED, Evidence.DARAJA_ANSWER, False),
        (PaymentStatus.PENDING, None, False),  # open payments follow the usual schedule
        (PaymentStatus.UNKNOWN, None, False),
    ],
)
def test_only_a_final_status_a_query_could_still_correct_is_re_checked(
    status: PaymentStatus, evidence: Evidence | None, may_correct: bool
) -> None:
    assert query_may_correct(status, evidence) is may_correct


# --- the reconciler ---------------------------------------------------------------------------------

PENDING = "pending"  # "The transaction is being processed"
NO_ANSWER = "no_answer"  # the query itself failed


class ScriptedDaraja:
    """Answers STK Queries from a script, one entry per query; the last entry repeats."""

    def __init__(self, *script: str) -> None:
        self._script = list(script)
        self.asked = 0

    async def stk_query(self, account: DarajaAccount, checkout_request_id: str) -> QueryAnswer:
        answer = self._script[min(self.asked, len(self._script) - 1)]
        self.asked += 1
        if answer == PENDING:
            raise QueryPending("The transaction is being processed")
        if answer == NO_ANSWER:
            raise QueryFailed("no answer")
        return QueryAnswer(answer, "The service request is processed successfully." if answer == "0" else "no")


class Expiry:
    """One payment whose callback never comes, a reconciler, and fake time to move."""

    def __init__(self, *script: str, policy: ReconcilePolicy | None = None) -> None:
        self.time = VirtualTime()
        payment = make_payment(1)
        payment.created_at = START - timedelta(seconds=600)  # at max_age: the next query decides
        self.db = FakeDb([payment])
        self._payment_id = payment.id
        self.daraja = ScriptedDaraja(*script)
        pacer = Pacer(100.0, monotonic=self.time.monotonic, sleep=self.time.sleep)
        self.reconciler = Reconciler(
            self.db,  # type: ignore[arg-type]
            self.daraja,
            FakeProjects(),  # type: ignore[arg-type]
            self.time,
            policy or ReconcilePolicy(),
            pacer=pacer,
        )

    @property
    def payment(self) -> Payment:
        """The payment as committed (a test sets a field on it to set the scene)."""
        return self.db.items[self._payment_id]

    async def run(self) -> ReconcileReport:
        return await self.time.run(self.reconciler.run_once())

    async def run_at(self, seconds_after_expiry: float) -> ReconcileReport:
        self.time.elapsed = seconds_after_expiry
        return await self.run()

    async def follow(self, limit: int = 50) -> list[float]:
        """Run each query when it is due until none is; the offsets (from START) they ran at."""
        offsets: list[float] = []
        while self.payment.next_query_at is not None and len(offsets) < limit:
            offsets.append((self.payment.next_query_at - START).total_seconds())
            await self.run_at(offsets[-1])
        return offsets

    def events(self) -> Sequence[tuple[str, bool]]:
        return [(e.type, e.late_correction) for e in self.db.events]

    def due_in(self) -> float | None:
        at = self.payment.next_query_at
        return None if at is None else (at - self.time.now()).total_seconds()


def expired_on_our_timeout(payment: Payment) -> bool:
    return payment.status is PaymentStatus.EXPIRED and payment.evidence is Evidence.OWN_TIMEOUT


async def test_an_expiry_on_our_own_timeout_schedules_the_first_re_check() -> None:
    world = Expiry(PENDING)

    await world.run()

    assert expired_on_our_timeout(world.payment) and world.payment.failure_code == "no_response"
    assert not world.payment.needs_attention
    assert world.payment.query_attempts == 1  # the re-check schedule starts at its first step
    assert world.due_in() == 300.0
    assert world.events() == [(EventType.EXPIRED, False)]


async def test_a_re_check_that_finds_the_money_corrects_the_payment_like_a_late_callback() -> None:
    world = Expiry(PENDING, PENDING, "0")

    await world.run()  # expires
    await world.run_at(300)  # still being processed
    report = await world.run_at(1200)  # paid

    payment = world.payment
    assert payment.status is PaymentStatus.SUCCEEDED and payment.evidence is Evidence.DARAJA_ANSWER
    assert payment.needs_attention and payment.attention_reason == "late_success"
    assert payment.failure_code is None and payment.result_code == "0"
    assert payment.next_query_at is None
    assert world.events() == [(EventType.EXPIRED, False), (EventType.SUCCEEDED, True)]
    correction = world.db.evidence[-1]
    assert (correction.source, correction.verdict) == ("query", "correct")
    assert correction.note == "late correction: stronger evidence shows the money moved"
    assert world.daraja.asked == 3
    assert (report.settled, report.corrected) == (1, 1)  # the pass's log line counts it


async def test_re_checks_back_off_then_stop_at_the_end_of_the_window() -> None:
    world = Expiry(PENDING, NO_ANSWER, PENDING)

    await world.run()
    offsets = await world.follow()

    assert offsets == [300.0, 1200.0, 3000.0, 6600.0, 13_800.0, 28_200.0, 42_600.0, 57_000.0, 71_400.0, 85_800.0, DAY]
    assert world.daraja.asked == 1 + 11  # the expiring query, then eleven re-checks
    assert expired_on_our_timeout(world.payment) and not world.payment.needs_attention
    assert world.events() == [(EventType.EXPIRED, False)]  # nothing changed, nothing announced
    await world.run_at(DAY + HOUR)
    assert world.daraja.asked == 12  # never asked again


async def test_a_re_check_that_runs_late_after_the_window_is_the_last() -> None:
    world = Expiry(PENDING)

    await world.run()
    await world.run_at(DAY + 5)  # the reconciler was down for a day

    assert world.daraja.asked == 2 and world.payment.next_query_at is None


async def test_a_definitive_non_success_on_a_re_check_is_recorded_and_ends_the_re_checks() -> None:
    world = Expiry(PENDING, "1032")

    await world.run()
    await world.run_at(300)

    assert expired_on_our_timeout(world.payment) and not world.payment.needs_attention
    assert world.payment.next_query_at is None
    assert world.db.evidence[-1].verdict == "record"
    assert world.events() == [(EventType.EXPIRED, False)]


async def test_an_expiry_that_daraja_answered_is_never_queried_again() -> None:
    world = Expiry("1019")  # Daraja itself says the prompt expired

    await world.run()
    await world.run_at(HOUR)

    assert world.payment.status is PaymentStatus.EXPIRED
    assert world.payment.evidence is Evidence.DARAJA_ANSWER
    assert world.payment.next_query_at is None and world.daraja.asked == 1


async def test_re_checks_can_be_turned_off() -> None:
    world = Expiry(PENDING, policy=ReconcilePolicy(after_expiry=0.0))

    await world.run()

    assert expired_on_our_timeout(world.payment) and world.payment.next_query_at is None


async def test_a_late_success_callback_held_for_confirmation_is_flagged_if_no_re_check_confirms_it() -> None:
    world = Expiry(PENDING, PENDING, policy=ReconcilePolicy(after_expiry=600.0))
    await world.run()
    # A confirm-by-query project: the late success callback is held and the reconciler asked at once.
    world.payment.awaiting_confirmation = True
    world.payment.next_query_at = world.time.now()

    await world.run()
    await world.follow()

    assert world.payment.status is PaymentStatus.EXPIRED and not world.payment.awaiting_confirmation
    assert world.payment.needs_attention and world.payment.attention_reason == "confirmation_unavailable"


async def test_a_late_success_callback_held_for_confirmation_is_confirmed_by_a_re_check() -> None:
    world = Expiry(PENDING, "0")
    await world.run()
    world.payment.awaiting_confirmation = True  # as core.callbacks.stk holds it, receipt kept
    world.payment.mpesa_receipt_number = "SKL1234567"
    world.payment.next_query_at = world.time.now()

    report = await world.run()

    payment = world.payment
    assert payment.status is PaymentStatus.SUCCEEDED and payment.mpesa_receipt_number == "SKL1234567"
    assert payment.needs_attention and payment.attention_reason == "late_success"
    assert report.corrected == 1 and payment.next_query_at is None
    assert (world.db.evidence[-1].source, world.db.evidence[-1].verdict) == ("callback+query", "correct")
    assert world.events() == [(EventType.EXPIRED, False), (EventType.SUCCEEDED, True)]
