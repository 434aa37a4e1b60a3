"""Reconciliation with an injected clock: lost callbacks, expiry, late corrections, stranded pushes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mpesa_bridge.config import Settings
from mpesa_bridge.core.payments.entity import Payment
from mpesa_bridge.core.payments.reconcile import Reconciler
from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.core.projects import DarajaEnvironment
from mpesa_bridge.daraja.gateway import DarajaGatewayAdapter
from tests.fixtures.bridge import InProcessBridge, make_settings, wait_until


@pytest.fixture
def bridge_settings(db_url: str, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(
        db_url,
        tmp_path,
        reconcile_query_delay=30.0,
        reconcile_max_age=600.0,
        reconcile_backoff="15,30",
        simulator_late_callback_delay=1.0,
    )


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
        blind = Reconciler(runtime.db, dead, runtime.projects, bridge.clock, runtime.policy)
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
