"""The duplicate-push and busy-phone guards under attack, alone and in a stampede — SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from mpesa_bridge.config import Settings
from tests.fixtures.bridge import InProcessBridge, Tenant, make_settings, wait_until

LATE = "0700000902"  # the simulator answers after simulator_late_callback_delay: pending for the whole test
SILENT = "0700000900"  # the customer pays at once but no callback comes: pending until asked (refresh)
PAYMENT = {"phone": LATE, "amount": 100, "account_reference": "INV001", "description": "Test"}
DUPLICATE_WINDOW = 600.0
PHONE_WINDOW = 120.0


@pytest.fixture
def bridge_settings(db_url: str, tmp_path: Path) -> Settings:
    # make_settings turns both guards off for the rest of the suite; here they are what is tested.
    return make_settings(
        db_url,
        tmp_path,
        duplicate_guard_window=DUPLICATE_WINDOW,
        phone_lock_window=PHONE_WINDOW,
        simulator_late_callback_delay=60.0,
        rate_limit_enabled=False,
    )


async def push(bridge: InProcessBridge, tenant: Tenant, **change: Any) -> httpx.Response:
    return await bridge.client.post("/v1/payments", json={**PAYMENT, **change}, headers=tenant.headers())


def refused(response: httpx.Response, code: str) -> dict[str, Any]:
    assert response.status_code == 409, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    return error


async def payments_of(bridge: InProcessBridge, tenant: Tenant) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = (await bridge.client.get("/v1/payments", headers=tenant.headers())).json()["data"]
    return data


async def simulator_idle(bridge: InProcessBridge) -> None:
    """Every push the simulator took has been decided, so its own per-phone lock is free again."""
    await wait_until(lambda: all(p.decided for p in bridge.simulator.pushes()))


async def test_a_second_identical_push_is_refused(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    first = await push(bridge, shop)
    assert first.status_code == 201 and first.json()["status"] == "pending"

    again = await push(bridge, shop)
    respelled = await push(bridge, shop, phone="+254 700 000 902")  # the same phone, written differently

    for response in (again, respelled):
        error = refused(response, "duplicate_in_flight")
        assert first.json()["id"] in error["message"]
    assert len(bridge.simulator.pushes()) == 1
    assert [p["id"] for p in await payments_of(bridge, shop)] == [first.json()["id"]]


async def test_another_push_to_a_busy_phone_is_refused(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    rival = await bridge.create_project("Rival")  # same simulator shortcode: the same customer's phone
    first = await push(bridge, shop)
    assert first.status_code == 201

    other_amount = await push(bridge, shop, amount=250)
    other_reference = await push(bridge, shop, account_reference="INV002")
    other_project = await push(bridge, rival)

    for response in (other_amount, other_reference, other_project):
        error = refused(response, "phone_busy")
        assert error["param"] == "phone"
    assert first.json()["id"] not in other_project.text  # nothing of the other project's payment leaks
    assert len(bridge.simulator.pushes()) == 1


async def test_another_phone_is_not_held_up(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    assert (await push(bridge, shop)).status_code == 201

    other_phone = await push(bridge, shop, phone="0708374149")

    assert other_phone.status_code == 201, other_phone.text
    assert len(bridge.simulator.pushes()) == 2


async def test_a_retry_with_its_idempotency_key_is_a_replay_not_a_409(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    headers = {**shop.headers(), "Idempotency-Key": "order-42"}
    first = await bridge.client.post("/v1/payments", json=PAYMENT, headers=headers)

    retry = await bridge.client.post("/v1/payments", json=PAYMENT, headers=headers)

    assert first.status_code == 201
    assert retry.status_code == 201 and retry.headers.get("Idempotent-Replayed") == "true"
    assert retry.content == first.content
    assert len(bridge.simulator.pushes()) == 1


async def test_a_refusal_is_not_remembered_under_its_idempotency_key(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    first = await push(bridge, shop, phone=SILENT)
    await simulator_idle(bridge)
    headers = {**shop.headers(), "Idempotency-Key": "order-43"}
    blocked = await bridge.client.post("/v1/payments", json={**PAYMENT, "phone": SILENT}, headers=headers)
    refused(blocked, "duplicate_in_flight")

    settled = await bridge.client.post(f"/v1/payments/{first.json()['id']}/refresh", headers=shop.headers())
    assert settled.json()["status"] == "succeeded", settled.text
    retry = await bridge.client.post("/v1/payments", json={**PAYMENT, "phone": SILENT}, headers=headers)

    # "Try again later" is not stored: the retry with the same key runs, and is then remembered.
    assert retry.status_code == 201, retry.text
    assert retry.headers.get("Idempotent-Replayed") is None
    again = await bridge.client.post("/v1/payments", json={**PAYMENT, "phone": SILENT}, headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true" and again.content == retry.content
    assert len(bridge.simulator.pushes()) == 2


async def test_once_the_first_payment_settles_a_new_push_works(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    first = await push(bridge, shop, phone=SILENT)
    await simulator_idle(bridge)  # the customer has paid; the bridge has not heard yet
    refused(await push(bridge, shop, phone=SILENT), "duplicate_in_flight")

    settled = await bridge.client.post(f"/v1/payments/{first.json()['id']}/refresh", headers=shop.headers())
    assert settled.status_code == 200 and settled.json()["status"] == "succeeded", settled.text
    second = await push(bridge, shop, phone=SILENT)

    assert second.status_code == 201, second.text
    assert second.json()["status"] == "pending" and second.json()["id"] != first.json()["id"]
    assert len(bridge.simulator.pushes()) == 2


async def test_a_failed_payment_does_not_hold_the_phone(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    first = await push(bridge, shop, phone="0700001032")  # the customer cancels (callback at once)
    await bridge.wait_status(shop, first.json()["id"], "cancelled")
    await simulator_idle(bridge)

    second = await push(bridge, shop, phone="0700001032")

    assert second.status_code == 201, second.text
    assert len(bridge.simulator.pushes()) == 2


async def test_the_phone_lock_ends_with_its_window(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    assert (await push(bridge, shop, phone=SILENT)).status_code == 201
    await simulator_idle(bridge)

    bridge.clock.advance(PHONE_WINDOW - 1)
    refused(await push(bridge, shop, phone=SILENT, amount=250), "phone_busy")
    bridge.clock.advance(2)
    # Past the phone window the same push is still a duplicate (its window is longer) ...
    refused(await push(bridge, shop, phone=SILENT), "duplicate_in_flight")
    # ... but another amount may prompt the phone again.
    other_amount = await push(bridge, shop, phone=SILENT, amount=250)

    assert other_amount.status_code == 201, other_amount.text
    assert len(bridge.simulator.pushes()) == 2


async def test_the_duplicate_guard_ends_with_its_window(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    first = await push(bridge, shop, phone=SILENT)
    await simulator_idle(bridge)

    bridge.clock.advance(DUPLICATE_WINDOW - 1)
    refused(await push(bridge, shop, phone=SILENT), "duplicate_in_flight")
    bridge.clock.advance(2)
    again = await push(bridge, shop, phone=SILENT)

    assert again.status_code == 201, again.text
    assert again.json()["id"] != first.json()["id"]
    assert len(bridge.simulator.pushes()) == 2


async def test_twenty_simultaneous_identical_pushes_prompt_once(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()

    responses = await asyncio.gather(*(push(bridge, shop) for _ in range(20)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 19, [(r.status_code, r.text) for r in responses if r.status_code != 409]
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"duplicate_in_flight"}
    assert len(bridge.simulator.pushes()) == 1
    assert len(await payments_of(bridge, shop)) == 1


async def test_twenty_simultaneous_pushes_to_one_phone_prompt_once(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()

    responses = await asyncio.gather(*(push(bridge, shop, amount=100 + i) for i in range(20)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 19, [(r.status_code, r.text) for r in responses if r.status_code != 409]
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"phone_busy"}
    assert len(bridge.simulator.pushes()) == 1
    assert len(await payments_of(bridge, shop)) == 1
