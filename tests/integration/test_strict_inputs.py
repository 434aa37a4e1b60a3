"""Strict where money or security is concerned, and no answer built from the `Host` header.

- A trailing slash is an unknown URL (404), never a redirect whose `Location` echoes `Host`.
- `NaN`, `Infinity` and numbers beyond a double are not JSON: refused (400), never stored as null.
- Integers and booleans that decide money or security refuse strings and each other's types:
  `"10"`, `10.0` and `true` are not a number of seconds; `"true"` and `1` are not a boolean.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fixtures.bridge import ADMIN_TOKEN, InProcessBridge

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PAYMENT = {"phone": "0708374149", "amount": 100, "account_reference": "INV001"}
HOOK = {"url": "http://127.0.0.1:9/hook", "enabled_events": ["*"]}
JSON = {"Content-Type": "application/json"}


def assert_400(response: Any, code: str, param: str | None) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param), error


# --- trailing slash ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/payments/"),
        ("POST", "/v1/payments/"),
        ("GET", "/v1/keys/"),
        ("GET", "/v1/events/"),
        ("GET", "/v1/webhook_endpoints/"),
        ("GET", "/v1/admin/projects/"),
        ("GET", "/healthz/"),
    ],
)
async def test_a_trailing_slash_is_not_found_and_never_redirects_to_the_host_header(
    bridge: InProcessBridge, method: str, path: str
) -> None:
    shop = await bridge.create_project()
    auth = ADMIN if "/admin/" in path else shop.headers()
    headers = {**auth, **JSON, "Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    body = json.dumps(PAYMENT).encode() if method == "POST" else None
    response = await bridge.client.request(method, path, content=body, headers=headers)
    assert response.status_code == 404, (response.status_code, dict(response.headers))
    assert response.json()["error"]["code"] == "resource_missing"
    assert "location" not in response.headers
    assert "evil" not in response.text and "evil" not in str(response.headers)
    assert bridge.simulator.pushes() == []


# --- non-finite numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_non_finite_numbers_in_metadata_are_refused_not_stored_as_null(
    bridge: InProcessBridge, number: str
) -> None:
    shop = await bridge.create_project()
    body = json.dumps(PAYMENT)[:-1] + f', "metadata": {{"score": {number}, "ok": 1}}}}'
    response = await bridge.client.post("/v1/payments", content=body.encode(), headers={**shop.headers(), **JSON})
    assert_400(response, "parameter_invalid", "metadata")
    listed = await bridge.client.get("/v1/payments", headers=shop.headers())
    assert listed.json()["data"] == [] and bridge.simulator.pushes() == []


async def test_non_finite_numbers_are_refused_in_every_body(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    refused = await bridge.client.post(
        "/v1/keys/rotate", content=b'{"grace_period_seconds": NaN}', headers={**shop.headers(), **JSON}
    )
    assert_400(refused, "parameter_invalid", "grace_period_seconds")


# --- strict integers and booleans ----------------------------------------------------------------------

NOT_SECONDS = ["10", "0", 10.0, 10.5, True, False, [10], {"s": 10}]
NOT_BOOLEANS = ["true", "false", 1, 0, "yes", "on", 1.0]


@pytest.mark.parametrize("value", NOT_SECONDS, ids=repr)
async def test_a_key_rotation_grace_period_is_a_json_integer(bridge: InProcessBridge, value: Any) -> None:
    shop = await bridge.create_project()
    body = {"grace_period_seconds": value}
    response = await bridge.client.post("/v1/keys/rotate", json=body, headers=shop.headers())
    assert_400(response, "parameter_invalid", "grace_period_seconds")
    still = await bridge.client.get("/v1/keys", headers=shop.headers())
    assert still.status_code == 200 and len(still.json()["data"]) == 1, still.text  # nothing was rotated


async def test_a_key_rotation_grace_period_as_an_integer_works(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    response = await bridge.client.post("/v1/keys/rotate", json={"grace_period_seconds": 10}, headers=shop.headers())
    assert response.status_code == 201, response.text
    assert response.json()["previous_key"]["expires_at"] is not None


@pytest.mark.parametrize("field", ["require_signed_requests", "confirm_by_query"])
@pytest.mark.parametrize("value", NOT_BOOLEANS, ids=repr)
async def test_admin_security_switches_are_json_booleans(bridge: InProcessBridge, field: str, value: Any) -> None:
    shop = await bridge.create_project()
    path = f"/v1/admin/projects/{shop.project_id}"
    response = await bridge.client.patch(path, json={field: value}, headers=ADMIN)
    assert_400(response, "parameter_invalid", field)
    listed = await bridge.client.get("/v1/admin/projects", headers=ADMIN)
    (project,) = listed.json()["data"]
    assert project[field] is False  # unchanged
    switched = await bridge.client.patch(path, json={field: True}, headers=ADMIN)
    assert switched.status_code == 200 and switched.json()[field] is True, switched.text


async def test_webhook_switches_and_grace_periods_are_strict_too(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    auth = shop.headers()
    refused = await bridge.client.post("/v1/webhook_endpoints", json={**HOOK, "enabled": "false"}, headers=auth)
    assert_400(refused, "parameter_invalid", "enabled")
    created = await bridge.client.post("/v1/webhook_endpoints", json=HOOK, headers=auth)
    endpoint = created.json()["id"]
    update = await bridge.client.patch(f"/v1/webhook_endpoints/{endpoint}", json={"enabled": 0}, headers=auth)
    assert_400(update, "parameter_invalid", "enabled")
    rotate = f"/v1/webhook_endpoints/{endpoint}/rotate_secret"
    for value in ("60", True, 60.0):
        refused = await bridge.client.post(rotate, json={"grace_period_seconds": value}, headers=auth)
        assert_400(refused, "parameter_invalid", "grace_period_seconds")
    rotated = await bridge.client.post(rotate, json={"grace_period_seconds": 60}, headers=auth)
    assert rotated.status_code == 200, rotated.text


@pytest.mark.parametrize("amount", ["10", True, 10.0, "1e2", [10], None])
async def test_the_amount_was_already_strict(bridge: InProcessBridge, amount: Any) -> None:
    shop = await bridge.create_project()
    response = await bridge.client.post("/v1/payments", json={**PAYMENT, "amount": amount}, headers=shop.headers())
    assert_400(response, "invalid_amount", "amount")
    assert bridge.simulator.pushes() == []
