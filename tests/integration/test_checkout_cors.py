"""CORS on the client-secret routes (the widget's calls from a merchant's site) — on SQLite and
PostgreSQL: the listed origin is answered, any other is refused before anything is pushed, and a
secret key never gets CORS headers. And the widget's script itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mpesa_bridge.config import Settings
from tests.fixtures.bridge import InProcessBridge, make_settings

SHOP = "https://shop.example"
OTHER = "https://evil.example"


@pytest.fixture
def bridge_settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path, realtime_cors_origins=SHOP)


async def open_session(bridge: InProcessBridge) -> tuple[dict[str, Any], dict[str, str]]:
    shop = await bridge.create_project()
    created = await bridge.client.post(
        "/v1/checkout_sessions", json={"amount": 100, "reference": "W1"}, headers=shop.headers()
    )
    assert created.status_code == 201, created.text
    return created.json(), shop.headers()


def preflight(origin: str) -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}


async def test_the_listed_origin_may_read_and_pay(bridge: InProcessBridge) -> None:
    session, _ = await open_session(bridge)
    path, secret = f"/v1/checkout_sessions/{session['id']}", {"client_secret": session["client_secret"]}

    allowed = await bridge.client.options(path + "/pay", params=secret, headers=preflight(SHOP))
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "content-type" in allowed.headers["access-control-allow-headers"].lower()

    read = await bridge.client.get(path, params=secret, headers={"Origin": SHOP})
    assert read.status_code == 200 and read.headers["access-control-allow-origin"] == SHOP
    assert "Origin" in read.headers["vary"]
    paid = await bridge.client.post(
        path + "/pay", params=secret, json={"phone": "0708374149"}, headers={"Origin": SHOP}
    )
    assert paid.status_code == 200, paid.text
    assert paid.headers["access-control-allow-origin"] == SHOP
    assert len(bridge.simulator.pushes()) == 1


async def test_another_origin_is_refused_and_a_secret_key_gets_no_cors(bridge: InProcessBridge) -> None:
    session, key_headers = await open_session(bridge)
    path, secret = f"/v1/checkout_sessions/{session['id']}", {"client_secret": session["client_secret"]}

    refused = await bridge.client.options(path + "/pay", params=secret, headers=preflight(OTHER))
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    assert refused.json()["error"]["code"] == "origin_not_allowed"
    pushed = await bridge.client.post(
        path + "/pay", params=secret, json={"phone": "0708374149"}, headers={"Origin": OTHER}
    )
    assert pushed.status_code == 403 and bridge.simulator.pushes() == []
    read = await bridge.client.get(path, params=secret, headers={"Origin": OTHER})
    assert read.status_code == 403

    by_key = await bridge.client.get(path, headers={**key_headers, "Origin": SHOP})
    assert by_key.status_code == 200 and "access-control-allow-origin" not in by_key.headers
    no_origin = await bridge.client.get(path, params=secret)  # a server, curl: no CORS at all
    assert no_origin.status_code == 200 and "access-control-allow-origin" not in no_origin.headers
    listing = await bridge.client.get("/v1/checkout_sessions", headers={**key_headers, "Origin": OTHER})
    assert listing.status_code == 200 and "access-control-allow-origin" not in listing.headers


async def test_the_widget_script_is_served_for_other_sites(bridge: InProcessBridge) -> None:
    script = await bridge.client.get("/v1/widget.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert script.headers["cross-origin-resource-policy"] == "cross-origin"
    assert "window.MpesaBridge" in script.text and "attachShadow" in script.text
