"""More of the checkout in a real browser (Debian's chromium) against one real bridge and its
simulator: the widget, embedded in a merchant's page on ANOTHER origin, when the customer cancels
on the phone (modal), when the prompt times out and a second try pays (inline), and when two checks
of the session cross (the outcome told once); a payment link whose customer chooses the amount; and
the widget's picture for the README.

`UPDATE_DOCS_IMAGES=1` makes `test_widget_picture_for_the_docs` write `docs/images/checkout-widget.png`
(otherwise it goes to `test-screenshots/` like every other screenshot)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.dashboard import ROOT, browser, screenshot, wait_until
from tests.fixtures.servers import ServerProcess, sandbox_bridge
from tests.fixtures.widget import MerchantSite, open_session, read_session

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOCS_IMAGE = ROOT / "docs" / "images" / "checkout-widget.png"

# TRACK_FETCHES follows every fetch of the page; SETTLE waits until each has been answered and handled.
SETTLE = """async () => {
  await Promise.all(window.mbPending);
  for (let i = 0; i < 3; i++) {  // a few macrotasks (not faked by the page's clock): every answer handled
    await new Promise((done) => { const c = new MessageChannel(); c.port1.onmessage = done; c.port2.postMessage(0); });
  }
  return window.mbPending.length;
}"""
TRACK_FETCHES = """() => {
  const original = window.fetch;
  window.mbPending = [];
  window.fetch = function () {
    const answer = original.apply(this, arguments);
    window.mbPending.push(answer.then((r) => r.clone().text()).catch(() => null));
    return answer;
  };
}"""


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str, MerchantSite]]:
    """(bridge, test key, the merchant's site, which the bridge lists as a CORS origin)."""
    shop = MerchantSite()
    try:
        settings = {"MPESA_BRIDGE_REALTIME_CORS_ORIGINS": shop.origin, "MPESA_BRIDGE_RATE_LIMIT_PHONE": "1000/minute"}
        with sandbox_bridge(tmp_path_factory.mktemp("outcomes"), "Outcomes", 1.0, **settings) as (server, key):
            shop.bridge_url = server.url
            yield server, key, shop
    finally:
        shop.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser() as launched:
        yield launched


def calls(page: Any) -> list[dict[str, Any]]:
    """What the widget's callbacks said, in order (the merchant page keeps them in window.mbCalls)."""
    found: list[dict[str, Any]] = page.evaluate("window.mbCalls")
    return found


def in_widget(page: Any) -> str:
    """The id (or the data-mb name) of the element focused inside the widget's Shadow DOM."""
    found: str = page.evaluate(
        "(() => { const a = document.activeElement, r = a && a.shadowRoot, f = r && r.activeElement;"
        " return f ? (f.id || f.getAttribute('data-mb') || f.tagName) : ''; })()"
    )
    return found


def session_payments(api: httpx.Client, session_id: str) -> list[dict[str, Any]]:
    """The payments of one checkout session, oldest first (the list is newest first; one page is enough here)."""
    listed = api.get("/v1/payments", params={"limit": 100})
    assert listed.status_code == 200, listed.text
    return [p for p in reversed(listed.json()["data"]) if p.get("checkout_session_id") == session_id]


def test_widget_modal_customer_cancels_on_the_phone(sites: Any, chromium: Any) -> None:
    server, key, shop = sites
    session = open_session(server, key)
    page = chromium.new_page(viewport={"width": 390, "height": 760})
    try:
        page.goto(f"{shop.origin}/?secret={session['client_secret']}")
        page.click("#buy")
        page.fill("#mb-phone", "0700001032")  # the simulator's customer who cancels (1032)
        page.click("[data-mb=pay]")
        page.wait_for_selector("#mb-countdown")
        assert page.inner_text("#mb-title") == "Check your phone"
        page.wait_for_selector("#mb-failure", timeout=15_000)
        cancelled = "You cancelled the payment on your phone."
        assert page.inner_text("#mb-title") == "Payment not completed"
        assert page.inner_text("#mb-failure") == cancelled
        assert page.inner_text("[role=status]") == f"Payment not completed. {cancelled}"
        assert page.inner_text("[data-mb=again]") == "Try again"
        assert in_widget(page) == "again"  # focus moved to what the customer does next
        screenshot(page, "checkout-widget-modal-cancelled")
        # onError once, in plain words, with the session; the modal stays open for a retry
        assert calls(page) == [
            {"name": "error", "code": "user_cancelled", "message": cancelled, "session": session["id"]}
        ]
        assert page.locator("[data-mpesa-bridge]").count() == 1

        page.click("[data-mb=again]")  # back to the form: nothing is pushed until the customer pays
        page.wait_for_selector("#mb-phone")
        assert page.inner_text("[data-mb=pay]") == "Try again"
        assert in_widget(page) == "mb-phone"
        page.click("[data-mb=close]")
        page.wait_for_selector('#result[data-closed="yes"]', state="attached")
        assert [c["name"] for c in calls(page)] == ["error", "close"]  # onClose once; no success
        assert page.locator("[data-mpesa-bridge]").count() == 0
        assert page.evaluate("document.activeElement.id") == "buy"  # focus back where it was
    finally:
        page.close()
    found = read_session(server, key, session["id"])
    assert found["status"] == "open" and found["payment_in_flight"] is False  # the customer may pay later
    assert found["payment"]["status"] == "cancelled" and found["payment"]["failure_code"] == "user_cancelled"
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as api:
        assert len(session_payments(api, session["id"])) == 1  # "Try again" alone pushed nothing


def test_widget_inline_prompt_times_out_then_a_second_try_pays(sites: Any, chromium: Any) -> None:
    server, key, shop = sites
    session = open_session(server, key, reference="ORDER43")
    page = chromium.new_page(viewport={"width": 390, "height": 760})
    try:
        page.goto(f"{shop.origin}/?inline=1&secret={session['client_secret']}")
        page.fill("#mb-phone", "0700001037")  # the simulator's phone that cannot be reached (1037)
        page.click("[data-mb=pay]")
        page.wait_for_selector("#mb-countdown")
        page.wait_for_selector("#mb-failure", timeout=15_000)
        timed_out = "The prompt timed out before a PIN was entered."
        assert page.inner_text("#mb-failure") == timed_out
        screenshot(page, "checkout-widget-inline-timeout")
        assert calls(page) == [{"name": "error", "code": "timeout", "message": timed_out, "session": session["id"]}]

        page.click("[data-mb=again]")
        page.fill("#mb-phone", "0711 222 333")  # another phone: this one answers and pays
        page.click("[data-mb=pay]")
        page.wait_for_selector("#mb-receipt", timeout=15_000)
        assert page.inner_text("#mb-title") == "Payment received"
        receipt = page.inner_text("#mb-receipt")
        page.wait_for_selector('#result[data-outcome="success"]', state="attached")
        screenshot(page, "checkout-widget-inline-paid-after-timeout")
        assert [c["name"] for c in calls(page)] == ["error", "success"]
        assert calls(page)[1] == {"name": "success", "receipt": receipt, "session": session["id"]}
    finally:
        page.close()
    assert len(receipt) == 10 and receipt.isalnum()
    paid = read_session(server, key, session["id"])
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as api:
        payments = session_payments(api, session["id"])
    assert [(p["status"], p["failure_code"]) for p in payments] == [("failed", "timeout"), ("succeeded", None)]
    assert [p["phone"][-3:] for p in payments] == ["037", "333"]  # a second push, to the other phone
    assert payments[1]["mpesa_receipt_number"] == receipt
    assert paid["status"] == "complete" and paid["paid_payment_id"] == payments[1]["id"]


def test_payment_link_with_an_amount_the_customer_chooses(sites: Any, chromium: Any) -> None:
    server, key, _ = sites
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as api:
        created = api.post("/v1/payment_links", json={"title": "Church harambee", "amount_min": 50, "amount_max": 500})
        assert created.status_code == 201, created.text
        link = created.json()
        page = chromium.new_page(viewport={"width": 390, "height": 760})
        posted: list[str] = []
        page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
        try:
            page.goto(link["url"])
            assert page.inner_text("label[for=amount]") == "Amount (KES 50 to 500)"
            page.fill("#amount", "5000")
            page.fill("#phone", "0722 333 444")
            page.click("#pay")
            # The browser refuses the form itself (min/max on the field) and says why; nothing is sent.
            message = page.eval_on_selector("#amount", "e => e.validity.rangeOverflow ? e.validationMessage : ''")
            assert "500" in message, message
            assert page.evaluate("document.activeElement.id") == "amount"
            assert posted == []
            page.fill("#amount", "75")
            page.click("#pay")
            page.wait_for_selector("#receipt", timeout=15_000)
            assert page.inner_text("h1") == "Payment received"
            assert page.inner_text("#amount-shown") == "KES 75"
            receipt = page.inner_text("#receipt")
            screenshot(page, "checkout-link-chosen-amount-paid")
        finally:
            page.close()
        assert posted == [link["url"]]  # the link page's own form: it opened the session and pushed
        sessions = [s for s in api.get("/v1/checkout_sessions").json()["data"] if s["payment_link_id"] == link["id"]]
        assert len(sessions) == 1 and sessions[0]["status"] == "complete"
        payments = session_payments(api, sessions[0]["id"])
        totals = api.get(f"/v1/payment_links/{link['id']}").json()
    assert [(p["amount"], p["status"], p["mpesa_receipt_number"]) for p in payments] == [(75, "succeeded", receipt)]
    assert payments[0]["account_reference"] == link["slug"]
    assert totals["payments_succeeded"] == 1 and totals["amount_collected"] == 75


def test_widget_picture_for_the_docs(sites: Any, chromium: Any) -> None:
    """The modal, light theme, at "check your phone": the picture in the README and docs/checkout.md."""
    server, key, shop = sites
    session = open_session(server, key, reference="ORDER44")
    page = chromium.new_page(viewport={"width": 900, "height": 640})
    try:
        page.goto(f"{shop.origin}/?theme=light&secret={session['client_secret']}")
        page.click("#buy")
        page.fill("#mb-phone", "0700000902")  # the late-callback customer: the prompt stays open
        page.click("[data-mb=pay]")
        page.wait_for_selector("#mb-countdown")
        assert page.inner_text("#mb-title") == "Check your phone"
        assert page.inner_text(".amount") == "KES 1,500"
        assert (
            page.get_by_text("to pay KES 1,500.").inner_text()
            == "Enter your M-Pesa PIN on your phone (2547****0902) to pay KES 1,500."
        )
        path = screenshot(page, "checkout-widget-docs")
        if os.environ.get("UPDATE_DOCS_IMAGES") == "1":
            page.screenshot(path=str(DOCS_IMAGE))
    finally:
        page.close()
    assert path.stat().st_size > 10_000  # a picture, not an empty page


def test_widget_reports_an_outcome_once_when_two_checks_cross(sites: Any, chromium: Any) -> None:
    """A slow network: the 2-second check of the session fires again before the first one's answer.
    Both answers say "failed"; the customer sees it, and the shop hears it, once."""
    server, key, shop = sites
    session = open_session(server, key, reference="ORDER45")
    page = chromium.new_page(viewport={"width": 390, "height": 760})
    try:
        page.clock.install()
        page.goto(f"{shop.origin}/?inline=1&secret={session['client_secret']}")
        page.wait_for_selector("#mb-phone")
        page.clock.pause_at(time.time() + 3600)  # from here the page's timers fire only when told
        page.fill("#mb-phone", "0700002001")  # the simulator's customer with a wrong PIN (2001)
        page.click("[data-mb=pay]")
        page.wait_for_selector("#mb-countdown")
        wait_until(lambda: read_session(server, key, session["id"])["payment"]["status"] == "failed")
        page.evaluate(TRACK_FETCHES)
        page.clock.run_for(4000)  # two checks, both in flight together
        assert page.evaluate(SETTLE) == 2
        assert page.inner_text("#mb-failure") == "The M-Pesa PIN was wrong."
        assert [c["code"] for c in calls(page)] == ["wrong_pin"]
    finally:
        page.close()
