"""The callback inbox: stored raw first, answered at once, applied once — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import sqlalchemy as sa

from mpesa_bridge.config import Settings
from mpesa_bridge.storage import tables
from tests.fixtures.bridge import InProcessBridge, Tenant, make_settings, wait_until


@pytest.fixture
def bridge_settings(db_url: str, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    # The "late" number keeps a payment pending for the whole test; forged callbacks do the rest.
    return make_settings(db_url, tmp_path, simulator_late_callback_delay=60.0)


ACK = {"ResultCode": 0, "ResultDesc": "Accepted"}


def success_body(checkout_id: str, *, amount: float, phone: int = 254708374149, receipt: str = "SKL4X9Q2ZB") -> bytes:
    return json.dumps(
        {
            "Body": {
                "stkCallback": {
                    "MerchantRequestID": "29115-34620561-1",
                    "CheckoutRequestID": checkout_id,
                    "ResultCode": 0,
                    "ResultDesc": "The service request is processed successfully.",
                    "CallbackMetadata": {
                        "Item": [
                            {"Name": "Amount", "Value": amount},
                            {"Name": "MpesaReceiptNumber", "Value": receipt},
                            {"Name": "Balance"},
                            {"Name": "TransactionDate", "Value": 20261126102115},
                            {"Name": "PhoneNumber", "Value": phone},
                        ]
                    },
                }
            }
        }
    ).encode()


async def callback_path(bridge: InProcessBridge, payment: dict[str, Any]) -> str:
    url = bridge.simulator.push(payment["checkout_request_id"]).callback_url
    return url.removeprefix("http://bridge.test")


async def post_callback(bridge: InProcessBridge, path: str, body: bytes) -> dict[str, Any]:
    response = await bridge.client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def stored(bridge: InProcessBridge) -> list[dict[str, Any]]:
    async with bridge.db.read_engine.connect() as conn:
        rows = await conn.execute(sa.select(tables.inbound_callbacks).order_by(tables.inbound_callbacks.c.id))
        return [dict(r._mapping) for r in rows]


async def events_of(bridge: InProcessBridge, payment_id: str) -> list[str]:
    async with bridge.db.read() as uow:
        return [e.type for e in await uow.events.for_payment(payment_id)]


async def settled(bridge: InProcessBridge) -> bool:
    return all(row["state"] != "received" for row in await stored(bridge))


async def test_a_duplicate_callback_changes_nothing(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    payment = await bridge.pay(shop)
    done = await bridge.wait_status(shop, payment["id"], "succeeded")
    first_body = bridge.simulator.push(payment["checkout_request_id"]).callbacks[0].body

    assert await post_callback(bridge, await callback_path(bridge, payment), json.dumps(first_body).encode()) == ACK
    await wait_until(lambda: settled(bridge))

    again = await bridge.get(shop, payment["id"])
    assert again == done
    assert await events_of(bridge, payment["id"]) == ["payment.created", "payment.succeeded"]
    assert [r["state"] for r in await stored(bridge)] == ["applied", "duplicate"]


async def test_fifty_concurrent_copies_apply_exactly_once(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    payment = await bridge.pay(shop, phone="0700000902", amount=75)  # late: stays pending meanwhile
    path = await callback_path(bridge, payment)
    body = success_body(payment["checkout_request_id"], amount=75.0, phone=254700000902)

    answers = await asyncio.gather(*(post_callback(bridge, path, body) for _ in range(50)))
    await wait_until(lambda: settled(bridge))

    assert all(a == ACK for a in answers)
    assert (await bridge.get(shop, payment["id"]))["status"] == "succeeded"
    assert await events_of(bridge, payment["id"]) == ["payment.created", "payment.succeeded"]
    states = [r["state"] for r in await stored(bridge)]
    assert states.count("applied") == 1 and states.count("duplicate") == 49


async def test_unknown_token_and_malformed_bodies_are_kept_and_answered(bridge: InProcessBridge) -> None:
    bodies = [b"not json", b"", b"[]", b'{"Body": {}}', success_body("ws_CO_1", amount=1.0)]
    for body in bodies:
        assert await post_callback(bridge, "/v1/callbacks/daraja/stk/no-such-token", body) == ACK
    await wait_until(lambda: settled(bridge))

    rows = await stored(bridge)
    assert [bytes(r["body"]) for r in rows] == bodies  # kept byte for byte
    assert [r["flag_reason"] for r in rows] == ["malformed"] * 4 + ["unknown_token"]
    assert all(r["state"] == "flagged" for r in rows)


async def pending_payment(bridge: InProcessBridge, shop: Tenant, amount: int = 500) -> dict[str, Any]:
    return await bridge.pay(shop, phone="0700000902", amount=amount)  # the late number: pending for a while


FORGERIES = {
    "amount_mismatch": {"amount": 1.0, "phone": 254700000902},
    "phone_mismatch": {"amount": 500.0, "phone": 254711111111},
    "receipt_missing": {"amount": 500.0, "phone": 254700000902, "receipt": "SKE0000000"},
}


@pytest.mark.parametrize("reason", list(FORGERIES))
async def test_amount_phone_or_receipt_mismatch_never_marks_paid(bridge: InProcessBridge, reason: str) -> None:
    shop = await bridge.create_project()
    payment = await pending_payment(bridge, shop)

    forged = success_body(payment["checkout_request_id"], **FORGERIES[reason])  # type: ignore[arg-type]
    await post_callback(bridge, await callback_path(bridge, payment), forged)
    await wait_until(lambda: settled(bridge))

    after = await bridge.get(shop, payment["id"])
    assert after["status"] == "pending"
    assert after["needs_attention"] and after["attention_reason"] == f"callback_{reason}"
    assert (await stored(bridge))[-1]["flag_reason"] == reason
    assert await events_of(bridge, payment["id"]) == ["payment.created"]


async def test_a_replayed_callback_for_another_payment_changes_nothing(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    paid = await bridge.pay(shop)
    await bridge.wait_status(shop, paid["id"], "succeeded")
    victim = await pending_payment(bridge, shop, amount=100)
    real_body = bridge.simulator.push(paid["checkout_request_id"]).callbacks[0].body

    await post_callback(bridge, await callback_path(bridge, victim), json.dumps(real_body).encode())
    await wait_until(lambda: settled(bridge))

    after = await bridge.get(shop, victim["id"])
    assert after["status"] == "pending" and not after["needs_attention"]
    assert (await stored(bridge))[-1]["flag_reason"] == "checkout_request_id_mismatch"


async def test_a_contradicting_callback_after_a_callback_set_state_is_flagged(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    payment = await bridge.pay(shop, phone="0700000903")  # success, then a 1032 for the same ids

    await wait_until(lambda: len(bridge.simulator.push(payment["checkout_request_id"]).callbacks) == 2)
    await wait_until(lambda: settled(bridge))

    after = await bridge.get(shop, payment["id"])
    assert after["status"] == "succeeded"
    assert after["needs_attention"] and after["attention_reason"] == "contradicting_callback"
    assert await events_of(bridge, payment["id"]) == ["payment.created", "payment.succeeded"]
    evidence = (await bridge.client.get(f"/v1/payments/{payment['id']}/evidence", headers=shop.headers())).json()
    assert [(e["source"], e["verdict"], e["result_code"]) for e in evidence["data"]] == [
        ("callback", "apply", "0"),
        ("callback", "conflict", "1032"),
    ]


async def test_a_stored_callback_is_applied_by_the_sweep_if_nobody_processed_it(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    payment = await pending_payment(bridge, shop, amount=42)
    await bridge.runtime.inbox.stop()  # as if the process died right after storing

    body = success_body(payment["checkout_request_id"], amount=42.0, phone=254700000902)
    await post_callback(bridge, await callback_path(bridge, payment), body)
    assert [r["state"] for r in await stored(bridge)] == ["received"]
    assert (await bridge.get(shop, payment["id"]))["status"] == "pending"

    assert await bridge.runtime.inbox.sweep() == 1

    assert (await bridge.get(shop, payment["id"]))["status"] == "succeeded"
    assert [r["state"] for r in await stored(bridge)] == ["applied"]


async def test_a_callback_is_stored_whatever_its_content_type(bridge: InProcessBridge) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"Content-Type": content_type} if content_type else {}
        response = await bridge.client.post("/v1/callbacks/daraja/stk/some-token", content=b"{}", headers=headers)
        assert response.status_code == 200 and response.json() == ACK
    await wait_until(lambda: settled(bridge))
    assert len(await stored(bridge)) == 3


async def test_an_oversized_chunked_body_is_413_before_parsing(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()

    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"metadata": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    response = await bridge.client.post(
        "/v1/payments", content=chunks(), headers={**shop.headers(), "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


async def test_callbacks_stored_together_are_applied_in_one_batch_exactly_once(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    await bridge.runtime.inbox.stop()  # store everything first, then apply it as one batch
    payments = [await bridge.pay(shop, phone=f"07000001{i:02d}", amount=100 + i) for i in range(5)]
    # The simulator's own callbacks land first (stored, not applied: the inbox is stopped) …
    await wait_until(
        lambda: len([p for p in payments if bridge.simulator.push(p["checkout_request_id"]).callbacks]) == 5
    )
    await wait_until(lambda: _count(bridge, 5))
    # … then a second copy of each, concurrently: they share transactions (group commit).
    batches_before = bridge.runtime.inbox.store.batches
    copies = [
        (
            await callback_path(bridge, p),
            json.dumps(bridge.simulator.push(p["checkout_request_id"]).callbacks[0].body).encode(),
        )
        for p in payments
    ]
    await asyncio.gather(*(post_callback(bridge, path, body) for path, body in copies))
    assert bridge.runtime.inbox.store.batches - batches_before < len(copies)
    rows = await stored(bridge)
    assert [r["state"] for r in rows] == ["received"] * 10

    assert await bridge.runtime.inbox.process_many([r["id"] for r in rows]) == 10  # one transaction

    states = [r["state"] for r in await stored(bridge)]
    assert states.count("applied") == 5 and states.count("duplicate") == 5
    for payment in payments:
        assert (await bridge.get(shop, payment["id"]))["status"] == "succeeded"
        assert await events_of(bridge, payment["id"]) == ["payment.created", "payment.succeeded"]
    assert await bridge.runtime.inbox.process_many([r["id"] for r in rows]) == 0  # nothing applied twice


async def _count(bridge: InProcessBridge, n: int) -> bool:
    return len(await stored(bridge)) == n
