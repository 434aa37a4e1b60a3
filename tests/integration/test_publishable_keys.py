"""Publishable keys, client-side amounts and per-project allowed origins — on SQLite and PostgreSQL.

The earlier system's call shape (a publishable key and an amount chosen in the browser) opens a
checkout session only for a project that turned client-side amounts on; it is rate-limited per
address and per phone; a publishable key opens nothing else; the browser routes answer CORS only to
the project's allowed origins (the server-wide list is the fallback of a project with none)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute

from mpesa_bridge.api.deps import get_caller, get_tenant
from mpesa_bridge.config import Settings
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.db import Database
from tests.fixtures.bridge import InProcessBridge, Tenant, make_settings
from tests.fixtures.realtime import live_bridge

SHOP = "https://shop.example"
OTHER = "https://evil.example"


@pytest.fixture
def bridge_settings(db_url: str, tmp_path: Path) -> Settings:
    # The server-wide list keeps its default (*): a project's own list decides where it has one.
    return make_settings(db_url, tmp_path, rate_limit_browser_create="4/hour", rate_limit_browser_phone="1/hour")


async def browser_project(
    bridge: InProcessBridge, *, on: bool = True, origins: list[str] | None = None, **more: Any
) -> tuple[Tenant, str]:
    """A project with client-side amounts `on`, and its test-mode publishable key."""
    tenant = await bridge.create_project()
    body = {"client_side_amounts": on, "allowed_origins": [SHOP] if origins is None else origins, **more}
    changed = await bridge.client.patch("/v1/project", json=body, headers=tenant.headers())
    assert changed.status_code == 200, changed.text
    return tenant, changed.json()["publishable_key"]


def pk(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def sessions_of(bridge: InProcessBridge, tenant: Tenant) -> list[dict[str, Any]]:
    listed = await bridge.client.get("/v1/checkout_sessions", headers=tenant.headers())
    assert listed.status_code == 200, listed.text
    data: list[dict[str, Any]] = listed.json()["data"]
    return data


# --- keys -----------------------------------------------------------------------------------------


async def test_every_project_has_a_publishable_key_per_mode_readable_with_its_secret_key(
    bridge: InProcessBridge,
) -> None:
    shop = await bridge.create_project()
    keys = {mode: (await bridge.client.get("/v1/keys", headers=shop.headers(mode))).json() for mode in ("test", "live")}
    assert keys["test"]["publishable_key"].startswith("pk_test_") and len(keys["test"]["publishable_key"]) == 32
    assert keys["live"]["publishable_key"].startswith("pk_live_")
    project = (await bridge.client.get("/v1/project", headers=shop.headers())).json()
    assert project == {
        "object": "project",
        "id": shop.project_id,
        "name": "Shop",
        "mode": "test",
        "publishable_key": keys["test"]["publishable_key"],
        "client_side_amounts": False,
        "client_side_amount_max": None,
        "allowed_origins": [],
        "legacy_api": False,  # the earlier system's calls: off until turned on (api/legacy.py)
    }


async def test_rotating_the_publishable_key_stops_the_old_one_at_once_and_is_audited(bridge: InProcessBridge) -> None:
    shop, old = await browser_project(bridge)
    rotated = await bridge.client.post("/v1/project/publishable_key/rotate", headers=shop.headers())
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["publishable_key"]
    assert rotated.json()["previous_publishable_key"] == old and new != old and new.startswith("pk_test_")
    refused = await bridge.client.post("/v1/checkout_sessions", json={"amount": 10}, headers=pk(old))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_publishable_key"
    opened = await bridge.client.post("/v1/checkout_sessions", json={"amount": 10}, headers=pk(new))
    assert opened.status_code == 201, opened.text
    async with bridge.db.read_engine.connect() as conn:
        rows = (await conn.execute(sa.select(tables.audit_log))).mappings().all()
    actions = {(row["action"], row["project_id"]) for row in rows}
    assert ("publishable_key.rotated", shop.project_id) in actions
    assert ("project.browser_settings_changed", shop.project_id) in actions
    assert all(row["user_id"].startswith("key:key_") for row in rows)


async def test_a_publishable_key_opens_no_secret_key_route(bridge: InProcessBridge) -> None:
    """Every route that takes a secret key answers a valid publishable key 401, as any wrong key."""
    _, key = await browser_project(bridge)
    routes = [
        (method, route.path)
        for route in bridge.app.routes
        if isinstance(route, APIRoute)
        for method in route.methods
        if _takes_a_secret_key(route)
    ]
    assert len(routes) > 20 and ("GET", "/v1/project") in routes
    for method, path in routes:
        url = path.replace("{", "").replace("}", "")  # any id: the key is refused first
        for headers in (pk(key), {"X-Api-Key": key}):
            response = await bridge.client.request(method, url, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers, response.text)
    # the reads a client secret opens refuse it too
    session = (await bridge.client.post("/v1/checkout_sessions", json={"amount": 10}, headers=pk(key))).json()
    read = await bridge.client.get(f"/v1/checkout_sessions/{session['id']}", headers=pk(key))
    assert read.status_code == 401
    paid = await bridge.client.post(
        f"/v1/checkout_sessions/{session['id']}/pay", json={"phone": "0708374149"}, headers=pk(key)
    )
    assert paid.status_code == 401 and bridge.simulator.pushes() == []


def _takes_a_secret_key(route: APIRoute) -> bool:
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        if dependant.call in (get_caller, get_tenant):
            return True
        pending.extend(dependant.dependencies)
    return False


# --- the earlier system's call shape ---------------------------------------------------------------


async def test_client_side_amounts_off_refuses_with_the_setting_named_then_on_opens_a_session(
    bridge: InProcessBridge,
) -> None:
    shop, key = await browser_project(bridge, on=False)
    refused = await bridge.client.post("/v1/checkout_sessions", json={"amount": 150}, headers=pk(key))
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["code"] == "client_side_amounts_disabled" and error["type"] == "permission_error"
    assert "client_side_amounts" in error["message"] and "client-side amounts" in error["message"]
    assert await sessions_of(bridge, shop) == []

    await bridge.client.patch("/v1/project", json={"client_side_amounts": True}, headers=shop.headers())
    opened = await bridge.client.post(
        "/v1/checkout_sessions",
        json={"amount": 150, "reference": "CART 9", "description": "Basket"},
        headers={"X-Api-Key": key},  # the earlier system's header
    )
    assert opened.status_code == 201, opened.text
    body = opened.json()
    assert body["amount"] == 150 and body["reference"] == "CART 9" and body["status"] == "open"
    assert body["client_secret"].startswith(body["id"]) and body["url"].endswith(f"/pay/{body['id']}")
    assert "metadata" not in body and body["payment"] is None
    # the session is the project's, test mode, and its client secret works as any other
    assert [s["id"] for s in await sessions_of(bridge, shop)] == [body["id"]]
    read = await bridge.client.get(
        f"/v1/checkout_sessions/{body['id']}", params={"client_secret": body["client_secret"]}
    )
    assert read.status_code == 200 and read.json()["amount"] == 150
    default = await bridge.client.post("/v1/checkout_sessions", json={"amount": 5}, headers=pk(key))
    assert default.json()["reference"] == "Online"
    assert bridge.simulator.pushes() == []


async def test_a_phone_with_the_call_sends_the_prompt_at_once(bridge: InProcessBridge) -> None:
    _, key = await browser_project(bridge)
    opened = await bridge.client.post(
        "/v1/checkout_sessions", json={"amount": 75, "phone": "0711000201"}, headers=pk(key)
    )
    assert opened.status_code == 201, opened.text
    payment = opened.json()["payment"]
    assert payment["amount"] == 75 and payment["phone"] != "254711000201"  # masked
    assert opened.json()["payment_in_flight"] is True
    assert [p.request.amount for p in bridge.simulator.pushes()] == [75]


async def test_amount_bounds_and_secret_key_only_fields(bridge: InProcessBridge) -> None:
    shop, key = await browser_project(bridge, client_side_amount_max=500)
    cases = {
        "missing": ({}, "parameter_missing", "amount"),
        "zero": ({"amount": 0}, "amount_out_of_range", "amount"),
        "text": ({"amount": "100"}, "invalid_amount", "amount"),
        "above the limit": ({"amount": 250_001}, "amount_out_of_range", "amount"),
        "above the project's max": ({"amount": 501}, "amount_above_client_side_max", "amount"),
        "a range": ({"amount_min": 1, "amount_max": 9}, "parameter_not_allowed", "amount_min"),
        "metadata": ({"amount": 5, "metadata": {"a": 1}}, "parameter_not_allowed", "metadata"),
        "success_url": ({"amount": 5, "success_url": "https://x.example"}, "parameter_not_allowed", "success_url"),
        "bad phone": ({"amount": 5, "phone": "12"}, "invalid_phone", "phone"),
    }
    for name, (body, code, param) in cases.items():
        response = await bridge.client.post("/v1/checkout_sessions", json=body, headers=pk(key))
        assert response.status_code == 400, (name, response.text)
        assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (code, param), name
    with_key = await bridge.client.post(
        "/v1/checkout_sessions", json={"amount": 5}, headers={**pk(key), "Idempotency-Key": "k1"}
    )
    assert with_key.status_code == 400 and with_key.json()["error"]["param"] == "Idempotency-Key"
    assert (await bridge.client.post("/v1/checkout_sessions", json={"amount": 500}, headers=pk(key))).status_code == 201
    # a secret key may not send a phone; it still opens sessions as before
    by_secret = await bridge.client.post(
        "/v1/checkout_sessions", json={"amount": 5, "reference": "R", "phone": "0711000202"}, headers=shop.headers()
    )
    assert by_secret.status_code == 400 and by_secret.json()["error"]["param"] == "phone"
    assert bridge.simulator.pushes() == []


async def test_creation_is_rate_limited_per_address(bridge: InProcessBridge) -> None:
    _, key = await browser_project(bridge)  # 4 per hour per address in this module's settings
    for _ in range(4):
        assert (
            await bridge.client.post("/v1/checkout_sessions", json={"amount": 5}, headers=pk(key))
        ).status_code == 201
    refused = await bridge.client.post("/v1/checkout_sessions", json={"amount": 5}, headers=pk(key))
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) >= 1 and refused.json()["error"]["code"] == "rate_limited"
    # the secret key's own creations do not count against the browser's allowance, nor are they refused
    shop2 = await bridge.create_project("Other")
    assert (
        await bridge.client.post("/v1/checkout_sessions", json={"amount": 5, "reference": "R"}, headers=shop2.headers())
    ).status_code == 201


async def test_prompts_of_client_side_sessions_are_rate_limited_per_phone(bridge: InProcessBridge) -> None:
    shop, key = await browser_project(bridge)  # 1 prompt per phone per hour for client-side sessions
    first = await bridge.client.post(
        "/v1/checkout_sessions", json={"amount": 5, "phone": "0711000203"}, headers=pk(key)
    )
    assert first.status_code == 201, first.text
    second = (await bridge.client.post("/v1/checkout_sessions", json={"amount": 6}, headers=pk(key))).json()
    refused = await bridge.client.post(
        f"/v1/checkout_sessions/{second['id']}/pay",
        params={"client_secret": second["client_secret"]},
        json={"phone": "+254 711 000 203"},
    )
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "phone_rate_limited" and int(refused.headers["retry-after"]) >= 1
    again = await bridge.client.post(
        "/v1/checkout_sessions", json={"amount": 7, "phone": "0711000203"}, headers=pk(key)
    )
    assert again.status_code == 429 and len(await sessions_of(bridge, shop)) == 2  # refused before opening one
    # the hosted page holds such a session to the same allowance
    page = await bridge.client.post(
        f"/pay/{second['id']}", data={"client_secret": second["client_secret"], "phone": "0711000203"}
    )
    assert page.status_code == 400 and "Too many payment requests" in page.text
    assert len(bridge.simulator.pushes()) == 1
    # another phone is fine, and a session the merchant's server opened is not bound by this limit
    other = await bridge.client.post(
        f"/v1/checkout_sessions/{second['id']}/pay",
        params={"client_secret": second["client_secret"]},
        json={"phone": "0711000204"},
    )
    assert other.status_code == 200, other.text
    server = (
        await bridge.client.post("/v1/checkout_sessions", json={"amount": 8, "reference": "S"}, headers=shop.headers())
    ).json()
    paid = await bridge.client.post(
        f"/v1/checkout_sessions/{server['id']}/pay",
        params={"client_secret": server["client_secret"]},
        json={"phone": "0711000203"},
    )
    assert paid.status_code == 200, paid.text
    assert [p.request.amount for p in bridge.simulator.pushes()] == [5, 6, 8]


# --- settings -------------------------------------------------------------------------------------


async def test_settings_are_validated_and_origins_normalised(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    bad = {
        "a path": ({"allowed_origins": ["https://shop.example/checkout"]}, "invalid_origin"),
        "a wildcard": ({"allowed_origins": ["*"]}, "invalid_origin"),
        "a wildcard host": ({"allowed_origins": ["https://*.shop.example"]}, "invalid_origin"),
        "another scheme": ({"allowed_origins": ["ftp://shop.example"]}, "invalid_origin"),
        "a query": ({"allowed_origins": ["https://shop.example?x=1"]}, "invalid_origin"),
        "user info": ({"allowed_origins": ["https://me@shop.example"]}, "invalid_origin"),
        "not a list": ({"allowed_origins": "https://shop.example"}, "invalid_origin"),
        "too many": ({"allowed_origins": [f"https://s{i}.example" for i in range(21)]}, "too_many_origins"),
        "max zero": ({"client_side_amount_max": 0}, "invalid_amount"),
        "max text": ({"client_side_amount_max": "10"}, "invalid_amount"),
        "unknown field": ({"colour": "red"}, None),
        "switch as text": ({"client_side_amounts": "yes"}, None),
    }
    for name, (body, code) in bad.items():
        response = await bridge.client.patch("/v1/project", json=body, headers=shop.headers())
        assert response.status_code == 400, (name, response.text)
        if code is not None:
            assert response.json()["error"]["code"] == code, name
    unchanged = (await bridge.client.get("/v1/project", headers=shop.headers())).json()
    assert unchanged["allowed_origins"] == [] and unchanged["client_side_amount_max"] is None

    good = await bridge.client.patch(
        "/v1/project",
        json={
            "allowed_origins": ["HTTPS://Shop.Example:443/", "http://localhost:3000", "https://shop.example"],
            "client_side_amount_max": 2000,
        },
        headers=shop.headers(),
    )
    assert good.status_code == 200, good.text
    assert good.json()["allowed_origins"] == ["https://shop.example", "http://localhost:3000"]
    assert good.json()["client_side_amount_max"] == 2000 and good.json()["client_side_amounts"] is False
    cleared = await bridge.client.patch("/v1/project", json={"client_side_amount_max": None}, headers=shop.headers())
    assert cleared.json()["client_side_amount_max"] is None
    assert cleared.json()["allowed_origins"] == ["https://shop.example", "http://localhost:3000"]  # not sent: kept


# --- CORS by the project's allowed origins ------------------------------------------------------------


def preflight(origin: str, headers: str = "content-type") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": headers}


async def test_the_projects_origin_is_answered_and_another_refused_with_nothing_pushed(bridge: InProcessBridge) -> None:
    shop, key = await browser_project(bridge)
    session = (await bridge.client.post("/v1/checkout_sessions", json={"amount": 9}, headers=pk(key))).json()
    path, secret = f"/v1/checkout_sessions/{session['id']}", {"client_secret": session["client_secret"]}

    allowed = await bridge.client.options(path + "/pay", params=secret, headers=preflight(SHOP))
    assert allowed.status_code == 204 and allowed.headers["access-control-allow-origin"] == SHOP
    read = await bridge.client.get(path, params=secret, headers={"Origin": SHOP})
    assert read.status_code == 200 and read.headers["access-control-allow-origin"] == SHOP

    for attempt in (
        bridge.client.options(path + "/pay", params=secret, headers=preflight(OTHER)),
        bridge.client.post(path + "/pay", params=secret, json={"phone": "0711000205"}, headers={"Origin": OTHER}),
        bridge.client.get(path, params=secret, headers={"Origin": OTHER}),
        bridge.client.get(path + "/events", params=secret, headers={"Origin": OTHER}),
    ):
        refused = await attempt
        assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
        assert refused.json()["error"]["code"] == "origin_not_allowed"
    assert bridge.simulator.pushes() == []

    no_origin = await bridge.client.get(path, params=secret)  # servers and curl are not browsers
    assert no_origin.status_code == 200 and "access-control-allow-origin" not in no_origin.headers
    paid = await bridge.client.post(
        path + "/pay", params=secret, json={"phone": "0711000205"}, headers={"Origin": SHOP}
    )
    assert paid.status_code == 200 and paid.headers["access-control-allow-origin"] == SHOP
    assert len(bridge.simulator.pushes()) == 1
    by_key = await bridge.client.get(path, headers={**shop.headers(), "Origin": SHOP})  # a secret key: no CORS
    assert by_key.status_code == 200 and "access-control-allow-origin" not in by_key.headers


async def test_the_publishable_key_route_answers_every_preflight_and_refuses_the_request(
    bridge: InProcessBridge,
) -> None:
    shop, key = await browser_project(bridge)
    for origin in (SHOP, OTHER):  # the preflight carries no key: the project is not known yet
        answered = await bridge.client.options(
            "/v1/checkout_sessions", headers=preflight(origin, "content-type, authorization, x-api-key")
        )
        assert answered.status_code == 204 and answered.headers["access-control-allow-origin"] == origin
        assert "x-api-key" in answered.headers["access-control-allow-headers"].lower()
    refused = await bridge.client.post(
        "/v1/checkout_sessions", json={"amount": 9, "phone": "0711000206"}, headers={**pk(key), "Origin": OTHER}
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in refused.headers
    assert await sessions_of(bridge, shop) == [] and bridge.simulator.pushes() == []
    opened = await bridge.client.post("/v1/checkout_sessions", json={"amount": 9}, headers={**pk(key), "Origin": SHOP})
    assert opened.status_code == 201 and opened.headers["access-control-allow-origin"] == SHOP
    # a secret key's creation from a page gets no CORS headers (secret keys stay on servers)
    by_key = await bridge.client.post(
        "/v1/checkout_sessions", json={"amount": 9, "reference": "R"}, headers={**shop.headers(), "Origin": SHOP}
    )
    assert by_key.status_code == 201 and "access-control-allow-origin" not in by_key.headers


async def test_a_project_without_a_list_falls_back_to_the_server_wide_one(bridge: InProcessBridge) -> None:
    _, key = await browser_project(bridge, origins=[])  # the server-wide default: *
    opened = await bridge.client.post("/v1/checkout_sessions", json={"amount": 9}, headers={**pk(key), "Origin": OTHER})
    assert opened.status_code == 201 and opened.headers["access-control-allow-origin"] == OTHER
    session = opened.json()
    read = await bridge.client.get(
        f"/v1/checkout_sessions/{session['id']}",
        params={"client_secret": session["client_secret"]},
        headers={"Origin": OTHER},
    )
    assert read.status_code == 200 and read.headers["access-control-allow-origin"] == OTHER


class TestAServerWideList:
    @pytest.fixture
    def bridge_settings(self, db_url: str, tmp_path: Path) -> Settings:
        return make_settings(db_url, tmp_path, realtime_cors_origins=SHOP)

    async def test_a_projects_own_list_replaces_the_server_wide_one(self, bridge: InProcessBridge) -> None:
        _, own = await browser_project(bridge, origins=["https://own.example"])
        _, none = await browser_project(bridge, origins=[])
        for key, allowed, refused in ((own, "https://own.example", SHOP), (none, SHOP, "https://own.example")):
            ok = await bridge.client.post(
                "/v1/checkout_sessions", json={"amount": 9}, headers={**pk(key), "Origin": allowed}
            )
            assert ok.status_code == 201 and ok.headers["access-control-allow-origin"] == allowed
            no = await bridge.client.post(
                "/v1/checkout_sessions", json={"amount": 9}, headers={**pk(key), "Origin": refused}
            )
            assert no.status_code == 403, (key, refused)


async def test_a_sessions_stream_follows_its_projects_origins(database: Database, db_url: str, tmp_path: Path) -> None:
    """SSE needs a real server (the ASGI transport reads whole answers): the bridge under uvicorn,
    with a server-wide list that names neither origin."""
    async with live_bridge(db_url, tmp_path, realtime_cors_origins="https://operator.example") as live:
        shop = await live.create_project()
        changed = await live.http.patch("/v1/project", json={"allowed_origins": [SHOP]}, headers=shop.headers())
        assert changed.status_code == 200, changed.text
        opened = await live.http.post(
            "/v1/checkout_sessions", json={"amount": 20, "reference": "SSE"}, headers=shop.headers()
        )
        session = opened.json()
        path, secret = f"/v1/checkout_sessions/{session['id']}/events", {"client_secret": session["client_secret"]}
        async with live.stream(path, params=secret, headers={"Origin": SHOP}) as stream:
            assert stream.response.headers["access-control-allow-origin"] == SHOP
            assert "Origin" in stream.response.headers["vary"]
        refused = await live.http.get(path, params=secret, headers={"Origin": "https://operator.example"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "origin_not_allowed"
