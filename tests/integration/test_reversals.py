"""Reversals and balance queries through the API against the simulator (over ASGI), on SQLite and
PostgreSQL: a reversal succeeds and the payment shows it; a second is refused; the simulator's
"already reversed" becomes a clear failure; the Result callbacks replayed, duplicated and spoofed
change nothing; a balance query with `wait` answers with parsed accounts; a queue timeout makes a
reversal `unknown` and is never re-sent.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from mpesa_bridge.core.reversals.entity import ReversalStatus
from mpesa_bridge.storage import tables
from tests.fixtures.bridge import InProcessBridge, Tenant, wait_until
from tests.integration.test_callbacks_inbox import stored


@pytest.fixture
def simulator_overrides() -> dict[str, Any]:
    return {"result_delay": 0.01}


async def paid(bridge: InProcessBridge, tenant: Tenant, amount: int = 100) -> dict[str, Any]:
    payment = await bridge.pay(tenant, amount=amount)
    return await bridge.wait_status(tenant, payment["id"], "succeeded")


async def reverse(
    bridge: InProcessBridge, tenant: Tenant, payment_id: str, key: str | None = None, **kw: Any
) -> httpx.Response:
    headers = tenant.headers() | ({"Idempotency-Key": key} if key else {})
    return await bridge.client.post(f"/v1/payments/{payment_id}/reversals", headers=headers, **kw)


async def wait_reversal(bridge: InProcessBridge, tenant: Tenant, reversal_id: str, *statuses: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        answer = await bridge.client.get(f"/v1/reversals/{reversal_id}", headers=tenant.headers())
        body: dict[str, Any] = answer.json()
        return body if body["status"] in statuses else None

    result: dict[str, Any] = await wait_until(reached)
    return result


async def event_types(bridge: InProcessBridge, tenant: Tenant) -> list[str]:
    answer = await bridge.client.get("/v1/events", params={"limit": 100}, headers=tenant.headers())
    return [e["type"] for e in answer.json()["data"]]


def result_posts(bridge: InProcessBridge, kind: str) -> list[Any]:
    return [a for a in bridge.simulator.results() if f"/{kind}/" in a.delivery.url]


async def test_a_reversal_succeeds_and_the_payment_shows_it(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project()
    payment = await paid(bridge, tenant)
    answer = await reverse(bridge, tenant, payment["id"], json={"remarks": "Order cancelled"})
    assert answer.status_code == 201, answer.text
    reversal = answer.json()
    assert reversal["object"] == "reversal" and reversal["id"].startswith("rev_")
    assert reversal["status"] in ("sent", "succeeded") and reversal["amount"] == 100
    assert reversal["original_receipt"] == payment["mpesa_receipt_number"]

    done = await wait_reversal(bridge, tenant, reversal["id"], "succeeded")
    assert done["receipt"] and done["receipt"] != payment["mpesa_receipt_number"]
    shown = await bridge.get(tenant, payment["id"])
    assert shown["status"] == "succeeded" and shown["reversal_id"] == reversal["id"] and shown["reversed_at"]
    assert "payment.reversed" in await event_types(bridge, tenant)
    listed = await bridge.client.get("/v1/reversals", params={"payment_id": payment["id"]}, headers=tenant.headers())
    assert [r["id"] for r in listed.json()["data"]] == [reversal["id"]]

    again = await reverse(bridge, tenant, payment["id"])
    assert again.status_code == 409 and again.json()["error"]["code"] == "payment_already_reversed"
    other = await bridge.create_project("Other")
    assert (await bridge.client.get(f"/v1/reversals/{reversal['id']}", headers=other.headers())).status_code == 404
    assert (await bridge.client.get("/v1/reversals", headers=other.headers())).json()["data"] == []
    assert (await bridge.client.get("/v1/reversals", headers=tenant.headers("live"))).json()["data"] == []


async def test_only_a_succeeded_payment_is_reversed_and_never_twice_in_flight(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project()
    other = await bridge.create_project("Other")
    cancelled = await bridge.pay(tenant, phone="0700001032")  # the simulator's "customer cancels"
    await bridge.wait_status(tenant, cancelled["id"], "cancelled")
    payment = await paid(bridge, tenant)
    assert (await reverse(bridge, other, payment["id"])).status_code == 404
    first = await reverse(bridge, tenant, payment["id"], key="rev-1")
    assert first.status_code == 201
    replay = await reverse(bridge, tenant, payment["id"], key="rev-1")
    assert replay.status_code == 201 and replay.json()["id"] == first.json()["id"]
    second = await reverse(bridge, tenant, payment["id"])
    assert second.status_code == 409
    assert second.json()["error"]["code"] in ("reversal_in_flight", "payment_already_reversed")
    refused = await reverse(bridge, tenant, cancelled["id"])
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "payment_not_succeeded"


async def test_already_reversed_at_daraja_is_a_clear_failure(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project()
    payment = await paid(bridge, tenant)
    # Reversed outside the bridge (the M-Pesa org portal): the simulator's ledger says so.
    bridge.simulator._initiator.ledger.reversed_receipts.add(payment["mpesa_receipt_number"])
    reversal = (await reverse(bridge, tenant, payment["id"])).json()
    failed = await wait_reversal(bridge, tenant, reversal["id"], "failed")
    assert failed["failure_code"] == "already_reversed" and failed["result_code"] == "R000001"
    assert "already been reversed" in failed["failure_message"]
    shown = await bridge.get(tenant, payment["id"])
    assert shown["reversed_at"] is None and shown["reversal_id"] == reversal["id"]
    assert "reversal.failed" in await event_types(bridge, tenant)


async def test_reversal_results_replayed_duplicated_and_spoofed_change_nothing(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project()
    payment = await paid(bridge, tenant)
    reversal = (await reverse(bridge, tenant, payment["id"])).json()
    await wait_reversal(bridge, tenant, reversal["id"], "succeeded")
    (posted,) = result_posts(bridge, "reversal_result")
    path = httpx.URL(posted.delivery.url).path
    body = json.dumps(posted.delivery.body).encode()

    async def post(url_path: str, content: bytes) -> None:
        answer = await bridge.client.post(url_path, content=content, headers={"content-type": "application/json"})
        assert answer.status_code == 200

    await post(path, body)  # replayed as it was
    await post(path, body)  # and again
    spoof = path.rsplit("/", 1)[0] + "/not-the-token"
    await post(spoof, body)  # another token
    forged = json.loads(body)
    forged["Result"]["ConversationID"] = "AG_20260101_forged"
    forged["Result"]["ResultCode"] = "R000002"
    await post(path, json.dumps(forged).encode())  # the right token, another conversation
    await post(path, b"{not json")  # unreadable

    async def all_processed() -> list[dict[str, Any]] | None:
        rows = [r for r in await stored(bridge) if r["kind"] == "reversal_result"]
        return rows if len(rows) == 6 and all(r["state"] != "received" for r in rows) else None

    rows = await wait_until(all_processed)
    outcomes = [(r["state"], r["flag_reason"]) for r in rows]
    assert outcomes == [
        ("applied", None),
        ("duplicate", None),
        ("duplicate", None),
        ("flagged", "unknown_token"),
        ("flagged", "conversation_id_mismatch"),
        ("flagged", "malformed"),
    ]
    assert (await event_types(bridge, tenant)).count("payment.reversed") == 1
    still = await wait_reversal(bridge, tenant, reversal["id"], "succeeded")
    assert still["result_code"] == "0"


async def test_a_queue_timeout_makes_a_reversal_unknown_never_resent(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project()
    payment = await paid(bridge, tenant)
    reversal = (await reverse(bridge, tenant, payment["id"])).json()
    await wait_reversal(bridge, tenant, reversal["id"], "succeeded")
    # A timeout notice after the Result: recorded, nothing changes.
    (posted,) = result_posts(bridge, "reversal_result")
    timeout_path = httpx.URL(posted.delivery.url).path.replace("/reversal_result/", "/reversal_timeout/")
    notice = {"Result": {"ResultType": 0, "ResultCode": 1037, "ResultDesc": "The service request timed out."}}
    answer = await bridge.client.post(timeout_path, json=notice)
    assert answer.status_code == 200

    async def recorded() -> bool:
        rows = [r for r in await stored(bridge) if r["kind"] == "reversal_timeout"]
        return bool(rows) and rows[0]["state"] == "recorded"

    await wait_until(recorded)
    # An open reversal meeting a timeout notice becomes unknown (set back to sent by hand here).
    async with bridge.db.write_engine.begin() as conn:
        await conn.execute(
            sa.update(tables.reversals)
            .where(tables.reversals.c.id == reversal["id"])
            .values(status=ReversalStatus.SENT, completed_at=None)
        )
    await bridge.client.post(timeout_path, json=notice)
    unknown = await wait_reversal(bridge, tenant, reversal["id"], "unknown")
    assert unknown["failure_code"] == "queue_timeout"
    assert len([a for a in bridge.simulator.results() if "reversal" in a.delivery.url]) == 1  # never re-sent


async def test_a_balance_query_with_wait_answers_with_parsed_accounts(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project()
    answer = await bridge.client.post("/v1/balance_queries", json={"wait": 5}, headers=tenant.headers())
    assert answer.status_code == 201, answer.text
    query = answer.json()
    assert query["object"] == "balance_query" and query["status"] == "completed", query
    accounts = {a["name"]: a for a in query["accounts"]}
    assert accounts["Utility Account"]["available"] == bridge.simulator.balance("174379")
    assert accounts["Utility Account"]["currency"] == "KES" and len(accounts["Utility Account"]["amounts"]) == 4
    assert set(accounts) >= {"Working Account", "Charges Paid Account"}
    assert "balance_query.completed" in await event_types(bridge, tenant)
    again = await bridge.client.get(f"/v1/balance_queries/{query['id']}", headers=tenant.headers())
    assert again.json() == query
    other = await bridge.create_project("Other")
    assert (await bridge.client.get(f"/v1/balance_queries/{query['id']}", headers=other.headers())).status_code == 404
    listed = await bridge.client.get("/v1/balance_queries", headers=tenant.headers())
    assert [q["id"] for q in listed.json()["data"]] == [query["id"]]


async def test_a_balance_query_without_wait_is_pending_then_completed(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project()
    query = (await bridge.client.post("/v1/balance_queries", headers=tenant.headers())).json()
    assert query["status"] in ("pending", "completed")

    async def completed() -> dict[str, Any] | None:
        body: dict[str, Any] = (
            await bridge.client.get(f"/v1/balance_queries/{query['id']}", headers=tenant.headers())
        ).json()
        return body if body["status"] == "completed" else None

    await wait_until(completed)
    (posted,) = result_posts(bridge, "balance_result")
    path = httpx.URL(posted.delivery.url).path
    await bridge.client.post(path, json=posted.delivery.body)  # duplicated
    await bridge.client.post(path.rsplit("/", 1)[0] + "/spoofed", json=posted.delivery.body)  # spoofed

    async def processed() -> list[Any] | None:
        rows = [r for r in await stored(bridge) if r["kind"] == "balance_result"]
        return rows if len(rows) == 3 and all(r["state"] != "received" for r in rows) else None

    rows = await wait_until(processed)
    assert [(r["state"], r["flag_reason"]) for r in rows] == [
        ("applied", None),
        ("duplicate", None),
        ("flagged", "unknown_token"),
    ]
    assert (await event_types(bridge, tenant)).count("balance_query.completed") == 1
    bad = await bridge.client.post("/v1/balance_queries", json={"wait": 31}, headers=tenant.headers())
    assert bad.status_code == 400


async def apply_stored(bridge: InProcessBridge, kind: str) -> dict[str, Any]:
    """Apply the one stored callback of `kind` now (the inbox worker is stopped); its row afterwards."""
    (row,) = [r for r in await stored(bridge) if r["kind"] == kind and r["state"] == "received"]
    assert await bridge.runtime.inbox.process(row["id"])
    (after,) = [r for r in await stored(bridge) if r["id"] == row["id"]]
    return after


async def received(bridge: InProcessBridge, kind: str) -> bool:
    return any(r["kind"] == kind and r["state"] == "received" for r in await stored(bridge))


async def test_a_reversal_whose_result_is_late_is_settled_by_transaction_status(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project()
    payment = await paid(bridge, tenant)
    await bridge.runtime.inbox.stop()  # from here Results are stored, and applied only when the test says
    reversal = (await reverse(bridge, tenant, payment["id"])).json()
    assert reversal["status"] == "sent"
    await wait_until(lambda: received(bridge, "reversal_result"))
    reconciler = bridge.runtime.reversal_reconciler
    assert await reconciler.run_once() == 0  # its Result may still come: not asked yet

    bridge.clock.advance(bridge.runtime.settings.payout_result_wait + 1)
    assert await reconciler.run_once() == 1  # asked by the OriginatorConversationID Daraja gave it
    assert await reconciler.run_once() == 0  # and not again before its backoff
    await wait_until(lambda: received(bridge, "status_result"))
    assert (await apply_stored(bridge, "status_result"))["state"] == "applied"
    settled = await wait_reversal(bridge, tenant, reversal["id"], "succeeded")
    assert settled["receipt"] and settled["failure_code"] is None
    shown = await bridge.get(tenant, payment["id"])
    assert shown["reversal_id"] == reversal["id"] and shown["reversed_at"]

    # The late Result agrees: a duplicate; one payment.reversed; Daraja saw one reversal request.
    assert (await apply_stored(bridge, "reversal_result"))["state"] == "duplicate"
    assert (await event_types(bridge, tenant)).count("payment.reversed") == 1
    assert len(result_posts(bridge, "reversal_result")) == 1
    queries = (await bridge.client.get("/v1/transaction_status_queries", headers=tenant.headers())).json()["data"]
    assert [(q["reversal_id"], q["status"]) for q in queries] == [(reversal["id"], "completed")]
    assert await reconciler.run_once() == 0  # settled: nothing left to ask


async def test_a_queue_timeout_is_followed_by_transaction_status_at_once(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project()
    payment = await paid(bridge, tenant)
    await bridge.runtime.inbox.stop()
    reversal = (await reverse(bridge, tenant, payment["id"])).json()
    await wait_until(lambda: received(bridge, "reversal_result"))
    (posted,) = result_posts(bridge, "reversal_result")
    timeout_path = httpx.URL(posted.delivery.url).path.replace("/reversal_result/", "/reversal_timeout/")
    notice = {"Result": {"ResultType": 0, "ResultCode": 1037, "ResultDesc": "The service request timed out."}}
    assert (await bridge.client.post(timeout_path, json=notice)).status_code == 200
    assert (await apply_stored(bridge, "reversal_timeout"))["state"] == "applied"
    assert (await wait_reversal(bridge, tenant, reversal["id"], "unknown"))["failure_code"] == "queue_timeout"

    assert await bridge.runtime.reversal_reconciler.run_once() == 1  # no wait: a timeout is no verdict
    await wait_until(lambda: received(bridge, "status_result"))
    await apply_stored(bridge, "status_result")
    assert (await wait_reversal(bridge, tenant, reversal["id"], "succeeded"))["receipt"]
    assert len(result_posts(bridge, "reversal_result")) == 1  # never re-sent


async def test_a_reversal_daraja_never_received_fails_after_repeated_not_found(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project()
    payment = await paid(bridge, tenant)
    await bridge.runtime.inbox.stop()
    reversal = (await reverse(bridge, tenant, payment["id"])).json()
    # As if Daraja had queued it under another id and lost it: Transaction Status knows no such id.
    async with bridge.db.write_engine.begin() as conn:
        await conn.execute(
            sa.update(tables.reversals)
            .where(tables.reversals.c.id == reversal["id"])
            .values(status=ReversalStatus.UNKNOWN, originator_conversation_id="lost-1234", next_query_at=None)
        )
    reconciler = bridge.runtime.reversal_reconciler
    assert await reconciler.run_once() == 0  # nothing due: next_query_at unset
    async with bridge.db.write_engine.begin() as conn:
        await conn.execute(
            sa.update(tables.reversals)
            .where(tables.reversals.c.id == reversal["id"])
            .values(next_query_at=bridge.clock.now())
        )
    limit = bridge.runtime.settings.payout_not_found_limit
    for attempt in range(limit):
        assert await reconciler.run_once() == 1
        await wait_until(lambda: received(bridge, "status_result"))
        await apply_stored(bridge, "status_result")
        got = await wait_reversal(bridge, tenant, reversal["id"], "unknown", "failed")
        assert got["status"] == ("failed" if attempt == limit - 1 else "unknown")
        bridge.clock.advance(3600)
    assert got["failure_code"] == "not_found_at_daraja"
    assert "reversal.failed" in await event_types(bridge, tenant)
