"""The Python SDK's C2B and expected-payment methods (async client) against the in-process bridge —
on SQLite and PostgreSQL: every operation sends what the API takes and reads what it answers."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx
import pytest

from mpesa_bridge_sdk import AsyncClient, C2BPayment, ConflictError, ExpectedPayment
from tests.fixtures.bridge import BRIDGE_URL, InProcessBridge, wait_until
from tests.integration.test_c2b import c2b_body


async def test_the_sdk_registers_expects_matches_and_reviews(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=bridge.app), base_url=BRIDGE_URL) as http,
        AsyncClient(shop.test_key, base_url=BRIDGE_URL, http_client=http) as sdk,
    ):
        settings = await sdk.c2b.update_settings(validation_rule="known_references", default_action="reject")
        assert settings.validation_rule == "known_references" and (settings.signing_secret or "").startswith("whsec_")
        assert (await sdk.c2b.settings()).default_action == "reject"
        registration = await sdk.c2b.register(short_code="600984", idempotency_key="reg-1")
        assert registration.id.startswith("c2breg_") and registration.api_version == 2
        assert [r.id for r in await sdk.c2b.registrations()] == [registration.id]

        expected = await sdk.expected_payments.create(reference="SDK-9", amount=300, metadata={"order": 9})
        assert isinstance(expected, ExpectedPayment) and expected.status == "open"
        confirm = urlsplit(registration.confirmation_url).path
        await bridge.client.post(confirm, content=json.dumps(c2b_body(300, "sdk9", trans_id="SDKTX00001")))
        await bridge.client.post(confirm, content=json.dumps(c2b_body(300, "sdk9", trans_id="SDKTX00002")))

        async def both() -> list[C2BPayment] | None:
            page = await sdk.c2b_payments.list(limit=10)
            return page.data if len(page.data) == 2 else None

        second, first = await wait_until(both)
        assert first.status == "matched" and first.matched is not None and first.matched["id"] == expected.id
        assert second.status == "unmatched" and second.duplicate_of == first.id and second.trans_time is not None
        queue = await sdk.c2b_payments.list(status="unmatched", reference="SDK-9")
        assert [p.id for p in queue.data] == [second.id]
        detail = await sdk.c2b_payments.retrieve(second.id)
        assert detail.raw["same_reference"] == [first.id, second.id]
        assert (await sdk.expected_payments.retrieve(expected.id)).c2b_payment_id == first.id

        another = await sdk.expected_payments.create(reference="SDK-10", amount=300)
        matched = await sdk.c2b_payments.match(second.id, type="expected_payment", id=another.id)
        assert matched.status == "matched" and matched.matched is not None and matched.matched["by"] == "manual"
        with pytest.raises(ConflictError):
            await sdk.c2b_payments.dismiss(second.id, note="too late")
        spare = await sdk.expected_payments.create(reference="SDK-11", amount=1)
        assert (await sdk.expected_payments.cancel(spare.id)).status == "cancelled"
        assert [e.id for e in (await sdk.expected_payments.list(status="cancelled")).data] == [spare.id]
