"""The dashboard in a real browser (Playwright on Debian's chromium) against a real bridge: sign in,
watch a simulator payment appear live on the overview and turn succeeded, the account page, the
Swahili labels, a phone-sized viewport — every page screenshotted, nothing fetched from elsewhere."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from tests.fixtures.dashboard import Dashboard, browser, dashboard_bridge, screenshot, signed_in_page, wait_until

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


def _settled(dashboard: Dashboard, *made: dict[str, Any]) -> None:
    for payment in made:
        deadline_status = "failed" if payment["phone"].endswith("000001") else "succeeded"
        dashboard.wait_for_status(str(payment["id"]), deadline_status)


def test_the_payments_list_filters_and_both_exports_hold_exactly_its_rows(
    dashboard: Dashboard, chromium: Any, tmp_path: Path
) -> None:
    made = [
        dashboard.pay("0708374149", 100, "EXP-1"),
        dashboard.pay("0712345678", 250, "EXP-2"),
        dashboard.pay("0700000001", 75, "EXP-3"),
    ]
    _settled(dashboard, *made)
    page = signed_in_page(chromium, dashboard, "developer")
    page.goto(f"{dashboard.url}/payments")
    screenshot(page, "payments")
    page.fill("#p-q", "EXP-")
    page.select_option("#p-status", "succeeded")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/dashboard/payments?**")
    shown = page.locator("tbody tr[data-payment]").evaluate_all("rows => rows.map(r => r.dataset.payment)")
    assert shown == [made[1]["id"], made[0]["id"]]
    screenshot(page, "payments-filtered")
    with page.expect_download() as csv_download:
        page.click("text=CSV")
    csv_path = tmp_path / "list.csv"
    csv_download.value.save_as(csv_path)
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text(encoding="utf-8-sig"))))
    assert [r["id"] for r in rows] == shown and [r["amount"] for r in rows] == ["250", "100"]
    with page.expect_download() as xlsx_download:
        page.click("text=Excel (XLSX)")
    xlsx_path = tmp_path / "list.xlsx"
    xlsx_download.value.save_as(xlsx_path)
    assert xlsx_ids(xlsx_path) == shown
    only_the_bridge(page, dashboard)
    page.context.close()


def xlsx_ids(path: Path) -> list[str]:
    """The first column of the workbook's first sheet, header left out (shared or inline strings)."""
    ns = {"s": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    with zipfile.ZipFile(path) as book:
        sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))
        names = book.namelist()
        strings = (
            [si.findtext(".//s:t", "", ns) for si in ElementTree.fromstring(book.read("xl/sharedStrings.xml"))]
            if "xl/sharedStrings.xml" in names
            else []
        )
    ids = []
    for row in sheet.findall(".//s:sheetData/s:row", ns)[1:]:
        cell = row.find("s:c", ns)
        assert cell is not None
        inline = cell.findtext(".//s:t", None, ns)
        ids.append(inline if inline is not None else strings[int(cell.findtext("s:v", "", ns))])
    return ids


def test_a_new_payment_appears_in_the_list_and_its_page_tells_its_story(dashboard: Dashboard, chromium: Any) -> None:
    page = signed_in_page(chromium, dashboard, "owner")
    page.goto(f"{dashboard.url}/payments")
    page.wait_for_selector(".live-dot.on")
    made = dashboard.pay("0722000111", 61, "STORY-1")
    page.wait_for_selector(f"tr[data-payment='{made['id']}'] .status-succeeded", timeout=20_000)
    assert page.locator(f"tr[data-payment='{made['id']}'] [data-receipt]").inner_text() != "—"
    page.click(f"tr[data-payment='{made['id']}'] a")
    page.wait_for_selector("h1:has-text('KES 61')")
    for step in ("Created", "Sent to Daraja", "callback.stk", "payment.succeeded"):
        assert page.locator(".timeline", has_text=step).count() == 1, step
    page.click("text=Raw callback")
    assert "CallbackMetadata" in page.locator("pre").first.inner_text()
    screenshot(page, "payment-detail")
    page.click("text=Ask Daraja now")
    page.wait_for_selector("text=Daraja was asked")
    screenshot(page, "payment-asked")
    page.context.close()


def test_the_analytics_page_draws_its_charts(dashboard: Dashboard, chromium: Any) -> None:
    dashboard.wait_for_status(str(dashboard.pay("0733000222", 99, "CHART")["id"]), "succeeded")
    page = signed_in_page(chromium, dashboard, "viewer")
    page.goto(f"{dashboard.url}/analytics")
    for chart in ("revenue", "volume", "rate", "reasons", "payers", "settle"):
        box = page.locator(f"svg#{chart}").bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 50, chart
    page.locator("details.table-view summary").first.click()
    assert page.locator("table.mb-table").first.is_visible()
    screenshot(page, "analytics")
    page.select_option("#a-bucket", "hour")
    page.click("form.filters button[type=submit]")
    page.wait_for_selector("svg#revenue")
    screenshot(page, "analytics-hourly")
    page.context.close()


def test_the_signed_out_pages_render(dashboard: Dashboard, chromium: Any) -> None:
    context = chromium.new_context()
    page = context.new_page()
    page.goto(f"{dashboard.url}/forgot")
    screenshot(page, "forgot")
    page.fill("#f-email", dashboard.emails["viewer"])
    page.click("main button[type=submit]")
    page.wait_for_selector("text=If an account exists")
    screenshot(page, "forgot-sent")
    link = wait_for_link(dashboard, "/dashboard/reset/")
    page.goto(link)
    screenshot(page, "reset")
    owner = dashboard.client("owner")  # signed in already (so not a context manager): closed below
    try:
        invited = owner.post_form(
            "/dashboard/people/invite",
            {"email": "newcomer@example.com", "role": "viewer"},
            token_from="/dashboard/people",
        )
    finally:
        owner.close()  # its socket, left to the garbage collector, fails a later test as a ResourceWarning
    assert invited.status_code in (200, 303), invited.text
    page.goto(wait_for_link(dashboard, "/dashboard/invite/"))
    page.wait_for_selector("text=newcomer@example.com")
    screenshot(page, "invite")
    page.goto(f"{dashboard.url}/invite/not-a-real-token")
    assert page.locator("h1").inner_text() in ("Bad request", "Not found")
    screenshot(page, "invite-invalid")
    page.goto(f"{dashboard.url}/signup")
    page.wait_for_selector("text=Sign-up is closed")
    screenshot(page, "signup-closed")
    page.goto(f"{dashboard.url}/no-such-page")
    page.wait_for_selector("text=There is no such page.")
    screenshot(page, "not-found")
    context.close()


def wait_for_link(dashboard: Dashboard, path: str) -> str:
    """The newest link to `path` the development mailer wrote to the bridge's log."""
    found: list[str] = []

    def logged() -> bool:
        found[:] = re.findall(rf"http://127\.0\.0\.1:\d+{re.escape(path)}[A-Za-z0-9_\-]+", dashboard.log())
        return bool(found)

    wait_until(logged, 15, f"a {path} link in the log")
    return found[-1]
