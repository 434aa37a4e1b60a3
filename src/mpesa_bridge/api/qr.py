"""QR codes of the bridge's URLs for the API's `…/qr` routes.

The drawing and its HTTP answer live in `mpesa_bridge/qr.py`, shared with the dashboard (which may
not import the API adapter); this module names them for the API, unchanged.
"""

from __future__ import annotations

from mpesa_bridge.qr import (
    DEFAULT_BORDER,
    DEFAULT_ERROR,
    DEFAULT_SCALE,
    MAX_PNG_SIDE,
    MAX_SCALE,
    MAX_TEXT_LENGTH,
    ErrorLevel,
    QrFormat,
    content_type,
    qr_image,
    qr_png,
    qr_response,
    qr_svg,
)

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
