"""Callback authenticity in depth: the source allow-list (with trusted proxies) and confirm-by-query.

Each test performs the spoof and shows it change nothing.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from mpesa_bridge.config import Settings
from mpesa_bridge.storage import tables
from tests.fixtures.bridge import ADMIN_TOKEN, BRIDGE_URL, InProcessBridge, make_settings, wait_until
from tests.integration.test_callbacks_inbox import callback_path, success_body

SAFARICOM = "196.201.214.200"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def bridge_settings(db_url: str, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(
        db_url,
        tmp_path,
        callback_allowlist=True,
        trusted_proxies="10.0.0.1",
        simulator_late_callback_delay=60.0,
    )


async def post_from(bridge: InProcessBridge, peer: str, path: str, body: bytes, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=bridge.app, client=(peer, 4321))
    async with httpx.AsyncClient(transport=transport, base_url=BRIDGE_URL) as client:
        return await client.post(path, content=body, headers={"Content-Type": "application/json", **headers})


async def rows(bridge: InProcessBridge) -> list[dict[str, Any]]:
    async with bridge.db.read_engine.connect() as conn:
        result = await conn.execute(sa.select(tables.inbound_callbacks).order_by(tables.inbound_callbacks.c.id))
        return [dict(r._mapping) for r in result]


async def pending(bridge: InProcessBridge) -> tuple[Any, dict[str, Any], str, bytes]:
    shop = await bridge.create_project()
    payment = await bridge.pay(shop, phone="0700000902", amount=500)  # stays pending: the callback is late
    path = await callback_path(bridge, payment)
    return shop, payment, path, success_body(payment["checkout_request_id"], amount=500.0, phone=254700000902)


async def test_a_callback_from_an_unlisted_address_is_kept_and_refused(bridge: InProcessBridge) -> None:
    shop, payment, path, body = await pending(bridge)

    response = await post_from(bridge, "203.0.113.9", path, body)

    assert response.status_code == 403
    assert (await bridge.get(shop, payment["id"]))["status"] == "pending"
    [row] = await rows(bridge)
    assert (row["state"], row["flag_reason"], row["source_ip"]) == ("flagged", "source_not_allowed", "203.0.113.9")
    assert bytes(row["body"]) == body  # nothing lost: it can still be examined and replayed


async def test_a_callback_from_safaricom_is_applied(bridge: InProcessBridge) -> None:
    shop, payment, path, body = await pending(bridge)

    response = await post_from(bridge, SAFARICOM, path, body)

    assert response.status_code == 200
    assert (await bridge.wait_status(shop, payment["id"], "succeeded"))["mpesa_receipt_number"] == "SKL4X9Q2ZB"


async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(bridge: InProcessBridge) -> None:
    shop, payment, path, body = await pending(bridge)

    spoofed = await post_from(bridge, "203.0.113.9", path, body, **{"X-Forwarded-For": SAFARICOM})
    proxied = await post_from(bridge, "10.0.0.1", path, body, **{"X-Forwarded-For": f"198.51.100.1, {SAFARICOM}"})

    assert spoofed.status_code == 403
    assert proxied.status_code == 200
    await bridge.wait_status(shop, payment["id"], "succeeded")
    assert [r["source_ip"] for r in await rows(bridge)] == ["203.0.113.9", SAFARICOM]


async def test_ipv4_mapped_addresses_are_recognised(bridge: InProcessBridge) -> None:
    _, _, path, body = await pending(bridge)
    response = await post_from(bridge, f"::ffff:{SAFARICOM}", path, body)
    assert response.status_code == 200


async def test_callbacks_are_never_rate_limited_by_source(bridge: InProcessBridge) -> None:
    _, _, path, body = await pending(bridge)
    answers = [(await post_from(bridge, SAFARICOM, path, body)).status_code for _ in range(60)]
    assert answers == [200] * 60


class TestQuarantine:
    @pytest.fixture
    def bridge_settings(self, db_url: str, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
        return make_settings(
            db_url,
            tmp_path,
            callback_allowlist=True,
            callback_allowlist_action="quarantine",
            simulator_late_callback_delay=60.0,
        )

    async def test_quarantine_answers_200_but_applies_nothing(self, bridge: InProcessBridge) -> None:
        shop, payment, path, body = await pending(bridge)
        response = await post_from(bridge, "203.0.113.9", path, body)
        assert response.status_code == 200
        assert (await bridge.get(shop, payment["id"]))["status"] == "pending"
        assert [r["flag_reason"] for r in await rows(bridge)] == ["source_not_allowed"]


class TestConfirmByQuery:
    @pytest.fixture
    def bridge_settings(self, db_url: str, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
        # The customer answers after 0.5 s, so a forged callback can arrive first.
        return make_settings(db_url, tmp_path, simulator_late_callback_delay=60.0, simulator_callback_delay=0.5)

    async def confirming_project(self, bridge: InProcessBridge) -> Any:
        shop = await bridge.create_project()
        response = await bridge.client.patch(
            f"/v1/admin/projects/{shop.project_id}", json={"confirm_by_query": True}, headers=ADMIN
        )
        assert response.status_code == 200 and response.json()["confirm_by_query"] is True
        return shop

    async def evidence(self, bridge: InProcessBridge, shop: Any, payment_id: str) -> list[tuple[str, str]]:
        data = (await bridge.client.get(f"/v1/payments/{payment_id}/evidence", headers=shop.headers())).json()
        return [(e["source"], e["verdict"]) for e in data["data"]]

    async def test_a_success_callback_waits_for_the_query_to_agree(self, bridge: InProcessBridge) -> None:
        shop = await self.confirming_project(bridge)
        payment = await bridge.pay(shop)
        await wait_until(lambda: bridge.simulator.push(payment["checkout_request_id"]).callbacks_sent == 1)
        await wait_until(lambda: self._confirming(bridge, shop, payment["id"]))

        held = await bridge.get(shop, payment["id"])
        await bridge.runtime.reconciler.run_once()
        done = await bridge.get(shop, payment["id"])

        assert held["status"] == "pending"
        assert done["status"] == "succeeded" and done["mpesa_receipt_number"] == held["mpesa_receipt_number"]
        assert await self.evidence(bridge, shop, payment["id"]) == [
            ("callback", "confirming"),
            ("callback+query", "apply"),
        ]

    async def _confirming(self, bridge: InProcessBridge, shop: Any, payment_id: str) -> bool:
        return len(await self.evidence(bridge, shop, payment_id)) == 1

    async def test_a_forged_success_the_query_denies_is_never_paid(self, bridge: InProcessBridge) -> None:
        shop = await self.confirming_project(bridge)
        payment = await bridge.pay(shop, phone="0700001037", amount=500)  # the customer never answers
        await bridge.runtime.inbox.stop()  # callbacks wait in the inbox until we sweep
        forged = success_body(payment["checkout_request_id"], amount=500.0, phone=254700001037)
        await bridge.client.post(await callback_path(bridge, payment), content=forged)
        assert await bridge.runtime.inbox.sweep() == 1  # only the forgery has arrived so far
        # The real 1037 callback arrives and is held unprocessed: the query alone must refuse.
        await wait_until(lambda: bridge.simulator.push(payment["checkout_request_id"]).callbacks_sent == 1, 10)
        await bridge.runtime.reconciler.run_once()

        after = await bridge.get(shop, payment["id"])

        assert after["status"] == "unknown"
        assert after["needs_attention"] and after["attention_reason"] == "confirmation_disagrees"
        assert ("callback", "confirming") in await self.evidence(bridge, shop, payment["id"])


def test_callback_bodies_used_here_are_what_daraja_sends() -> None:
    body = json.loads(success_body("ws_CO_1", amount=1.0))
    assert set(body["Body"]["stkCallback"]) == {
        "MerchantRequestID",
        "CheckoutRequestID",
        "ResultCode",
        "ResultDesc",
        "CallbackMetadata",
    }
