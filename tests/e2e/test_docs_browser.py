"""/docs in a real browser (Playwright driving Debian's chromium) against a real bridge: the page
renders the OpenAPI 3.1 document, "Authorize" takes a test secret key, and "Try it out" creates a
payment on the built-in simulator. Every request stays on the bridge and the console stays clean
(a Content-Security-Policy refusal is a console error)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.fixtures.servers import ServerProcess, sandbox_bridge
from tests.fixtures.services import BROWSER_ARGS, CHROMIUM, chromium_available, need

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAYMENT = {"phone": "254708374149", "amount": 25, "account_reference": "DOCS1", "description": "From docs"}
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    with sandbox_bridge(tmp_path_factory.mktemp("docs"), "Docs", callback_delay=0.3) as started:
        yield started


def test_the_docs_page_authorizes_and_creates_a_payment(bridge: tuple[ServerProcess, str], tmp_path: Path) -> None:
    need("chromium", chromium_available())
    from playwright.sync_api import sync_playwright

    server, key = bridge
    requested: list[str] = []
    console: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
            page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
            response = page.goto(f"{server.url}/docs")
            policy = response.header_value("content-security-policy") if response is not None else None
            create = page.locator(".opblock", has_text="Start an STK Push payment")
            create.wait_for(timeout=15_000)

            page.click("button.authorize")  # the page's own button, then the secret key's form in the dialog
            secret_key_form = page.locator(".auth-container", has_text="SecretKey")
            secret_key_form.locator("input").fill(key)
            secret_key_form.locator("button.authorize").click()
            page.click("button.btn-done")

            create.locator(".opblock-summary").click()
            create.locator("button.try-out__btn").click()
            create.locator("textarea.body-param__text").fill(json.dumps(PAYMENT))
            create.locator("button.execute").click()
            answer = create.locator(".live-responses-table .response")
            answer.wait_for(timeout=15_000)
            status = answer.locator(".response-col_status").inner_text().strip()
            body = answer.locator(".response-col_description pre").first.inner_text()
            create.screenshot(path=str(tmp_path / "docs-create-payment.png"))
        finally:
            browser.close()
    assert policy is not None and "script-src 'self';" in policy and "unsafe" not in policy, policy
    assert status == "201", body
    assert json.loads(body)["id"].startswith("pay_"), body
    assert all(urlsplit(url).hostname in LOOPBACK for url in requested), requested  # no CDN, no validator badge
    assert any(url.endswith("/openapi.json") for url in requested), requested
    errors = [line for line in console if line.startswith(("error", "pageerror"))]
    assert not errors, errors
