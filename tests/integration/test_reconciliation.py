"""Reconciliation with an injected clock: lost callbacks, expiry, late corrections, stranded pushes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from mpesa_bridge.config import Settings
from mpesa_bridge.core.clock import ManualClock
from mpesa_bridge.core.payments.entity import Payment
from mpesa_bridge.core.payments.pacing import Pacer
from mpesa_bridge.core.payments.reconcile import Reconciler
from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.core.ports import QueryAnswer
from mpesa_bridge.core.projects import DarajaAccount, DarajaEnvironment
from mpesa_bridge.daraja.gateway import DarajaGatewayAdapter
from mpesa_bridge.runtime import build_runtime, policy_from
from mpesa_bridge.storage.db import Database
from tests.fixtures.bridge import InProcessBridge, Tenant, make_settings, wait_until


@pytest.fixture
def bridge_settings(db_url: str, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(
        db_url,
        tmp_path,
        reconcile_query_delay=30.0,
        reconcile_max_age=600.0,
        reconcile_backoff="15,30",
        reconcile_after_expiry=3600.0,
        reconcile_after_expiry_backoff="60,120",
        simulator_late_callback_delay=1.0,
    )


@pytest.fixture
def simulator_overrides(clock: ManualClock, request: pytest.FixtureRequest) -> dict[str, Any]:
    # The simulator reads the test's clock: what STK Query says over time (the lagging-query
    # number's `query_lag`) follows `clock.advance`, never the wall clock of a busy machine.
    overrides: dict[str, Any] = getattr(request, "param", {})
    return {"now": clock.now, **overrides}


async def events_of(bridge: InProcessBridge, payment_id: str) -> list[tuple[str, bool]]:
    async with bridge.db.read() as uow:
        return [(e.type, e.late_correction) for e in await uow.events.for_payment(payment_id)]


async def decided(bridge: InProcessBridge, payment: dict[str, Any]) -> None:
    await wait_until(lambda: bridge.simulator.push(payment["checkout_request_id"]).decided)


async def test_a_lost_callback_is_settled_by_query(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    payment = await bridge.pay(shop, phone="0700000900")  # pays, but no callback ever comes
    await decided(bridge, payment)

    early = await bridge.runtime.reconciler.run_once()
    bridge.clock.advance(31)
    report = await bridge.runtime.reconciler.run_once()

    after = await bridge.get(shop, payment["id"])
    assert early.queried == 0  # nothing is asked before query_delay
    assert report.queried == 1 and report.settled == 1
    assert after["status"] == "succeeded" and after["result_code"] == "0"
    assert after["mpesa_receipt_number"] is None  # the query carries none (reference §5)
    assert await events_of(bridge, payment["id"]) == [("payment.created", False), ("payment.succeeded", False)]


async def test_still_processing_backs_off_then_expires_after_a_last_query(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    payment = await bridge.pay(shop, phone="0700000902")  # Daraja says "being processed" for a while

    bridge.clock.advance(31)
    first = await bridge.runtime.reconciler.run_once()
    bridge.clock.advance(10)
    too_soon = await bridge.runtime.reconciler.run_once()
    bridge.clock.advance(6)
    second = await bridge.runtime.reconciler.run_once()
    still = await bridge.get(shop, payment["id"])
    bridge.clock.advance(600)
    last = await bridge.runtime.reconciler.run_once()
    expired = await bridge.get(shop, payment["id"])

    assert (first.queried, too_soon.queried, second.queried) == (1, 0, 1)
    assert still["status"] == "pending"
    assert last.expired == 1
    assert expired["status"] == "expired" and expired["failure_code"] == "no_response"


async def test_a_late_success_callback_corrects_an_expired_payment(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    payment = await bridge.pay(shop, phone="0700000902", amount=300)
    bridge.clock.advance(601)
    await bridge.runtime.reconciler.run_once()
    assert (await bridge.get(shop, payment["id"]))["status"] == "expired"

    corrected = await bridge.wait_status(shop, payment["id"], "succeeded")  # the late callback lands

    assert corrected["needs_attention"] and corrected["attention_reason"] == "late_success"
    assert corrected["mpesa_receipt_number"]
    assert await events_of(bridge, payment["id"]) == [
        ("payment.created", False),
        ("payment.expired", False),
        ("payment.succeeded", True),
    ]


LAGGING = "0700000904"  # pays, no callback ever; STK Query says "being processed" until query_lag (900 s)


async def test_a_payment_expired_on_our_timeout_is_corrected_by_a_later_query(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    payment = await bridge.pay(shop, phone=LAGGING, amount=250)
    await decided(bridge, payment)  # the customer has paid; Daraja's query side has not caught up

    bridge.clock.advance(601)
    expiring = await bridge.runtime.reconciler.run_once()
    expired = await bridge.get(shop, payment["id"])
    checks = []
    for step in (60, 120, 120):  # the re-checks' backoff: 661, 781 (still "being processed"), 901
        bridge.clock.advance(step)
        report = await bridge.runtime.reconciler.run_once()
        checks.append((report.queried, report.corrected))
    corrected = await bridge.get(shop, payment["id"])
    bridge.clock.advance(3600)
    after = await bridge.runtime.reconciler.run_once()

    assert expiring.expired == 1
    assert expired["status"] == "expired" and expired["failure_code"] == "no_response"
    assert not expired["needs_attention"]
    assert checks == [(1, 0), (1, 0), (1, 1)]
    assert corrected["status"] == "succeeded" and corrected["result_code"] == "0"
    assert corrected["failure_code"] is None
    assert corrected["needs_attention"] and corrected["attention_reason"] == "late_success"
    assert await events_of(bridge, payment["id"]) == [
        ("payment.created", False),
        ("payment.expired", False),
        ("payment.succeeded", True),
    ]
    async with bridge.db.read() as uow:
        evidence = await uow.evidence.for_payment(payment["id"])
    assert [(e.source, e.verdict) for e in evidence][-2:] == [("timeout", "apply"), ("query", "correct")]
    assert evidence[-1].note == "late correction: stronger evidence shows the money moved"
    assert after.queried == 0  # settled: never asked again


@pytest.mark.parametrize("simulator_overrides", [{"query_lag": 30 * 86_400.0}], indirect=True)
async def test_an_expired_payment_is_queried_no_more_once_its_window_ends(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    payment = await bridge.pay(shop, phone=LAGGING)  # Daraja says "being processed" for a month
    await decided(bridge, payment)
    bridge.clock.advance(601)
    await bridge.runtime.reconciler.run_once()  # expires it: the window is 3600 s from here
    expired_at = bridge.clock.now()

    queried = 0
    for _ in range(40):  # every 120 s after the first 60 s: 31 re-checks, the last at the window's end
        async with bridge.db.read() as uow:
            stored = await uow.payments.find(payment["id"])
        assert stored is not None
        if stored.next_query_at is None:
            break
        bridge.clock.advance((stored.next_query_at - bridge.clock.now()).total_seconds())
        queried += (await bridge.runtime.reconciler.run_once()).queried
    stopped_at = bridge.clock.now()
    bridge.clock.advance(86_400)
    later = await bridge.runtime.reconciler.run_once()

    assert queried == 31
    assert stopped_at - expired_at == timedelta(seconds=3600)
    assert later.queried == 0
    final = await bridge.get(shop, payment["id"])
    assert final["status"] == "expired" and not final["needs_attention"]
    assert await events_of(bridge, payment["id"]) == [("payment.created", False), ("payment.expired", False)]


async def test_an_expiry_that_daraja_answered_is_not_queried_again(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    payment = await bridge.pay(shop, phone="0700001019")  # Daraja itself says the prompt expired
    await bridge.wait_status(shop, payment["id"], "expired")

    bridge.clock.advance(3600)
    report = await bridge.runtime.reconciler.run_once()

    assert report.queried == 0
    async with bridge.db.read() as uow:
        stored = await uow.payments.find(payment["id"])
    assert stored is not None and stored.next_query_at is None


async def test_a_query_never_overrides_a_callback(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    payment = await bridge.pay(shop, phone="0700001032")
    await bridge.wait_status(shop, payment["id"], "cancelled")

    refreshed = await bridge.client.post(f"/v1/payments/{payment['id']}/refresh", headers=shop.headers())

    assert refreshed.status_code == 200
    assert refreshed.json()["status"] == "cancelled" and not refreshed.json()["needs_attention"]
    assert await events_of(bridge, payment["id"]) == [("payment.created", False), ("payment.cancelled", False)]


async def test_refresh_asks_daraja_now(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    payment = await bridge.pay(shop, phone="0700000900")
    await decided(bridge, payment)

    refreshed = await bridge.client.post(f"/v1/payments/{payment['id']}/refresh", headers=shop.headers())

    assert refreshed.json()["status"] == "succeeded"


async def test_a_push_whose_answer_never_came_becomes_unknown_and_is_never_pushed_again(
    bridge: InProcessBridge,
) -> None:
    shop = await bridge.create_project()
    payment = await bridge.pay(shop, phone="0700000900")  # no callback will come to undo the set-up
    # Make it look like we crashed between recording the payment and learning Daraja's answer.
    async with bridge.db.write() as uow:
        row = await uow.payments.lock(payment["id"])
        assert row is not None
        row.status, row.checkout_request_id, row.merchant_request_id = PaymentStatus.PENDING, None, None
        row.completed_at = row.evidence = row.result_code = row.mpesa_receipt_number = None
        await uow.payments.save(row)
    pushes_before = len(bridge.simulator.pushes())

    bridge.clock.advance(61)
    report = await bridge.runtime.reconciler.run_once()

    after = await bridge.get(shop, payment["id"])
    assert report.marked_unknown == 1
    assert after["status"] == "unknown" and after["failure_code"] == "push_unanswered"
    assert after["needs_attention"] and after["attention_reason"] == "outcome_unknown"
    assert len(bridge.simulator.pushes()) == pushes_before  # never a second prompt
    assert ("payment.unknown", False) in await events_of(bridge, payment["id"])


async def test_unreachable_daraja_past_max_age_turns_unknown_then_settles(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    payment = await bridge.pay(shop, phone="0700000900")
    await decided(bridge, payment)
    runtime = bridge.runtime
    async with httpx.AsyncClient() as dead_http:
        # A port nobody listens on: real connection refusals, not a mock.
        dead = DarajaGatewayAdapter(dead_http, {DarajaEnvironment.SIMULATOR: "http://127.0.0.1:9"})
        blind = Reconciler(runtime.db, dead, runtime.projects, bridge.clock, policy_from(runtime.settings))
        bridge.clock.advance(601)
        report = await blind.run_once()
    unknown = await bridge.get(shop, payment["id"])
    bridge.clock.advance(3600)
    await runtime.reconciler.run_once()
    settled = await bridge.get(shop, payment["id"])

    assert report.errors == 1 and report.marked_unknown == 1
    assert unknown["status"] == "unknown" and unknown["failure_code"] == "query_unavailable"
    assert settled["status"] == "succeeded"


class HangingDaraja:
    """A Daraja that issues tokens but never answers a push: the read timeout path."""

    def __init__(self) -> None:
        self.pushes = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")), 0
        )
        await reader.readexactly(length)
        if head.startswith(b"GET /oauth"):
            body = b'{"access_token": "hanging-token", "expires_in": "3599"}'
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
        else:
            self.pushes += 1
            with contextlib.suppress(ConnectionError):
                await reader.read()  # hold the connection until the client gives up
        writer.close()


@pytest.fixture
async def hanging_daraja() -> AsyncIterator[tuple[HangingDaraja, str]]:
    daraja = HangingDaraja()
    server = await asyncio.start_server(daraja.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield daraja, f"http://127.0.0.1:{port}"


async def test_a_push_that_times_out_is_unknown_and_not_retried(
    bridge: InProcessBridge, hanging_daraja: tuple[HangingDaraja, str]
) -> None:
    daraja, url = hanging_daraja
    shop = await bridge.create_project()
    runtime = bridge.runtime
    async with httpx.AsyncClient() as http:
        runtime.payments._daraja = DarajaGatewayAdapter(
            http, {DarajaEnvironment.SIMULATOR: url}, timeout=httpx.Timeout(0.3, connect=1.0)
        )
        payment = await bridge.pay(shop)

    assert payment["status"] == "unknown" and payment["failure_code"] == "daraja_no_answer"
    assert payment["needs_attention"]  # nothing to query: a person (or a late callback) settles it
    assert daraja.pushes == 1
    async with bridge.db.read() as uow:
        stored = await uow.payments.find(payment["id"])
    assert isinstance(stored, Payment) and stored.checkout_request_id is None


# --- paced, concurrent passes (MPESA_BRIDGE_RECONCILE_QUERY_RATE) ----------------------------------


class CountingDaraja:
    """The real gateway (to the simulator), slowed by `latency`, counting who is asked and when."""

    def __init__(self, inner: DarajaGatewayAdapter, latency: float = 0.0) -> None:
        self._inner = inner
        self._latency = latency
        self.asked: list[str] = []
        self.started: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def stk_query(self, account: DarajaAccount, checkout_request_id: str) -> QueryAnswer:
        self.asked.append(checkout_request_id)
        self.started.append(time.monotonic())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self._latency)
            return await self._inner.stk_query(account, checkout_request_id)
        finally:
            self.in_flight -= 1


async def lost_callbacks(bridge: InProcessBridge, count: int) -> tuple[Tenant, list[dict[str, Any]]]:
    shop = await bridge.create_project()
    payments = []
    for _ in range(count):
        payment = await bridge.pay(shop, phone="0700000900")  # paid, but no callback ever comes
        await decided(bridge, payment)  # the simulator frees the phone once the customer has acted
        payments.append(payment)
    return shop, payments


def reconciler(bridge: InProcessBridge, daraja: Any, *, db: Any = None, rate: float = 100.0, **kw: Any) -> Reconciler:
    runtime = bridge.runtime
    return Reconciler(
        db or runtime.db, daraja, runtime.projects, bridge.clock, policy_from(runtime.settings), pacer=Pacer(rate), **kw
    )


async def test_the_configured_query_rate_reaches_the_reconciler(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path, reconcile_query_rate=250.0)
    runtime = await build_runtime(settings)
    try:
        assert runtime.reconciler._pacer.rate == 250.0
        assert runtime.reconciler._batch == 500  # about two seconds of queries per pass
    finally:
        await runtime.aclose()


async def test_a_pass_paces_its_queries_and_runs_them_side_by_side(bridge: InProcessBridge) -> None:
    shop, payments = await lost_callbacks(bridge, 10)
    daraja = CountingDaraja(bridge.runtime.gateway, latency=0.2)
    bridge.clock.advance(31)

    report = await reconciler(bridge, daraja, rate=20.0).run_once()

    assert report.queried == report.settled == 10
    assert daraja.started[-1] - daraja.started[0] >= 9 / 20 - 0.01  # never faster than 20 per second
    assert daraja.max_in_flight >= 2  # a 0.2 s round trip does not hold the next query back
    assert {(await bridge.get(shop, p["id"]))["status"] for p in payments} == {"succeeded"}


async def test_two_reconcilers_on_one_database_never_query_a_payment_twice(
    bridge: InProcessBridge, db_url: str
) -> None:
    _, payments = await lost_callbacks(bridge, 12)
    daraja = CountingDaraja(bridge.runtime.gateway, latency=0.05)
    other_db = Database(db_url)  # another pool, as another worker process would have
    one = reconciler(bridge, daraja, batch=5)
    two = reconciler(bridge, daraja, db=other_db, batch=5)
    bridge.clock.advance(31)
    try:
        for _ in range(4):
            await asyncio.gather(one.run_once(), two.run_once())
    finally:
        await other_db.dispose()

    assert sorted(daraja.asked) == sorted(p["checkout_request_id"] for p in payments)  # each exactly once


async def test_a_pass_that_dies_mid_query_leaves_the_payment_due_again_after_the_hold(
    bridge: InProcessBridge,
) -> None:
    shop, (payment,) = await lost_callbacks(bridge, 1)

    class Crashing:
        async def stk_query(self, account: DarajaAccount, checkout_request_id: str) -> QueryAnswer:
            raise RuntimeError("the process died here")

    bridge.clock.advance(31)
    claimed_at = bridge.clock.now()
    crashed = await reconciler(bridge, Crashing(), batch=100, hold=60.0).run_once()
    async with bridge.db.read() as uow:
        held = await uow.payments.find(payment["id"])
    soon = await bridge.runtime.reconciler.run_once()
    bridge.clock.advance(61)
    later = await bridge.runtime.reconciler.run_once()

    assert crashed.errors == 1 and len(crashed.failures) == 1
    assert held is not None and held.status is PaymentStatus.PENDING
    assert held.next_query_at == claimed_at + timedelta(seconds=100 / 100 + 60)  # its slot, plus the hold
    assert soon.queried == 0  # still claimed
    assert later.settled == 1
    assert (await bridge.get(shop, payment["id"]))["status"] == "succeeded"
