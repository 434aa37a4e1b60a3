"""The /demo page in a real browser (Playwright driving Debian's chromium) against a real bridge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.servers import ServerProcess, sandbox_bridge
from tests.fixtures.services import BROWSER_ARGS, CHROMIUM, chromium_available, need

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    with sandbox_bridge(tmp_path_factory.mktemp("demo"), "Demo", callback_delay=0.3) as started:
        yield started


@pytest.mark.parametrize(("phone", "status"), [("254708374149", "succeeded"), ("254700001032", "cancelled")])
def test_the_demo_page_pays_and_shows_the_outcome_live(
    bridge: tuple[ServerProcess, str], phone: str, status: str, tmp_path: Path
) -> None:
    need("chromium", chromium_available())
    from playwright.sync_api import sync_playwright

    server, key = bridge
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.goto(f"{server.url}/demo#key={key}")
            page.select_option("#phone", phone)
            page.fill("#amount", "25")
            page.click("#submit")
            page.wait_for_selector(f'#status[data-status="{status}"]', timeout=15_000)
            log = page.inner_text("#log")
            page.screenshot(path=str(tmp_path / f"demo-{status}.png"))
        finally:
            browser.close()
    assert f"payment.{status}" in log  # the live event arrived (SSE), not only a poll
    assert all(url.startswith(server.url) for url in requested), requested  # no CDN, nothing external
