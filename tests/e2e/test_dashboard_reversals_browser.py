"""Reversals and balances in the dashboard, in a real browser (Debian's chromium) against a real
bridge process with its built-in simulator: a developer reverses a paid payment from its page (the
confirmation box must be ticked; the button is gone once it is sent), sees the reversal succeed and
the payment marked reversed; a viewer sees no Reverse button; the balance page asks Daraja and shows
the accounts, in English and in Kiswahili. Screenshots test-screenshots/reversal-*.png, balance-*.png."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.dashboard import Dashboard, browser, dashboard_bridge, screenshot, signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    with dashboard_bridge(tmp_path_factory.mktemp("dash_reversals"), "Reversal Shop", callback_delay=0.1) as running:
        yield running


def reload_until(page: Any, selector: str, timeout: float = 20.0) -> None:
    """Reload the page until `selector` is on it (the Result arrives on its own time)."""
    deadline = time.monotonic() + timeout
    while page.locator(selector).count() == 0:
        assert time.monotonic() < deadline, f"{selector} never appeared"
        page.wait_for_timeout(200)
        page.reload()


def test_a_developer_reverses_a_payment_from_its_page(dash: Dashboard) -> None:
    payment = dash.pay(amount=250, reference="REV-DASH")
    dash.wait_for_status(payment["id"], "succeeded")
    with browser() as chromium:
        viewer = signed_in_page(chromium, dash, "viewer")
        viewer.goto(f"{dash.url}/payments/{payment['id']}")
        assert viewer.locator("[data-reversals]").is_visible()
        assert viewer.locator("[data-reverse-form]").count() == 0  # reads only

        page = signed_in_page(chromium, dash, "developer")
        page.goto(f"{dash.url}/payments/{payment['id']}")
        assert "No reversal." in page.inner_text("[data-reversals]")
        screenshot(page, "reversal-before")
        page.click("[data-reverse-form] button")  # not confirmed: the browser refuses to submit
        assert page.url.endswith(payment["id"])
        page.check("[data-reverse-form] input[name=confirm]")
        page.click("[data-reverse-form] button")
        page.wait_for_url(f"{dash.url}/payments/{payment['id']}?reversal=1")
        assert "The reversal was sent to Daraja" in page.inner_text("main")
        assert page.locator("[data-reverse-form]").count() == 0  # never twice
        reload_until(page, "[data-reversed]")
        row = page.locator("tr[data-reversal]")
        assert row.count() == 1 and "succeeded" in row.inner_text()
        screenshot(page, "reversal-done")
    shown = dash.payment(payment["id"])
    assert shown["reversed_at"] and shown["reversal_id"]


def test_the_balance_page_asks_daraja_and_shows_the_accounts(dash: Dashboard) -> None:
    with browser() as chromium:
        page = signed_in_page(chromium, dash, "developer")
        page.click("nav.side >> text=Balance")
        page.wait_for_url(f"{dash.url}/balance")
        assert "No balance has been read yet." in page.inner_text("main")
        page.click("[data-balance-form] button")
        page.wait_for_url(f"{dash.url}/balance")
        reload_until(page, "[data-balance]")
        utility = page.locator("tr[data-account='Utility Account'] [data-available]").inner_text()
        assert utility.startswith("KES ") and int(utility.removeprefix("KES ").replace(",", "")) > 0
        assert page.locator("tr[data-account]").count() == 5
        screenshot(page, "balance")

        page.context.add_cookies([{"name": "mb_lang", "value": "sw", "url": dash.server.url}])
        page.reload()
        assert "Salio" in page.inner_text("h1") and "Angalia salio" in page.inner_text("main")
        screenshot(page, "balance-sw")
