"""/v1/admin: projects, Daraja settings sealed at rest, keys shown once, mode/environment rules."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from mpesa_bridge.config import Settings
from mpesa_bridge.storage import tables
from tests.fixtures.bridge import ADMIN_TOKEN, InProcessBridge, make_settings

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
LIVE = {
    "environment": "production",
    "consumer_key": "live-consumer-key",
    "consumer_secret": "live-consumer-secret-value",
    "short_code": "5512345",
    "passkey": "live-passkey-value-0123456789",
    "shortcode_type": "till",
    "till_number": "8812345",
    "initiator_name": "duka_api",
    "initiator_password": "live-initiator-password-42",
}


async def test_create_project_returns_keys_once_and_stores_only_what_verifies_them(bridge: InProcessBridge) -> None:
    response = await bridge.client.post("/v1/admin/projects", json={"name": "Duka", "live": LIVE}, headers=ADMIN)
    assert response.status_code == 201, response.text
    created = response.json()
    listing = (await bridge.client.get("/v1/admin/projects", headers=ADMIN)).json()

    assert created["secret_keys"]["test"].startswith("sk_test_")
    assert created["secret_keys"]["live"].startswith("sk_live_")
    assert created["daraja"]["test"]["environment"] == "simulator"
    assert created["daraja"]["test"]["initiator_name"] == "testapi"  # the simulator's, ready for payouts
    assert created["daraja"]["live"] == {
        "environment": "production",
        "short_code": "5512345",
        "shortcode_type": "till",
        "till_number": "8812345",
        "updated_at": created["daraja"]["live"]["updated_at"],
        "initiator_name": "duka_api",
    }
    assert "secret_keys" not in listing["data"][0]
    dump = await _database_dump(bridge)
    secrets = (LIVE["consumer_secret"], LIVE["passkey"], LIVE["consumer_key"], LIVE["initiator_password"])
    for secret in (*created["secret_keys"].values(), *secrets):
        assert secret not in dump and secret not in str(listing)


async def _database_dump(bridge: InProcessBridge) -> str:
    out = []
    async with bridge.db.read_engine.connect() as conn:
        for table in (tables.api_keys, tables.daraja_configs, tables.projects):
            out.extend(str(tuple(row)) for row in await conn.execute(sa.select(table)))
    return "\n".join(out)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (
            {"name": "x", "test": {**LIVE, "shortcode_type": "paybill", "till_number": None}},
            "environment",
            "environment_not_allowed",
        ),
        ({"name": "x", "live": {**LIVE, "environment": "simulator"}}, "environment", "environment_not_allowed"),
        ({"name": "x", "live": {**LIVE, "environment": "sandbox"}}, "environment", "environment_not_allowed"),
        ({"name": "x", "live": {**LIVE, "till_number": None}}, "till_number", "invalid_till_number"),
        ({"name": "x", "live": {**LIVE, "short_code": "12"}}, "short_code", "invalid_short_code"),
        ({"name": ""}, "name", "parameter_invalid"),
    ],
)
async def test_a_test_key_never_reaches_production_and_a_live_key_never_the_simulator(
    bridge: InProcessBridge, body: dict[str, Any], param: str, code: str
) -> None:
    response = await bridge.client.post("/v1/admin/projects", json=body, headers=ADMIN)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert response.json()["error"]["code"] == code


async def test_set_daraja_settings_and_issue_keys(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    sandbox = {**LIVE, "environment": "sandbox", "shortcode_type": "paybill", "till_number": None}

    put = await bridge.client.put(f"/v1/admin/projects/{shop.project_id}/daraja/test", json=sandbox, headers=ADMIN)
    key = await bridge.client.post(f"/v1/admin/projects/{shop.project_id}/keys/test", headers=ADMIN)
    missing = await bridge.client.put("/v1/admin/projects/proj_nope/daraja/test", json=sandbox, headers=ADMIN)

    assert put.status_code == 200 and put.json()["environment"] == "sandbox"
    assert key.status_code == 201 and key.json()["secret_key"].startswith("sk_test_")
    works = await bridge.client.get("/v1/payments", headers={"Authorization": f"Bearer {key.json()['secret_key']}"})
    assert works.status_code == 200
    assert missing.status_code == 404


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Bearer sk_test_" + "A" * 32])
async def test_admin_needs_the_admin_token(bridge: InProcessBridge, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await bridge.client.get("/v1/admin/projects", headers=headers)
    assert response.status_code == 401


class TestAdminDisabled:
    @pytest.fixture
    def bridge_settings(self, db_url: str, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
        return make_settings(db_url, tmp_path, admin_token=None)

    async def test_without_an_admin_token_the_admin_api_does_not_exist(self, bridge: InProcessBridge) -> None:
        response = await bridge.client.get("/v1/admin/projects", headers=ADMIN)
        assert response.status_code == 404


async def test_health_and_readiness(bridge: InProcessBridge) -> None:
    health = await bridge.client.get("/healthz")
    ready = await bridge.client.get("/readyz")
    assert health.json() == {"status": "ok", "checks": {}}
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok"}


async def test_admin_creations_are_idempotent(bridge: InProcessBridge) -> None:
    headers = {**ADMIN, "Idempotency-Key": "onboard-duka-1"}
    first = await bridge.client.post("/v1/admin/projects", json={"name": "Duka"}, headers=headers)
    again = await bridge.client.post("/v1/admin/projects", json={"name": "Duka"}, headers=headers)
    other = await bridge.client.post("/v1/admin/projects", json={"name": "Other"}, headers=headers)
    listing = (await bridge.client.get("/v1/admin/projects", headers=ADMIN)).json()

    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert [p["name"] for p in listing["data"]] == ["Duka"]  # one project, not two
    key_headers = {**ADMIN, "Idempotency-Key": "extra-key-1"}
    path = f"/v1/admin/projects/{first.json()['id']}/keys/test"
    k1 = await bridge.client.post(path, headers=key_headers)
    k2 = await bridge.client.post(path, headers=key_headers)
    assert k1.content == k2.content and k1.json()["secret_key"].startswith("sk_test_")
