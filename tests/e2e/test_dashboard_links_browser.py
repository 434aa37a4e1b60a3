"""The payment links page in a real browser (Debian's chromium) against a real bridge process: a
developer creates a link through the form, sees it in the list with its QR code drawn, reads the
QR code off the screen with a real decoder (the SVG as chromium renders it), downloads the PNG,
opens the link's public page (the hosted payment page for its amount), deactivates it and sees the
public page say so. One bridge for the module; screenshots test-screenshots/links-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.dashboard import Dashboard, browser, dashboard_bridge, screenshot, signed_in_page
from tests.fixtures.qr import decode_png

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PHONE = {"width": 375, "height": 740}


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    with dashboard_bridge(tmp_path_factory.mktemp("dash_links"), "Links Shop") as running:
        yield running


def drawn(page: Any, selector: str) -> dict[str, float]:
    """The image's natural size and its box on screen: a broken or empty image has 0."""
    size: dict[str, float] = page.eval_on_selector(
        selector,
        "img => ({natural: img.naturalWidth, complete: img.complete ? 1 : 0,"
        " width: img.getBoundingClientRect().width, height: img.getBoundingClientRect().height})",
    )
    return size


def test_a_link_is_created_in_the_form_listed_with_its_qr_and_its_page_opens(dash: Dashboard, tmp_path: Path) -> None:
    with browser() as chromium:
        page = signed_in_page(chromium, dash, "developer")
        page.click("nav.side >> text=Payment links")
        page.wait_for_url(f"{dash.url}/links")
        screenshot(page, "links-empty")

        page.fill("#f-title", "Tuition, term 1")
        page.fill("#f-description", "Grade 4, first term")
        page.fill("#f-amount", "1500")
        page.check("input[name=collect][value=reference]")
        page.click("text=Create the link")
        page.wait_for_url(f"{dash.url}/links/plink_*")
        assert "The link was created" in page.inner_text("main")
        url = page.inner_text("dd [data-public-url]").strip()
        link_path = page.url.removeprefix(dash.url).split("?", 1)[0]
        assert url.startswith(f"{dash.server.url}/l/")

        page.wait_for_function("document.querySelector('img[data-qr]').complete")
        qr = drawn(page, "img[data-qr]")
        assert qr["natural"] > 0 and qr["width"] >= 200 and qr["height"] >= 200, qr
        shot = page.locator("img[data-qr]").screenshot()
        assert decode_png(shot) == [url]  # the SVG as chromium draws it reads back to the link
        screenshot(page, "links-detail")

        with page.expect_download() as download_info:
            page.click("[data-download=png]")
        saved = tmp_path / "qr.png"
        download_info.value.save_as(saved)
        assert decode_png(saved.read_bytes()) == [url]

        page.click("text=← Payment links")
        page.wait_for_url(f"{dash.url}/links")
        row = page.locator("tr[data-link]")
        assert row.count() == 1 and "Tuition, term 1" in row.inner_text() and "KES 1,500" in row.inner_text()
        page.wait_for_function("document.querySelector('img[data-qr-thumbnail]').complete")
        thumbnail = drawn(page, "img[data-qr-thumbnail]")
        assert thumbnail["natural"] > 0 and thumbnail["width"] > 50 and thumbnail["height"] > 50, thumbnail
        screenshot(page, "links-list")

        page.click("tr[data-link] [data-public-url]")
        page.wait_for_url(f"{dash.server.url}/l/*")  # the link's page: its form, before any session
        page.wait_for_selector("#amount-shown")
        assert page.inner_text("#amount-shown").strip() == "KES 1,500"
        screenshot(page, "links-public-page")

        page.go_back()
        page.wait_for_url(f"{dash.url}/links")
        page.click("tr[data-link] a >> text=Tuition, term 1")
        page.wait_for_url(f"{dash.url}/links/plink_*")
        page.click("text=Deactivate the link")
        page.wait_for_selector("[data-link-state=inactive]")
        page.goto(url)
        assert "no longer active" in page.inner_text("body")
        screenshot(page, "links-public-page-deactivated")
        outside = [u for u in page.requested if not u.startswith((dash.server.url, "data:"))]
        assert outside == [], outside

        phone = signed_in_page(chromium, dash, "viewer", viewport=PHONE)
        for path in ("/links", link_path):
            phone.goto(f"{dash.url}{path}")
            phone.wait_for_selector("h1")
            width = phone.evaluate("() => document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{path} scrolls sideways on a phone: {width}px"
        assert phone.locator("button:has-text('Deactivate'), button:has-text('Reactivate')").count() == 0
        phone.wait_for_function("document.querySelector('img[data-qr]').complete")
        assert drawn(phone, "img[data-qr]")["natural"] > 0  # a viewer sees the QR code too
        screenshot(phone, "links-detail-phone-viewer")
