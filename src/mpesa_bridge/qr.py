"""QR codes of URLs (payment links, checkout sessions) as SVG or PNG, drawn with segno.

An adapter concern: the core never sees an image. Shared by the API's `…/qr` routes (through
`api/qr.py`) and the dashboard's downloads, which may not import the API adapter. A
`GET …/qr?format=svg|png` route answers with `qr_response`, or builds its own answer from
`qr_image` and `content_type`::

    @router.get("/{link_id}/qr")
    async def link_qr(..., format: Annotated[QrFormat, Query()] = "svg") -> Response:
        return qr_response(link.url, format, filename=link.id)

Choices, fixed here so every QR the bridge draws reads the same way:

- Error correction `M` (~15 % of the symbol may be damaged or covered and it still reads), never
  raised silently (`boost_error=False`), so the same text always gives the same symbol.
- A quiet zone (`border`) of 4 modules, what ISO/IEC 18004 asks for; scanners miss codes with less.
- Never a Micro QR: many phone cameras do not read them.
- The last 128 symbols and images drawn are kept (bytes, immutable): a link's QR is drawn once.
- At most `MAX_TEXT_LENGTH` characters (a URL, not a document) and at most `MAX_PNG_SIDE` pixels
  per PNG side; anything larger is an `InvalidRequest` naming `param`.
"""

from __future__ import annotations

import functools
import io
import re
from typing import Literal, get_args

import segno
from starlette.responses import Response

from mpesa_bridge.core.errors import InvalidRequest

__all__ = [
    "DEFAULT_BORDER",
    "DEFAULT_ERROR",
    "DEFAULT_SCALE",
    "MAX_PNG_SIDE",
    "MAX_SCALE",
    "MAX_TEXT_LENGTH",
    "ErrorLevel",
    "QrFormat",
    "content_type",
    "qr_image",
    "qr_png",
    "qr_response",
    "qr_svg",
]

QrFormat = Literal["svg", "png"]
ErrorLevel = Literal["L", "M", "Q", "H"]

DEFAULT_ERROR: ErrorLevel = "M"
DEFAULT_BORDER = 4
DEFAULT_SCALE = 8  # PNG pixels (SVG user units) per module: a link's ~33-module symbol is ~330 px
MAX_SCALE = 40
MAX_TEXT_LENGTH = 1024
MAX_PNG_SIDE = 4096

_CONTENT_TYPES: dict[str, str] = {"svg": "image/svg+xml", "png": "image/png"}


def content_type(fmt: QrFormat) -> str:
    """The media type to answer with: `image/svg+xml` or `image/png`."""
    try:
        return _CONTENT_TYPES[fmt]
    except KeyError:
        raise InvalidRequest(f"format must be one of {', '.join(get_args(QrFormat))}", param="format") from None


def qr_svg(
    text: str,
    *,
    scale: int = DEFAULT_SCALE,
    error: ErrorLevel = DEFAULT_ERROR,
    border: int = DEFAULT_BORDER,
) -> bytes:
    """A standalone SVG document (UTF-8, with its XML declaration) of the QR code of `text`.

    Dark modules are black on a white background, so it prints and reads on a dark page too."""
    _check_text(text, error)
    return _draw(text, "svg", _checked_scale(scale), _checked_border(border), error)


def qr_png(
    text: str,
    scale: int = DEFAULT_SCALE,
    *,
    error: ErrorLevel = DEFAULT_ERROR,
    border: int = DEFAULT_BORDER,
) -> bytes:
    """A black-on-white PNG of the QR code of `text`, `scale` pixels per module.

    The side is `(modules + 2 * border) * scale` pixels, at most `MAX_PNG_SIDE`."""
    _check_text(text, error)
    scale, border = _checked_scale(scale), _checked_border(border)
    width, _ = _symbol(text, error).symbol_size(scale=scale, border=border)
    if width > MAX_PNG_SIDE:
        raise InvalidRequest(f"the image would be {width} pixels wide; at most {MAX_PNG_SIDE}", param="scale")
    return _draw(text, "png", scale, border, error)


def qr_image(text: str, fmt: QrFormat, *, scale: int = DEFAULT_SCALE) -> bytes:
    """`qr_svg` or `qr_png` by `fmt` (what a `?format=svg|png` route needs)."""
    content_type(fmt)  # refuses an unknown format, naming `format`
    return qr_svg(text, scale=scale) if fmt == "svg" else qr_png(text, scale)


_UNSAFE_IN_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def qr_response(text: str, fmt: QrFormat, *, scale: int = DEFAULT_SCALE, filename: str | None = None) -> Response:
    """The QR image as an HTTP answer: its media type, `nosniff`, never cached (a link's QR is cheap
    to draw, and a deactivated link's should not linger), and with `filename` (without extension;
    reduced to letters, digits and `. _ -`) a `Content-Disposition` that names the saved file."""
    body = qr_image(text, fmt, scale=scale)
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if filename:
        safe = _UNSAFE_IN_FILENAME.sub("_", filename).strip("._") or "qr"
        headers["Content-Disposition"] = f'inline; filename="{safe[:100]}.{fmt}"'
    return Response(body, media_type=content_type(fmt), headers=headers)


def _check_text(text: str, error: ErrorLevel) -> None:
    if not isinstance(text, str) or not text:
        raise InvalidRequest("a QR code needs some text", param="text")
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidRequest(f"a QR code holds at most {MAX_TEXT_LENGTH} characters here", param="text")
    if error not in get_args(ErrorLevel):
        raise InvalidRequest("error correction must be L, M, Q or H", param="error")


# segno is pure Python: ~5 ms to encode a link's URL, ~2.5 ms more for its PNG. A link's or a
# session's QR is asked for again and again with the same URL, so the last ones drawn are kept.
@functools.lru_cache(maxsize=128)
def _symbol(text: str, error: ErrorLevel) -> segno.QRCode:
    return segno.make(text, error=error, micro=False, boost_error=False)


@functools.lru_cache(maxsize=128)
def _draw(text: str, kind: QrFormat, scale: int, border: int, error: ErrorLevel) -> bytes:
    out = io.BytesIO()
    _symbol(text, error).save(out, kind=kind, scale=scale, border=border, dark="#000", light="#fff")
    return out.getvalue()


def _checked_scale(scale: int) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= MAX_SCALE:
        raise InvalidRequest(f"scale must be a whole number from 1 to {MAX_SCALE}", param="scale")
    return scale


def _checked_border(border: int) -> int:
    if isinstance(border, bool) or not isinstance(border, int) or not 0 <= border <= 16:
        raise InvalidRequest("border must be a whole number from 0 to 16", param="border")
    return border
