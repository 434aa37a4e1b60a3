"""The settings and people pages in chromium against a real bridge process (`serve`, built-in
simulator): every page rendered and saved as a screenshot (test-screenshots/settings-*.png,
people-*.png), a viewer refused, and a key rotated in the browser that stops after its grace."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mpesa_bridge.simulator.config import SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET
from tests.fixtures.dashboard import Dashboard, browser, dashboard_bridge, screenshot, signed_in_page, wait_until
from tests.fixtures.servers import free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]
_SECRET_KEY = re.compile(r"sk_test_[A-Za-z0-9]{32}")
GRACE = 3  # seconds


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    # Daraja's sandbox at a port where nothing listens: "test connection" must say it is unreachable.
    nowhere = f"http://127.0.0.1:{free_port()}"
    with dashboard_bridge(tmp_path_factory.mktemp("dash_settings"), MPESA_BRIDGE_DARAJA_SANDBOX_URL=nowhere) as running:
        yield running


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser() as launched:
        yield launched


def only_the_bridge(page: Any, dashboard: Dashboard) -> None:
    outside = [url for url in page.requested if not url.startswith(dashboard.server.url)]
    assert outside == []


def test_settings_pages_render_and_the_connection_test_answers(dashboard: Dashboard, chromium: Any) -> None:
    page = signed_in_page(chromium, dashboard, "owner")
    page.click("nav.side >> text=Settings")
    page.wait_for_url(f"{dashboard.url}/settings")
    assert page.locator('tr[data-daraja="test"]').inner_text().count("…") == 1  # the key's last 4, no more
    screenshot(page, "settings-main")
    page.click("#test-test")
    page.wait_for_selector('[data-test-result="test"]')
    assert "Connected" in page.inner_text('[data-test-result="test"]')
    screenshot(page, "settings-test-connection")
    page.click("#test-live")
    page.wait_for_selector('[data-test-result="live"].error')
    assert "no Daraja settings yet" in page.inner_text('[data-test-result="live"]')
    page.goto(f"{dashboard.url}/settings/daraja/test")
    assert page.input_value("#f-consumer_secret") == ""  # a secret is never put back in a form
    screenshot(page, "settings-daraja")
    save_daraja(page, "sandbox", "sandbox-key-ABCD", "sandbox-secret")  # the passkey is kept
    assert "…ABCD" in page.inner_text('tr[data-daraja="test"]')
    page.click("#test-test")
    page.wait_for_selector('[data-test-result="test"].error')
    assert "could not be reached" in page.inner_text('[data-test-result="test"]')
    save_daraja(page, "simulator", SANDBOX_CONSUMER_KEY, SANDBOX_CONSUMER_SECRET)  # back, for the key test
    assert "sandbox-secret" not in page.content()
    page.goto(f"{dashboard.url}/settings")
    page.select_option("#f-confirm_by_query", "on")
    page.click("form[action$='/settings/callbacks'] button[type=submit]")
    page.wait_for_selector(".alert.success")
    assert page.input_value("#f-confirm_by_query") == "on"
    assert "project.callbacks_changed" in page.inner_text("#activity")
    screenshot(page, "settings-activity")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "settings-phone")
    only_the_bridge(page, dashboard)
    page.context.close()


def save_daraja(page: Any, environment: str, key: str, secret: str) -> None:
    page.goto(page.url.split("/dashboard/")[0] + "/dashboard/settings/daraja/test")
    page.select_option("#f-environment", environment)
    page.fill("#f-consumer_key", key)
    page.fill("#f-consumer_secret", secret)
    page.click("form[action$='/settings/daraja/test'] button[type=submit]")
    page.wait_for_selector(".alert.success")


def test_people_pages_invite_and_the_admin_list(dashboard: Dashboard, chromium: Any) -> None:
    page = signed_in_page(chromium, dashboard, "owner")
    page.goto(f"{dashboard.url}/people")
    assert page.locator("#members tbody tr").count() == 3
    screenshot(page, "people-members")
    page.fill("#f-email", "invited@example.com")
    page.select_option("#f-role", "developer")
    page.click("form[action$='/people/invite'] button[type=submit]")
    page.wait_for_selector('tr[data-invite="invited@example.com"]')
    screenshot(page, "people-invited")
    only_the_bridge(page, dashboard)
    page.context.close()
    assert "invited@example.com" in dashboard.log()  # development: the email goes to the log

    admin = signed_in_page(chromium, dashboard, "admin")
    admin.goto(f"{dashboard.url}/admin/users")
    viewer_row = f'tr[data-user="{dashboard.emails["viewer"]}"]'
    assert admin.get_attribute(viewer_row, "data-state") == "active"
    screenshot(admin, "people-admin-users")
    admin.click(f"{viewer_row} button[type=submit]")
    admin.wait_for_selector(f'{viewer_row}[data-state="disabled"]')
    admin.click(f"{viewer_row} button[type=submit]")
    admin.wait_for_selector(f'{viewer_row}[data-state="active"]')
    only_the_bridge(admin, dashboard)
    admin.context.close()


def test_a_viewer_cannot_reach_the_settings(dashboard: Dashboard, chromium: Any) -> None:
    page = signed_in_page(chromium, dashboard, "viewer")
    assert page.locator("nav.side >> text=Settings").count() == 0
    response = page.goto(f"{dashboard.url}/settings")
    assert response is not None and response.status == 403
    assert page.inner_text("h1") == "Not allowed"
    screenshot(page, "settings-viewer-refused")
    page.goto(f"{dashboard.url}/people")
    assert page.locator("#f-email").count() == 0  # sees the people, invites no one
    screenshot(page, "people-viewer")
    only_the_bridge(page, dashboard)
    page.context.close()


def test_rotate_a_key_in_the_browser_and_the_old_one_stops_after_the_grace(
    dashboard: Dashboard, chromium: Any, tmp_path: Path
) -> None:
    page = signed_in_page(chromium, dashboard, "developer")
    page.goto(f"{dashboard.url}/settings/keys")
    screenshot(page, "settings-keys")
    page.select_option("#f-rotate-mode", "test")
    page.fill("#f-grace_seconds", str(GRACE))
    started = time.monotonic()
    page.click("form[action$='/keys/rotate'] button[type=submit]")
    page.wait_for_selector("#new-key code")
    new_key = page.inner_text("#new-key code")
    assert _SECRET_KEY.fullmatch(new_key)
    screenshot(page, "settings-key-revealed")
    old = {"Authorization": f"Bearer {dashboard.key}"}
    url = f"{dashboard.server.url}/v1/payments"
    if time.monotonic() - started < GRACE - 1:  # still well inside the grace period
        assert httpx.get(url, headers=old, timeout=10).status_code == 200

    page.goto(f"{dashboard.url}/settings/keys")
    assert new_key not in page.content()  # revealed once, never again
    assert page.locator('table[data-keys="test"] tr[data-state="in grace"], tr[data-state="expired"]').count() >= 1

    wait_until(lambda: httpx.get(url, headers=old, timeout=10).status_code == 401, timeout=GRACE + 15)
    body = {"phone": "0708374149", "amount": 10, "account_reference": "ROTATED"}
    assert httpx.post(url, json=body, headers=old, timeout=10).status_code == 401
    assert httpx.post(url, json=body, headers={"Authorization": f"Bearer {new_key}"}, timeout=10).status_code == 201
    page.reload()
    page.wait_for_selector('table[data-keys="test"] tr[data-state="expired"]')
    screenshot(page, "settings-keys-after-grace")
    only_the_bridge(page, dashboard)
    page.context.close()
