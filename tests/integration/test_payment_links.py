"""Payment links over HTTP (in-process bridge, simulator as Daraja) — on SQLite and PostgreSQL.

Create, list, read and change a link (secret key); its QR code and a checkout session's, read back
by a real decoder; its public page `/l/{slug}`, whose form opens a checkout session for the link's amount
and sends the customer to it, or says politely (410) that the link is inactive, expired or used up;
and the link's totals once a session it opened was paid."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from mpesa_bridge.core.clock import ManualClock
from mpesa_bridge.core.links import service as links_service
from mpesa_bridge.storage import tables
from tests.fixtures.bridge import InProcessBridge, Tenant, wait_until
from tests.fixtures.qr import decode_png


@pytest.fixture
def simulator_overrides(clock: ManualClock) -> dict[str, Any]:
    return {"now": clock.now}


async def create_link(bridge: InProcessBridge, shop: Tenant, **body: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"title": "Tuition, term 1", "amount": 1500, "metadata": {"class": "4B"}}
    payload.update(body)
    response = await bridge.client.post("/v1/payment_links", json=payload, headers=shop.headers())
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def read_link(bridge: InProcessBridge, shop: Tenant, link_id: str) -> dict[str, Any]:
    response = await bridge.client.get(f"/v1/payment_links/{link_id}", headers=shop.headers())
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def visit(bridge: InProcessBridge, link: dict[str, Any]) -> Any:
    """The link's page, as a customer (or a link-preview robot) sees it."""
    return await bridge.client.get(f"/l/{link['slug']}", follow_redirects=False)


async def submit(bridge: InProcessBridge, link: dict[str, Any], phone: str, amount: str | None = None) -> Any:
    """The link page's form, sent: a session opened and pushed for, then 303 to its page."""
    form = {"phone": phone, "lang": "en"} | ({"amount": amount} if amount is not None else {})
    return await bridge.client.post(f"/l/{link['slug']}", data=form, follow_redirects=False)


async def sessions_of(bridge: InProcessBridge, shop: Tenant) -> list[dict[str, Any]]:
    answer = await bridge.client.get("/v1/checkout_sessions", headers=shop.headers())
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["data"]
    return found


