"""The webhook and attention pages in a real browser (Debian's chromium) against a real bridge
process, with a real merchant receiver on loopback: a delivery fails, the receiver is fixed, the
developer clicks "Resend" and the new attempt appears with the receiver's 200. Screenshots of every
page under test-screenshots/ (webhooks-*.png, attention-*.png); no page asks for anything outside
the bridge."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.dashboard import Dashboard, browser, dashboard_bridge, screenshot, signed_in_page, wait_until
from tests.fixtures.receiver import FAIL, OK, Received, Receiver, Reply

pytestmark = [pytest.mark.browser, pytest.mark.slow]


class ReceiverThread:
    """A `Receiver` on its own event loop in a thread (the browser test is synchronous). It fails
    every request until `healthy` is set."""

    def __init__(self) -> None:
        self.healthy = False
        self.receiver = Receiver()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def _answer(self, _request: Received) -> Reply:
        return OK if self.healthy else FAIL

    def __enter__(self) -> ReceiverThread:
        self._thread.start()
        started: Future[Any] = asyncio.run_coroutine_threadsafe(self.receiver.__aenter__(), self._loop)
        started.result(10)
        self.receiver.rule("/hooks", self._answer)
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self.receiver.__aexit__(None, None, None), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def url(self) -> str:
        return self.receiver.url

    def requests(self) -> list[Received]:
        return list(self.receiver.requests)


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    with dashboard_bridge(tmp_path_factory.mktemp("dash_hooks"), "Hooks Shop") as running:
        yield running


def only_the_bridge(page: Any, dash: Dashboard) -> None:
    outside = [url for url in page.requested if not url.startswith(dash.server.url)]
    assert outside == [], outside


def test_a_failed_delivery_is_resent_from_the_browser_and_its_200_appears(dash: Dashboard) -> None:
    with ReceiverThread() as receiver, browser() as chromium:
        page = signed_in_page(chromium, dash, "developer")
        page.goto(f"{dash.url}/webhooks")
        screenshot(page, "webhooks-empty")
        page.fill("#f-url", f"{receiver.url}/hooks")
        page.fill("#f-description", "orders service")
        page.click("text=Add the endpoint")
        page.wait_for_selector("[data-secret]")
        assert page.inner_text("[data-secret]").strip().startswith("whsec_")
        screenshot(page, "webhooks-secret")

        payment = dash.pay()
        dash.wait_for_status(payment["id"], "succeeded")
        # The first delivery fails, and fails again at its retry 5 s later; the next retry is ~30 s
        # after that — so a 200 within that time comes from the resend.
        wait_until(lambda: len(receiver.requests()) >= 2, 20, "two failed attempts")
        second_failure = time.monotonic()
        assert [r.status for r in receiver.requests()] == [500, 500]
        failing_id = receiver.requests()[0].webhook_id

        page.goto(f"{dash.url}/webhooks")
        screenshot(page, "webhooks-list")
        page.click(f"text={receiver.url}/hooks")
        page.wait_for_selector("[data-delivery]")
        screenshot(page, "webhooks-endpoint")
        page.goto(f"{dash.url}/webhooks/deliveries?state=failing")
        row = page.locator('[data-delivery][data-delivery-status="pending"]').filter(
            has=page.locator('[data-attempt-code="500"]')
        )
        assert row.count() == 1
        delivery_id = row.get_attribute("data-delivery")
        assert row.locator("[data-attempt]").count() == 2
        screenshot(page, "webhooks-deliveries-failing")

        receiver.healthy = True  # the merchant fixed their server
        page.click(f'[data-resend="{delivery_id}"]')
        page.wait_for_selector(".alert.success")

        def shows_the_200() -> bool:
            page.goto(f"{dash.url}/webhooks/deliveries")
            return page.locator(f'[data-delivery="{delivery_id}"] [data-attempt-code="200"]').count() == 1

        wait_until(shows_the_200, 20, "the new attempt with the receiver's 200")
        assert time.monotonic() - second_failure < 25  # the resend's attempt, not the scheduled one
        ours = [r for r in receiver.requests() if r.webhook_id == failing_id]
        assert [r.status for r in ours] == [500, 500, 200]
        assert page.locator(f'[data-delivery="{delivery_id}"] [data-attempt]').count() == 3
        screenshot(page, "webhooks-deliveries")
        page.goto(f"{dash.url}/webhooks/deliveries?state=undelivered")
        screenshot(page, "webhooks-deliveries-undelivered")
        only_the_bridge(page, dash)

        phone = signed_in_page(chromium, dash, "developer", viewport={"width": 390, "height": 844})
        phone.goto(f"{dash.url}/webhooks/deliveries")
        phone.wait_for_selector(f'[data-delivery="{delivery_id}"] [data-attempt-code="200"]')
        # The log's rows stack: nothing wider than the page's column, and the page does not scroll sideways.
        wide = phone.evaluate(
            "(() => { const edge = document.querySelector('main').getBoundingClientRect().right + 1;"
            " return [...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > edge)"
            ".map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)); })()"
        )
        assert not wide, f"{len(wide)} elements of the delivery log stick out of the page's column: {wide[:6]}"
        assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
        screenshot(phone, "webhooks-deliveries-phone")
        only_the_bridge(phone, dash)

        viewer = signed_in_page(chromium, dash, "viewer")
        viewer.goto(f"{dash.url}/webhooks")
        assert viewer.locator("h1").inner_text() == "Not allowed"
        assert viewer.locator('nav.side a[href="/dashboard/webhooks"]').count() == 0
        only_the_bridge(viewer, dash)


def test_the_attention_queue_shows_a_contradicted_payment_and_a_developer_marks_it_reviewed(
    dash: Dashboard, tmp_path: Path
) -> None:
    with browser() as chromium:
        viewer = signed_in_page(chromium, dash, "viewer")
        viewer.goto(f"{dash.url}/attention")
        screenshot(viewer, "attention-empty")
        # Success, then a contradicting "cancelled" callback for the same ids: the payment is flagged.
        payment = dash.pay(phone="254700000903")

        def flagged() -> bool:
            return bool(dash.payment(payment["id"]).get("needs_attention"))

        wait_until(flagged, 20, "the payment flagged needs_attention")
        viewer.goto(f"{dash.url}/attention")
        viewer.wait_for_selector(f'[data-attention-payment="{payment["id"]}"]')
        assert viewer.locator("[data-review]").count() == 0  # a viewer reads only
        screenshot(viewer, "attention-viewer")

        page = signed_in_page(chromium, dash, "developer")
        page.goto(f"{dash.url}/attention")
        card = page.locator(f'[data-attention-payment="{payment["id"]}"]')
        card.locator("summary").first.click()
        assert "ResultCode" in card.inner_text()
        screenshot(page, "attention-queue")
        card.locator("input[name=note]").fill("Customer confirmed the cancellation by phone")
        card.locator("[data-review]").click()
        page.wait_for_selector(".alert.success")
        assert page.locator(f'[data-attention-payment="{payment["id"]}"]').count() == 0
        screenshot(page, "attention-reviewed")
        assert dash.payment(payment["id"])["needs_attention"] is False
        only_the_bridge(page, dash)
        only_the_bridge(viewer, dash)
