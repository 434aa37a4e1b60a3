"""The overview's figures and the analytics page, in-process on SQLite and PostgreSQL: what the
simulator settled is what the pages count, in the project's time zone, one project at a time."""

from __future__ import annotations

import re

from tests.fixtures.bridge import InProcessBridge
from tests.fixtures.dashboard import add_account, browser_client, sign_in_async


async def paid(bridge: InProcessBridge) -> tuple[str, str]:
    """A project with one succeeded (KES 150) and one failed payment, and its owner's email; another
    project with a payment that must never be counted."""
    tenant = await bridge.create_project("Shop")
    await add_account(bridge.runtime, "owner@example.com", project_id=tenant.project_id)
    ok = await bridge.pay(tenant, amount=150)
    failed = await bridge.pay(tenant, amount=70, phone="0700000001")  # insufficient funds
    await bridge.wait_status(tenant, ok["id"], "succeeded")
    await bridge.wait_status(tenant, failed["id"], "failed")
    other = await bridge.create_project("Other")
    done = await bridge.pay(other, amount=9999)
    await bridge.wait_status(other, done["id"], "succeeded")
    return tenant.project_id, "owner@example.com"


async def test_the_overview_counts_the_projects_payments_only(bridge: InProcessBridge) -> None:
    _, email = await paid(bridge)
    async with browser_client(bridge.app) as client:
        await sign_in_async(client, email)
        page = (await client.get("/dashboard/")).text
        fragment = await client.get("/dashboard/figures")
    today = page.split('data-window="1"', 1)[1].split("</div>", 1)[0]
    assert "KES 150" in today and "1 succeeded of 2" in today and "50.0 %" in today
    assert "9,999" not in page
    assert fragment.status_code == 200 and "KES 150" in fragment.text


async def test_the_analytics_page_draws_each_chart_with_its_table(bridge: InProcessBridge) -> None:
    _, email = await paid(bridge)
    async with browser_client(bridge.app) as client:
        await sign_in_async(client, email)
        answer = await client.get("/dashboard/analytics")
    assert answer.status_code == 200
    html = answer.text
    for chart in ("revenue", "volume", "rate", "reasons", "payers", "settle"):
        assert re.search(rf'<svg[^>]*id="{chart}"', html), chart
    assert "In this range: <strong>KES 150</strong>" in html
    assert html.count("insufficient_funds") >= 2  # the bar and its table row
    assert "2547****4149" in html and "254708374149" not in html  # top customers, masked
    assert "9,999" not in html


async def test_the_analytics_filters_refuse_a_bad_date_beside_the_field(bridge: InProcessBridge) -> None:
    _, email = await paid(bridge)
    async with browser_client(bridge.app) as client:
        await sign_in_async(client, email)
        bad = await client.get("/dashboard/analytics?from=31-12-2026")
        backwards = await client.get("/dashboard/analytics?from=2026-12-10&to=2026-12-01")
        hours = await client.get("/dashboard/analytics?bucket=hour&mode=live")
    assert bad.status_code == 400 and 'id="a-from-error"' in bad.text and "2026-12-31" in bad.text
    assert backwards.status_code == 400 and 'aria-invalid="true"' in backwards.text
    assert hours.status_code == 200 and '<option value="live" selected>' in hours.text