async def test_create_read_list_and_change(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    created = await create_link(bridge, shop, description="Pay before 5 Jan", collect=["reference", "name"])
    assert created["id"].startswith("plink_") and created["object"] == "payment_link"
    assert created["url"] == f"http://bridge.test/l/{created['slug']}" and len(created["slug"]) == 10
    assert created["amount"] == 1500 and created["amount_min"] is None and created["active"] is True
    assert created["collect"] == ["name", "reference"] and created["metadata"] == {"class": "4B"}
    assert created["expires_at"] is None and created["max_payments"] is None
    read_back = await read_link(bridge, shop, created["id"])
    assert read_back["payments_succeeded"] == 0 and read_back["amount_collected"] == 0
    assert {k: v for k, v in read_back.items() if k not in ("payments_succeeded", "amount_collected")} == created

    second = await create_link(bridge, shop, amount=None, amount_min=50, amount_max=500)
    assert second["slug"] != created["slug"]
    page = (await bridge.client.get("/v1/payment_links", params={"limit": 1}, headers=shop.headers())).json()
    assert [s["id"] for s in page["data"]] == [second["id"]] and page["has_more"]
    rest = await bridge.client.get(
        "/v1/payment_links", params={"starting_after": page["next_cursor"]}, headers=shop.headers()
    )
    assert [s["id"] for s in rest.json()["data"]] == [created["id"]] and not rest.json()["has_more"]

    bridge.clock.advance(5)
    soon = (bridge.clock.now() + timedelta(days=2)).isoformat()
    changed = await bridge.client.patch(
        f"/v1/payment_links/{created['id']}",
        json={"title": "Tuition", "active": False, "expires_at": soon, "max_payments": 3},
        headers=shop.headers(),
    )
    assert changed.status_code == 200, changed.text
    after = changed.json()
    assert after["title"] == "Tuition" and after["active"] is False and after["max_payments"] == 3
    assert after["expires_at"] and after["updated_at"] > created["updated_at"]
    assert after["description"] == "Pay before 5 Jan" and after["amount"] == 1500  # untouched
    cleared = await bridge.client.patch(
        f"/v1/payment_links/{created['id']}", json={"expires_at": None, "max_payments": None}, headers=shop.headers()
    )
    assert cleared.json()["expires_at"] is None and cleared.json()["max_payments"] is None
    assert (await read_link(bridge, shop, created["id"]))["title"] == "Tuition"


BAD_LINKS: list[tuple[dict[str, Any], str, str]] = [
    ({"title": ""}, "title", "parameter_missing"),
    ({"title": "x" * 101}, "title", "parameter_too_long"),
    ({"description": 5}, "description", "parameter_missing"),
    ({"amount": 0}, "amount", "amount_out_of_range"),
    ({"amount": 100, "amount_min": 1, "amount_max": 5}, "amount", "amount_conflict"),
    ({"amount": None, "amount_min": 10}, "amount_max", "parameter_missing"),
    ({"amount": None, "amount_min": 10, "amount_max": 5}, "amount_min", "amount_range_invalid"),
    ({"active": "yes"}, "active", "invalid_active"),
    ({"expires_at": "tomorrow"}, "expires_at", "invalid_expires_at"),
    ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at", "invalid_expires_at"),
    ({"max_payments": 0}, "max_payments", "invalid_max_payments"),
    ({"max_payments": True}, "max_payments", "invalid_max_payments"),
    ({"collect": ["phone"]}, "collect", "invalid_collect"),
    ({"metadata": [1]}, "metadata", "invalid_metadata"),
    ({"surprise": 1}, "surprise", "parameter_unknown"),
]


@pytest.mark.parametrize(("change", "param", "code"), BAD_LINKS)
async def test_invalid_links_are_400_naming_the_field(
    bridge: InProcessBridge, change: dict[str, Any], param: str, code: str
) -> None:
    shop = await bridge.create_project()
    body: dict[str, Any] = {"title": "Fees", "amount": 100, **change}
    response = await bridge.client.post("/v1/payment_links", json=body, headers=shop.headers())
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, code), error


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"title": None}, "title"),
        ({"active": 1}, "active"),
        ({"max_payments": -1}, "max_payments"),
        ({"amount": 5}, "amount"),
    ],
)
async def test_invalid_changes_are_400_naming_the_field(
    bridge: InProcessBridge, change: dict[str, Any], param: str
) -> None:
    shop = await bridge.create_project()
    link = await create_link(bridge, shop)
    response = await bridge.client.patch(f"/v1/payment_links/{link['id']}", json=change, headers=shop.headers())
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert await read_link(bridge, shop, link["id"]) == {**link, "payments_succeeded": 0, "amount_collected": 0}


