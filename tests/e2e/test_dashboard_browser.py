"""The dashboard in a real browser (Playwright on Debian's chromium) against a real bridge: sign in,
watch a simulator payment appear live on the overview and turn succeeded, the account page, the
Swahili labels, a phone-sized viewport — every page screenshotted, nothing fetched from elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.dashboard import Dashboard, browser, dashboard_bridge, screenshot, signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    with dashboard_bridge(tmp_path_factory.mktemp("dash_browser"), callback_delay=1.0) as started:
        yield started


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser() as launched:
        yield launched


def only_the_bridge(page: Any, dashboard: Dashboard) -> None:
    outside = [url for url in page.requested if not url.startswith(dashboard.server.url)]
    assert not outside, outside


def test_the_sign_in_page_renders_and_refuses_a_wrong_password(dashboard: Dashboard, chromium: Any) -> None:
    context = chromium.new_context()
    page = context.new_page()
    page.goto(f"{dashboard.url}/")
    assert page.url.startswith(f"{dashboard.url}/signin?next=")
    screenshot(page, "signin")
    page.fill("#f-email", dashboard.emails["owner"])
    page.fill("#f-password", "not the password")
    page.click("button[type=submit]")
    assert page.locator(".alert.error").inner_text() == "Wrong email or password."
    assert page.locator("#f-email").input_value() == dashboard.emails["owner"]  # kept for the retry
    screenshot(page, "signin-error")
    context.close()


def test_a_payment_appears_live_and_turns_succeeded_without_a_reload(dashboard: Dashboard, chromium: Any) -> None:
    page = signed_in_page(chromium, dashboard, "owner")
    page.wait_for_selector(".live-dot.on")  # the EventSource is open
    marker = page.evaluate("() => (window.__marker = Math.random())")
    made = dashboard.pay(amount=42, reference="LIVE-1")
    row = page.locator(f"tr[data-payment='{made['id']}']")
    row.wait_for(timeout=15_000)
    assert "KES 42" in row.inner_text() and "LIVE-1" in row.inner_text()
    assert "0708****" not in row.inner_text() and "2547****4149" in row.inner_text()  # masked
    page.wait_for_selector(f"tr[data-payment='{made['id']}'] .status-succeeded", timeout=20_000)
    today = ".figure[data-window='1'] .big"
    page.wait_for_function(f"() => document.querySelector(\"{today}\").textContent !== 'KES 0'", timeout=15_000)
    assert page.locator(today).inner_text() == "KES 42"  # the overview's figures follow too
    assert page.evaluate("() => window.__marker") == marker  # the same document: no reload
    screenshot(page, "overview-live")
    only_the_bridge(page, dashboard)
    page.context.close()


def test_the_account_page_and_swahili_labels(dashboard: Dashboard, chromium: Any) -> None:
    page = signed_in_page(chromium, dashboard, "developer")
    page.click("summary")
    page.click("text=Your account")
    page.wait_for_selector("h1:has-text('Your account')")
    screenshot(page, "account")
    page.click("footer a[lang=sw]")
    page.wait_for_selector("h1:has-text('Akaunti yako')")
    assert page.locator("html").get_attribute("lang") == "sw"
    screenshot(page, "account-sw")
    page.click("footer a[lang=en]")
    page.wait_for_selector("h1:has-text('Your account')")
    page.context.close()


def test_a_phone_sized_viewport_keeps_everything_reachable(dashboard: Dashboard, chromium: Any) -> None:
    page = signed_in_page(chromium, dashboard, "viewer", viewport=PHONE)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    wide = page.evaluate(
        "w => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > w + 1)"
        ".map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).slice(0, 8)",
        PHONE["width"],
    )
    assert width <= PHONE["width"], f"the overview scrolls sideways: {width}px, because of {wide}"
    nav = page.locator("nav.side")
    assert nav.is_visible() and nav.bounding_box()["width"] <= PHONE["width"]
    page.keyboard.press("Tab")  # the first stop is the skip link, visible when focused
    assert page.evaluate("() => document.activeElement.className") == "skip"
    screenshot(page, "overview-phone")
    page.context.close()


def test_a_project_is_created_in_the_browser_and_its_keys_shown_once(dashboard: Dashboard, chromium: Any) -> None:
    page = signed_in_page(chromium, dashboard, "owner")
    page.goto(f"{dashboard.url}/projects/new")
    screenshot(page, "project-new")
    page.fill("#f-name", "Browser shop")
    page.click("main button[type=submit]")
    page.wait_for_selector("h1:has-text('Project created')")
    secrets = page.locator("dd code").all_inner_texts()
    assert any(s.startswith("sk_test_") for s in secrets) and any(s.startswith("sk_live_") for s in secrets)
    screenshot(page, "project-created")
    page.goto(f"{dashboard.url}/")
    assert page.locator("#switch-project option:checked").inner_text() == "Browser shop"
    page.select_option("#switch-project", label="Shop")  # switches on change (no button with scripts)
    page.wait_for_function("() => document.querySelector('#switch-project option:checked').textContent === 'Shop'")
    page.context.close()


def test_screenshots_are_kept_out_of_git() -> None:
    ignored = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().split()
    assert "test-screenshots/" in ignored
