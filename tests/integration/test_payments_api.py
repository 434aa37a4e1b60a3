"""POST/GET /v1/payments over ASGI, with the simulator as Daraja — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.fixtures.bridge import InProcessBridge


async def test_a_payment_succeeds_through_the_simulator(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()

    created = await bridge.pay(shop, phone="0708 374-149", amount=250, metadata={"order": 42})

    assert created["id"].startswith("pay_")
    assert created["status"] == "pending"
    assert created["phone"] == "254708374149"
    assert created["amount"] == 250 and created["currency"] == "KES"
    assert created["checkout_request_id"].startswith("ws_CO_")
    assert created["metadata"] == {"order": 42}
    done = await bridge.wait_status(shop, created["id"], "succeeded")
    assert done["mpesa_receipt_number"] and len(done["mpesa_receipt_number"]) == 10
    assert done["result_code"] == "0" and done["failure_code"] is None
    assert done["completed_at"] is not None and done["transaction_date"] is not None


@pytest.mark.parametrize(
    ("phone", "status", "failure_code"),
    [
        ("0700000001", "failed", "insufficient_funds"),
        ("0700001032", "cancelled", "user_cancelled"),
        ("0700001037", "failed", "timeout"),
        ("0700002001", "failed", "wrong_pin"),
        ("0700001001", "failed", "subscriber_locked"),
        ("0700009999", "failed", "system_error"),
    ],
)
async def test_magic_numbers_map_to_status_and_reason(
    bridge: InProcessBridge, phone: str, status: str, failure_code: str
) -> None:
    shop = await bridge.create_project()
    created = await bridge.pay(shop, phone=phone)
    done = await bridge.wait_status(shop, created["id"], status)
    assert done["failure_code"] == failure_code
    assert done["failure_message"]  # Safaricom's own text is kept beside the reason
    assert done["mpesa_receipt_number"] is None


BAD_BODIES: list[tuple[dict[str, Any], str, str]] = [
    ({"phone": "020123456"}, "phone", "invalid_phone"),
    ({"phone": "07123"}, "phone", "invalid_phone"),
    ({"phone": 712345678}, "phone", "invalid_phone"),
    ({"amount": 0}, "amount", "amount_out_of_range"),
    ({"amount": 250_001}, "amount", "amount_out_of_range"),
    ({"amount": 10.5}, "amount", "invalid_amount"),
    ({"amount": 10.0}, "amount", "invalid_amount"),
    ({"amount": "100"}, "amount", "invalid_amount"),
    ({"amount": True}, "amount", "invalid_amount"),
    ({"account_reference": "ABCDEFGHIJKLM"}, "account_reference", "too_long"),
    ({"account_reference": "INV#42"}, "account_reference", "invalid_characters"),
    ({"account_reference": ""}, "account_reference", "parameter_missing"),
    ({"description": "Fourteen chars"}, "description", "too_long"),
    ({"description": "Pay & go"}, "description", "invalid_characters"),
    ({"metadata": ["not", "an", "object"]}, "metadata", "invalid_metadata"),
    ({"metadata": {"blob": "x" * 5000}}, "metadata", "metadata_too_large"),
    ({"surprise": 1}, "surprise", "parameter_unknown"),
]


@pytest.mark.parametrize(("change", "param", "code"), BAD_BODIES)
async def test_bad_input_is_a_400_naming_the_field(
    bridge: InProcessBridge, change: dict[str, Any], param: str, code: str
) -> None:
    shop = await bridge.create_project()
    body = {"phone": "0708374149", "amount": 100, "account_reference": "INV001", **change}

    response = await bridge.client.post("/v1/payments", json=body, headers=shop.headers())

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert error["code"] == code
    assert error["type"] == "invalid_request_error"
    assert error["request_id"].startswith("req_")
    assert bridge.simulator.pushes() == []  # nothing Daraja would reject was sent


async def test_missing_fields_and_broken_json_are_400(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    missing = await bridge.client.post("/v1/payments", json={"amount": 100}, headers=shop.headers())
    broken = await bridge.client.post(
        "/v1/payments",
        content=b'{"phone": ',
        headers={**shop.headers(), "Content-Type": "application/json"},
    )
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "parameter_missing"
    assert missing.json()["error"]["param"] in ("phone", "account_reference")
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_json"


async def test_wrong_content_type_is_415_and_huge_body_is_413(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    form = await bridge.client.post("/v1/payments", data={"phone": "0708374149"}, headers=shop.headers())
    huge = await bridge.client.post(
        "/v1/payments",
        content=b'{"metadata": "' + b"x" * 70_000 + b'"}',
        headers={**shop.headers(), "Content-Type": "application/json"},
    )
    assert form.status_code == 415 and form.json()["error"]["code"] == "unsupported_media_type"
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "body_too_large"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer sk_test_nope", "Basic abc", "Bearer sk_test_" + "A" * 32, "sk_test_" + "A" * 32],
)
async def test_missing_or_wrong_key_is_401_with_one_message(bridge: InProcessBridge, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await bridge.client.get("/v1/payments", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid API key provided."
    assert response.json()["error"]["type"] == "authentication_error"


async def test_other_tenants_and_other_modes_see_404(bridge: InProcessBridge) -> None:
    shop, other = await bridge.create_project("Shop"), await bridge.create_project("Other")
    payment = await bridge.pay(shop)

    for headers in (other.headers(), shop.headers("live")):
        for method, path in (
            ("GET", f"/v1/payments/{payment['id']}"),
            ("POST", f"/v1/payments/{payment['id']}/refresh"),
            ("GET", f"/v1/payments/{payment['id']}/evidence"),
        ):
            response = await bridge.client.request(method, path, headers=headers)
            assert response.status_code == 404, (method, path, response.text)
            assert payment["id"] in response.json()["error"]["message"]  # echoes what was asked, nothing more
    listing = await bridge.client.get("/v1/payments", headers=other.headers())
    assert listing.json()["data"] == []


async def test_live_mode_without_daraja_settings_is_a_clear_400(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    body = {"phone": "0708374149", "amount": 100, "account_reference": "INV001"}
    response = await bridge.client.post("/v1/payments", json=body, headers=shop.headers("live"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "mode_not_configured"


async def test_list_filters_and_cursor_pagination(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    made = []
    for i in range(5):
        bridge.clock.advance(60)
        made.append(
            await bridge.pay(shop, account_reference=f"REF{i % 2}", phone="0700001032" if i == 4 else "0708374149")
        )
    await bridge.wait_status(shop, made[4]["id"], "cancelled")
    newest_first = [p["id"] for p in reversed(made)]

    page1 = (await bridge.client.get("/v1/payments?limit=2", headers=shop.headers())).json()
    page2 = (
        await bridge.client.get(f"/v1/payments?limit=2&starting_after={page1['next_cursor']}", headers=shop.headers())
    ).json()
    page3 = (
        await bridge.client.get(f"/v1/payments?limit=2&starting_after={page2['next_cursor']}", headers=shop.headers())
    ).json()
    by_ref = (await bridge.client.get("/v1/payments?reference=REF1", headers=shop.headers())).json()
    by_status = (await bridge.client.get("/v1/payments?status=cancelled", headers=shop.headers())).json()
    by_phone = (await bridge.client.get("/v1/payments?phone=%2B254700001032", headers=shop.headers())).json()
    since = (bridge.clock.now() - timedelta(seconds=90)).isoformat()
    recent = (await bridge.client.get("/v1/payments", params={"created_gte": since}, headers=shop.headers())).json()

    assert [p["id"] for p in page1["data"] + page2["data"] + page3["data"]] == newest_first
    assert page1["has_more"] and page2["has_more"] and not page3["has_more"] and page3["next_cursor"] is None
    assert {p["id"] for p in by_ref["data"]} == {made[1]["id"], made[3]["id"]}
    assert [p["id"] for p in by_status["data"]] == [made[4]["id"]]
    assert [p["id"] for p in by_phone["data"]] == [made[4]["id"]]
    assert [p["id"] for p in recent["data"]] == [made[4]["id"], made[3]["id"]]


async def test_list_refuses_bad_filters(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    for query, param in (
        ("status=paid", "status"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("phone=123", "phone"),
        ("created_gte=2026-01-01T00:00:00", "created_gte"),
        ("created_gte=yesterday", "created_gte"),
    ):
        response = await bridge.client.get(f"/v1/payments?{query}", headers=shop.headers())
        assert response.status_code == 400, (query, response.text)
        assert response.json()["error"]["param"] == param


async def test_unknown_payment_and_unknown_route(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    missing = await bridge.client.get("/v1/payments/pay_nope", headers=shop.headers())
    route = await bridge.client.get("/v1/nothing-here", headers=shop.headers())
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "resource_missing"
    assert route.status_code == 404 and route.json()["error"]["code"] == "resource_missing"


async def test_openapi_and_docs_are_served(bridge: InProcessBridge) -> None:
    schema = (await bridge.client.get("/openapi.json")).json()
    docs = await bridge.client.get("/docs")
    script = await bridge.client.get("/docs/assets/swagger-ui-bundle.js")
    assert "/v1/payments" in schema["paths"] and "/v1/payments/{payment_id}/refresh" in schema["paths"]
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "cdn" not in docs.text.lower() and "http://" not in docs.text and "https://" not in docs.text
    assert script.status_code == 200 and len(script.content) > 100_000


async def test_metadata_keeps_every_json_value_through_the_database(bridge: InProcessBridge) -> None:
    """JSON columns are written and read with orjson: the metadata comes back as it was sent, the
    64-bit integer limits and text beyond ASCII included, on both engines."""
    shop = await bridge.create_project()
    metadata = {
        "big": 2**63 - 1,
        "negative": -(2**63),
        "text": "Nairobi — ŋ ✓",
        "nested": {"list": [1, 2.5, None, True]},
    }
    created = await bridge.pay(shop, phone="0708374149", amount=10, metadata=metadata)
    assert created["metadata"] == metadata
    read = await bridge.get(shop, created["id"])
    assert read["metadata"] == metadata
    events = (await bridge.client.get(f"/v1/events?subject={created['id']}", headers=shop.headers())).json()
    assert all(event["data"]["object"]["metadata"] == metadata for event in events["data"])
