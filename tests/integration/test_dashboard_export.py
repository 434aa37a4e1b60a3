"""The payments export (dashboard/export.py) over real rows read by `SqlPaymentSearch.iter_all`, on
SQLite and PostgreSQL: the CSV read back with the csv module, the XLSX unzipped and its sheet XML
read; formula injection neutralised; the temporary file gone after a finished, abandoned or
cancelled export."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import stat
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from mpesa_bridge.core.clock import NAIROBI
from mpesa_bridge.core.payments.entity import Payment
from mpesa_bridge.core.payments.search import PaymentSearch
from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.dashboard.export import COLUMNS, csv_chunks, xlsx_chunks
from mpesa_bridge.storage.db import Database
from mpesa_bridge.storage.payment_search import SqlPaymentSearch
from tests.integration.test_dashboard_payment_search import OTHER, SHOP, make_payment, seed

T0 = datetime(2026, 11, 20, 6, 0, 0, 123000, tzinfo=UTC)
NS = {"x": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
EVIL = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]


def payments() -> list[Payment]:
    rows = [
        make_payment(
            n,
            at=T0 + timedelta(minutes=n),
            account_reference=EVIL[n] if n < len(EVIL) else f"INV{n}",
            description="Café ☕" if n == 7 else "Goods",
            result_code="0" if n % 2 else None,
            result_desc="Processed" if n % 2 else None,
            completed_at=T0 + timedelta(minutes=n, seconds=9) if n % 2 else None,
        )
        for n in range(12)
    ]
    return rows + [make_payment(n, project_id=OTHER) for n in range(3)]


async def export(db: Database, fmt: str, tmp_dir: Path, **options: Any) -> bytes:
    async with db.read() as uow:
        rows = SqlPaymentSearch(uow.connection).iter_all(PaymentSearch(project_id=SHOP, mode="test", sort="created"), 5)
        chunks = csv_chunks(rows, **options) if fmt == "csv" else xlsx_chunks(rows, tmp_dir=str(tmp_dir), **options)
        return b"".join([chunk async for chunk in chunks])


def mine(all_payments: list[Payment]) -> list[Payment]:
    return sorted((p for p in all_payments if p.project_id == SHOP), key=lambda p: p.id)


async def test_csv_has_a_bom_a_header_and_one_line_per_payment(database: Database, tmp_path: Path) -> None:
    seeded = payments()
    await seed(database, seeded)

    data = await export(database, "csv", tmp_path)

    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == list(COLUMNS)
    want = mine(seeded)
    assert [r[0] for r in rows[1:]] == [p.id for p in want]
    first, seventh = rows[1 + 1], rows[1 + 7]
    assert first[1] == want[1].created_at.astimezone(NAIROBI).isoformat()
    assert first[1].endswith("+03:00")
    assert first[2:5] == [str(want[1].status), "test", str(want[1].amount)]
    assert first[5] == want[1].phone[:4] + "****" + want[1].phone[-4:]  # masked by default
    assert first[9:13] == ["0", "Processed", want[1].completed_at.astimezone(NAIROBI).isoformat(), "false"]  # type: ignore[union-attr]
    assert seventh[7] == "Café ☕"
    assert rows[1][9:12] == ["", "", ""]  # no result yet: empty cells
    assert rows[1][12] == "true"  # make_payment(0) needs attention


async def test_csv_neutralises_formulas(database: Database, tmp_path: Path) -> None:
    await seed(database, payments())

    rows = list(csv.reader(io.StringIO((await export(database, "csv", tmp_path)).decode("utf-8-sig"), newline="")))

    assert [r[6] for r in rows[1 : 1 + len(EVIL)]] == ["'" + e for e in EVIL]
    assert rows[1 + len(EVIL)][6] == f"INV{len(EVIL)}"


async def test_csv_shows_full_phones_only_when_asked(database: Database, tmp_path: Path) -> None:
    seeded = payments()
    await seed(database, seeded)
    rows = list(
        csv.reader(io.StringIO((await export(database, "csv", tmp_path, reveal_phones=True)).decode("utf-8-sig")))
    )
    assert [r[5] for r in rows[1:]] == [p.phone for p in mine(seeded)]


def _unescape(text: str) -> str:
    """OOXML writes control characters as _xHHHH_ (ECMA-376 ST_Xstring), as Excel reads them."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), text)


