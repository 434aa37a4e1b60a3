"""C2B over HTTP (in-process bridge, simulator as Daraja for the URL registration) — on SQLite and
PostgreSQL.

A short code's URLs registered through the API; Daraja's validation calls answered synchronously
by each rule (accept all, known references, the merchant's signed server — on time, rejecting, late
and failing — and validation off); confirmations become C2B payments matched to expected payments,
checkout sessions and links; replayed, duplicated and spoofed confirmations change nothing; a
customer who pays one reference twice is shown; the review queue's match and dismiss."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from mpesa_bridge.config import Settings
from mpesa_bridge.storage import tables
from tests.fixtures.bridge import InProcessBridge, Tenant, make_settings, wait_until
from tests.fixtures.receiver import Receiver, Reply

SHORT_CODE = "600984"
_trans = iter(range(10_000))


@pytest.fixture
def bridge_settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path, c2b_validation_timeout=0.5)


@pytest.fixture
async def merchant() -> AsyncIterator[Receiver]:
    async with Receiver() as receiver:
        yield receiver


def c2b_body(
    amount: int, reference: str, *, trans_id: str | None = None, short_code: str = SHORT_CODE
) -> dict[str, Any]:
    """A v2 validation/confirmation body as daraja.md §6.3 shows it."""
    return {
        "TransactionType": "Pay Bill",
        "TransID": trans_id or f"TST{next(_trans):07d}",
        "TransTime": "20261205120000",
        "TransAmount": f"{amount}.00",
        "BusinessShortCode": short_code,
        "BillRefNumber": reference,
        "InvoiceNumber": "",
        "OrgAccountBalance": "1000.00",
        "ThirdPartyTransID": "",
        "MSISDN": "2547 ***** 149",
        "FirstName": "JOHN",
        "MiddleName": "",
        "LastName": "",
    }


async def register(bridge: InProcessBridge, shop: Tenant, **body: Any) -> dict[str, Any]:
    answer = await bridge.client.post(
        "/v1/c2b/registrations", json={"short_code": SHORT_CODE, **body}, headers=shop.headers()
    )
    assert answer.status_code == 201, answer.text
    data: dict[str, Any] = answer.json()
    return data


async def post(bridge: InProcessBridge, url: str, body: Any) -> Any:
    return await bridge.client.post(urlsplit(url).path, content=json.dumps(body).encode())


async def settings(bridge: InProcessBridge, shop: Tenant, **body: Any) -> dict[str, Any]:
    answer = await bridge.client.post("/v1/c2b/settings", json=body, headers=shop.headers())
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


async def expect(bridge: InProcessBridge, shop: Tenant, reference: str, amount: int, **body: Any) -> dict[str, Any]:
    answer = await bridge.client.post(
        "/v1/expected_payments", json={"reference": reference, "amount": amount, **body}, headers=shop.headers()
    )
    assert answer.status_code == 201, answer.text
    data: dict[str, Any] = answer.json()
    return data


async def payments(bridge: InProcessBridge, shop: Tenant, **params: Any) -> list[dict[str, Any]]:
    answer = await bridge.client.get("/v1/c2b/payments", params=params, headers=shop.headers())
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


async def wait_payments(bridge: InProcessBridge, shop: Tenant, count: int) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        found = await payments(bridge, shop)
        return found if len(found) >= count else None

    result: list[dict[str, Any]] = await wait_until(enough)
    return result


async def callback_states(bridge: InProcessBridge) -> list[tuple[str, str | None]]:
    c = tables.inbound_callbacks.c
    async with bridge.db.read() as uow:
        rows = await uow.connection.execute(
            sa.select(c.state, c.flag_reason).where(c.kind == "c2b_confirmation").order_by(c.id)
        )
        return [(row.state, row.flag_reason) for row in rows]


async def test_registration_goes_to_daraja_with_the_bridges_own_urls(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    created = await register(bridge, shop, response_type="Cancelled")
    assert created["id"].startswith("c2breg_") and created["status"] == "registered"
    assert created["validation_url"].startswith("http://bridge.test/v1/callbacks/daraja/c2b_validation/")
    assert created["confirmation_url"].startswith("http://bridge.test/v1/callbacks/daraja/c2b_confirmation/")
    token = created["validation_url"].rsplit("/", 1)[1]
    assert created["confirmation_url"].endswith("/" + token) and len(token) == 40
    at_daraja = bridge.simulator.c2b.registrations[SHORT_CODE]
    assert at_daraja.validation_url == created["validation_url"] and at_daraja.response_type == "Cancelled"
    assert at_daraja.version == 2
    again = await register(bridge, shop, api_version=1)  # replaces it, with a fresh token
    assert again["id"] == created["id"] and again["validation_url"] != created["validation_url"]
    assert bridge.simulator.c2b.registrations[SHORT_CODE].version == 1
    listed = (await bridge.client.get("/v1/c2b/registrations", headers=shop.headers())).json()["data"]
    assert [r["id"] for r in listed] == [created["id"]]
    refused = await bridge.client.post(
        "/v1/c2b/registrations", json={"short_code": "174379"}, headers=shop.headers()
    )  # the sandbox's STK-only code cannot register C2B URLs
    assert refused.status_code == 400, refused.text


async def test_validation_by_each_rule(bridge: InProcessBridge, merchant: Receiver) -> None:
    shop = await bridge.create_project()
    reg = await register(bridge, shop)
    url = reg["validation_url"]

    accepted = await post(bridge, url, c2b_body(100, "ANY"))
    assert accepted.status_code == 200 and accepted.json()["ResultCode"] == "0"
    assert accepted.json()["ThirdPartyTransID"].startswith("c2bv_")

    await settings(bridge, shop, validation_rule="known_references")
    unknown = await post(bridge, url, c2b_body(100, "NOPE-1"))
    assert unknown.json() == {"ResultCode": "C2B00012", "ResultDesc": "Rejected"}
    await expect(bridge, shop, "inv 77", 500)
    known = await post(bridge, url, c2b_body(500, "INV77"))
    assert known.json()["ResultCode"] == "0"

    saved = await settings(
        bridge, shop, validation_rule="merchant", merchant_url=merchant.url + "/validate", default_action="reject"
    )
    secret = saved["signing_secret"]
    assert secret.startswith("whsec_")
    merchant.script(
        "/validate",
        Reply(body=b'{"accept": true}'),
        Reply(body=b'{"accept": false, "result_code": "C2B00013"}'),
        Reply(body=b'{"accept": true}', delay=2.0),  # later than the 0.5 s deadline
        Reply(500, b"boom"),
    )
    by_merchant = await post(bridge, url, c2b_body(250, "M-1", trans_id="MERCH00001"))
    assert by_merchant.json()["ResultCode"] == "0"
    request = merchant.at("/validate")[0]
    signed = request.verify(secret)
    assert signed["type"] == "c2b_payment.validation" and signed["data"]["amount"] == 250
    assert signed["data"]["bill_ref_number"] == "M-1" and signed["data"]["trans_id"] == "MERCH00001"
    refused = await post(bridge, url, c2b_body(250, "M-2"))
    assert refused.json() == {"ResultCode": "C2B00013", "ResultDesc": "Rejected"}
    late = await post(bridge, url, c2b_body(250, "M-3", trans_id="LATE000001"))
    assert late.json() == {"ResultCode": "C2B00016", "ResultDesc": "Rejected"}
    await settings(bridge, shop, default_action="accept")
    failed = await post(bridge, url, c2b_body(250, "M-4"))
    assert failed.json()["ResultCode"] == "0"

    c = tables.c2b_validations.c
    async with bridge.db.read() as uow:
        rows = await uow.connection.execute(sa.select(c.decided_by, c.accepted).order_by(c.id))
        decided = [(row.decided_by.value, row.accepted) for row in rows]
    assert decided == [
        ("accept_all", True),
        ("unknown_account", False),
        ("known_account", True),
        ("merchant", True),
        ("merchant", False),
        ("merchant_late", False),
        ("merchant_error", True),
    ]
    # Every validation was stored raw first, settled (the inbox never applies it).
    cb = tables.inbound_callbacks.c
    async with bridge.db.read() as uow:
        states = (await uow.connection.execute(sa.select(cb.state).where(cb.kind == "c2b_validation"))).scalars()
        assert set(states) == {"recorded"}

    off = await register(bridge, shop, validation=False)
    assert (await post(bridge, off["validation_url"], c2b_body(1, "X"))).json()["ResultCode"] == "0"
    spoofed = await bridge.client.post("/v1/callbacks/daraja/c2b_validation/" + "0" * 40, json=c2b_body(1, "X"))
    assert spoofed.json() == {"ResultCode": "C2B00015", "ResultDesc": "Rejected"}


async def test_confirmation_matched_and_the_defences(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    reg = await register(bridge, shop)
    expected = await expect(bridge, shop, "INV-42", 1500, phone="0708374149")
    body = c2b_body(1500, "inv-42 ", trans_id="RKL51ZDR4F")
    answer = await post(bridge, reg["confirmation_url"], body)
    assert answer.status_code == 200 and answer.json()["ResultCode"] == 0
    [payment] = await wait_payments(bridge, shop, 1)
    assert payment["id"].startswith("c2b_") and payment["trans_id"] == "RKL51ZDR4F"
    assert payment["status"] == "matched" and payment["matched"]["type"] == "expected_payment"
    assert payment["matched"]["id"] == expected["id"] and payment["matched"]["by"] == "auto"
    paid = (await bridge.client.get(f"/v1/expected_payments/{expected['id']}", headers=shop.headers())).json()
    assert paid["status"] == "paid" and paid["c2b_payment_id"] == payment["id"]

    # Replayed (the same body again) and duplicated (another copy): one payment, recorded as duplicates.
    await post(bridge, reg["confirmation_url"], body)
    await post(bridge, reg["confirmation_url"], body)
    # Spoofed: a token nobody registered; a short code that is not the registration's; garbage.
    await bridge.client.post("/v1/callbacks/daraja/c2b_confirmation/" + "f" * 40, json=c2b_body(9, "INV-42"))
    await post(bridge, reg["confirmation_url"], c2b_body(9, "INV-42", short_code="600111"))
    await post(bridge, reg["confirmation_url"], {"TransID": "x"})
    states = await wait_until(lambda: _settled(bridge, 6))
    assert states == [
        ("applied", None),
        ("duplicate", None),
        ("duplicate", None),
        ("flagged", "unknown_token"),
        ("flagged", "shortcode_mismatch"),
        ("flagged", "malformed"),
    ]
    assert len(await payments(bridge, shop)) == 1
    events = (await bridge.client.get("/v1/events", headers=shop.headers())).json()["data"]
    assert sorted(e["type"] for e in events) == ["c2b_payment.matched", "c2b_payment.received"]


async def _settled(bridge: InProcessBridge, count: int) -> list[tuple[str, str | None]] | None:
    states = await callback_states(bridge)
    return states if len(states) == count and all(s != "received" for s, _ in states) else None


async def test_paying_twice_is_shown_and_the_review_queue(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    reg = await register(bridge, shop)
    await expect(bridge, shop, "SCHOOL-7", 3000)
    await post(bridge, reg["confirmation_url"], c2b_body(3000, "SCHOOL-7", trans_id="FIRST00001"))
    await post(bridge, reg["confirmation_url"], c2b_body(3000, "school-7", trans_id="SECOND0001"))
    await post(bridge, reg["confirmation_url"], c2b_body(700, "SCHOOL-8", trans_id="THIRD00001"))
    found = await wait_payments(bridge, shop, 3)
    by_trans = {p["trans_id"]: p for p in found}
    first, second, third = by_trans["FIRST00001"], by_trans["SECOND0001"], by_trans["THIRD00001"]
    assert first["status"] == "matched"
    assert second["status"] == "unmatched" and second["duplicate_of"] == first["id"]
    assert third["status"] == "unmatched" and third["duplicate_of"] is None
    queue = await payments(bridge, shop, status="unmatched")
    assert {p["id"] for p in queue} == {second["id"], third["id"]}
    detail = (await bridge.client.get(f"/v1/c2b/payments/{second['id']}", headers=shop.headers())).json()
    assert detail["same_reference"] == [first["id"], second["id"]]

    # A near match is suggested for the third: an expected payment a typo away, same amount.
    near = await expect(bridge, shop, "SCHOOL-3", 700)
    detail = (await bridge.client.get(f"/v1/c2b/payments/{third['id']}", headers=shop.headers())).json()
    assert detail["suggestions"][0]["id"] == near["id"]
    assert set(detail["suggestions"][0]["reasons"]) == {"similar_reference", "same_amount"}
    matched = await bridge.client.post(
        f"/v1/c2b/payments/{third['id']}/match",
        json={"type": "expected_payment", "id": near["id"]},
        headers=shop.headers(),
    )
    assert matched.status_code == 200, matched.text
    assert matched.json()["status"] == "matched" and matched.json()["matched"]["by"] == "manual"
    again = await bridge.client.post(
        f"/v1/c2b/payments/{third['id']}/dismiss", json={"note": "x"}, headers=shop.headers()
    )
    assert again.status_code == 409
    dismissed = await bridge.client.post(
        f"/v1/c2b/payments/{second['id']}/dismiss", json={"note": "refunded by hand"}, headers=shop.headers()
    )
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
    assert await payments(bridge, shop, status="unmatched") == []

    # Another tenant sees none of it.
    other = await bridge.create_project("Other")
    assert await payments(bridge, other) == []
    missing = await bridge.client.get(f"/v1/c2b/payments/{first['id']}", headers=other.headers())
    assert missing.status_code == 404


async def test_expected_payments_api_and_late_expectation(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    reg = await register(bridge, shop)
    await post(bridge, reg["confirmation_url"], c2b_body(450, "ORDER 9", trans_id="EARLY00001"))
    [early] = await wait_payments(bridge, shop, 1)
    assert early["status"] == "unmatched"
    headers = {**shop.headers(), "Idempotency-Key": "exp-1"}
    body = {"reference": "ORDER9", "amount": 450, "metadata": {"order": 9}}
    created = await bridge.client.post("/v1/expected_payments", json=body, headers=headers)
    replay = await bridge.client.post("/v1/expected_payments", json=body, headers=headers)
    assert created.status_code == replay.status_code == 201
    assert replay.json()["id"] == created.json()["id"]
    assert created.json()["status"] == "paid" and created.json()["c2b_payment_id"] == early["id"]
    second = await expect(bridge, shop, "ORDER10", 10)
    cancelled = await bridge.client.post(f"/v1/expected_payments/{second['id']}/cancel", headers=shop.headers())
    assert cancelled.json()["status"] == "cancelled"
    twice = await bridge.client.post(f"/v1/expected_payments/{second['id']}/cancel", headers=shop.headers())
    assert twice.status_code == 409
    listed = (await bridge.client.get("/v1/expected_payments?status=open", headers=shop.headers())).json()
    assert listed["data"] == []
    bad = await bridge.client.post("/v1/expected_payments", json={"reference": "", "amount": 5}, headers=shop.headers())
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "reference"


async def test_matched_to_an_open_checkout_session_and_to_a_payment_link(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    reg = await register(bridge, shop)
    opened = await bridge.client.post(
        "/v1/checkout_sessions",
        json={"amount_min": 100, "amount_max": 900, "reference": "ORDER-55"},
        headers=shop.headers(),
    )
    assert opened.status_code == 201, opened.text
    link = await bridge.client.post("/v1/payment_links", json={"title": "Dues", "amount": 650}, headers=shop.headers())
    assert link.status_code == 201, link.text
    await post(bridge, reg["confirmation_url"], c2b_body(450, "order 55", trans_id="SESSION001"))
    await post(bridge, reg["confirmation_url"], c2b_body(650, link.json()["slug"].upper(), trans_id="LINK000001"))
    await post(bridge, reg["confirmation_url"], c2b_body(999, "order 55", trans_id="OUTRANGE01"))
    found = {p["trans_id"]: p for p in await wait_payments(bridge, shop, 3)}
    assert found["SESSION001"]["matched"] == {**found["SESSION001"]["matched"], "type": "checkout_session"}
    assert found["SESSION001"]["matched"]["id"] == opened.json()["id"]
    assert found["LINK000001"]["matched"]["type"] == "payment_link"
    assert found["LINK000001"]["matched"]["id"] == link.json()["id"]
    assert found["OUTRANGE01"]["status"] == "unmatched"  # above the session's range: for a person
