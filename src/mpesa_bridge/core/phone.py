"""Kenyan mobile numbers: every accepted spelling normalised to 254 + (7|1) + 8 digits."""

from __future__ import annotations

import re

from mpesa_bridge.core.errors import InvalidRequest

_SEPARATORS = re.compile(r"[\s\-().]")
_MSISDN = re.compile(r"^254[17][0-9]{8}$")  # [0-9], not \d: \d also matches other scripts' digits


def normalise_phone(raw: object, *, param: str = "phone") -> str:
    """Return the MSISDN Daraja wants (2547XXXXXXXX / 2541XXXXXXXX) or raise InvalidRequest.

    Accepts 07…, 01…, +254…, 254…, 00254…, and 7…/1… (nine digits), with spaces or dashes.
    """
    if not isinstance(raw, str):
        raise InvalidRequest("phone must be a string such as '0712345678'", code="invalid_phone", param=param)
    digits = _SEPARATORS.sub("", raw.strip())
    if digits.startswith("+"):
        digits = digits[1:]
    elif digits.startswith("00254"):
        digits = digits[2:]
    if digits.startswith("0") and len(digits) == 10:
        digits = "254" + digits[1:]
    elif len(digits) == 9 and digits[:1] in ("7", "1"):
        digits = "254" + digits
    if not _MSISDN.fullmatch(digits):
        raise InvalidRequest(
            "phone is not a valid Kenyan mobile number (e.g. 0712345678 or +254712345678)",
            code="invalid_phone",
            param=param,
        )
    return digits


def mask_phone(msisdn: str) -> str:
    """2547****5678: enough to recognise, not enough to call."""
    if len(msisdn) < 8:
        return "****"
    return f"{msisdn[:4]}****{msisdn[-4:]}"