def _sheet_rows(data: bytes) -> list[list[Any]]:
    """The first sheet's cells, typed: str, float, bool or ('date', serial) for date-formatted numbers."""
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        names = book.namelist()
        shared: list[str] = []
        if "xl/sharedStrings.xml" in names:
            root = ElementTree.fromstring(book.read("xl/sharedStrings.xml"))
            shared = ["".join(t.text or "" for t in si.iter(f"{{{NS['x']}}}t")) for si in root.findall("x:si", NS)]
        sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))
    out: list[list[Any]] = []
    for row in sheet.iterfind(".//x:sheetData/x:row", NS):
        cells: dict[int, Any] = {}
        for cell in row.findall("x:c", NS):
            ref = cell.get("r", "")
            col = sum((ord(ch) - 64) * 26**i for i, ch in enumerate(reversed(ref.rstrip("0123456789")))) - 1
            assert cell.find("x:f", NS) is None, f"{ref} holds a formula"
            kind, value = cell.get("t"), cell.find("x:v", NS)
            if kind == "inlineStr":
                cells[col] = _unescape("".join(t.text or "" for t in cell.iter(f"{{{NS['x']}}}t")))
            elif kind == "s":
                cells[col] = shared[int(value.text or "")]  # type: ignore[union-attr]
            elif kind == "b":
                cells[col] = value is not None and value.text == "1"
            elif cell.get("s") and col in (1, 11):
                cells[col] = ("date", float(value.text or ""))  # type: ignore[union-attr]
            else:
                cells[col] = float(value.text or "")  # type: ignore[union-attr]
        out.append([cells.get(i) for i in range(len(COLUMNS))])
    return out


def _excel_date(serial: float) -> datetime:
    return datetime(1899, 12, 30) + timedelta(days=serial)


async def test_xlsx_rows_read_back_typed(database: Database, tmp_path: Path) -> None:
    seeded = payments()
    await seed(database, seeded)

    data = await export(database, "xlsx", tmp_path)

    rows = _sheet_rows(data)
    assert rows[0][0] == "id" and rows[0][1] == "created_at (Africa/Nairobi)" and rows[0][12] == "needs_attention"
    want = mine(seeded)
    assert [r[0] for r in rows[1:]] == [p.id for p in want]
    for row, p in zip(rows[1:], want, strict=True):
        assert row[1][0] == "date"
        wall = p.created_at.astimezone(NAIROBI).replace(tzinfo=None)
        assert abs(_excel_date(row[1][1]) - wall) < timedelta(milliseconds=1)
        assert row[2:5] == [str(p.status), "test", float(p.amount)]
        assert row[5] == p.phone[:4] + "****" + p.phone[-4:]
        assert row[6] == p.account_reference  # a string cell, never a formula (checked in _sheet_rows)
        assert row[8] == p.mpesa_receipt_number
        assert row[12] is p.needs_attention
        if p.completed_at is None:
            assert row[9:12] == [None, None, None]
        else:
            assert row[9:11] == ["0", "Processed"] and row[11][0] == "date"
    assert rows[1 + 7][7] == "Café ☕"
    assert list(tmp_path.iterdir()) == []


async def test_an_empty_xlsx_export_is_a_workbook_with_its_header(database: Database, tmp_path: Path) -> None:
    await seed(database, [])
    rows = _sheet_rows(await export(database, "xlsx", tmp_path))
    assert rows == [[*[n if not n.endswith("_at") else f"{n} (Africa/Nairobi)" for n in COLUMNS]]]
    assert list(tmp_path.iterdir()) == []


async def _wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def _stalling(rows: list[Payment], reached: asyncio.Event) -> AsyncIterator[Payment]:
    """The rows, then a wait for ever: an export caught in the middle."""
    for payment in rows:
        yield payment
    reached.set()
    await asyncio.Event().wait()


async def test_a_cancelled_xlsx_export_leaves_no_file(tmp_path: Path) -> None:
    reached = asyncio.Event()
    rows = [make_payment(n) for n in range(2500)]  # more than one batch written to the file already
    chunks = xlsx_chunks(_stalling(rows, reached), tmp_dir=str(tmp_path))
    task = asyncio.create_task(anext(chunks))  # type: ignore[arg-type]
    await reached.wait()
    (folder,) = tmp_path.iterdir()
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700  # private while it exists
    files = list(folder.iterdir())
    assert files and all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in files)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await chunks.aclose()

    assert list(tmp_path.iterdir()) == []


async def test_an_xlsx_export_abandoned_by_its_client_leaves_no_file(tmp_path: Path) -> None:
    async def rows() -> AsyncIterator[Payment]:
        for n in range(3000):
            yield make_payment(n)

    chunks = xlsx_chunks(rows(), tmp_dir=str(tmp_path), chunk_size=1024)
    first = await anext(chunks)  # type: ignore[arg-type]
    assert first.startswith(b"PK")
    assert list(tmp_path.iterdir()) == []  # already unlinked: streamed from the open file
    await chunks.aclose()  # the client went away
    assert list(tmp_path.iterdir()) == []


async def test_a_failing_source_leaves_no_file(tmp_path: Path) -> None:
    async def rows() -> AsyncIterator[Payment]:
        yield make_payment(1)
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        async for _ in xlsx_chunks(rows(), tmp_dir=str(tmp_path)):
            pass
    assert list(tmp_path.iterdir()) == []


def test_statuses_cover_the_enum() -> None:
    # The export writes str(status): the enum's values, which is what the API shows too.
    assert [str(s) for s in PaymentStatus] == [s.value for s in PaymentStatus]
