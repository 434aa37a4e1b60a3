"""The payments export: CSV and XLSX of exactly the rows a search matched, streamed.

Both take the payments as an async iterator (`PaymentSearchReader.iter_all`) and give the file as
an async iterator of bytes, so memory stays flat however many rows there are: the CSV is encoded a
few hundred rows at a time; the XLSX is written by xlsxwriter in `constant_memory` mode (each row
goes to disk once the next begins) in a worker thread, to a temporary file only this process can
read (0600, in a 0700 folder of its own), then streamed from the open file after its name is
removed.

Phones are masked (`core.phone.mask_phone`) unless the caller asks for them in full: an export is
something shown in bulk. Times are Africa/Nairobi, for people.

Spreadsheet formula injection: a CSV cell beginning with = + - @ TAB or CR gets a leading
apostrophe, so a spreadsheet shows it as text instead of evaluating it. XLSX cells are written as
strings, numbers, booleans and dates by type (`write_string`, never `write`), so no text is ever
stored as a formula.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, BinaryIO, TypeVar

from mpesa_bridge.core.clock import NAIROBI
from mpesa_bridge.core.payments.entity import Payment
from mpesa_bridge.core.phone import mask_phone

COLUMNS = (
    "id",
    "created_at",
    "status",
    "mode",
    "amount",
    "phone",
    "account_reference",
    "description",
    "mpesa_receipt_number",
    "result_code",
    "result_desc",
    "completed_at",
    "needs_attention",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_CSV_ROWS_PER_CHUNK = 500
_XLSX_ROWS_PER_BATCH = 1000
_XLSX_SHEET_ROWS = 1_048_576  # Excel's limit, header included: more rows continue on a new sheet
_CHUNK = 64 * 1024
T = TypeVar("T")


def neutralise(text: str) -> str:
    """`text` as a spreadsheet will show it, never run it as a formula."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _nairobi(at: datetime | None) -> datetime | None:
    return None if at is None else at.astimezone(NAIROBI)


def _phone(payment: Payment, reveal_phones: bool) -> str:
    return payment.phone if reveal_phones else mask_phone(payment.phone)


def _values(payment: Payment, reveal_phones: bool) -> tuple[Any, ...]:
    """One payment's cells in COLUMNS order: str, int, bool, Nairobi datetime or None."""
    return (
        payment.id,
        _nairobi(payment.created_at),
        str(payment.status),
        payment.mode,
        payment.amount,
        _phone(payment, reveal_phones),
        payment.account_reference,
        payment.description,
        payment.mpesa_receipt_number,
        payment.result_code,
        payment.result_desc,
        _nairobi(payment.completed_at),
        payment.needs_attention,
    )


# --- CSV ---------------------------------------------------------------------------------------


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return neutralise(value)
    return value


async def csv_chunks(payments: AsyncIterator[Payment], *, reveal_phones: bool = False) -> AsyncIterator[bytes]:
    """The payments as UTF-8 CSV with a byte order mark (Excel then reads it as UTF-8), a header
    row first; yielded a few hundred rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    yield b"\xef\xbb\xbf" + buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    count = 0
    async for payment in payments:
        writer.writerow([_csv_cell(v) for v in _values(payment, reveal_phones)])
        count += 1
        if count % _CSV_ROWS_PER_CHUNK == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


# --- XLSX --------------------------------------------------------------------------------------


class _Sheets:
    """An xlsxwriter workbook in constant-memory mode, filled row by row (in a worker thread)."""

    def __init__(self, path: str, tmp_dir: str | None) -> None:
        options: dict[str, Any] = {"constant_memory": True, "strings_to_formulas": False}
        if tmp_dir is not None:
            options["tmpdir"] = tmp_dir
        import xlsxwriter  # only for an export: ~2 MB a serving bridge need not hold (`make bench` B7)

        self.book = xlsxwriter.Workbook(path, options)
        self._date = self.book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self._bold = self.book.add_format({"bold": True})
        self._sheet: Any = None
        self._row = _XLSX_SHEET_ROWS
        self._sheets = 0

    def _new_sheet(self) -> None:
        self._sheets += 1
        self._sheet = self.book.add_worksheet("payments" if self._sheets == 1 else f"payments {self._sheets}")
        header = [f"{name} (Africa/Nairobi)" if name.endswith("_at") else name for name in COLUMNS]
        for col, name in enumerate(header):
            self._sheet.write_string(0, col, name, self._bold)
        self._sheet.set_column(0, 0, 30)
        self._sheet.set_column(1, 1, 20)
        self._sheet.set_column(11, 11, 20)
        self._row = 1

    def write_rows(self, rows: list[tuple[Any, ...]]) -> None:
        for values in rows:
            if self._row >= _XLSX_SHEET_ROWS:
                self._new_sheet()
            self._write_row(self._row, values)
            self._row += 1

    def _write_row(self, row: int, values: tuple[Any, ...]) -> None:
        sheet = self._sheet
        for col, value in enumerate(values):
            if value is None:
                continue
            if isinstance(value, bool):
                sheet.write_boolean(row, col, value)
            elif isinstance(value, int):
                sheet.write_number(row, col, value)
            elif isinstance(value, datetime):
                # Excel has no time zones: the Nairobi wall-clock time, as the header says.
                sheet.write_datetime(row, col, value.replace(tzinfo=None), self._date)
            else:
                sheet.write_string(row, col, value)

    def discard(self) -> None:
        """Close the row files of an unfinished workbook (xlsxwriter closes them only in `close`)."""
        for sheet in self.book.worksheets():
            handle = getattr(sheet, "row_data_fh", None)
            if handle is not None and not handle.closed:
                handle.close()

    def close(self) -> None:
        if self._sheet is None:
            self._new_sheet()  # an empty export is still a workbook with its header
        self.book.close()


def _open_for_reading(path: str) -> BinaryIO:
    return open(path, "rb")


async def _in_thread(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a worker thread. Cancelled, it still waits for the thread to finish
    before passing the cancellation on, so nobody removes a file the thread is writing."""
    future = asyncio.get_running_loop().run_in_executor(None, function, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


async def xlsx_chunks(
    payments: AsyncIterator[Payment],
    *,
    reveal_phones: bool = False,
    tmp_dir: str | None = None,
    chunk_size: int = _CHUNK,
) -> AsyncIterator[bytes]:
    """The payments as an XLSX workbook, streamed in chunks once it is complete.

    The workbook and xlsxwriter's own temporary files live in a private folder (0700, the files in
    it 0600) made in `tmp_dir` (else the system's temporary folder), removed whatever happens:
    finished, failed, cancelled, or abandoned by a client that went away. The finished workbook is
    streamed from its open file once the folder is gone."""
    folder = tempfile.mkdtemp(prefix="mpesa-bridge-export-", dir=tmp_dir)
    sheets: _Sheets | None = None
    try:
        path = os.path.join(folder, "payments.xlsx")
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        sheets = _Sheets(path, folder)
        batch: list[tuple[Any, ...]] = []
        async for payment in payments:
            batch.append(_values(payment, reveal_phones))
            if len(batch) >= _XLSX_ROWS_PER_BATCH:
                await _in_thread(sheets.write_rows, batch)
                batch = []
        await _in_thread(sheets.write_rows, batch)
        await _in_thread(sheets.close)
        file = await _in_thread(_open_for_reading, path)
        with file:
            sheets = None
            shutil.rmtree(folder)  # the open file is all that is left: nothing to remove later
            while chunk := await _in_thread(file.read, chunk_size):
                yield chunk
    finally:
        if sheets is not None:
            sheets.discard()
        shutil.rmtree(folder, ignore_errors=True)