async def test_the_qr_codes_decode_to_the_public_urls(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    link = await create_link(bridge, shop)
    png = await bridge.client.get(
        f"/v1/payment_links/{link['id']}/qr", params={"format": "png"}, headers=shop.headers()
    )
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert decode_png(png.content) == [link["url"]]
    svg = await bridge.client.get(f"/v1/payment_links/{link['id']}/qr", headers=shop.headers())
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.content.lstrip().startswith(b"<?xml") and b"<svg" in svg.content

    session = await bridge.client.post(
        "/v1/checkout_sessions", json={"amount": 10, "reference": "QR"}, headers=shop.headers()
    )
    url = session.json()["url"]
    qr = await bridge.client.get(
        f"/v1/checkout_sessions/{session.json()['id']}/qr", params={"format": "png"}, headers=shop.headers()
    )
    assert qr.status_code == 200 and decode_png(qr.content) == [url]

    bad = await bridge.client.get(
        f"/v1/payment_links/{link['id']}/qr", params={"format": "gif"}, headers=shop.headers()
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "format"
    other = await bridge.create_project("Other")
    for path in (f"/v1/payment_links/{link['id']}/qr", f"/v1/checkout_sessions/{session.json()['id']}/qr"):
        refused = await bridge.client.get(path, headers=other.headers())
        assert refused.status_code == 404, refused.text
        assert (await bridge.client.get(path)).status_code == 401


async def test_the_public_page_shows_the_form_and_opens_a_session_only_when_paid(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    link = await create_link(bridge, shop, description="Paid per term")
    first, second = await visit(bridge, link), await visit(bridge, link)
    assert first.status_code == second.status_code == 200
    assert "Tuition, term 1 — Paid per term" in first.text and "KES 1,500" in first.text
    assert f'action="/l/{link["slug"]}"' in first.text and 'name="client_secret"' not in first.text
    assert (
        first.headers["cache-control"] == "no-store"
        and "form-action 'self'" in first.headers["content-security-policy"]
    )
    assert await sessions_of(bridge, shop) == []  # seeing the page (a link preview too) opens nothing

    paid = await submit(bridge, link, "0708374149")
    assert paid.status_code == 303 and "?client_secret=cs_" in paid.headers["location"]  # the page needs it
    (session,) = await sessions_of(bridge, shop)
    assert session["url"].endswith(_page_of(paid))
    assert session["payment_link_id"] == link["id"] and session["amount"] == 1500
    assert session["metadata"] == {"class": "4B"} and session["reference"] == link["slug"]
    payment = (await bridge.client.get(paid.headers["location"].replace("/pay/", "/v1/checkout_sessions/"))).json()
    assert payment["payment"]["amount"] == 1500 and payment["payment"]["phone"] == "2547****4149"  # pushed at once

    unknown = await bridge.client.get("/l/nosuchlink2", follow_redirects=False)
    assert unknown.status_code == 404 and "cannot be opened" in unknown.text
    assert (await bridge.client.get("/l/%3Cscript%3E", follow_redirects=False)).status_code == 404
    assert (await bridge.client.post("/l/nosuchlink2", data={"phone": "0708374149"})).status_code == 404


async def test_a_customer_chosen_amount_is_checked_before_anything_opens(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    ranged = await create_link(bridge, shop, amount=None, amount_min=50, amount_max=500)
    page = await visit(bridge, ranged)
    assert page.status_code == 200 and 'name="amount"' in page.text and 'min="50"' in page.text
    for amount in ("5000", "abc", ""):
        refused = await submit(bridge, ranged, "0708374150", amount)
        assert refused.status_code == 400, (amount, refused.text)
        assert 'id="error"' in refused.text and 'name="amount"' in refused.text
    bad_phone = await submit(bridge, ranged, "12345", "75")
    assert bad_phone.status_code == 400 and 'id="error"' in bad_phone.text
    assert await sessions_of(bridge, shop) == []  # nothing opened for a form that could not be paid

    paid = await submit(bridge, ranged, "0708374150", "75")
    assert paid.status_code == 303, paid.text
    (session,) = await sessions_of(bridge, shop)
    assert (session["amount"], session["amount_min"], session["amount_max"]) == (None, 50, 500)
    shown = (await bridge.client.get(paid.headers["location"].replace("/pay/", "/v1/checkout_sessions/"))).json()
    assert shown["payment"]["amount"] == 75


async def test_an_inactive_or_expired_link_says_so_politely(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    soon = (bridge.clock.now() + timedelta(minutes=10)).isoformat()
    expiring = await create_link(bridge, shop, title="<b>Fees</b>", expires_at=soon)
    assert (await visit(bridge, expiring)).status_code == 200
    bridge.clock.advance(600)
    gone = await visit(bridge, expiring)
    assert gone.status_code == 410 and "has expired" in gone.text and "Sorry" in gone.text
    assert "&lt;b&gt;Fees&lt;/b&gt;" in gone.text and "<b>" not in gone.text  # the title is escaped
    assert (await submit(bridge, expiring, "0708374149")).status_code == 410
    swahili = await bridge.client.get(f"/l/{expiring['slug']}", params={"lang": "sw"})
    assert swahili.status_code == 410 and "Samahani" in swahili.text

    link = await create_link(bridge, shop)
    off = await bridge.client.patch(f"/v1/payment_links/{link['id']}", json={"active": False}, headers=shop.headers())
    assert off.status_code == 200
    inactive = await visit(bridge, link)
    assert inactive.status_code == 410 and "no longer active" in inactive.text
    assert (await submit(bridge, link, "0708374149")).status_code == 410
    await bridge.client.patch(f"/v1/payment_links/{link['id']}", json={"active": True}, headers=shop.headers())
    assert (await visit(bridge, link)).status_code == 200
    assert await sessions_of(bridge, shop) == []  # none for the refused forms


def _page_of(answer: httpx.Response) -> str:
    """The hosted page a redirect sends to, without its query (the session's client secret)."""
    return answer.headers["location"].split("?", 1)[0]


async def pay_through(bridge: InProcessBridge, shop: Tenant, link: dict[str, Any], phone: str) -> str:
    """The customer pays on the link's page; the payment's id once it succeeded."""
    answer = await submit(bridge, link, phone)
    assert answer.status_code == 303, answer.text
    shown = (await bridge.client.get(answer.headers["location"].replace("/pay/", "/v1/checkout_sessions/"))).json()
    payment_id: str = shown["payment"]["id"]
    await bridge.wait_status(shop, payment_id, "succeeded")
    return payment_id


async def test_totals_count_succeeded_payments_and_max_payments_closes_the_link(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    link = await create_link(bridge, shop, amount=250, max_payments=2)
    other = await create_link(bridge, shop, amount=99)
    assert (await visit(bridge, other)).status_code == 200  # another link's page counts for nothing

    paid = await pay_through(bridge, shop, link, "0708374149")
    payment = await bridge.get(shop, paid)
    (session,) = [s for s in await sessions_of(bridge, shop) if s["id"] == payment["checkout_session_id"]]
    assert session["payment_link_id"] == link["id"]  # link → sessions → payments
    totals = await read_link(bridge, shop, link["id"])
    assert (totals["payments_succeeded"], totals["amount_collected"]) == (1, 250)
    assert (await visit(bridge, link)).status_code == 200  # one of two taken: still open

    await pay_through(bridge, shop, link, "0708374151")
    totals = await wait_until(lambda: _totals_reached(bridge, shop, link["id"], 2))
    assert totals["amount_collected"] == 500
    exhausted = await visit(bridge, link)
    assert exhausted.status_code == 410 and "all the payments" in exhausted.text
    assert (await submit(bridge, link, "0708374152")).status_code == 410
    assert (await read_link(bridge, shop, other["id"]))["payments_succeeded"] == 0


async def _totals_reached(bridge: InProcessBridge, shop: Tenant, link_id: str, count: int) -> dict[str, Any] | None:
    link = await read_link(bridge, shop, link_id)
    return link if link["payments_succeeded"] == count else None


async def test_a_slug_already_taken_is_drawn_again(bridge: InProcessBridge, monkeypatch: pytest.MonkeyPatch) -> None:
    """Slugs are random (~49 bits): across a million links one clash is likely. The clash is drawn
    again, not a 500 — here forced by drawing the same slug twice, on both engines."""
    draws = iter(["samesame22", "samesame22", "different3"])
    monkeypatch.setattr(links_service, "new_slug", lambda: next(draws))
    shop = await bridge.create_project()
    first = await create_link(bridge, shop)
    second = await create_link(bridge, shop, title="Another")
    assert (first["slug"], second["slug"]) == ("samesame22", "different3")
    assert second["url"].endswith("/l/different3")
    assert (await read_link(bridge, shop, second["id"]))["title"] == "Another"
    assert (await visit(bridge, first)).status_code == 200 and (await visit(bridge, second)).status_code == 200


async def test_an_idempotency_key_creates_one_link(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    body = {"title": "Fees", "amount": 500}
    headers = {**shop.headers(), "Idempotency-Key": "link-1"}
    first = await bridge.client.post("/v1/payment_links", json=body, headers=headers)
    second = await bridge.client.post("/v1/payment_links", json=body, headers=headers)
    assert first.status_code == second.status_code == 201, second.text
    assert first.json() == second.json() and second.headers["Idempotent-Replayed"] == "true"
    other = await bridge.client.post("/v1/payment_links", json={**body, "amount": 600}, headers=headers)
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    listed = (await bridge.client.get("/v1/payment_links", headers=shop.headers())).json()["data"]
    assert [link["id"] for link in listed] == [first.json()["id"]]
    # The key was bound in the link's own transaction: with the stored answer lost (a crash after
    # the commit), a retry answers with the link, and still creates nothing.
    async with bridge.db.write() as uow:
        keys = tables.idempotency_keys
        await uow.connection.execute(keys.update().values(state="unanswered", response_status=None, response_body=None))
    recovered = await bridge.client.post("/v1/payment_links", json=body, headers=headers)
    assert recovered.status_code == 201 and recovered.json()["id"] == first.json()["id"]
    assert len((await bridge.client.get("/v1/payment_links", headers=shop.headers())).json()["data"]) == 1
