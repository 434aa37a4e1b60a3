"""The widget opened with a publishable key and an amount (no session made by a server), in a real
browser (Debian's chromium), from a merchant page on ANOTHER origin than the bridge's: from an origin
in the project's allowed origins the widget opens the session and the customer pays; the same page
served from another origin is refused, and nothing is opened or pushed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.dashboard import browser, screenshot
from tests.fixtures.servers import ServerProcess, sandbox_bridge
from tests.fixtures.widget import MerchantSite

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tip jar</title></head>
<body><h1>Tip jar</h1><div id="inline"></div><p id="result"></p>
<script src="BRIDGE/v1/widget.js"></script>
<script>
var q = new URLSearchParams(location.search), result = document.getElementById("result");
MpesaBridge.mount(document.getElementById("inline"), {
  publishableKey: q.get("pk"), amount: Number(q.get("amount")), reference: "TIP", theme: "light",
  onSuccess: function (r) {
    result.dataset.outcome = "success"; result.dataset.session = r.session.id; result.textContent = r.receipt;
  },
  onError: function (e) { result.dataset.error = e.code; }
});
</script></body></html>
"""


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, str, str, MerchantSite, MerchantSite]]:
    """(bridge, secret key, publishable key, the project's allowed site, another site)."""
    shop, stranger = MerchantSite(PAGE), MerchantSite(PAGE)
    try:
        with sandbox_bridge(tmp_path_factory.mktemp("pk-widget"), "Tips", 0.5) as (server, key):
            shop.bridge_url = stranger.bridge_url = server.url
            changed = httpx.patch(
                f"{server.url}/v1/project",
                json={"client_side_amounts": True, "client_side_amount_max": 5000, "allowed_origins": [shop.origin]},
                headers={"Authorization": f"Bearer {key}"},
                timeout=10,
            )
            assert changed.status_code == 200, changed.text
            yield server, key, changed.json()["publishable_key"], shop, stranger
    finally:
        shop.close()
        stranger.close()


def sessions(server: ServerProcess, key: str) -> list[dict[str, Any]]:
    listed = httpx.get(f"{server.url}/v1/checkout_sessions", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert listed.status_code == 200, listed.text
    data: list[dict[str, Any]] = listed.json()["data"]
    return data


def test_the_widget_with_a_publishable_key_pays_from_an_allowed_origin_and_is_refused_elsewhere(setup: Any) -> None:
    server, key, publishable, shop, stranger = setup
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 390, "height": 760})
        page.goto(f"{shop.origin}/?pk={publishable}&amount=250")
        page.wait_for_selector("#mb-phone", timeout=15_000)
        assert page.inner_text(".amount") == "KES 250"  # the amount the page chose
        page.fill("#mb-phone", "0708 374 149")
        page.click("[data-mb=pay]")
        page.wait_for_selector("#mb-receipt", timeout=15_000)
        screenshot(page, "checkout-widget-publishable-key-paid")
        page.wait_for_selector('#result[data-outcome="success"]', state="attached")
        session_id = page.evaluate("document.getElementById('result').dataset.session")
        receipt = page.inner_text("#result")
        page.close()
    opened = sessions(server, key)
    assert [s["id"] for s in opened] == [session_id]
    assert opened[0]["status"] == "complete" and opened[0]["amount"] == 250 and opened[0]["reference"] == "TIP"
    paid = httpx.get(
        f"{server.url}/v1/checkout_sessions/{session_id}", headers={"Authorization": f"Bearer {key}"}, timeout=10
    ).json()
    assert paid["payment"]["mpesa_receipt_number"] == receipt

    with browser() as chromium:
        page = chromium.new_page()
        page.goto(f"{stranger.origin}/?pk={publishable}&amount=250")
        page.wait_for_selector("#mb-failure", timeout=15_000)
        page.wait_for_selector('#result[data-error="network_error"]', state="attached")  # the browser withheld it
        screenshot(page, "checkout-widget-publishable-key-refused")
        assert page.query_selector("#mb-phone") is None
        page.close()
    assert [s["id"] for s in sessions(server, key)] == [session_id]  # nothing opened, so nothing pushed
    refused = httpx.post(
        f"{server.url}/v1/checkout_sessions",
        json={"amount": 250},
        headers={"Authorization": f"Bearer {publishable}", "Origin": stranger.origin},
        timeout=10,
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "origin_not_allowed"
