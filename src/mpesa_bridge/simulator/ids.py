"""Identifiers shaped like the ones Safaricom issues (daraja.md section 1.7)."""

from __future__ import annotations

import itertools
import secrets
import string
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

NAIROBI = ZoneInfo("Africa/Nairobi")

_TOKEN_ALPHABET = string.ascii_letters + string.digits
_RECEIPT_ALPHABET = string.ascii_uppercase + string.digits
_DAY_ALPHABET = string.digits[1:] + string.ascii_uppercase  # 1..9 then A=10 .. V=31

# The trailing decimal counter of the newer MerchantRequestID style, e.g. `…b827b542881d3130`.
_counter = itertools.count(1_000_000 + secrets.randbelow(8_000_000))


def access_token() -> str:
    """An opaque 28-character token like `c9SQxWWhmdVRlyh0zh8gZDTkubVF`."""
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(28))


def gateway_id() -> str:
    """A MerchantRequestID / requestId like `2654-4b64-97ff-b827b542881d3130`."""
    hex_ = uuid.uuid4().hex
    return f"{hex_[0:4]}-{hex_[4:8]}-{hex_[8:12]}-{hex_[12:24]}{next(_counter)}"


def nairobi_stamp(moment: datetime, fmt: str = "%Y%m%d%H%M%S") -> str:
    """Safaricom reports times in Kenyan local time (EAT, UTC+3)."""
    return moment.astimezone(NAIROBI).strftime(fmt)


def checkout_request_id(moment: datetime, msisdn: str) -> str:
    """`ws_CO_<DDMMYYYYHHMMSS><ms><subscriber digits>`, e.g. `ws_CO_23052022122137653708374149`."""
    local = moment.astimezone(NAIROBI)
    millis = local.microsecond // 1000
    return f"ws_CO_{local:%d%m%Y%H%M%S}{millis:03d}{msisdn[-9:]}"


def receipt_number(moment: datetime) -> str:
    """An M-Pesa receipt: year letter, month letter, day character, then 7 random characters.

    Real receipts encode the date this way (`NLJ7RT61SV` was issued on 2019-12-19: N=2019,
    L=December, J=19th), which makes the simulator's receipts look familiar in dashboards.
    """
    local = moment.astimezone(NAIROBI)
    year = string.ascii_uppercase[(local.year - 2006) % 26]
    month = string.ascii_uppercase[local.month - 1]
    day = _DAY_ALPHABET[local.day - 1]
    while True:
        tail = "".join(secrets.choice(_RECEIPT_ALPHABET) for _ in range(7))
        if tail != "0000000":  # `…0000000` is the placeholder of failed transactions
            return f"{year}{month}{day}{tail}"
