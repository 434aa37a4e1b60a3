"""Signed requests under attack: unsigned, tampered, stale, replayed, wrong secret — SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from mpesa_bridge.config import Settings
from mpesa_bridge.core.signing import INVALID_SIGNATURE, sign
from mpesa_bridge.storage import tables
from tests.fixtures.bridge import ADMIN_TOKEN, BRIDGE_URL, InProcessBridge, Tenant, make_settings

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
REPO_ROOT = Path(__file__).resolve().parents[2]
PAYMENT = {"phone": "0708374149", "amount": 100, "account_reference": "INV001"}


@pytest.fixture
def bridge_settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path, rate_limit_enabled=False)


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def now_ts(bridge: InProcessBridge) -> str:
    return str(int(bridge.clock.now().timestamp()))


def signed_headers(
    secret: str, key: str, method: str, path: str, body: bytes = b"", *, timestamp: str
) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        "MB-Timestamp": timestamp,
        "MB-Signature": sign(secret, timestamp, method, path, body),
    }


async def send(
    bridge: InProcessBridge,
    tenant: Tenant,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    secret: str | None = None,
    timestamp: str | None = None,
    signed_as: tuple[str, str, bytes] | None = None,
) -> httpx.Response:
    """Send `method path body`, signed over `signed_as` (method, path, body) when given — the attack."""
    sign_method, sign_path, sign_body = signed_as or (method, path, body)
    headers = signed_headers(
        secret or tenant.test_key,
        tenant.test_key,
        sign_method,
        sign_path,
        sign_body,
        timestamp=timestamp or now_ts(bridge),
    )
    return await bridge.client.request(method, path, content=body or None, headers=headers)


def refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["message"]) == ("authentication_error", code, INVALID_SIGNATURE)


async def patch_project(bridge: InProcessBridge, tenant: Tenant, **body: Any) -> dict[str, Any]:
    response = await bridge.client.patch(f"/v1/admin/projects/{tenant.project_id}", json=body, headers=ADMIN)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def signed_project(bridge: InProcessBridge, name: str = "Shop") -> Tenant:
    shop = await bridge.create_project(name)
    # Used once first, so its key (and project) sit in the key cache when the setting changes.
    assert (await bridge.client.get("/v1/payments", headers=shop.headers())).status_code == 200
    updated = await patch_project(bridge, shop, require_signed_requests=True)
    assert updated["require_signed_requests"] is True and updated["has_signing_secret"] is False
    return shop


async def test_unsigned_requests_are_refused_once_signing_is_required(bridge: InProcessBridge) -> None:
    shop = await signed_project(bridge)
    other = await bridge.create_project("Other")

    unsigned_get = await bridge.client.get("/v1/payments", headers=shop.headers())
    unsigned_post = await bridge.client.post("/v1/payments", json=PAYMENT, headers=shop.headers())
    signature_only = await bridge.client.get(
        "/v1/payments", headers={**shop.headers(), "MB-Signature": sign(shop.test_key, "0", "GET", "/v1/payments", b"")}
    )
    timestamp_only = await bridge.client.get("/v1/payments", headers={**shop.headers(), "MB-Timestamp": now_ts(bridge)})

    for response in (unsigned_get, unsigned_post, signature_only, timestamp_only):
        refused(response, "signature_missing")
    assert bridge.simulator.pushes() == []
    # The setting is per project: the other one still takes unsigned requests.
    assert (await bridge.client.get("/v1/payments", headers=other.headers())).status_code == 200


async def test_correctly_signed_requests_pass(bridge: InProcessBridge) -> None:
    shop = await signed_project(bridge)

    created = await send(bridge, shop, "POST", "/v1/payments", body_of(PAYMENT))
    # Filters that do not change under the test: the simulated customer may already have paid, so
    # `status=pending` raced the simulator's callback (issue 9 #15's kind of race).
    listed = await send(bridge, shop, "GET", "/v1/payments?limit=5&phone=0708374149&reference=INV001")
    one = await send(bridge, shop, "GET", f"/v1/payments/{created.json()['id']}")

    assert created.status_code == 201, created.text
    assert len(bridge.simulator.pushes()) == 1
    assert listed.status_code == 200, listed.text
    assert [p["id"] for p in listed.json()["data"]] == [created.json()["id"]]
    assert one.status_code == 200, one.text


async def test_a_signature_over_another_request_is_refused(bridge: InProcessBridge) -> None:
    shop = await signed_project(bridge)
    rival = await bridge.create_project("Rival")
    body = body_of(PAYMENT)
    tampered = body_of({**PAYMENT, "amount": 10_000})

    attacks = {
        "other body": await send(
            bridge, shop, "POST", "/v1/payments", tampered, signed_as=("POST", "/v1/payments", body)
        ),
        "body appended": await send(
            bridge, shop, "POST", "/v1/payments", body + b" ", signed_as=("POST", "/v1/payments", body)
        ),
        "other path": await send(
            bridge, shop, "GET", "/v1/payments/pay_x/evidence", signed_as=("GET", "/v1/payments/pay_x", b"")
        ),
        "other query": await send(
            bridge, shop, "GET", "/v1/payments?limit=100", signed_as=("GET", "/v1/payments?limit=5", b"")
        ),
        "query dropped": await send(
            bridge, shop, "GET", "/v1/payments", signed_as=("GET", "/v1/payments?status=failed", b"")
        ),
        "other method": await send(bridge, shop, "GET", "/v1/payments", signed_as=("POST", "/v1/payments", b"")),
        "other secret": await send(bridge, shop, "POST", "/v1/payments", body, secret=rival.test_key),
        "other mode's key": await send(bridge, shop, "POST", "/v1/payments", body, secret=shop.live_key),
    }

    for name, response in attacks.items():
        assert response.status_code == 401, name
        refused(response, "signature_invalid")
    assert bridge.simulator.pushes() == []
    # The control: the request that was signed goes through.
    assert (await send(bridge, shop, "POST", "/v1/payments", body)).status_code == 201


async def test_stale_and_future_timestamps_are_refused(bridge: InProcessBridge) -> None:
    shop = await signed_project(bridge)
    assert bridge.settings.signature_tolerance == 300
    signed_at = now_ts(bridge)

    bridge.clock.advance(299)
    fresh = await send(bridge, shop, "GET", "/v1/payments?n=1", timestamp=signed_at)
    bridge.clock.advance(2)  # 301 s (and a fraction) after the timestamp
    stale = await send(bridge, shop, "GET", "/v1/payments?n=2", timestamp=signed_at)

    ahead = str(int(bridge.clock.now().timestamp()) + 301)
    nearly = str(int(bridge.clock.now().timestamp()) + 299)
    future = await send(bridge, shop, "GET", "/v1/payments?n=3", timestamp=ahead)
    skewed = await send(bridge, shop, "GET", "/v1/payments?n=4", timestamp=nearly)

    assert fresh.status_code == 200, fresh.text
    refused(stale, "signature_timestamp_out_of_range")
    refused(future, "signature_timestamp_out_of_range")
    assert skewed.status_code == 200, skewed.text


@pytest.mark.parametrize("timestamp", ["soon", "-5", "1.7e9", " 1764150000", "1764150000000", "0x69"])
async def test_malformed_timestamps_are_refused(bridge: InProcessBridge, timestamp: str) -> None:
    shop = await signed_project(bridge)
    response = await send(bridge, shop, "GET", "/v1/payments", timestamp=timestamp)
    refused(response, "signature_timestamp_invalid")


async def test_a_superscript_digit_timestamp_is_a_401_not_a_crash(bridge: InProcessBridge) -> None:
    shop = await signed_project(bridge)
    headers = signed_headers(shop.test_key, shop.test_key, "GET", "/v1/payments", timestamp="0")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=bridge.app, raise_app_exceptions=False), base_url=BRIDGE_URL
    ) as client:
        response = await client.get("/v1/payments", headers={**headers, "MB-Timestamp": b"\xb2"})
    refused(response, "signature_timestamp_invalid")


async def test_a_non_ascii_signature_is_a_401_not_a_crash(bridge: InProcessBridge) -> None:
    shop = await signed_project(bridge)
    headers = signed_headers(shop.test_key, shop.test_key, "GET", "/v1/payments", timestamp=now_ts(bridge))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=bridge.app, raise_app_exceptions=False), base_url=BRIDGE_URL
    ) as client:
        response = await client.get("/v1/payments", headers={**headers, "MB-Signature": b"v1=\xe9"})
    refused(response, "signature_invalid")


async def test_a_replayed_request_is_refused(bridge: InProcessBridge) -> None:
    shop = await signed_project(bridge)
    body = body_of(PAYMENT)
    headers = signed_headers(shop.test_key, shop.test_key, "POST", "/v1/payments", body, timestamp=now_ts(bridge))

    first = await bridge.client.post("/v1/payments", content=body, headers=headers)
    bridge.clock.advance(10)  # still well inside the tolerance
    replay = await bridge.client.post("/v1/payments", content=body, headers=headers)
    # Dressing the replay up (another signature beside the right one) changes nothing.
    dressed = await bridge.client.post(
        "/v1/payments", content=body, headers={**headers, "MB-Signature": "v1=00ff, " + headers["MB-Signature"]}
    )
    get_headers = signed_headers(shop.test_key, shop.test_key, "GET", "/v1/payments", timestamp=now_ts(bridge))
    get_first = await bridge.client.get("/v1/payments", headers=get_headers)
    get_replay = await bridge.client.get("/v1/payments", headers=get_headers)

    assert first.status_code == 201, first.text
    refused(replay, "signature_replayed")
    refused(dressed, "signature_replayed")
    assert get_first.status_code == 200
    refused(get_replay, "signature_replayed")
    assert len(bridge.simulator.pushes()) == 1


async def test_a_generated_signing_secret_replaces_the_secret_key(bridge: InProcessBridge) -> None:
    shop = await signed_project(bridge)
    body = body_of(PAYMENT)

    generated = await patch_project(bridge, shop, signing_secret="generate")
    signing_secret = generated["signing_secret"]

    assert generated["has_signing_secret"] is True and generated["require_signed_requests"] is True
    assert signing_secret and signing_secret not in (shop.test_key, shop.live_key)
    # Shown once: neither a later update nor the project list repeats it, and it is stored sealed.
    assert (await patch_project(bridge, shop, confirm_by_query=False))["signing_secret"] is None
    listing = await bridge.client.get("/v1/admin/projects", headers=ADMIN)
    assert signing_secret not in listing.text
    async with bridge.db.read_engine.connect() as conn:
        rows = (await conn.execute(sa.select(tables.projects))).mappings().all()
    assert not any(signing_secret in str(value) for row in rows for value in row.values())

    with_key = await send(bridge, shop, "POST", "/v1/payments", body, secret=shop.test_key)
    as_bearer = await bridge.client.get("/v1/payments", headers={"Authorization": f"Bearer {signing_secret}"})
    with_signing_secret = await send(bridge, shop, "POST", "/v1/payments", body, secret=signing_secret)

    refused(with_key, "signature_invalid")
    assert as_bearer.status_code == 401  # a signing secret is not an API key
    assert with_signing_secret.status_code == 201, with_signing_secret.text

    # A second generation retires the first secret; "none" goes back to the secret key.
    bridge.clock.advance(1)
    regenerated = (await patch_project(bridge, shop, signing_secret="generate"))["signing_secret"]
    assert regenerated != signing_secret
    refused(await send(bridge, shop, "GET", "/v1/payments?n=1", secret=signing_secret), "signature_invalid")
    assert (await send(bridge, shop, "GET", "/v1/payments?n=2", secret=regenerated)).status_code == 200
    assert (await patch_project(bridge, shop, signing_secret="none"))["has_signing_secret"] is False
    refused(await send(bridge, shop, "GET", "/v1/payments?n=3", secret=regenerated), "signature_invalid")
    assert (await send(bridge, shop, "GET", "/v1/payments?n=4", secret=shop.test_key)).status_code == 200


async def test_turning_signing_off_again_takes_unsigned_requests(bridge: InProcessBridge) -> None:
    shop = await signed_project(bridge)
    refused(await bridge.client.get("/v1/payments", headers=shop.headers()), "signature_missing")

    await patch_project(bridge, shop, require_signed_requests=False)

    assert (await bridge.client.get("/v1/payments", headers=shop.headers())).status_code == 200


def test_the_readme_worked_example_is_what_sign_produces() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Signed requests") :]
    section = section[: section.index("\n## ")]

    secret = re.search(r"secret key\s+`(sk_test_[A-Za-z0-9]{32})`", section)
    timestamp = re.search(r"timestamp\s+`(\d+)`", section)
    request = re.search(r"```\n(POST|GET) (\S+)\n(.*)\n```", section)
    header = re.search(r"MB-Signature: (v1=[0-9a-f]{64})", section)
    signed_string = re.search(r"The string signed is `([^`]+)` followed by the body bytes", section)
    assert secret and timestamp and request and header and signed_string, "the worked example changed shape"
    method, path, body = request.group(1), request.group(2), request.group(3).encode()

    assert sign(secret.group(1), timestamp.group(1), method, path, body) == header.group(1)
    assert signed_string.group(1) == f"{timestamp.group(1)}\\n{method}\\n{path}\\n"
    # The control: the example's header does not match any neighbouring message.
    assert sign(secret.group(1), timestamp.group(1), method, path, body + b" ") != header.group(1)
