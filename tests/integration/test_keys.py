"""Secret keys under attack: stolen database copies, rotation, revocation, uniform 401s — SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from mpesa_bridge.config import Settings
from mpesa_bridge.core.accounts import INVALID_KEY_MESSAGE
from mpesa_bridge.core.payments.public import iso
from mpesa_bridge.core.projects import display_key
from mpesa_bridge.storage import tables
from tests.fixtures.bridge import ADMIN_TOKEN, InProcessBridge, Tenant, make_settings
from tests.fixtures.database import Statements

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
KEY_PATTERN = re.compile(r"sk_(?:test|live)_[A-Za-z0-9]{32}")


@pytest.fixture
def key_cache_ttl() -> float:
    # Every request re-reads its key, so a clock advance is all it takes for an expiry to show.
    # Tests that attack the cache parametrize this with a long TTL instead.
    return 0.0


@pytest.fixture
def bridge_settings(db_url: str, tmp_path: Path, key_cache_ttl: float) -> Settings:
    return make_settings(db_url, tmp_path, key_cache_ttl=key_cache_ttl, rate_limit_enabled=False)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def call(bridge: InProcessBridge, secret: str) -> httpx.Response:
    # As bytes: forged values (a key's display form has an ellipsis) need not be ASCII.
    return await bridge.client.get("/v1/payments", headers={"Authorization": f"Bearer {secret}".encode()})


async def works(bridge: InProcessBridge, secret: str) -> bool:
    response = await call(bridge, secret)
    assert response.status_code in (200, 401), response.text
    if response.status_code == 401:
        assert response.json()["error"]["message"] == INVALID_KEY_MESSAGE
    return response.status_code == 200


async def issue_key(bridge: InProcessBridge, tenant: Tenant, mode: str = "test") -> str:
    response = await bridge.client.post(f"/v1/admin/projects/{tenant.project_id}/keys/{mode}", headers=ADMIN)
    assert response.status_code == 201, response.text
    secret: str = response.json()["secret_key"]
    return secret


async def keys_of(bridge: InProcessBridge, secret: str) -> list[dict[str, Any]]:
    response = await bridge.client.get("/v1/keys", headers=bearer(secret))
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def key_id(bridge: InProcessBridge, lister: str, secret: str) -> str:
    """The id of `secret`, found (as a client would) by its display form in GET /v1/keys."""
    matches = [k["id"] for k in await keys_of(bridge, lister) if k["display"] == display_key(secret)]
    assert len(matches) == 1, matches
    return matches[0]


async def rotate(bridge: InProcessBridge, secret: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await bridge.client.post("/v1/keys/rotate", json=body, headers=bearer(secret))
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def dump_database(bridge: InProcessBridge) -> list[str]:
    """Every value of every row of every table, as text: what a stolen backup would hold."""
    values: list[str] = []
    async with bridge.db.read_engine.connect() as conn:
        for table in tables.metadata.sorted_tables:
            for row in await conn.execute(sa.select(table)):
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        values.append(bytes(value).decode("latin-1"))
                    elif value is not None:
                        values.append(str(value))
    return values


async def usable_keys_in(bridge: InProcessBridge, dump: list[str]) -> list[str]:
    """Every string of the dump, and anything in it shaped like a secret key, that the API accepts."""
    candidates = {value for value in dump if len(value) < 200}
    candidates |= {found for value in dump for found in KEY_PATTERN.findall(value)}
    candidates |= {"sk_test_" + value[:32] for value in dump if re.fullmatch(r"[0-9a-f]{64}", value)}
    usable = []
    for candidate in sorted(candidates):
        if not candidate.strip() or not candidate.isprintable():
            continue  # not something a header can carry
        if await works(bridge, candidate.strip()):
            usable.append(candidate)
    return usable


async def test_keys_are_stored_only_as_sha256_and_a_database_copy_cannot_call_the_api(
    bridge: InProcessBridge,
) -> None:
    shop = await bridge.create_project()
    extra = await issue_key(bridge, shop)
    secrets = [shop.test_key, shop.live_key, extra]
    for secret in secrets:
        assert await works(bridge, secret)  # in use, so last_used_at and friends are written too
    await bridge.pay(shop)

    async with bridge.db.read_engine.connect() as conn:
        rows = [dict(r._mapping) for r in await conn.execute(sa.select(tables.api_keys))]
    dump = await dump_database(bridge)

    assert sorted(r["key_hash"] for r in rows) == sorted(hashlib.sha256(s.encode()).hexdigest() for s in secrets)
    for secret in secrets:
        body = secret.split("_", 2)[2]
        assert not any(secret in value or body in value for value in dump), "a secret key is stored in clear"
    # The attack: everything the copy holds — digests, display forms, ids — tried as a bearer key.
    assert await usable_keys_in(bridge, dump) == []
    for row in rows:
        for forged in (row["key_hash"], f"sk_test_{row['key_hash'][:32]}", row["display"]):
            response = await call(bridge, forged)
            assert response.status_code == 401, forged


async def test_a_database_copy_holds_no_usable_key_after_an_idempotent_rotation(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    response = await bridge.client.post(
        "/v1/keys/rotate", json={}, headers={**shop.headers(), "Idempotency-Key": "rotate-2026-11"}
    )
    assert response.status_code == 201, response.text
    new_key = response.json()["secret_key"]
    assert await works(bridge, new_key)

    dump = await dump_database(bridge)

    assert await usable_keys_in(bridge, dump) == []
    assert not any(new_key in value for value in dump)


@pytest.mark.parametrize("key_cache_ttl", [0.0, 3600.0])
async def test_rotation_new_key_works_at_once_old_key_only_during_grace(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    old = shop.test_key
    old_id = await key_id(bridge, old, old)  # also puts the old key in the cache, when there is one
    rotated_at = bridge.clock.now()

    rotated = await rotate(bridge, old, {"grace_period_seconds": 600})

    new = rotated["secret_key"]
    assert new != old and new.startswith("sk_test_") and KEY_PATTERN.fullmatch(new)
    assert rotated["id"] != old_id and rotated["mode"] == "test"
    assert rotated["previous_key"]["id"] == old_id
    assert rotated["previous_key"]["expires_at"] == iso(rotated_at + timedelta(seconds=600))
    assert rotated["previous_key"]["revoked_at"] is None
    listed = {k["id"]: k for k in await keys_of(bridge, new)}
    assert listed[old_id]["expires_at"] == rotated["previous_key"]["expires_at"]
    assert listed[rotated["id"]]["expires_at"] is None
    assert await works(bridge, new)
    assert await works(bridge, old)

    bridge.clock.advance(599)
    assert await works(bridge, old)  # still inside the grace period

    bridge.clock.advance(2)
    assert not await works(bridge, old)
    assert await works(bridge, new)


async def test_rotation_with_grace_zero_stops_the_old_key_at_once(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    assert await works(bridge, shop.test_key)

    rotated = await rotate(bridge, shop.test_key, {"grace_period_seconds": 0})

    assert rotated["previous_key"]["expires_at"] == iso(bridge.clock.now())
    assert not await works(bridge, shop.test_key)
    assert await works(bridge, rotated["secret_key"])
    assert await works(bridge, shop.live_key)  # the other mode's key is not touched


async def test_rotation_without_body_uses_the_default_grace(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    rotated_at = bridge.clock.now()

    rotated = await rotate(bridge, shop.test_key)

    grace = timedelta(seconds=bridge.settings.key_rotation_grace)
    assert rotated["previous_key"]["expires_at"] == iso(rotated_at + grace)
    bridge.clock.advance(bridge.settings.key_rotation_grace - 1)
    assert await works(bridge, shop.test_key)
    bridge.clock.advance(2)
    assert not await works(bridge, shop.test_key)


async def test_a_key_in_its_grace_period_cannot_extend_its_own_life(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    first = await rotate(bridge, shop.test_key, {"grace_period_seconds": 600})
    bridge.clock.advance(300)

    # The attack: the expiring key rotates again asking for the longest grace there is.
    second = await rotate(bridge, shop.test_key, {"grace_period_seconds": 30 * 86_400})

    assert second["previous_key"]["expires_at"] == first["previous_key"]["expires_at"]
    bridge.clock.advance(301)
    assert not await works(bridge, shop.test_key)
    assert await works(bridge, first["secret_key"]) and await works(bridge, second["secret_key"])


@pytest.mark.parametrize("grace", [-1, 30 * 86_400 + 1, "soon", 1.5])
async def test_rotation_refuses_a_bad_grace_period_and_issues_nothing(bridge: InProcessBridge, grace: Any) -> None:
    shop = await bridge.create_project()
    before = await keys_of(bridge, shop.test_key)

    response = await bridge.client.post("/v1/keys/rotate", json={"grace_period_seconds": grace}, headers=shop.headers())

    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "grace_period_seconds"
    assert [k["id"] for k in await keys_of(bridge, shop.test_key)] == [k["id"] for k in before]
    assert all(k["expires_at"] is None for k in await keys_of(bridge, shop.test_key))


# A long cache TTL: were revocation not to evict the key from this instance's cache, the revoked
# key would certainly still be served from it on the next request.
@pytest.mark.parametrize("key_cache_ttl", [1.0, 3600.0])
async def test_revocation_through_the_api_is_immediate(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    spare = await issue_key(bridge, shop)
    victim_id = await key_id(bridge, spare, shop.test_key)
    assert await works(bridge, shop.test_key)  # cached now

    response = await bridge.client.post(f"/v1/keys/{victim_id}/revoke", headers=bearer(spare))

    assert response.status_code == 200, response.text
    assert response.json()["id"] == victim_id
    assert response.json()["revoked_at"] == iso(bridge.clock.now())
    assert not await works(bridge, shop.test_key)
    assert await works(bridge, spare)

    # A key can revoke itself, with the same immediate effect.
    spare_id = await key_id(bridge, spare, spare)
    own = await bridge.client.post(f"/v1/keys/{spare_id}/revoke", headers=bearer(spare))
    assert own.status_code == 200, own.text
    assert not await works(bridge, spare)
    assert await works(bridge, shop.live_key)


@pytest.mark.parametrize("key_cache_ttl", [1.0, 3600.0])
async def test_revocation_by_the_admin_is_immediate(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    victim_id = await key_id(bridge, shop.test_key, shop.test_key)
    assert await works(bridge, shop.test_key)  # cached now

    # A project's own key is no admin token.
    refused = await bridge.client.post(f"/v1/admin/keys/{victim_id}/revoke", headers=shop.headers())
    assert refused.status_code == 401
    assert await works(bridge, shop.test_key)

    response = await bridge.client.post(f"/v1/admin/keys/{victim_id}/revoke", headers=ADMIN)

    assert response.status_code == 200, response.text
    assert response.json()["revoked_at"] is not None
    assert not await works(bridge, shop.test_key)
    assert await works(bridge, shop.live_key)
    # Revoking again changes nothing, and the key stays dead.
    again = await bridge.client.post(f"/v1/admin/keys/{victim_id}/revoke", headers=ADMIN)
    assert again.status_code == 200 and again.json()["revoked_at"] == response.json()["revoked_at"]
    assert not await works(bridge, shop.test_key)


async def test_another_projects_or_modes_key_cannot_be_revoked(bridge: InProcessBridge) -> None:
    shop, rival = await bridge.create_project("Shop"), await bridge.create_project("Rival")
    rival_test_id = await key_id(bridge, rival.test_key, rival.test_key)
    own_live_id = await key_id(bridge, shop.live_key, shop.live_key)

    for target in (rival_test_id, own_live_id, "key_doesnotexist"):
        response = await bridge.client.post(f"/v1/keys/{target}/revoke", headers=shop.headers())
        assert response.status_code == 404, (target, response.text)
        assert response.json()["error"]["code"] == "resource_missing"
        assert response.json()["error"]["message"] == f"No such key: '{target}'"

    assert await works(bridge, rival.test_key)
    assert await works(bridge, shop.live_key)
    assert [k["revoked_at"] for k in await keys_of(bridge, rival.test_key)] == [None]
    admin_missing = await bridge.client.post("/v1/admin/keys/key_doesnotexist/revoke", headers=ADMIN)
    assert admin_missing.status_code == 404


async def test_every_authentication_failure_is_the_same_401(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    revoked = await issue_key(bridge, shop)
    revoked_id = await key_id(bridge, shop.test_key, revoked)
    assert (await bridge.client.post(f"/v1/admin/keys/{revoked_id}/revoke", headers=ADMIN)).status_code == 200
    expired = await issue_key(bridge, shop)
    await rotate(bridge, expired, {"grace_period_seconds": 0})
    unknown = "sk_test_" + "Q" * 32

    attempts: dict[str, dict[str, str]] = {
        "missing header": {},
        "empty header": {"Authorization": ""},
        "scheme only": {"Authorization": "Bearer"},
        "wrong scheme": {"Authorization": f"Basic {shop.test_key}"},
        "no scheme": {"Authorization": shop.test_key},
        "malformed": bearer("sk_test_short"),
        "wrong prefix": bearer("pk_test_" + shop.test_key[8:]),
        "bad character": bearer(shop.test_key[:-1] + "!"),
        "unknown": bearer(unknown),
        "revoked": bearer(revoked),
        "expired": bearer(expired),
    }
    seen = {}
    for name, headers in attempts.items():
        response = await bridge.client.get("/v1/payments", headers=headers)
        assert response.status_code == 401, (name, response.text)
        error = response.json()["error"]
        assert error["request_id"].startswith("req_")
        seen[name] = (error["type"], error["code"], error["message"], error.get("param"))

    assert set(seen.values()) == {("authentication_error", "invalid_api_key", INVALID_KEY_MESSAGE, None)}, seen
    assert await works(bridge, shop.test_key)  # the control: the same request with a good key


async def test_last_used_at_is_recorded(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    other = await issue_key(bridge, shop)
    listed = await keys_of(bridge, other)
    first = bridge.clock.now()
    assert {k["display"]: k["last_used_at"] for k in listed} == {
        display_key(shop.test_key): None,
        display_key(other): iso(first),  # the listing call itself is a use
    }

    bridge.clock.advance(5)
    used_at = bridge.clock.now()
    assert await works(bridge, shop.test_key)
    by_display = {k["display"]: k["last_used_at"] for k in await keys_of(bridge, other)}
    assert by_display[display_key(shop.test_key)] == iso(used_at)
    assert by_display[display_key(other)] == iso(first)  # written at most once a minute per key

    bridge.clock.advance(61)
    assert await works(bridge, shop.test_key)
    by_display = {k["display"]: k["last_used_at"] for k in await keys_of(bridge, other)}
    assert by_display[display_key(shop.test_key)] == iso(bridge.clock.now())


@pytest.mark.parametrize("key_cache_ttl", [3600.0])
async def test_an_unknown_key_and_a_revoked_key_cost_the_same(bridge: InProcessBridge) -> None:
    """Found-but-unusable keys were cached and cost a second query, misses were not cached: a
    revoked key answered measurably faster than a never-issued one (issue 9 #9). Both now take one
    read on first sight and none while remembered — the same path, so the same time."""
    shop = await bridge.create_project()
    spare = await issue_key(bridge, shop)
    revoked_id = await key_id(bridge, spare, shop.test_key)
    revoked = await bridge.client.post(f"/v1/keys/{revoked_id}/revoke", headers=bearer(spare))
    assert revoked.status_code == 200, revoked.text
    unknown = "sk_test_" + "A" * 32
    costs: dict[str, list[int]] = {}
    with Statements(bridge.db.read_engine) as sent:
        for name, secret in (("unknown", unknown), ("revoked", shop.test_key)):
            for _ in range(2):
                before = len(sent.seen)
                response = await bridge.client.get("/v1/payments", headers=bearer(secret))
                assert response.status_code == 401
                costs.setdefault(name, []).append(len(sent.seen) - before)

    assert costs["unknown"] == costs["revoked"], costs
    assert costs["unknown"][0] > 0 and costs["unknown"][1] == 0, costs  # read once, then remembered
