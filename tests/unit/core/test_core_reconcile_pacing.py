"""Paced, concurrent reconciliation (`core.payments.pacing.Pacer`, `core.payments.reconcile.Reconciler`).

Everything runs on fake time: `VirtualTime.sleep` parks a coroutine until `VirtualTime.run` moves
the clock to its wake-up time, so "50 queries at 10 per second" is proven in milliseconds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from mpesa_bridge.core.payments.entity import Payment
from mpesa_bridge.core.payments.pacing import Pacer
from mpesa_bridge.core.payments.policy import ReconcilePolicy
from mpesa_bridge.core.payments.reconcile import Reconciler
from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.core.ports import QueryAnswer, QueryPending
from mpesa_bridge.core.projects import DarajaAccount, DarajaEnvironment, Tenant
from tests.fixtures.memory import MemoryDatabase

T = TypeVar("T")
START = datetime(2024, 7, 1, 9, 0, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Fake time
# ---------------------------------------------------------------------------------------------


class VirtualTime:
    """A monotonic clock, a wall clock (`now`, a `Clock`) and a sleep, all on fake seconds."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return self.elapsed

    def now(self) -> datetime:
        return START + timedelta(seconds=self.elapsed)

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.elapsed + max(seconds, 0.0), next(self._order), future))
        await future

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Drive `awaitable` to its end: let everything runnable run, then wake the earliest sleeper."""
        task = asyncio.ensure_future(awaitable)
        while True:
            for _ in range(50):  # in-memory fakes: a few loop turns take every task to its next sleep
                await asyncio.sleep(0)
            if task.done():
                return task.result()
            assert self._sleepers, "nothing sleeps and nothing finishes: a deadlock"
            wake, _, future = heapq.heappop(self._sleepers)
            self.elapsed = max(self.elapsed, wake)
            future.set_result(None)


# ---------------------------------------------------------------------------------------------
# Pacer
# ---------------------------------------------------------------------------------------------


async def _starts(time: VirtualTime, pacer: Pacer, count: int) -> list[float]:
    starts = []
    for _ in range(count):
        await pacer.wait()
        starts.append(time.elapsed)
    return starts


async def test_calls_start_one_interval_apart() -> None:
    time = VirtualTime()
    pacer = Pacer(10.0, monotonic=time.monotonic, sleep=time.sleep)

    starts = await time.run(_starts(time, pacer, 10))

    assert starts == pytest.approx([i / 10 for i in range(10)])


async def test_concurrent_callers_get_slots_in_the_order_they_asked() -> None:
    time = VirtualTime()
    pacer = Pacer(4.0, monotonic=time.monotonic, sleep=time.sleep)
    started: list[tuple[int, float]] = []

    async def caller(n: int) -> None:
        await pacer.wait()
        started.append((n, time.elapsed))

    await time.run(asyncio.gather(*(caller(n) for n in range(5))))

    assert started == [(n, pytest.approx(n * 0.25)) for n in range(5)]


async def test_no_burst_after_an_idle_spell() -> None:
    time = VirtualTime()
    pacer = Pacer(10.0, monotonic=time.monotonic, sleep=time.sleep)

    async def scenario() -> list[float]:
        first = await _starts(time, pacer, 1)
        await time.sleep(5.0)  # idle: no tokens pile up
        return first + await _starts(time, pacer, 3)

    assert await time.run(scenario()) == pytest.approx([0.0, 5.0, 5.1, 5.2])


async def test_a_late_wake_up_does_not_slow_the_rate_down() -> None:
    time = VirtualTime()

    async def oversleep(seconds: float) -> None:
        await time.sleep(seconds + 0.03)  # a busy event loop wakes sleepers late

    pacer = Pacer(10.0, monotonic=time.monotonic, sleep=oversleep)

    starts = await time.run(_starts(time, pacer, 10))

    assert starts[-1] == pytest.approx(0.93)  # slots stay on the schedule: 0.9 + one late wake-up


def test_the_schedule_trails_the_clock_by_at_most_catch_up() -> None:
    clock = [0.0]
    pacer = Pacer(10.0, catch_up=0.1, monotonic=lambda: clock[0])

    def reserve_at(at: float, count: int) -> list[float]:
        clock[0] = at
        return [round(pacer.reserve(), 6) for _ in range(count)]

    assert reserve_at(0.0, 2) == [0.0, 0.1]  # callers line up
    assert reserve_at(0.25, 2) == [0.0, 0.05]  # 0.05 s behind (a late wake-up): the missed slot is used
    assert reserve_at(0.55, 2) == [0.0, 0.1]  # 0.15 s behind (a stall): start afresh, no burst
    assert reserve_at(5.0, 2) == [0.0, 0.1]  # idle: likewise


@pytest.mark.parametrize("rate", [0.0, -1.0, math.nan, math.inf])
def test_the_rate_must_be_a_positive_number(rate: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer(rate)


def test_a_fractional_rate() -> None:
    assert Pacer(0.5).interval == 2.0


# ---------------------------------------------------------------------------------------------
# An in-memory database, Daraja and projects
# ---------------------------------------------------------------------------------------------


class FakeDb(MemoryDatabase):
    """The shared in-memory ports (`tests/fixtures/memory.py`), with a disk that can be slow or fail."""

    def __init__(self, payments: Sequence[Payment]) -> None:
        super().__init__(payments)
        self.write_sizes: list[int] = []  # payments per answer-writing transaction
        self.broken: set[str] = set()  # payments whose write fails
        self.write_takes: Callable[[float], Awaitable[None]] | None = None  # a slow disk: writes take time
        self.lock_hook = self._locking

    async def _locking(self, verb: str, ids: Sequence[str]) -> None:
        if verb != "payments.lock_many":
            return
        self.write_sizes.append(len(ids))
        if self.write_takes:
            await self.write_takes(0.05)
        if self.broken & set(ids):
            raise RuntimeError("a database error")

    @property
    def items(self) -> dict[str, Payment]:
        """The committed payments, by id."""
        return self.committed.payments


class FakeDaraja:
    """Answers every STK Query "paid" after `latency` fake seconds, and records who asked when."""

    def __init__(self, time: VirtualTime, db: FakeDb, *, latency: float = 0.0, pending: bool = False) -> None:
        self._time = time
        self._db = db
        self._latency = latency
        self._pending = pending
        self.crash_on: set[str] = set()
        self.started: list[tuple[float, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.during_a_transaction = 0

    async def stk_query(self, account: DarajaAccount, checkout_request_id: str) -> QueryAnswer:
        self.started.append((self._time.elapsed, checkout_request_id))
        if asyncio.current_task() in self._db.open_in:
            self.during_a_transaction += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self._time.sleep(self._latency)
        finally:
            self.in_flight -= 1
        if checkout_request_id in self.crash_on:
            raise RuntimeError("an unexpected failure")
        if self._pending:
            raise QueryPending("The transaction is being processed")
        return QueryAnswer("0", "The service request is processed successfully.")


class FakeProjects:
    def __init__(self) -> None:
        self.broken: set[str] = set()

    async def account(self, tenant: Tenant) -> DarajaAccount:
        if tenant.project_id in self.broken:
            raise LookupError("no Daraja settings")
        return DarajaAccount(DarajaEnvironment.SANDBOX, "key", "secret", "174379", "passkey")


def make_payment(n: int, *, project_id: str = "prj_01test") -> Payment:
    created = START - timedelta(seconds=60)
    return Payment(
        id=f"pay_{n:05d}",
        project_id=project_id,
        mode="test",
        status=PaymentStatus.PENDING,
        amount=10,
        phone=f"2547{n:08d}",
        account_reference="INV",
        description="Payment",
        metadata={},
        business_short_code="174379",
        party_b="174379",
        transaction_type="CustomerPayBillOnline",
        daraja_environment="sandbox",
        callback_token_hash=f"hash{n}",
        created_at=created,
        updated_at=created,
        merchant_request_id=f"mr_{n}",
        checkout_request_id=f"ws_CO_{n:05d}",
        next_query_at=START,  # due now: its callback never came
    )


class World:
    def __init__(self, count: int, *, rate: float = 10.0, latency: float = 0.0, batch: int | None = None) -> None:
        self.time = VirtualTime()
        self.db = FakeDb([make_payment(n) for n in range(count)])
        self.daraja = FakeDaraja(self.time, self.db, latency=latency)
        self.projects = FakeProjects()
        self.rate, self.batch = rate, batch

    def reconciler(self, *, hold: float = 120.0) -> Reconciler:
        pacer = Pacer(self.rate, monotonic=self.time.monotonic, sleep=self.time.sleep)
        return Reconciler(
            self.db,  # type: ignore[arg-type]
            self.daraja,
            self.projects,  # type: ignore[arg-type]
            self.time,
            ReconcilePolicy(),
            self.batch,
            pacer=pacer,
            hold=hold,
        )

    def statuses(self) -> set[PaymentStatus]:
        return {p.status for p in self.db.items.values()}


# ---------------------------------------------------------------------------------------------
# Reconciler
# ---------------------------------------------------------------------------------------------


async def test_fifty_queries_at_ten_per_second_are_paced_and_run_concurrently() -> None:
    world = World(50, rate=10.0, latency=1.0)  # each query takes 1 s: one after another, 50 s

    report = await world.time.run(world.reconciler().run_once())

    starts = [at for at, _ in world.daraja.started]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert report.queried == report.settled == 50 and report.errors == 0
    assert world.statuses() == {PaymentStatus.SUCCEEDED}
    assert starts[-1] - starts[0] >= 4.9 - 1e-9  # the rate limit holds: 49 intervals of 0.1 s
    assert min(gaps) == pytest.approx(0.1)
    assert world.time.elapsed == pytest.approx(4.9 + 1.0)  # the rate, not the round trips, set the pace
    assert 10 <= world.daraja.max_in_flight <= 11  # 1 s of latency at 10 per second (± the one ending)
    assert world.daraja.during_a_transaction == 0  # no transaction is open during a Daraja call
    assert not report.full


async def test_queries_go_earliest_due_first_and_each_payment_once() -> None:
    world = World(5, rate=100.0)
    for n, payment in enumerate(world.db.items.values()):
        payment.next_query_at = START - timedelta(seconds=n)  # pay_00004 has waited longest

    await world.time.run(world.reconciler().run_once())

    assert [cid for _, cid in world.daraja.started] == [f"ws_CO_{n:05d}" for n in (4, 3, 2, 1, 0)]


async def test_a_full_batch_tells_the_loop_more_is_due() -> None:
    world = World(30, rate=100.0, batch=20)
    reconciler = world.reconciler()

    first = await world.time.run(reconciler.run_once())
    second = await world.time.run(reconciler.run_once())

    assert (first.queried, first.full) == (20, True)
    assert (second.queried, second.full) == (10, False)


def test_the_batch_holds_about_two_seconds_of_queries_and_at_least_100() -> None:
    assert World(0, rate=250.0).reconciler()._batch == 500
    assert World(0, rate=20.0).reconciler()._batch == 100
    assert World(0, rate=0.5).reconciler()._batch == 100


async def test_claimed_payments_are_held_past_their_slot_while_queried() -> None:
    world = World(3, rate=10.0, batch=100)
    held_at: dict[str, datetime | None] = {}
    query = world.daraja.stk_query

    async def watching(account: DarajaAccount, checkout_request_id: str) -> QueryAnswer:
        payment = next(p for p in world.db.items.values() if p.checkout_request_id == checkout_request_id)
        held_at[payment.id] = payment.next_query_at
        return await query(account, checkout_request_id)

    world.daraja.stk_query = watching  # type: ignore[method-assign]

    await world.time.run(world.reconciler(hold=60.0).run_once())

    # While its query runs, each payment is claimed: 100 slots of 0.1 s, plus the hold.
    assert len(held_at) == 3 and set(held_at.values()) == {START + timedelta(seconds=10 + 60)}
    assert all(p.next_query_at is None for p in world.db.items.values())  # settled: never queried again


async def test_two_passes_at_once_never_query_a_payment_twice() -> None:
    world = World(40, rate=20.0, latency=0.5, batch=25)
    one, two = world.reconciler(), world.reconciler()

    async def both() -> None:
        await asyncio.gather(one.run_once(), two.run_once(), one.run_once(), two.run_once())

    await world.time.run(both())

    asked = [cid for _, cid in world.daraja.started]
    assert sorted(asked) == sorted(p.checkout_request_id for p in world.db.items.values())
    assert len(asked) == len(set(asked)) == 40


async def test_a_failure_is_counted_and_the_pass_goes_on() -> None:
    world = World(4, rate=10.0)
    world.daraja.crash_on.add("ws_CO_00001")

    report = await world.time.run(world.reconciler(hold=60.0).run_once())

    crashed = world.db.items["pay_00001"]
    assert report.settled == 3 and report.errors == 1
    assert [type(e) for e in report.failures] == [RuntimeError]
    assert crashed.status is PaymentStatus.PENDING
    assert crashed.next_query_at == START + timedelta(seconds=10 + 60)  # due again after the hold


async def test_a_project_without_daraja_settings_is_counted_and_left_claimed() -> None:
    world = World(2, rate=10.0)
    world.db.items["pay_00000"].project_id = "prj_broken"
    world.projects.broken.add("prj_broken")

    report = await world.time.run(world.reconciler().run_once())

    assert report.errors == 1 and report.settled == 1
    assert world.db.items["pay_00000"].status is PaymentStatus.PENDING
    assert [cid for _, cid in world.daraja.started] == ["ws_CO_00001"]


async def test_a_still_processing_answer_schedules_the_next_query_after_the_backoff() -> None:
    world = World(2, rate=10.0)
    world.daraja._pending = True

    report = await world.time.run(world.reconciler().run_once())

    assert report.queried == 2 and report.settled == 0
    for payment in world.db.items.values():
        assert payment.status is PaymentStatus.PENDING and payment.query_attempts == 1
        assert payment.next_query_at is not None
        assert payment.next_query_at - world.time.now() <= timedelta(seconds=15)  # backoff, not the hold


async def test_cancelling_a_pass_lets_started_queries_finish() -> None:
    world = World(10, rate=10.0, latency=0.05)
    reconciler = world.reconciler()

    async def cancel_midway() -> None:
        task = asyncio.ensure_future(reconciler.run_once())
        await world.time.sleep(0.35)  # four queries have started
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    await world.time.run(cancel_midway())

    settled = [p for p in world.db.items.values() if p.status is PaymentStatus.SUCCEEDED]
    assert len(world.daraja.started) == len(settled) == 4


async def test_answers_that_arrive_while_a_write_runs_share_the_next_transaction() -> None:
    world = World(50, rate=100.0, latency=0.2)
    world.db.write_takes = world.time.sleep  # each write takes 0.05 s: five answers arrive meanwhile

    report = await world.time.run(world.reconciler().run_once())

    assert report.settled == 50 and world.statuses() == {PaymentStatus.SUCCEEDED}
    assert sum(world.db.write_sizes) == 50
    assert len(world.db.write_sizes) <= 15 and max(world.db.write_sizes) >= 4  # group commit
    assert world.daraja.during_a_transaction == 0


async def test_answers_trickling_in_are_written_one_by_one_without_waiting() -> None:
    world = World(5, rate=1.0)  # one a second, written at once: nothing waits for a batch to fill

    await world.time.run(world.reconciler().run_once())

    assert world.db.write_sizes == [1, 1, 1, 1, 1]


async def test_a_write_that_fails_is_retried_payment_by_payment() -> None:
    world = World(20, rate=100.0, latency=0.2)
    world.db.write_takes = world.time.sleep
    world.db.broken.add("pay_00007")

    report = await world.time.run(world.reconciler(hold=60.0).run_once())

    broken = world.db.items["pay_00007"]
    assert report.settled == 19 and report.errors == 1 and len(report.failures) == 1
    assert broken.status is PaymentStatus.PENDING
    assert broken.next_query_at == START + timedelta(seconds=200 / 100 + 60)  # still held: due again later
    assert {p.status for p in world.db.items.values() if p is not broken} == {PaymentStatus.SUCCEEDED}
