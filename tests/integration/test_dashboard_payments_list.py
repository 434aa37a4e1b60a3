"""The payments list and its export over HTTP, in-process on SQLite and PostgreSQL: filters, keyset
pages, errors beside the field, the export of exactly the filtered rows (CSV and XLSX read back),
phones masked for viewers, and another project's payments never listed or exported."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest

from mpesa_bridge.config import Settings
from tests.fixtures.bridge import InProcessBridge, make_settings
from tests.fixtures.dashboard import add_account, browser_client, sign_in_async


@pytest.fixture
def bridge_settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(db_url, tmp_path, rate_limit_create="10000/second")


ROW = re.compile(r'<tr data-payment="(pay_[0-9a-z]+)"')


async def shop(bridge: InProcessBridge) -> tuple[str, list[dict[str, object]]]:
    tenant = await bridge.create_project("Shop")
    await add_account(bridge.runtime, "dev@example.com", project_id=tenant.project_id, role="developer")
    await add_account(bridge.runtime, "view@example.com", project_id=tenant.project_id, role="viewer")
    made = []
    for amount, phone, ref in [
        (100, "0708374149", "INV-1"),
        (250, "0712345678", "INV-2"),
        (75, "0700000001", "ORDER-9"),
    ]:
        made.append(await bridge.pay(tenant, amount=amount, phone=phone, account_reference=ref))
    for p in made:
        await bridge.wait_status(tenant, str(p["id"]), "succeeded", "failed")
    other = await bridge.create_project("Other")
    await bridge.pay(other, amount=100, account_reference="INV-1")
    return tenant.project_id, made


async def test_filters_and_sorting_pick_the_rows(bridge: InProcessBridge) -> None:
    _, made = await shop(bridge)
    ids = [str(p["id"]) for p in made]
    async with browser_client(bridge.app) as client:
        await sign_in_async(client, "dev@example.com")
        everything = ROW.findall((await client.get("/dashboard/payments")).text)
        failed = ROW.findall((await client.get("/dashboard/payments?status=failed")).text)
        by_ref = ROW.findall((await client.get("/dashboard/payments?q=INV")).text)
        by_amount = ROW.findall((await client.get("/dashboard/payments?sort=-amount&min=80")).text)
        by_phone = ROW.findall((await client.get("/dashboard/payments?phone=0700000001")).text)
    assert everything == ids[::-1]  # newest first, the other project's payment absent
    assert failed == [ids[2]] and by_phone == [ids[2]]
    assert by_ref == [ids[1], ids[0]]
    assert by_amount == [ids[1], ids[0]]


async def test_pages_follow_the_cursor_without_skipping_or_repeating(bridge: InProcessBridge) -> None:
    tenant = await bridge.create_project("Shop")
    await add_account(bridge.runtime, "dev@example.com", project_id=tenant.project_id, role="developer")
    for i in range(55):
        await bridge.pay(tenant, amount=10 + i, account_reference=f"R{i}")
    async with browser_client(bridge.app) as client:
        await sign_in_async(client, "dev@example.com")
        first = (await client.get("/dashboard/payments")).text
        next_url = re.search(r'href="([^"]+)" rel="next"', first)
        assert next_url
        second = (await client.get(next_url.group(1).replace("&amp;", "&"))).text
    assert len(ROW.findall(first)) == 50 and len(ROW.findall(second)) == 5
    assert not set(ROW.findall(first)) & set(ROW.findall(second))
    assert 'rel="next"' not in second and "First page" in second


async def test_a_bad_filter_is_said_beside_its_field(bridge: InProcessBridge) -> None:
    await shop(bridge)
    async with browser_client(bridge.app) as client:
        await sign_in_async(client, "dev@example.com")
        amount = await client.get("/dashboard/payments?min=ten")
        phone = await client.get("/dashboard/payments?phone=12")
        dates = await client.get("/dashboard/payments?from=2026-12-10&to=2026-12-01")
        cursor = await client.get("/dashboard/payments?cursor=forged")
    assert amount.status_code == 400 and 'id="p-min-error"' in amount.text
    assert phone.status_code == 400 and 'id="p-phone-error"' in phone.text
    assert dates.status_code == 400 and 'id="p-to-error"' in dates.text
    assert cursor.status_code == 400


async def test_the_csv_export_is_exactly_the_filtered_list(bridge: InProcessBridge) -> None:
    _, made = await shop(bridge)
    async with browser_client(bridge.app) as dev, browser_client(bridge.app) as view:
        await sign_in_async(dev, "dev@example.com")
        await sign_in_async(view, "view@example.com")
        full = await dev.get("/dashboard/payments/export.csv?q=INV")
        masked = await view.get("/dashboard/payments/export.csv?q=INV")
    assert full.status_code == 200 and full.headers["content-type"].startswith("text/csv")
    assert "attachment" in full.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(full.content.decode("utf-8-sig"))))
    assert [r["id"] for r in rows] == [str(made[1]["id"]), str(made[0]["id"])]
    assert {r["amount"] for r in rows} == {"250", "100"} and rows[1]["phone"] == "254708374149"
    viewer_rows = list(csv.DictReader(io.StringIO(masked.content.decode("utf-8-sig"))))
    assert {r["phone"] for r in viewer_rows} == {"2547****4149", "2547****5678"}


async def test_the_xlsx_export_opens_with_the_same_rows(bridge: InProcessBridge) -> None:
    _, made = await shop(bridge)
    async with browser_client(bridge.app) as client:
        await sign_in_async(client, "dev@example.com")
        answer = await client.get("/dashboard/payments/export.xlsx?status=succeeded")
    assert answer.status_code == 200 and "spreadsheetml" in answer.headers["content-type"]
    with zipfile.ZipFile(io.BytesIO(answer.content)) as book:
        sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))
        shared = book.read("xl/sharedStrings.xml") if "xl/sharedStrings.xml" in book.namelist() else b""
    ns = {"s": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    rows = sheet.findall(".//s:sheetData/s:row", ns)
    assert len(rows) == 1 + 2  # the header and the two succeeded payments
    text = ElementTree.tostring(sheet).decode() + shared.decode(errors="replace")
    for payment in made[:2]:
        assert str(payment["id"]) in text
    assert str(made[2]["id"]) not in text


async def test_another_projects_payments_are_never_exported(bridge: InProcessBridge) -> None:
    await shop(bridge)
    async with browser_client(bridge.app) as client:
        await sign_in_async(client, "view@example.com")
        answer = await client.get("/dashboard/payments/export.csv")
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert len(rows) == 3 and {r["account_reference"] for r in rows} == {"INV-1", "INV-2", "ORDER-9"}
