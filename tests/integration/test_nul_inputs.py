"""NUL (U+0000) in any input is refused at the edge, on both engines, with the usual error shape.

PostgreSQL refuses NUL in text and jsonb, so before this guard these inputs answered 500 there
(and were stored on SQLite). One place refuses them (`api/middleware.py`), before routing: a NUL in
the path answers 404 as an unknown id would, one in the query string or in a JSON body (a string,
a key, at any depth) answers 400 with `param` naming the parameter. Daraja's callbacks are exempt
(they are stored raw).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fixtures.bridge import ADMIN_TOKEN, InProcessBridge, Tenant

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PAYMENT = {"phone": "0708374149", "amount": 100, "account_reference": "INV001"}
HOOK = {"url": "http://127.0.0.1:9/hook", "enabled_events": ["*"]}
NUL = "\x00"

# (what, method, path, query, body): each refused with 400 and param.
BAD_INPUTS: list[tuple[str, str, str, dict[str, str] | None, Any]] = [
    ("metadata key", "POST", "/v1/payments", None, {**PAYMENT, "metadata": {"a" + NUL: 1}}),
    ("metadata value", "POST", "/v1/payments", None, {**PAYMENT, "metadata": {"a": "x" + NUL}}),
    ("metadata deep", "POST", "/v1/payments", None, {**PAYMENT, "metadata": {"a": [{"b": {"c": [NUL]}}]}}),
    ("reference filter", "GET", "/v1/payments", {"reference": NUL}, None),
    ("payments cursor", "GET", "/v1/payments", {"starting_after": "pay_" + NUL}, None),
    ("event type filter", "GET", "/v1/events", {"type": "payment." + NUL}, None),
    ("event payment filter", "GET", "/v1/events", {"payment": "pay_" + NUL}, None),
    ("event subject filter", "GET", "/v1/events", {"subject": "pay_" + NUL}, None),
    ("events cursor", "GET", "/v1/events", {"starting_after": "evt_" + NUL}, None),
    ("webhook description", "POST", "/v1/webhook_endpoints", None, {**HOOK, "description": NUL}),
    ("webhook description update", "PATCH", "/v1/webhook_endpoints/{endpoint}", None, {"description": "a" + NUL}),
    ("admin project name", "POST", "/v1/admin/projects", None, {"name": "Shop" + NUL}),
    ("admin daraja setting", "POST", "/v1/admin/projects", None, {"name": "S", "test": {"consumer_key": NUL}}),
    ("a key that is NUL", "POST", "/v1/payments", None, {NUL: 1, **PAYMENT}),
    # Not NUL, same family: no database encodes an unpaired surrogate (json.dumps writes "\ud800").
    ("unpaired surrogate", "POST", "/v1/webhook_endpoints", None, {**HOOK, "description": "a\ud800"}),
]
PARAMS = {
    "metadata key": "metadata",
    "metadata value": "metadata",
    "metadata deep": "metadata",
    "reference filter": "reference",
    "payments cursor": "starting_after",
    "event type filter": "type",
    "event payment filter": "payment",
    "event subject filter": "subject",
    "events cursor": "starting_after",
    "webhook description": "description",
    "webhook description update": "description",
    "admin project name": "name",
    "admin daraja setting": "test",
    "a key that is NUL": None,
    "unpaired surrogate": "description",
}
# (method, path): a NUL in a path id answers 404, as an unknown id does.
BAD_PATHS = [
    ("GET", "/v1/payments/pay_%00"),
    ("POST", "/v1/payments/pay_%00/refresh"),
    ("GET", "/v1/payments/pay_%00/evidence"),
    ("GET", "/v1/events/evt_%00"),
    ("POST", "/v1/events/evt_%00/redeliver"),
    ("GET", "/v1/webhook_endpoints/we_%00"),
    ("PATCH", "/v1/webhook_endpoints/we_%00"),
    ("DELETE", "/v1/webhook_endpoints/we_%00"),
    ("POST", "/v1/webhook_endpoints/we_%00/rotate_secret"),
    ("POST", "/v1/keys/key_%00/revoke"),
    ("PATCH", "/v1/admin/projects/prj_%00"),
    ("PUT", "/v1/admin/projects/prj_%00/daraja/test"),
    ("POST", "/v1/admin/projects/prj_%00/keys/test"),
    ("POST", "/v1/admin/keys/key_%00/revoke"),
]


def assert_error(response: Any, status: int, code: str, param: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert list(body) == ["error"] and set(body["error"]) == {"type", "code", "message", "param", "request_id"}
    assert body["error"]["type"] == "invalid_request_error", body
    assert body["error"]["code"] == code, body
    assert body["error"]["param"] == param, body
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return body


def _headers(shop: Tenant, path: str) -> dict[str, str]:
    return ADMIN if "/admin/" in path else shop.headers()


@pytest.mark.parametrize(("what", "method", "path", "query", "body"), BAD_INPUTS, ids=[i[0] for i in BAD_INPUTS])
async def test_a_nul_in_a_query_or_body_is_refused_with_400(
    bridge: InProcessBridge, what: str, method: str, path: str, query: dict[str, str] | None, body: Any
) -> None:
    shop = await bridge.create_project()
    if "{endpoint}" in path:
        created = await bridge.client.post("/v1/webhook_endpoints", json=HOOK, headers=shop.headers())
        path = path.format(endpoint=created.json()["id"])
    content = None if body is None else json.dumps(body).encode()
    headers = {**_headers(shop, path), "Content-Type": "application/json"}
    response = await bridge.client.request(method, path, params=query, content=content, headers=headers)
    error = assert_error(response, 400, "invalid_characters", PARAMS[what])
    assert "\x00" not in error["error"]["message"]
    assert bridge.simulator.pushes() == []


@pytest.mark.parametrize(("method", "path"), BAD_PATHS)
async def test_a_nul_in_a_path_id_answers_404_like_an_unknown_id(
    bridge: InProcessBridge, method: str, path: str
) -> None:
    shop = await bridge.create_project()
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    headers = {**_headers(shop, path), "Content-Type": "application/json"}
    response = await bridge.client.request(method, path, content=body, headers=headers)
    assert_error(response, 404, "resource_missing", None)


async def test_the_payment_stream_refuses_a_nul_client_secret_without_credentials(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    payment = await bridge.pay(shop)
    path = f"/v1/payments/{payment['id']}/events"
    response = await bridge.client.get(path, params={"client_secret": "pcs_" + NUL})
    assert_error(response, 400, "invalid_characters", "client_secret")


async def test_escaped_backslashes_and_other_control_characters_still_pass(bridge: InProcessBridge) -> None:
    """Only NUL is refused: a literal `\\u0000` text (escaped backslash) and other controls are data."""
    shop = await bridge.create_project()
    metadata = {"text": "\\u0000", "tab": "\t", "bell": "\x07", "unicode": "M-Pesa ✓"}
    response = await bridge.client.post("/v1/payments", json={**PAYMENT, "metadata": metadata}, headers=shop.headers())
    assert response.status_code == 201, response.text
    assert response.json()["metadata"] == metadata
    listed = await bridge.client.get("/v1/payments", params={"reference": "\\u0000"}, headers=shop.headers())
    assert listed.status_code == 200 and listed.json()["data"] == [], listed.text


async def test_callbacks_are_not_judged_here(bridge: InProcessBridge) -> None:
    """Daraja's callbacks are stored raw and acknowledged, whatever they hold (the inbox judges them)."""
    body = json.dumps({"Body": {"stkCallback": {"CheckoutRequestID": "ws_" + NUL}}}).encode()
    response = await bridge.client.post(
        "/v1/callbacks/daraja/stk/tok", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
