"""Payouts and Transaction Status queries over ASGI, with the simulator as Daraja — on SQLite and
PostgreSQL: success, insufficient balance, a wrong initiator password (2001), a queue timeout settled
by Transaction Status without a second send, two-person approval, limits, and callbacks replayed,
duplicated and spoofed."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from mpesa_bridge.config import SANDBOX_PASSKEY, SANDBOX_SHORTCODE
from tests.fixtures.bridge import ADMIN_TOKEN, InProcessBridge, Tenant, wait_until

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ORG = SANDBOX_SHORTCODE  # one of the simulator's organisations, with KES 1,000,000


@pytest.fixture
def simulator_overrides() -> dict[str, Any]:
    return {"result_delay": 0.01}


def keyed(tenant: Tenant, key: str | None = None) -> dict[str, str]:
    return {**tenant.headers(), "Idempotency-Key": key or str(uuid.uuid4())}


async def payout(bridge: InProcessBridge, tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    body = {"phone": "0708374149", "amount": 100, "remarks": "Refund order 42", "metadata": {"order": 42}}
    body.update(overrides)
    response = await bridge.client.post("/v1/payouts", json=body, headers=keyed(tenant))
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def wait_payout(bridge: InProcessBridge, tenant: Tenant, payout_id: str, *statuses: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        got = (await bridge.client.get(f"/v1/payouts/{payout_id}", headers=tenant.headers())).json()
        return got if got["status"] in statuses else None

    result: dict[str, Any] = await wait_until(reached, timeout=10)
    return result


def b2c_results(bridge: InProcessBridge) -> list[str]:
    """The URL of every Result or queue-timeout notice the simulator POSTed for a B2C request: one per
    B2C request it received."""
    return [a.delivery.url for a in bridge.simulator.results() if "/b2c_" in a.delivery.url]


async def test_a_payout_succeeds(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    before = bridge.simulator.balance(ORG)
    created = await payout(bridge, shop, phone="0708 374-149", amount=250)
    assert created["id"].startswith("po_")
    assert created["status"] in ("sent", "succeeded")
    assert created["phone"] == "254708374149" and created["created_by"].startswith("key:")
    assert created["originator_conversation_id"] and created["api_version"] == "v3"
    done = await wait_payout(bridge, shop, created["id"], "succeeded")
    assert done["receipt"] and done["result_code"] == "0" and done["failure_code"] is None
    assert done["recipient_name"].endswith("SIMULATED RECIPIENT")
    assert bridge.simulator.balance(ORG) == before - 250
    events = (await bridge.client.get(f"/v1/events?subject={created['id']}", headers=shop.headers())).json()["data"]
    assert sorted(e["type"] for e in events) == ["payout.created", "payout.sent", "payout.succeeded"]
    listed = (await bridge.client.get("/v1/payouts?status=succeeded", headers=shop.headers())).json()
    assert [p["id"] for p in listed["data"]] == [created["id"]]


async def test_the_idempotency_key_is_required_and_replays(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    body = {"phone": "0708374149", "amount": 100}
    missing = await bridge.client.post("/v1/payouts", json=body, headers=shop.headers())
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "idempotency_key_required"
    headers = keyed(shop, "payout-1")
    first = await bridge.client.post("/v1/payouts", json=body, headers=headers)
    again = await bridge.client.post("/v1/payouts", json=body, headers=headers)
    assert again.json()["id"] == first.json()["id"] and again.headers.get("Idempotent-Replayed") == "true"
    await wait_payout(bridge, shop, first.json()["id"], "succeeded")
    assert len(b2c_results(bridge)) == 1


async def test_insufficient_balance_fails(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    created = await payout(bridge, shop, phone="0700000001")
    done = await wait_payout(bridge, shop, created["id"], "failed")
    assert (done["failure_code"], done["result_code"]) == ("insufficient_balance", "1")


async def test_a_wrong_initiator_password_fails_with_2001(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    settings = bridge.settings
    daraja = {
        "environment": "simulator",
        "consumer_key": settings.simulator_consumer_key,
        "consumer_secret": settings.simulator_consumer_secret.get_secret_value(),
        "short_code": SANDBOX_SHORTCODE,
        "passkey": SANDBOX_PASSKEY,
        "initiator_name": "testapi",
        "initiator_password": "not-the-password",
    }
    put = await bridge.client.put(f"/v1/admin/projects/{shop.project_id}/daraja/test", json=daraja, headers=ADMIN)
    assert put.status_code == 200, put.text
    created = await payout(bridge, shop)
    done = await wait_payout(bridge, shop, created["id"], "failed")
    assert (done["failure_code"], done["result_code"]) == ("initiator_invalid", "2001")


async def test_a_queue_timeout_is_settled_by_transaction_status_without_a_second_send(
    bridge: InProcessBridge,
) -> None:
    shop = await bridge.create_project()
    created = await payout(bridge, shop, phone="0700000900")
    unknown = await wait_payout(bridge, shop, created["id"], "unknown")
    assert unknown["failure_code"] == "queue_timeout"
    bridge.clock.advance(bridge.runtime.payouts.policy.backoff(0) + 1)
    report = await bridge.runtime.payout_reconciler.run_once()
    assert report.queried == 1
    done = await wait_payout(bridge, shop, created["id"], "succeeded")
    assert done["receipt"]
    assert len(b2c_results(bridge)) == 1, "the simulator received a second B2C request"
    queries = (await bridge.client.get("/v1/transaction_status_queries", headers=shop.headers())).json()["data"]
    assert len(queries) == 1 and queries[0]["payout_id"] == created["id"]
    assert queries[0]["status"] == "completed" and queries[0]["result"]["transaction_status"] == "Completed"


async def test_a_payout_needing_approval_waits_for_a_second_key(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    put = await bridge.client.put(
        f"/v1/admin/projects/{shop.project_id}/payout_settings/test",
        json={"approval_required": True, "max_amount": 5000, "daily_limit": 8000},
        headers=ADMIN,
    )
    assert put.status_code == 200, put.text
    shown = (await bridge.client.get("/v1/payouts/settings", headers=shop.headers())).json()
    assert shown["approval_required"] is True and shown["max_amount"] == 5000
    created = await payout(bridge, shop, amount=5000)
    assert created["status"] == "pending_approval"
    assert b2c_results(bridge) == []
    refused = await bridge.client.post(f"/v1/payouts/{created['id']}/approve", headers=shop.headers())
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "approver_is_creator"
    too_big = await bridge.client.post("/v1/payouts", json={"phone": "0708374149", "amount": 5001}, headers=keyed(shop))
    assert too_big.status_code == 422 and too_big.json()["error"]["code"] == "payout_limit_exceeded"
    over_day = await bridge.client.post(
        "/v1/payouts", json={"phone": "0708374149", "amount": 3001}, headers=keyed(shop)
    )
    assert over_day.json()["error"]["code"] == "daily_payout_limit_exceeded"
    second = await bridge.client.post(f"/v1/admin/projects/{shop.project_id}/keys/test", headers=ADMIN)
    other = {"Authorization": f"Bearer {second.json()['secret_key']}"}
    approved = await bridge.client.post(f"/v1/payouts/{created['id']}/approve", headers=other)
    assert approved.status_code == 200, approved.text
    assert approved.json()["approved_by"] == f"key:{second.json()['id']}"
    await wait_payout(bridge, shop, created["id"], "succeeded")
    again = await bridge.client.post(f"/v1/payouts/{created['id']}/approve", headers=other)
    assert again.status_code == 409
    withdrawn = await payout(bridge, shop, amount=10)
    rejected = await bridge.client.post(
        f"/v1/payouts/{withdrawn['id']}/reject", json={"reason": "typo"}, headers=shop.headers()
    )
    assert rejected.json()["status"] == "rejected" and rejected.json()["rejection_reason"] == "typo"
    assert len(b2c_results(bridge)) == 1


async def test_transaction_status_by_receipt_waits_for_its_result(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    done = await wait_payout(bridge, shop, (await payout(bridge, shop))["id"], "succeeded")
    asked = await bridge.client.post(
        "/v1/transaction_status_queries?wait=5", json={"transaction_id": done["receipt"]}, headers=keyed(shop)
    )
    assert asked.status_code == 201, asked.text
    query = asked.json()
    assert query["status"] == "completed", query
    assert query["result"]["receipt"] == done["receipt"] and query["result"]["amount"] == 100
    unknown = await bridge.client.post(
        "/v1/transaction_status_queries?wait=5", json={"transaction_id": "ZZZ0000000"}, headers=keyed(shop)
    )
    assert unknown.json()["status"] == "completed" and unknown.json()["result_code"] == "25"
    refused = await bridge.client.post("/v1/transaction_status_queries", json={}, headers=keyed(shop))
    assert refused.status_code == 400
    fetched = await bridge.client.get(f"/v1/transaction_status_queries/{query['id']}", headers=shop.headers())
    assert fetched.json() == query
    events = (await bridge.client.get(f"/v1/events?subject={query['id']}", headers=shop.headers())).json()["data"]
    assert [e["type"] for e in events] == ["transaction_status_query.completed"]


async def test_callbacks_replayed_duplicated_and_spoofed_change_nothing(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    created = await payout(bridge, shop)
    await wait_payout(bridge, shop, created["id"], "succeeded")
    [delivered] = [a.delivery for a in bridge.simulator.results() if "/b2c_result/" in a.delivery.url]
    path = httpx.URL(delivered.url).path
    replay = await bridge.client.post(path, json=delivered.body)
    assert replay.status_code == 200
    failure = {"Result": {**delivered.body["Result"], "ResultCode": 1, "ResultDesc": "fake failure"}}
    contradicting = await bridge.client.post(path, json=failure)
    assert contradicting.status_code == 200
    spoofed = await bridge.client.post("/v1/callbacks/daraja/b2c_result/not-a-token", json=failure)
    assert spoofed.status_code == 200
    forged_timeout = await bridge.client.post(path.replace("b2c_result", "b2c_timeout"), json=failure)
    assert forged_timeout.status_code == 200

    async def settled() -> list[tuple[str, str | None]] | None:
        from mpesa_bridge.storage import tables

        async with bridge.db.read() as uow:
            rows = (
                await uow.connection.execute(
                    tables.inbound_callbacks.select().where(tables.inbound_callbacks.c.kind.like("b2c_%"))
                )
            ).all()
        states = sorted((r.state, r.flag_reason) for r in rows)
        return states if all(s != "received" for s, _ in states) and len(states) == 5 else None

    states = await wait_until(settled, timeout=10)
    assert states == sorted(
        [
            ("applied", None),
            ("duplicate", None),
            ("flagged", "contradicts_settled_state"),
            ("flagged", "unknown_token"),
            ("recorded", None),
        ]
    )
    after = (await bridge.client.get(f"/v1/payouts/{created['id']}", headers=shop.headers())).json()
    assert after["status"] == "succeeded" and after["needs_attention"] is True


async def test_the_python_sdk_sends_payouts_and_asks_transaction_status(bridge: InProcessBridge) -> None:
    from mpesa_bridge_sdk import AsyncClient, Payout, TransactionStatusQuery

    shop = await bridge.create_project()
    transport = httpx.ASGITransport(app=bridge.app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://bridge.test") as http,
        AsyncClient(shop.test_key, base_url="http://bridge.test", http_client=http) as sdk,
    ):
        created = await sdk.payouts.create(phone="0708374149", amount=120, remarks="SDK payout")
        assert isinstance(created, Payout) and created.id.startswith("po_")

        async def done() -> Payout | None:
            got = await sdk.payouts.retrieve(created.id)
            return got if got.status == "succeeded" else None

        paid = await wait_until(done, timeout=10)
        assert paid.receipt
        assert [p.id async for p in (await sdk.payouts.list(status="succeeded")).auto_paging_iter()] == [paid.id]
        assert (await sdk.payouts.settings()).approval_required is False
        query = await sdk.transaction_status_queries.create(transaction_id=paid.receipt, wait=5)
        assert isinstance(query, TransactionStatusQuery) and query.status == "completed"
        assert query.result is not None and query.result["receipt"] == paid.receipt
        assert (await sdk.transaction_status_queries.retrieve(query.id)).id == query.id
        assert len((await sdk.transaction_status_queries.list()).data) == 1
