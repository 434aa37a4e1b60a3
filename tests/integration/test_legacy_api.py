"""The earlier system's two payment calls (api/legacy.py), on SQLite and PostgreSQL: off until the
project turns them on; then a push and its status in the earlier shapes, through the same core as
/v1 (the simulator answers, the callback settles it), with the earlier error fields, a publishable
key only where client-side amounts are on, and nothing of another project or mode."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.bridge import InProcessBridge, Tenant, wait_until

PUSH = "/api/v1/transactions/stk-push"
STATUS = "/api/v1/transactions/status/"
BODY = {"phoneNumber": "0708374149", "amount": 25, "description": "Order 42"}


def key(tenant: Tenant, mode: str = "test") -> dict[str, str]:
    return {"x-api-key": tenant.test_key if mode == "test" else tenant.live_key}


async def turn_on(bridge: InProcessBridge, tenant: Tenant, **more: Any) -> dict[str, Any]:
    answer = await bridge.client.patch("/v1/project", json={"legacy_api": True, **more}, headers=tenant.headers())
    assert answer.status_code == 200, answer.text
    assert answer.json()["legacy_api"] is True
    shown: dict[str, Any] = answer.json()
    return shown


async def test_off_by_default_both_calls_answer_as_a_missing_route(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    assert (await bridge.client.get("/v1/project", headers=shop.headers())).json()["legacy_api"] is False
    pushed = await bridge.client.post(PUSH, json=BODY, headers=key(shop))
    missing = await bridge.client.post("/api/v1/transactions/no-such-route", json=BODY, headers=key(shop))
    assert pushed.status_code == missing.status_code == 404
    assert pushed.json()["success"] is False
    assert pushed.json()["error"]["message"] == missing.json()["error"]["message"]
    assert (await bridge.client.get(STATUS + "pay_x", headers=key(shop))).status_code == 404
    listed = await bridge.client.get("/v1/payments", headers=shop.headers())
    assert listed.json()["data"] == []  # nothing was pushed


async def test_a_push_and_its_status_in_the_earlier_shapes(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    await turn_on(bridge, shop)
    pushed = await bridge.client.post(PUSH, json=BODY, headers=key(shop))
    assert pushed.status_code == 200, pushed.text
    answer = pushed.json()
    assert answer["success"] is True and answer["message"]
    data = answer["data"]
    assert data["transactionId"].startswith("pay_") and data["status"] == "PENDING"
    assert (data["amount"], data["description"], data["accountReference"]) == (25, "Order 42", "Online")
    assert data["phoneNumber"] == "2547****4149"  # masked, as the earlier answers should have been
    assert data["checkoutRequestId"]
    assert answer["payment"]["id"] == data["transactionId"]  # the /v1 object beside it
    payment_id = data["transactionId"]

    # The same payment as /v1 sees it; the simulator's callback settles it.
    await bridge.wait_status(shop, payment_id, "succeeded")

    async def completed() -> dict[str, Any] | None:
        status = await bridge.client.get(STATUS + payment_id, headers=key(shop))
        shown: dict[str, Any] = status.json()
        return shown if shown["data"]["status"] == "COMPLETED" else None

    status = await wait_until(completed)
    assert status["success"] is True and status["data"]["mpesaReceiptNumber"]
    assert status["data"]["resultCode"] == "0"


@pytest.mark.parametrize(
    ("phone", "legacy_status"),
    [("0700001032", "CANCELLED"), ("0700000001", "FAILED")],
)
async def test_outcomes_map_to_the_earlier_statuses(bridge: InProcessBridge, phone: str, legacy_status: str) -> None:
    shop = await bridge.create_project()
    await turn_on(bridge, shop)
    pushed = (await bridge.client.post(PUSH, json={**BODY, "phoneNumber": phone}, headers=key(shop))).json()
    payment_id = pushed["data"]["transactionId"]
    await bridge.wait_status(shop, payment_id, "cancelled", "failed")
    status = (await bridge.client.get(STATUS + payment_id, headers=key(shop))).json()
    assert status["data"]["status"] == legacy_status and status["message"]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"amount": 10}, 400, "phoneNumber"),
        ({"phoneNumber": "0708374149"}, 400, "amount"),
        ({**BODY, "phoneNumber": "12345"}, 400, "phoneNumber"),
        ({**BODY, "amount": 0}, 400, "amount"),
        ({**BODY, "description": "x" * 40}, 400, "description"),
    ],
)
async def test_refusals_carry_the_earlier_fields_and_the_bridges_error(
    bridge: InProcessBridge, body: dict[str, Any], status: int, param: str
) -> None:
    shop = await bridge.create_project()
    await turn_on(bridge, shop)
    refused = await bridge.client.post(PUSH, json=body, headers=key(shop))
    assert refused.status_code == status, refused.text
    shown = refused.json()
    assert shown["success"] is False and shown["message"] == shown["error"]["message"]
    assert shown["error"]["param"] == param and shown["error"]["request_id"]


async def test_a_wrong_or_missing_key_is_refused(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    await turn_on(bridge, shop)
    for headers in ({}, {"x-api-key": "sk_test_" + "x" * 32}, {"x-api-key": "nonsense"}):
        refused = await bridge.client.post(PUSH, json=BODY, headers=headers)
        assert refused.status_code == 401, (headers, refused.text)
        assert refused.json()["success"] is False
    # Authorization: Bearer works as well as x-api-key.
    assert (await bridge.client.post(PUSH, json=BODY, headers=shop.headers())).status_code == 200


async def test_a_publishable_key_pushes_only_where_client_side_amounts_are_on(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    shown = await turn_on(bridge, shop)
    browser = {"x-api-key": shown["publishable_key"]}
    refused = await bridge.client.post(PUSH, json=BODY, headers=browser)
    assert refused.status_code == 403 and refused.json()["success"] is False
    assert refused.json()["error"]["code"] == "client_side_amounts_disabled"

    await turn_on(bridge, shop, client_side_amounts=True)
    pushed = await bridge.client.post(PUSH, json=BODY, headers=browser)
    assert pushed.status_code == 200, pushed.text
    payment_id = pushed.json()["data"]["transactionId"]
    assert pushed.json()["payment"]["metadata"] is None  # a browser sees no metadata
    await bridge.wait_status(shop, payment_id, "succeeded")
    read = await bridge.client.get(STATUS + payment_id, headers=browser)
    assert read.status_code == 200 and read.json()["data"]["status"] == "COMPLETED"

    # A payment made from the server is not the browser's to read.
    server_side = (await bridge.client.post(PUSH, json=BODY, headers=key(shop))).json()["data"]["transactionId"]
    hidden = await bridge.client.get(STATUS + server_side, headers=browser)
    assert hidden.status_code == 404


async def test_nothing_of_another_project_or_mode_is_seen(bridge: InProcessBridge) -> None:
    shop, other = await bridge.create_project("Shop"), await bridge.create_project("Other")
    await turn_on(bridge, shop)
    await turn_on(bridge, other)
    payment_id = (await bridge.client.post(PUSH, json=BODY, headers=key(shop))).json()["data"]["transactionId"]
    never = await bridge.client.get(STATUS + "pay_01nosuchpaymentxxxxxxxxxxx", headers=key(other))
    for headers in (key(other), key(shop, "live")):
        seen = await bridge.client.get(STATUS + payment_id, headers=headers)
        if headers == key(shop, "live"):  # live mode has no Daraja settings, but is the same project
            assert seen.status_code == 404
            continue
        assert seen.status_code == never.status_code == 404
        assert seen.json()["error"]["message"].replace(payment_id, "ID") == never.json()["error"]["message"].replace(
            "pay_01nosuchpaymentxxxxxxxxxxx", "ID"
        )


async def test_turning_it_off_stops_both_calls_at_once(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    await turn_on(bridge, shop)
    payment_id = (await bridge.client.post(PUSH, json=BODY, headers=key(shop))).json()["data"]["transactionId"]
    off = await bridge.client.patch("/v1/project", json={"legacy_api": False}, headers=shop.headers())
    assert off.status_code == 200 and off.json()["legacy_api"] is False
    assert (await bridge.client.get(STATUS + payment_id, headers=key(shop))).status_code == 404
    assert (await bridge.client.post(PUSH, json=BODY, headers=key(shop))).status_code == 404


async def test_a_body_that_is_not_an_object_is_refused_in_the_earlier_shape(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    await turn_on(bridge, shop)
    refused = await bridge.client.post(PUSH, json=["0708374149", 10], headers=key(shop))
    assert refused.status_code == 400
    assert refused.json()["success"] is False and refused.json()["error"]["code"] == "parameter_invalid"
