"""The payouts page in a real browser (Debian's chromium) against a real bridge process with its
built-in simulator: with approval required, a developer sends a payout through the form and cannot
approve it (no button; the page says another person must); the owner opens it, approves it, and it
is sent and succeeds. A second payout is rejected and never sent. Screenshots test-screenshots/payouts-*.png."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.bridge import ADMIN_TOKEN
from tests.fixtures.dashboard import Dashboard, browser, dashboard_bridge, screenshot, signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    with dashboard_bridge(tmp_path_factory.mktemp("dash_payouts"), "Payouts Shop") as running:
        put = httpx.put(
            f"{running.server.url}/v1/admin/projects/{running.project_id}/payout_settings/test",
            json={"approval_required": True, "max_amount": 5000},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )
        assert put.status_code == 200, put.text
        yield running


def payout_status(dash: Dashboard, payout_id: str) -> str:
    response = httpx.get(
        f"{dash.server.url}/v1/payouts/{payout_id}", headers={"Authorization": f"Bearer {dash.key}"}, timeout=10
    )
    status: str = response.json()["status"]
    return status


def test_a_payout_waits_for_a_second_person_then_is_sent(dash: Dashboard) -> None:
    with browser() as chromium:
        developer = signed_in_page(chromium, dash, "developer")
        developer.click("nav.side >> text=Payouts")
        developer.wait_for_url(f"{dash.url}/payouts")
        assert "Every payout needs approval by a second person." in developer.inner_text("main")
        developer.fill("#f-phone", "0708374149")
        developer.fill("#f-amount", "250")
        developer.fill("#f-remarks", "Refund order 7")
        developer.click("text=Send the payout")
        developer.wait_for_url(f"{dash.url}/payouts/po_*")
        payout_id = developer.url.split("/payouts/", 1)[1].split("?", 1)[0]
        assert "waits for approval" in developer.inner_text("main")
        assert developer.inner_text("[data-payout-status]").strip() == "pending_approval"
        assert developer.locator("[data-approve]").count() == 0  # its creator gets no approve button
        assert "another person must approve it" in developer.inner_text("[data-own]")
        screenshot(developer, "payouts-waiting")
        assert payout_status(dash, payout_id) == "pending_approval"

        owner = signed_in_page(chromium, dash, "owner")
        owner.goto(f"{dash.url}/payouts")
        row = owner.locator(f"tr[data-payout='{payout_id}']")
        assert "pending_approval" in row.inner_text()
        row.locator("[data-decide]").click()
        owner.wait_for_url(f"{dash.url}/payouts/{payout_id}")
        screenshot(owner, "payouts-approval")
        owner.click("[data-approve]")
        owner.wait_for_url(f"{dash.url}/payouts/{payout_id}?done=approved")
        assert owner.inner_text("[data-approved-by]").startswith("person:")
        assert owner.inner_text("[data-created-by]") != owner.inner_text("[data-approved-by]")

        deadline = time.monotonic() + 20
        while payout_status(dash, payout_id) != "succeeded":
            assert time.monotonic() < deadline, payout_status(dash, payout_id)
            time.sleep(0.1)
        owner.reload()
        assert owner.inner_text("[data-payout-status]").strip() == "succeeded"
        assert owner.inner_text("[data-receipt]").strip()
        screenshot(owner, "payouts-succeeded")

        developer.goto(f"{dash.url}/payouts")
        developer.fill("#f-phone", "0708374149")
        developer.fill("#f-amount", "120")
        developer.click("text=Send the payout")
        developer.wait_for_url(f"{dash.url}/payouts/po_*")
        second = developer.url.split("/payouts/", 1)[1].split("?", 1)[0]
        owner.goto(f"{dash.url}/payouts/{second}")
        owner.fill("#f-reason", "wrong amount")
        owner.click("[data-reject]")
        owner.wait_for_url(f"{dash.url}/payouts/{second}?done=rejected")
        assert owner.inner_text("[data-payout-status]").strip() == "rejected"
        assert payout_status(dash, second) == "rejected"

        developer.goto(f"{dash.url}/payouts")
        developer.fill("#f-phone", "0708374149")
        developer.fill("#f-amount", "6000")
        developer.click("text=Send the payout")
        developer.wait_for_selector("[data-problem]")
        assert "limit" in developer.inner_text("[data-problem]")
        screenshot(developer, "payouts-list")
