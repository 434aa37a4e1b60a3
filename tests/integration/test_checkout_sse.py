"""A checkout session's live events over Server-Sent Events on a real loopback server, on SQLite and
PostgreSQL: what its client secret opens, and the completion arriving after a failed try."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mpesa_bridge.storage.db import Database
from tests.fixtures.bridge import Tenant, wait_until
from tests.fixtures.realtime import FAIL_PHONE, SUCCESS_PHONE, LiveBridge, live_bridge


@pytest.fixture
async def live(database: Database, db_url: str, tmp_path: Path) -> AsyncIterator[LiveBridge]:
    async with live_bridge(db_url, tmp_path, simulator_callback_delay=0.05) as bridge:
        yield bridge


async def open_session(live: LiveBridge, shop: Tenant) -> dict[str, Any]:
    body = {"amount": 200, "reference": "SSE1", "metadata": {"internal_note": "vip customer"}}
    response = await live.http.post("/v1/checkout_sessions", json=body, headers=shop.headers())
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_the_client_secret_stream_sees_the_session_complete_after_a_failed_try(live: LiveBridge) -> None:
    shop = await live.create_project()
    session = await open_session(live, shop)
    secret = session["client_secret"]
    path, origin = f"/v1/checkout_sessions/{session['id']}/events", {"Origin": "https://shop.example"}
    pay_url = f"/v1/checkout_sessions/{session['id']}/pay"

    async with live.stream(path, params={"client_secret": secret}, headers=origin) as stream:
        assert stream.response.headers["access-control-allow-origin"] == "*"
        failed = await live.http.post(pay_url, json={"phone": FAIL_PHONE}, params={"client_secret": secret})
        assert failed.status_code == 200, failed.text
        await live.wait_status(shop, failed.json()["payment"]["id"], "failed", "cancelled")

        async def freed() -> bool:
            read = await live.http.get(f"/v1/checkout_sessions/{session['id']}", params={"client_secret": secret})
            return not read.json()["payment_in_flight"]

        await wait_until(freed)
        paid = await live.http.post(pay_url, json={"phone": SUCCESS_PHONE}, params={"client_secret": secret})
        assert paid.status_code == 200, paid.text
        completed = await stream.next_event()

    assert completed.event == "checkout_session.completed"
    body = json.loads(completed.data or "")
    assert body["data"]["object"]["id"] == session["id"] and body["data"]["object"]["status"] == "complete"
    assert body["data"]["object"]["paid_payment_id"] == paid.json()["payment"]["id"]
    assert "client_secret" not in body["data"]["object"]
    assert "metadata" not in body["data"]["object"]  # the merchant's own data: never to the browser

    # The secret key opens the same stream, from the start, with everything; another session's secret does not.
    async with live.stream(path, headers=shop.headers()) as stream:
        (seen,) = await stream.events(1)
    assert seen.event == "checkout_session.completed"
    assert json.loads(seen.data or "")["data"]["object"]["metadata"] == {"internal_note": "vip customer"}
    other = await open_session(live, shop)
    refused = await live.http.get(path, params={"client_secret": other["client_secret"]})
    assert refused.status_code == 404
    no_secret = await live.http.get(path)
    assert no_secret.status_code == 401
