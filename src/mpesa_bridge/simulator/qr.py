"""Dynamic QR images as Daraja draws them: a square PNG exactly `Size` pixels wide, base64-encoded.

What the simulator encodes (Safaricom does not document its payload, so this one is plainly a
simulator's): `mpesa-sim:qr?` followed by the request's fields as a URL query, in Daraja's names::

    mpesa-sim:qr?TrxCode=BG&CPI=373132&Amount=1&RefNo=Invoice+Test&MerchantName=TEST+SUPERMARKET

Any QR reader shows it, and a test can parse it back with `urllib.parse.parse_qs`.
"""

from __future__ import annotations

import base64
import struct
import zlib
from urllib.parse import urlencode

import segno

from .validation import DynamicQrRequest

PAYLOAD_PREFIX = "mpesa-sim:qr?"
_QUIET_ZONE = 4  # modules of white around the symbol, as ISO/IEC 18004 asks


def qr_payload(request: DynamicQrRequest) -> str:
    fields = {
        "TrxCode": request.trx_code,
        "CPI": request.cpi,
        "Amount": str(request.amount),
        "RefNo": request.ref_no,
        "MerchantName": request.merchant_name,
    }
    return PAYLOAD_PREFIX + urlencode(fields)


def qr_png_base64(text: str, size: int) -> str:
    """The QR of `text` as a `size` by `size` grayscale PNG, base64 (Daraja's `QRCode` field)."""
    return base64.b64encode(_png(_modules(text), size)).decode("ascii")


def _modules(text: str) -> list[list[bool]]:
    """The symbol with its quiet zone, True for dark."""
    symbol = segno.make(text, error="m", micro=False)
    return [[bool(cell) for cell in row] for row in symbol.matrix_iter(scale=1, border=_QUIET_ZONE)]


def _png(modules: list[list[bool]], size: int) -> bytes:
    # Daraja's images are exactly Size pixels square, so modules are scaled by nearest neighbour
    # (segno's own PNG writer only scales by whole numbers). Never below one pixel per module.
    count = len(modules)
    size = max(size, count)
    columns = [x * count // size for x in range(size)]
    rows = []
    for y in range(size):
        row = modules[y * count // size]
        rows.append(b"\x00" + bytes(0 if row[c] else 255 for c in columns))  # filter 0, then pixels
    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 6))
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
