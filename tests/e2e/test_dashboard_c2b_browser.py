"""The C2B pages in a real browser (Debian's chromium) against a real bridge process with its
built-in simulator: a developer registers the short code through the form, customers pay it through
the simulator, the payments list shows them (the second payment of one account number marked),
the review queue offers a near match that is matched with one click, and the other payment is
dismissed; in Kiswahili the pages read in Kiswahili. Screenshots test-screenshots/c2b-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.dashboard import Dashboard, browser, dashboard_bridge, screenshot, signed_in_page, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SHORT_CODE = "600984"


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    with dashboard_bridge(tmp_path_factory.mktemp("dash_c2b"), "C2B Shop") as running:
        yield running


def api(dash: Dashboard, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(
        method, dash.server.url + path, headers={"Authorization": f"Bearer {dash.key}"}, timeout=20, **kwargs
    )
    assert response.status_code < 300, response.text
    return response.json()


def customer_pays(dash: Dashboard, amount: int, account: str) -> dict[str, Any]:
    """Through the built-in simulator's own endpoint, mounted at the bridge's /simulator/c2b/payments."""
    order = {"type": "paybill", "short_code": SHORT_CODE, "amount": amount, "account": account}
    response = httpx.post(f"{dash.server.url}/simulator/c2b/payments", json=order, timeout=20)
    assert response.status_code == 201, response.text
    paid: dict[str, Any] = response.json()
    assert paid["status"] == "completed", paid
    return paid


def test_register_see_payments_and_work_the_review_queue(dash: Dashboard) -> None:
    with browser() as chromium:
        page = signed_in_page(chromium, dash, "developer")
        page.click("nav.side >> text=C2B payments")
        page.wait_for_url(f"{dash.url}/c2b")
        assert "No C2B payments yet" in page.inner_text("main")
        page.fill("#short_code", SHORT_CODE)
        page.click("[data-register]")
        page.wait_for_url(f"{dash.url}/c2b?notice=registered")
        assert page.locator(f"tr[data-registration='{SHORT_CODE}']").count() == 1
        screenshot(page, "c2b-registered")

        api(dash, "POST", "/v1/expected_payments", json={"reference": "TERM-1", "amount": 900})
        near = api(dash, "POST", "/v1/expected_payments", json={"reference": "TERM-9", "amount": 400})
        first = customer_pays(dash, 900, "TERM-1")
        second = customer_pays(dash, 900, "term 1")  # the same invoice paid again
        stray = customer_pays(dash, 400, "TERM-8")  # a typo away from TERM-9
        wait_until(lambda: len(api(dash, "GET", "/v1/c2b/payments")["data"]) == 3, message="three C2B payments")

        page.goto(f"{dash.url}/c2b")
        rows = page.locator("tr[data-c2b-payment]")
        assert rows.count() == 3
        text = page.inner_text("table[data-c2b-payments]")
        assert first["TransID"] in text and second["TransID"] in text and "KES 900" in text
        assert page.locator("[data-second-payment]").count() == 1  # paying twice is shown, not hidden
        screenshot(page, "c2b-list")

        page.click("text=Review queue")
        page.wait_for_url(f"{dash.url}/c2b/review")
        cards = page.locator("article[data-review-payment]")
        assert cards.count() == 2
        assert page.locator("article [data-second-payment]").count() == 1
        screenshot(page, "c2b-review")
        page.click(f"[data-match='{near['id']}']")
        page.wait_for_url(f"{dash.url}/c2b/review?notice=matched")
        assert page.locator("article[data-review-payment]").count() == 1
        page.fill("article[data-review-payment] input[name=note]", "refunded by hand")
        page.click("article[data-review-payment] [data-dismiss]")
        page.wait_for_url(f"{dash.url}/c2b/review?notice=dismissed")
        assert "Nothing to review" in page.inner_text("main")

        stray_id = next(
            p["id"] for p in api(dash, "GET", "/v1/c2b/payments")["data"] if p["trans_id"] == stray["TransID"]
        )
        page.goto(f"{dash.url}/c2b/{stray_id}")
        assert page.locator(f"[data-matched='{near['id']}']").count() == 1
        assert page.locator("[data-validation=accept_all]").count() == 1
        screenshot(page, "c2b-detail")

        page.goto(f"{dash.url}/language?set=sw&next=/dashboard/c2b")
        page.wait_for_url(f"{dash.url}/c2b")
        assert "Malipo ya C2B" in page.inner_text("h1")
        screenshot(page, "c2b-list-sw")


def test_a_viewer_reads_but_cannot_act(dash: Dashboard) -> None:
    with browser() as chromium:
        page = signed_in_page(chromium, dash, "viewer")
        page.goto(f"{dash.url}/c2b")
        assert page.locator("[data-register]").count() == 0 and page.locator("[data-save-settings]").count() == 0
        page.goto(f"{dash.url}/c2b/review")
        assert page.locator("[data-dismiss]").count() == 0
