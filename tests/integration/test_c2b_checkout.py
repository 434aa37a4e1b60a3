"""C2B payments that pay a checkout session or a payment link, over HTTP (in-process bridge) — on
SQLite and PostgreSQL: a paybill payment with a session's reference completes the session as an STK
success does (its API read and hosted page, `checkout_session.completed` on the outbox), once; a
wrong amount does not; the review queue's match by hand completes it too; a link counts a C2B
payment among its payments (totals, `max_payments`); the session's live stream (what its hosted page
and the widget follow) sees the completion."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from mpesa_bridge.storage.db import Database
from tests.fixtures.bridge import InProcessBridge, Tenant, wait_until
from tests.fixtures.realtime import LiveBridge, live_bridge
from tests.integration.test_c2b import c2b_body, payments, post, register, wait_payments
from tests.integration.test_payment_links import create_link, pay_through, read_link, visit


async def open_session(bridge: InProcessBridge, shop: Tenant, **body: Any) -> dict[str, Any]:
    answer = await bridge.client.post("/v1/checkout_sessions", json=body, headers=shop.headers())
    assert answer.status_code == 201, answer.text
    data: dict[str, Any] = answer.json()
    return data


async def read_session(bridge: InProcessBridge, shop: Tenant, session_id: str) -> dict[str, Any]:
    answer = await bridge.client.get(f"/v1/checkout_sessions/{session_id}", headers=shop.headers())
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


async def events_of(bridge: InProcessBridge, shop: Tenant, subject_id: str) -> list[dict[str, Any]]:
    answer = await bridge.client.get("/v1/events", params={"limit": 100}, headers=shop.headers())
    assert answer.status_code == 200, answer.text
    sessions = [e for e in answer.json()["data"] if e["type"].startswith("checkout_session.")]
    return [e for e in sessions if e["data"]["object"]["id"] == subject_id]


async def test_a_paybill_payment_with_the_sessions_reference_completes_it_once(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    reg = await register(bridge, shop)
    session = await open_session(bridge, shop, amount=1200, reference="CART-31")
    await post(bridge, reg["confirmation_url"], c2b_body(1200, "cart 31", trans_id="CARTPAY001"))
    [first] = await wait_payments(bridge, shop, 1)
    assert first["status"] == "matched"
    assert first["matched"]["type"] == "checkout_session" and first["matched"]["id"] == session["id"]

    done = await read_session(bridge, shop, session["id"])
    assert done["status"] == "complete" and done["completed_at"] is not None
    assert done["paid_c2b_payment_id"] == first["id"] and done["paid_payment_id"] is None
    [completed] = await events_of(bridge, shop, session["id"])
    assert completed["type"] == "checkout_session.completed"
    assert completed["data"]["object"]["paid_c2b_payment_id"] == first["id"]
    page = await bridge.client.get(session["url"].replace("http://bridge.test", ""), params={
        "client_secret": session["client_secret"]})  # fmt: skip
    assert page.status_code == 200 and 'data-state="paid"' in page.text
    assert '<strong id="receipt">CARTPAY001</strong>' in page.text  # the C2B TransID is the M-Pesa receipt
    pay_again = await bridge.client.post(
        f"/v1/checkout_sessions/{session['id']}/pay",
        params={"client_secret": session["client_secret"]},
        json={"phone": "0708374149"},
    )
    assert pay_again.status_code == 409, pay_again.text  # no STK prompt for a session paid over the paybill
    assert pay_again.json()["error"]["code"] == "checkout_session_complete"

    # The customer pays the same reference again: shown, for a person, and the session unchanged.
    await post(bridge, reg["confirmation_url"], c2b_body(1200, "CART31", trans_id="CARTPAY002"))
    second = next(p for p in await wait_payments(bridge, shop, 2) if p["trans_id"] == "CARTPAY002")
    assert second["status"] == "unmatched" and second["duplicate_of"] == first["id"]
    assert await read_session(bridge, shop, session["id"]) == done
    assert [e["type"] for e in await events_of(bridge, shop, session["id"])] == ["checkout_session.completed"]


async def test_a_wrong_amount_leaves_the_session_open(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    reg = await register(bridge, shop)
    fixed = await open_session(bridge, shop, amount=800, reference="ORDER-81")
    ranged = await open_session(bridge, shop, amount_min=100, amount_max=500, reference="TIP-1")
    await post(bridge, reg["confirmation_url"], c2b_body(799, "ORDER-81", trans_id="WRONG00001"))
    await post(bridge, reg["confirmation_url"], c2b_body(501, "TIP-1", trans_id="WRONG00002"))
    found = await wait_payments(bridge, shop, 2)
    assert {p["status"] for p in found} == {"unmatched"}
    for session in (fixed, ranged):
        assert (await read_session(bridge, shop, session["id"]))["status"] == "open"
        assert await events_of(bridge, shop, session["id"]) == []


async def test_matching_by_hand_from_the_review_queue_completes_the_session(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    reg = await register(bridge, shop)
    session = await open_session(bridge, shop, amount=640, reference="BOOK-12")
    await post(bridge, reg["confirmation_url"], c2b_body(640, "BOOK 21", trans_id="TYPO000001"))  # a typo
    await post(bridge, reg["confirmation_url"], c2b_body(600, "BOOK-12", trans_id="SHORT00001"))
    found = {p["trans_id"]: p for p in await wait_payments(bridge, shop, 2)}
    typo, short = found["TYPO000001"], found["SHORT00001"]
    assert typo["status"] == short["status"] == "unmatched"
    detail = (await bridge.client.get(f"/v1/c2b/payments/{typo['id']}", headers=shop.headers())).json()
    assert detail["suggestions"][0]["type"] == "checkout_session" and detail["suggestions"][0]["id"] == session["id"]

    target = {"type": "checkout_session", "id": session["id"]}
    refused = await bridge.client.post(f"/v1/c2b/payments/{short['id']}/match", json=target, headers=shop.headers())
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "match_amount_mismatch"
    matched = await bridge.client.post(f"/v1/c2b/payments/{typo['id']}/match", json=target, headers=shop.headers())
    assert matched.status_code == 200, matched.text
    assert matched.json()["matched"]["by"] == "manual"
    done = await read_session(bridge, shop, session["id"])
    assert done["status"] == "complete" and done["paid_c2b_payment_id"] == typo["id"]
    assert [e["type"] for e in await events_of(bridge, shop, session["id"])] == ["checkout_session.completed"]
    # The session is no longer open: the other payment cannot be matched to it as well.
    late = await bridge.client.post(f"/v1/c2b/payments/{short['id']}/match", json={**target}, headers=shop.headers())
    assert late.status_code == 400 and late.json()["error"]["code"] == "match_target_missing"
    assert [p["id"] for p in await payments(bridge, shop, status="unmatched")] == [short["id"]]


async def test_an_expired_session_is_not_completed(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    reg = await register(bridge, shop)
    session = await open_session(bridge, shop, amount=300, reference="LATE-1")
    expired = await bridge.client.post(f"/v1/checkout_sessions/{session['id']}/expire", headers=shop.headers())
    assert expired.status_code == 200, expired.text
    await post(bridge, reg["confirmation_url"], c2b_body(300, "LATE-1", trans_id="LATEPAY001"))
    [late] = await wait_payments(bridge, shop, 1)
    assert late["status"] == "unmatched"
    assert (await read_session(bridge, shop, session["id"]))["status"] == "expired"


async def test_a_link_counts_a_c2b_payment_among_its_payments(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    reg = await register(bridge, shop)
    link = await create_link(bridge, shop, amount=250, max_payments=2)
    await pay_through(bridge, shop, link, "0708374149")  # one by STK on the link's page
    await post(bridge, reg["confirmation_url"], c2b_body(250, link["slug"], trans_id="LINKPAY001"))
    [by_paybill] = await wait_payments(bridge, shop, 1)
    assert by_paybill["matched"]["type"] == "payment_link" and by_paybill["matched"]["id"] == link["id"]

    totals = await read_link(bridge, shop, link["id"])
    assert (totals["payments_succeeded"], totals["amount_collected"]) == (2, 500)
    exhausted = await visit(bridge, link)
    assert exhausted.status_code == 410  # its max_payments are in, one of them by paybill

    # A third payment finds the link closed: it waits in the review queue.
    await post(bridge, reg["confirmation_url"], c2b_body(250, link["slug"], trans_id="LINKPAY002"))

    async def third() -> dict[str, Any] | None:
        found = [p for p in await payments(bridge, shop) if p["trans_id"] == "LINKPAY002"]
        return found[0] if found else None

    assert (await wait_until(third))["status"] == "unmatched"
    assert (await read_link(bridge, shop, link["id"]))["payments_succeeded"] == 2


@pytest.fixture
async def live(database: Database, db_url: str, tmp_path: Path) -> AsyncIterator[LiveBridge]:
    async with live_bridge(db_url, tmp_path) as bridge:
        yield bridge


async def test_the_sessions_stream_sees_a_paybill_payment_complete_it(live: LiveBridge) -> None:
    shop = await live.create_project()
    registered = await live.http.post("/v1/c2b/registrations", json={"short_code": "600984"}, headers=shop.headers())
    assert registered.status_code == 201, registered.text
    confirm = urlsplit(registered.json()["confirmation_url"]).path
    opened = await live.http.post(
        "/v1/checkout_sessions", json={"amount": 450, "reference": "LIVE-4"}, headers=shop.headers()
    )
    assert opened.status_code == 201, opened.text
    session = opened.json()
    path = f"/v1/checkout_sessions/{session['id']}/events"
    async with live.stream(path, params={"client_secret": session["client_secret"]}) as stream:
        sent = await live.http.post(confirm, content=json.dumps(c2b_body(450, "live4", trans_id="LIVEPAY001")))
        assert sent.status_code == 200, sent.text
        completed = await stream.next_event()
    assert completed.event == "checkout_session.completed"
    shown = json.loads(completed.data or "")["data"]["object"]
    assert shown["id"] == session["id"] and shown["status"] == "complete" and shown["paid_c2b_payment_id"]
