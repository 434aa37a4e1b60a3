"""A browser's own EventSource (Playwright driving Debian's chromium) on an idle project stream that
the bridge ends at its maximum age: events committed while the browser reconnects all arrive
(issue 9 C14: without an `id:` before the first event, EventSource reconnected without
Last-Event-ID and started at the new tail)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.servers import ServerProcess
from tests.fixtures.services import BROWSER_ARGS, CHROMIUM, chromium_available, need
from tests.fixtures.sse_bridge import short_stream_bridge

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONES = ["254708374149", "254700000001", "254700001032"]  # one push each: the per-phone limit is 3 per 10 min
LISTEN = """() => {
  window.created = []; window.opens = 0;
  const source = new EventSource("/v1/events/stream");
  source.onopen = () => { window.opens += 1; };
  source.addEventListener("payment.created", (e) => window.created.push(JSON.parse(e.data).data.object.id));
}"""


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    # Streams end after 1.5 s; the browser is told to come back 0.2 s later.
    with short_stream_bridge(tmp_path_factory.mktemp("sse-browser"), max_age=1.5, retry=0.2) as started:
        yield started


def test_eventsource_gets_the_events_committed_while_it_reconnects(bridge: tuple[ServerProcess, str]) -> None:
    need("chromium", chromium_available())
    from playwright.sync_api import Route, sync_playwright

    server, key = bridge

    def pay(phone: str) -> str:
        body = {"phone": phone, "amount": 10, "account_reference": "RESUME"}
        response = httpx.post(f"{server.url}/v1/payments", json=body, headers=_bearer(key), timeout=10)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    asked: list[str] = []
    made: list[str] = []

    def on_stream(route: Route) -> None:
        asked.append(route.request.url)
        if len(asked) == 2:
            # The first reconnect: the server ended the idle stream, the browser waited `retry:` and
            # asks again. It is held here while two events commit, then let through.
            made.extend(pay(phone) for phone in PHONES[:2])
        route.continue_()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            # Same origin, and a secret key in a header: server-side use of the project stream.
            context = browser.new_context(extra_http_headers=_bearer(key))
            page = context.new_page()
            page.route(f"{server.url}/blank", lambda route: route.fulfill(body="<!doctype html>"))
            page.route(f"{server.url}/v1/events/stream", on_stream)
            page.goto(f"{server.url}/blank")
            page.evaluate(LISTEN)
            page.wait_for_function("window.opens >= 2", timeout=20_000)
            made.append(pay(PHONES[2]))  # and one live, after the reconnect
            page.wait_for_function(f"window.created.includes({made[2]!r})", timeout=10_000)
            created: Any = page.evaluate("window.created")
        finally:
            browser.close()
    # Both events committed during the reconnect, once each, in order. (Playwright does not show the
    # Last-Event-ID header Chromium adds, so the proof is what arrived: without it the stream would
    # have started after them.)
    assert created == made


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
