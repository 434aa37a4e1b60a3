"""The hosted payment page in a real browser (Debian's chromium) against a real bridge and its
simulator: with JavaScript (the page follows the session and swaps itself in place) and without
(a form POST, then a page that refreshes itself), for a success that ends on the shop's
success_url and a cancellation that offers "try again"; and keyboard only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.dashboard import browser, screenshot
from tests.fixtures.servers import ServerProcess, sandbox_bridge

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PHONE_OK, PHONE_CANCELS = "0708374149", "0700001032"
# These tests pay the magic phones more than the 3 pushes per 10 minutes a real phone may get.
PHONES_UNLIMITED = {"MPESA_BRIDGE_RATE_LIMIT_PHONE": "1000/minute"}


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    with sandbox_bridge(
        tmp_path_factory.mktemp("checkout-page"), "Checkout", callback_delay=0.5, **PHONES_UNLIMITED
    ) as started:
        yield started


def hosted_page(bridge: tuple[ServerProcess, str], **body: Any) -> str:
    """Open a session as the merchant's server does; the address it sends the customer to."""
    server, key = bridge
    payload = {
        "amount": 1500,
        "reference": "ORDER42",
        "description": "Order 42",
        "success_url": f"{server.url}/healthz?paid=1",
        "cancel_url": f"{server.url}/healthz?cancelled=1",
        **body,
    }
    response = httpx.post(
        f"{server.url}/v1/checkout_sessions", json=payload, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert response.status_code == 201, response.text
    session = response.json()
    return f"{session['url']}?client_secret={session['client_secret']}"


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_checkout_page_pays_and_returns_to_the_shop(bridge: tuple[ServerProcess, str], javascript: bool) -> None:
    server, _ = bridge
    url = hosted_page(bridge)
    requested: list[str] = []
    with browser() as chromium:
        context = chromium.new_context(java_script_enabled=javascript, viewport={"width": 390, "height": 760})
        page = context.new_page()
        page.on("request", lambda request: requested.append(request.url))
        page.goto(url)
        screenshot(page, f"checkout-page-form-{'js' if javascript else 'nojs'}")
        page.fill("#phone", PHONE_OK)
        page.click("#pay")
        page.wait_for_selector('#checkout[data-state="waiting"], #checkout[data-state="paid"]', timeout=15_000)
        if page.locator('#checkout[data-state="waiting"]').count():
            screenshot(page, f"checkout-page-waiting-{'js' if javascript else 'nojs'}")
        page.wait_for_selector('#checkout[data-state="paid"]', timeout=15_000)
        receipt = page.inner_text("#receipt")
        screenshot(page, f"checkout-page-paid-{'js' if javascript else 'nojs'}")
        page.wait_for_url(f"{server.url}/healthz?paid=1", timeout=15_000)
        context.close()
    assert len(receipt) == 10 and receipt.isalnum()
    assert all(u.startswith(server.url) for u in requested), requested  # nothing external
    scripts = [u for u in requested if u.endswith("/pay/assets/pay.js")]
    assert bool(scripts) == javascript
    if javascript:  # the live page followed the session's stream instead of reloading itself
        assert any("/events?client_secret=" in u for u in requested), requested


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_checkout_page_says_cancelled_and_tries_again(bridge: tuple[ServerProcess, str], javascript: bool) -> None:
    server, _ = bridge
    with browser() as chromium:
        context = chromium.new_context(
            java_script_enabled=javascript, viewport={"width": 390, "height": 760}, locale="sw-KE"
        )
        page = context.new_page()
        page.goto(hosted_page(bridge))
        assert page.inner_text("h1") == "Lipa kwa M-Pesa"  # Accept-Language: Swahili
        page.fill("#phone", PHONE_CANCELS)
        page.click("#pay")
        page.wait_for_selector("#failure", timeout=15_000)
        assert "Ulighairi malipo kwenye simu yako." in page.inner_text("#failure")
        assert page.inner_text("#pay") == "Jaribu tena"
        screenshot(page, f"checkout-page-cancelled-{'js' if javascript else 'nojs'}")
        page.click("text=English")
        assert "You cancelled the payment on your phone." in page.inner_text("#failure")
        page.fill("#phone", PHONE_OK)
        page.click("#pay")
        page.wait_for_selector('#checkout[data-state="paid"]', timeout=15_000)
        page.wait_for_url(f"{server.url}/healthz?paid=1", timeout=15_000)
        context.close()


def test_checkout_page_keyboard_only(bridge: tuple[ServerProcess, str]) -> None:
    server, _ = bridge
    with browser() as chromium:
        context = chromium.new_context(viewport={"width": 390, "height": 760})
        page = context.new_page()
        page.goto(hosted_page(bridge, amount=None, amount_min=50, amount_max=500))
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "amount"
        page.keyboard.type("75")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "phone"
        page.keyboard.type(PHONE_OK)
        page.keyboard.press("Enter")
        page.wait_for_selector('#checkout[data-state="paid"]', timeout=15_000)
        assert "KES 75" in page.inner_text("#amount-shown")
        assert page.evaluate("document.activeElement.tagName") == "H1"  # focus follows the new state
        page.wait_for_url(f"{server.url}/healthz?paid=1", timeout=15_000)
        context.close()
