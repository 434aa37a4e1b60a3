"""/v1/webhook_endpoints: create, change, delete, rotate secrets; SSRF refusals; tenants — SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from mpesa_bridge.config import Settings
from mpesa_bridge.core.payments.entity import EventType
from mpesa_bridge.core.payments.public import iso
from mpesa_bridge.storage import tables
from tests.fixtures.bridge import InProcessBridge, Tenant, make_settings
from tests.fixtures.receiver import Receiver, add_events, webhook_worker

PATH = "/v1/webhook_endpoints"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as running:
        yield running


async def create(bridge: InProcessBridge, tenant: Tenant, url: str, mode: str = "test", **body: Any) -> dict[str, Any]:
    body = {"url": url, "enabled_events": ["*"], **body}
    response = await bridge.client.post(PATH, json=body, headers=tenant.headers(mode))
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def refused(bridge: InProcessBridge, tenant: Tenant, url: str, mode: str) -> dict[str, Any]:
    response = await bridge.client.post(PATH, json={"url": url, "enabled_events": ["*"]}, headers=tenant.headers(mode))
    assert response.status_code == 400, (url, response.text)
    error: dict[str, Any] = response.json()["error"]
    return error


async def test_an_endpoint_is_created_with_a_secret_shown_once(bridge: InProcessBridge, receiver: Receiver) -> None:
    tenant = await bridge.create_project()
    created = await create(
        bridge, tenant, f"{receiver.url}/hook", enabled_events=["payment.succeeded"], description="orders"
    )

    assert created["id"].startswith("we_") and created["object"] == "webhook_endpoint"
    assert created["mode"] == "test" and created["enabled"] is True and created["description"] == "orders"
    assert created["enabled_events"] == ["payment.succeeded"]
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    Webhook(secret)  # a Standard Webhooks library takes it as it is

    read = (await bridge.client.get(f"{PATH}/{created['id']}", headers=tenant.headers())).json()
    listed = (await bridge.client.get(PATH, headers=tenant.headers())).json()
    assert "secret" not in read and secret not in str(listed)
    assert [e["id"] for e in listed["data"]] == [created["id"]]
    async with bridge.db.read() as uow:  # sealed at rest, under the master key
        stored = (await uow.connection.execute(sa.select(tables.webhook_endpoints.c.secret_sealed))).scalar_one()
    assert stored.startswith("v1.") and secret not in stored


async def test_an_endpoint_is_changed_and_deleted(bridge: InProcessBridge, receiver: Receiver) -> None:
    tenant = await bridge.create_project()
    created = await create(bridge, tenant, f"{receiver.url}/a")
    url = f"{PATH}/{created['id']}"

    patched = await bridge.client.patch(
        url,
        json={"url": f"{receiver.url}/b", "enabled_events": ["payment.failed", "payment.cancelled"], "enabled": False},
        headers=tenant.headers(),
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["url"] == f"{receiver.url}/b" and body["enabled"] is False and body["disabled_reason"] is None
    assert body["enabled_events"] == ["payment.failed", "payment.cancelled"]
    assert (await bridge.client.patch(url, json={"enabled": True}, headers=tenant.headers())).json()["enabled"]

    deleted = await bridge.client.delete(url, headers=tenant.headers())
    assert deleted.json() == {"id": created["id"], "object": "webhook_endpoint", "deleted": True}
    assert (await bridge.client.get(url, headers=tenant.headers())).status_code == 404
    assert (await bridge.client.get(PATH, headers=tenant.headers())).json()["data"] == []


BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"url": "ftp://example.com/x", "enabled_events": ["*"]}, "invalid_url"),
    ({"url": "http://user:pw@127.0.0.1/x", "enabled_events": ["*"]}, "invalid_url"),
    ({"url": "/relative", "enabled_events": ["*"]}, "invalid_url"),
    ({"url": "http://127.0.0.1:99999/x", "enabled_events": ["*"]}, "invalid_url"),
    ({"url": "http://127.0.0.1:8/x", "enabled_events": []}, "invalid_event_type"),
    ({"url": "http://127.0.0.1:8/x", "enabled_events": ["payment.refunded"]}, "invalid_event_type"),
    ({"url": "http://127.0.0.1:8/x", "enabled_events": ["*", "payment.failed"]}, "invalid_event_type"),
    ({"url": "http://no-such-host.invalid/x", "enabled_events": ["*"]}, "url_unresolvable"),
    ({"url": "http://127.0.0.1:8/x", "enabled_events": ["*"], "secret": "mine"}, "parameter_unknown"),
]


async def test_bad_endpoints_are_refused(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project()
    for body, code in BAD_BODIES:
        response = await bridge.client.post(PATH, json=body, headers=tenant.headers())
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == code, body
    assert (await bridge.client.get(PATH, headers=tenant.headers())).json()["data"] == []


LIVE_REFUSED = [
    "http://127.0.0.1:8080/hook",
    "http://10.1.2.3/hook",
    "https://192.168.0.10/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://localhost:8080/hook",  # a host name that resolves to loopback
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "http://100.64.0.1/hook",
    "http://[::169.254.169.254]/hook",  # IPv4 inside IPv6 (issue 9 B8)
    "http://[::ffff:0:127.0.0.1]/hook",
    "http://[64:ff9b:1::a9fe:a9fe]/hook",
]


async def test_live_mode_refuses_non_public_addresses(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project()
    for url in LIVE_REFUSED:
        error = await refused(bridge, tenant, url, "live")
        assert error["code"] == "url_not_allowed" and error["param"] == "url", url
    created = await create(bridge, tenant, "https://93.184.216.34/hook", mode="live")  # a public address
    assert created["mode"] == "live"
    patch = await bridge.client.patch(
        f"{PATH}/{created['id']}", json={"url": "http://127.0.0.1/x"}, headers=tenant.headers("live")
    )
    assert patch.status_code == 400 and patch.json()["error"]["code"] == "url_not_allowed"  # checked on change too


async def test_test_mode_allows_loopback_only(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project()
    for url in ("http://127.0.0.1:8080/hook", "http://localhost:8080/hook", "http://[::1]:9/hook"):
        await create(bridge, tenant, url)
    for url in ("http://10.1.2.3/hook", "http://169.254.169.254/latest/meta-data/", "http://192.168.1.1/"):
        assert (await refused(bridge, tenant, url, "test"))["code"] == "url_not_allowed", url


class TestAllowPrivateUrls:
    @pytest.fixture
    def bridge_settings(self, db_url: str, tmp_path: Path) -> Settings:
        return make_settings(db_url, tmp_path, webhook_allow_private_urls=True)

    async def test_the_setting_lets_live_mode_reach_private_addresses(
        self, bridge: InProcessBridge, receiver: Receiver
    ) -> None:
        tenant = await bridge.create_project()
        for url in ("http://10.1.2.3/hook", "http://localhost:9/hook"):  # created switched off: never called
            await create(bridge, tenant, url, mode="live", enabled=False)
        created = await create(bridge, tenant, f"{receiver.url}/live", mode="live")
        await add_events(bridge, tenant.project_id, [(EventType.SUCCEEDED, "pay_live")], mode="live")
        async with webhook_worker(bridge) as worker:
            await worker.run_once()
        (request,) = receiver.at("/live")
        assert request.verify(created["secret"])["mode"] == "live"


async def test_rotation_signs_with_both_secrets_during_the_grace_period(
    bridge: InProcessBridge, receiver: Receiver
) -> None:
    tenant = await bridge.create_project()
    created = await create(bridge, tenant, f"{receiver.url}/hook")
    old = created["secret"]
    rotated = await bridge.client.post(
        f"{PATH}/{created['id']}/rotate_secret", json={"grace_period_seconds": 3600}, headers=tenant.headers()
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old and new.startswith("whsec_") and rotated.json()["previous_secret_expires_at"]

    async with webhook_worker(bridge) as worker:
        await add_events(bridge, tenant.project_id, [(EventType.CREATED, "pay_1")])
        await worker.run_once()
        during = receiver.requests[-1]
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        assert during.verify(old) == during.verify(new)  # a receiver holding either secret accepts it

        bridge.clock.advance(3601)
        await add_events(bridge, tenant.project_id, [(EventType.SUCCEEDED, "pay_1")])
        await worker.run_once()
    after = receiver.requests[-1]
    assert after.webhook_id != during.webhook_id
    assert after.signed_with(new) and not after.signed_with(old)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    with pytest.raises(WebhookVerificationError):  # and the merchant's library refuses the old secret
        Webhook(old).verify(during.body, {**during.headers, "webhook-signature": after.headers["webhook-signature"]})

    default = (await bridge.client.post(f"{PATH}/{created['id']}/rotate_secret", headers=tenant.headers())).json()
    expected = bridge.clock.now() + timedelta(seconds=bridge.settings.webhook_secret_grace)
    assert default["previous_secret_expires_at"] == iso(expected) and bridge.settings.webhook_secret_grace == 86_400
    at_once = await bridge.client.post(
        f"{PATH}/{created['id']}/rotate_secret", json={"grace_period_seconds": 0}, headers=tenant.headers()
    )
    assert at_once.json()["previous_secret_expires_at"] is None


async def test_endpoints_of_another_project_or_mode_are_404(bridge: InProcessBridge, receiver: Receiver) -> None:
    owner, intruder = await bridge.create_project("Owner"), await bridge.create_project("Intruder")
    created = await create(bridge, owner, f"{receiver.url}/owner")
    endpoint_id = created["id"]
    callers = [(intruder, "test"), (intruder, "live"), (owner, "live")]
    for tenant, mode in callers:
        headers = tenant.headers(mode)
        calls = [
            bridge.client.get(f"{PATH}/{endpoint_id}", headers=headers),
            bridge.client.patch(f"{PATH}/{endpoint_id}", json={"enabled": False}, headers=headers),
            bridge.client.post(f"{PATH}/{endpoint_id}/rotate_secret", headers=headers),
            bridge.client.delete(f"{PATH}/{endpoint_id}", headers=headers),
        ]
        for call in calls:
            response = await call
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] == "resource_missing"
            assert receiver.url not in response.text
        assert (await bridge.client.get(PATH, headers=headers)).json()["data"] == []
    still = (await bridge.client.get(f"{PATH}/{endpoint_id}", headers=owner.headers())).json()
    assert still["enabled"] is True and still["url"] == created["url"] and still["previous_secret_expires_at"] is None


async def test_creation_is_idempotent(bridge: InProcessBridge, receiver: Receiver) -> None:
    tenant = await bridge.create_project()
    headers = {**tenant.headers(), "Idempotency-Key": "hook-1"}
    body = {"url": f"{receiver.url}/hook", "enabled_events": ["*"]}
    first = await bridge.client.post(PATH, json=body, headers=headers)
    again = await bridge.client.post(PATH, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    assert len((await bridge.client.get(PATH, headers=tenant.headers())).json()["data"]) == 1
