"""A payment link's public page in a real browser (Playwright driving Debian's chromium) against a
real bridge: the link's URL opens a checkout session and lands on its hosted page; a deactivated
link shows its polite 410 page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.servers import ServerProcess, sandbox_bridge
from tests.fixtures.services import BROWSER_ARGS, CHROMIUM, chromium_available, need

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    with sandbox_bridge(tmp_path_factory.mktemp("links"), "Links", callback_delay=0.3) as started:
        yield started


def test_a_link_opens_a_session_and_a_deactivated_link_says_so(
    bridge: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    need("chromium", chromium_available())
    from playwright.sync_api import sync_playwright

    server, key = bridge
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as api:
        created = api.post("/v1/payment_links", json={"title": "Harambee <2026>", "amount": 200})
        assert created.status_code == 201, created.text
        link = created.json()
        assert link["url"].startswith(server.url)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
            try:
                page = browser.new_page()
                first = page.goto(link["url"])
                assert first is not None and first.status == 200  # the link's page: its form, no session yet
                assert page.inner_text("#amount-shown") == "KES 200"
                assert api.get("/v1/checkout_sessions").json()["data"] == []
                page.fill("#phone", "0700 000 902")  # the late-callback customer: the prompt stays open
                page.click("#pay")
                page.wait_for_url(f"{server.url}/pay/cs_*")
                page.wait_for_selector("h1")
                landed = page.url.split("?", 1)[0]
                assert api.patch(f"/v1/payment_links/{link['id']}", json={"active": False}).status_code == 200
                gone = page.goto(link["url"])
                assert gone is not None and gone.status == 410
                heading, message = page.inner_text("h1"), page.inner_text("p")
                page.screenshot(path=str(tmp_path / "link-inactive.png"))
            finally:
                browser.close()
        sessions = api.get("/v1/checkout_sessions").json()["data"]
    assert [s["url"] for s in sessions] == [landed]  # one session, opened by the form only
    assert landed.startswith(f"{server.url}/pay/cs_") and sessions[0]["payment_link_id"] == link["id"]
    assert sessions[0]["amount"] == 200
    assert heading == "Harambee <2026>"  # escaped in the HTML, shown as typed
    assert "no longer active" in message and "Sorry" in message
