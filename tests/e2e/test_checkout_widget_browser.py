"""The checkout widget in a real browser (Debian's chromium), embedded in a merchant's page served
from ANOTHER origin (a tiny static server on its own port) and talking to a real bridge and its
simulator: the modal and the inline form, a success with its receipt, not enough money then try
again, an origin the bridge does not list refused, and a payment made with the keyboard alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.dashboard import browser, screenshot, wait_until
from tests.fixtures.servers import ServerProcess, sandbox_bridge
from tests.fixtures.widget import MerchantSite, open_session, read_session

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str, MerchantSite, MerchantSite]]:
    """(bridge, test key, the listed merchant site, a site the bridge does not list)."""
    shop, stranger = MerchantSite(), MerchantSite()
    try:
        settings = {"MPESA_BRIDGE_REALTIME_CORS_ORIGINS": shop.origin, "MPESA_BRIDGE_RATE_LIMIT_PHONE": "1000/minute"}
        with sandbox_bridge(tmp_path_factory.mktemp("widget"), "Widget", 0.5, **settings) as (server, key):
            shop.bridge_url = stranger.bridge_url = server.url
            yield server, key, shop, stranger
    finally:
        shop.close()
        stranger.close()


def test_checkout_widget_modal_pays_from_another_origin(sites: Any) -> None:
    server, key, shop, _ = sites
    session = open_session(server, key)
    requested: list[str] = []
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 390, "height": 760})
        page.on("request", lambda r: requested.append(r.url))
        page.goto(f"{shop.origin}/?secret={session['client_secret']}")
        page.click("#buy")
        page.wait_for_selector("#mb-phone")
        assert page.evaluate("document.activeElement.tagName") == "DIV"  # the widget's host: focus inside it
        page.fill("#mb-phone", "12345")
        page.click("[data-mb=pay]")
        assert "Kenyan mobile number" in page.inner_text("#mb-error")  # checked before anything is sent
        screenshot(page, "checkout-widget-modal-bad-phone")
        page.fill("#mb-phone", "+254 708 374 149")
        page.click("[data-mb=pay]")
        page.wait_for_selector("#mb-countdown")
        screenshot(page, "checkout-widget-modal-waiting")
        page.wait_for_selector("#mb-receipt", timeout=15_000)
        screenshot(page, "checkout-widget-modal-paid")
        page.wait_for_selector('#result[data-outcome="success"]')
        receipt = page.inner_text("#result")
        page.close()
    paid = read_session(server, key, session["id"])
    assert paid["status"] == "complete" and paid["payment"]["mpesa_receipt_number"] == receipt
    bridge_calls = [u for u in requested if u.startswith(server.url)]
    assert any(u.endswith("/v1/widget.js") for u in bridge_calls)
    assert any(f"/v1/checkout_sessions/{session['id']}/pay" in u for u in bridge_calls)
    assert any(f"/v1/checkout_sessions/{session['id']}/events?" in u for u in bridge_calls)  # SSE, with polling
    assert all(u.startswith((server.url, shop.origin)) for u in requested), requested  # nothing else


def test_checkout_widget_inline_not_enough_money_then_try_again(sites: Any) -> None:
    server, key, shop, _ = sites
    session = open_session(server, key, amount=None, amount_min=50, amount_max=500)
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 390, "height": 760}, color_scheme="dark")
        page.goto(f"{shop.origin}/?inline=1&theme=dark&secret={session['client_secret']}")
        page.fill("#mb-amount", "120")
        page.fill("#mb-phone", "0700000001")
        page.click("[data-mb=pay]")
        page.wait_for_selector("#mb-failure", timeout=15_000)
        assert "not enough money" in page.inner_text("#mb-failure")
        page.wait_for_selector('#result[data-error="insufficient_funds"]', state="attached")
        screenshot(page, "checkout-widget-inline-insufficient")
        page.click("[data-mb=again]")
        page.fill("#mb-amount", "120")
        page.fill("#mb-phone", "0708374149")
        page.click("[data-mb=pay]")
        page.wait_for_selector("#mb-receipt", timeout=15_000)
        screenshot(page, "checkout-widget-inline-paid")
        page.close()
    paid = read_session(server, key, session["id"])
    assert paid["status"] == "complete" and paid["payment"]["amount"] == 120


def test_checkout_widget_refused_from_an_unlisted_origin(sites: Any) -> None:
    server, key, _, stranger = sites
    session = open_session(server, key)
    with browser() as chromium:
        page = chromium.new_page()
        page.goto(f"{stranger.origin}/?inline=1&secret={session['client_secret']}")
        page.wait_for_selector("#mb-failure", timeout=15_000)
        page.wait_for_selector(
            '#result[data-error="network_error"]', state="attached"
        )  # the browser withheld the answer
        page.close()
    preflight = httpx.options(
        f"{server.url}/v1/checkout_sessions/{session['id']}/pay",
        headers={"Origin": stranger.origin, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers
    assert read_session(server, key, session["id"])["payment"] is None  # nothing was pushed


def test_checkout_widget_keyboard_only_in_swahili(sites: Any) -> None:
    server, key, shop, _ = sites
    session = open_session(server, key)
    with browser() as chromium:
        page = chromium.new_page()
        page.goto(f"{shop.origin}/?locale=sw&secret={session['client_secret']}")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "buy"
        page.keyboard.press("Enter")
        page.wait_for_selector("#mb-phone")
        assert page.inner_text("#mb-title") == "Lipa kwa M-Pesa"
        page.keyboard.type("0708374149")
        for _ in range(3):  # phone -> Lipa -> Funga -> back to the phone: focus stays in the dialog
            page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.shadowRoot.activeElement.id")
        assert focused == "mb-phone", focused
        page.keyboard.press("Enter")
        page.wait_for_selector("#mb-receipt", timeout=15_000)
        assert page.inner_text("[role=status]") == "Malipo yamepokelewa"
        page.keyboard.press("Escape")
        wait_until(lambda: page.evaluate("document.getElementById('result').dataset.closed") == "yes")
        assert page.evaluate("document.activeElement.id") == "buy"  # focus back where it was
        assert page.locator("[data-mpesa-bridge]").count() == 0
        page.close()
