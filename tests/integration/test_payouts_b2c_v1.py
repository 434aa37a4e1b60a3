"""Payouts over the legacy B2C v1 API (`MPESA_BRIDGE_PAYOUT_B2C_VERSION=v1`), over ASGI with the
simulator as Daraja, on SQLite and PostgreSQL. v1 carries no OriginatorConversationID of ours: Daraja
makes one up and returns it in its answer, so a payout is only known by it once that answer is in.
A payout succeeds and fails on insufficient balance through v1 alone (the simulator counts which
path it was sent to); a queue timeout is settled by Transaction Status by the id Daraja returned,
without a second send."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpesa_bridge.config import Settings
from tests.fixtures.bridge import InProcessBridge, make_settings
from tests.integration.test_payouts_api import ORG, b2c_results, payout, wait_payout


@pytest.fixture
def bridge_settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path, payout_b2c_version="v1")


@pytest.fixture
def simulator_overrides() -> dict[str, object]:
    return {"result_delay": 0.01}


async def test_a_v1_payout_succeeds_and_one_fails_on_insufficient_balance(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    before = bridge.simulator.balance(ORG)
    paid = await payout(bridge, shop, amount=250)
    done = await wait_payout(bridge, shop, paid["id"], "succeeded")
    assert done["receipt"] and done["result_code"] == "0"
    assert done["originator_conversation_id"]  # Daraja's, learned from its answer
    broke = await payout(bridge, shop, phone="0700000001")
    failed = await wait_payout(bridge, shop, broke["id"], "failed")
    assert (failed["failure_code"], failed["result_code"]) == ("insufficient_balance", "1")
    received = bridge.simulator.received()
    assert (received["b2c_v1"], received["b2c_v3"]) == (2, 0)
    assert bridge.simulator.balance(ORG) == before - 250


async def test_a_v1_queue_timeout_is_settled_by_transaction_status_without_a_second_send(
    bridge: InProcessBridge,
) -> None:
    shop = await bridge.create_project()
    created = await payout(bridge, shop, phone="0700000900")
    unknown = await wait_payout(bridge, shop, created["id"], "unknown")
    assert unknown["failure_code"] == "queue_timeout" and unknown["originator_conversation_id"]
    bridge.clock.advance(bridge.runtime.payouts.policy.backoff(0) + 1)
    assert (await bridge.runtime.payout_reconciler.run_once()).queried == 1
    done = await wait_payout(bridge, shop, created["id"], "succeeded")
    assert done["receipt"]
    assert len(b2c_results(bridge)) == 1 and bridge.simulator.received()["b2c_v1"] == 1
    queries = (await bridge.client.get("/v1/transaction_status_queries", headers=shop.headers())).json()["data"]
    assert [(q["payout_id"], q["originator_conversation_id"]) for q in queries] == [
        (created["id"], unknown["originator_conversation_id"])
    ]
