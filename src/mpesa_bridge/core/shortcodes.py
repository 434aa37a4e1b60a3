"""Safaricom short codes — paybill numbers, store (head office) numbers and till numbers: the one rule.

Daraja's documentation gives 5 to 7 digits (the portal says 5 to 6 in places; 7-digit production
codes, such as store numbers, exist). `BusinessShortCode` and `PartyB` travel as JSON integers,
so a leading zero would silently become another number. The core checks it when a project's
Daraja settings are saved and the Daraja client checks it before every request — with this
function, so that a code the bridge accepts is a code every push can use.
"""

from __future__ import annotations

import re

# [0-9], not \d: \d also matches non-ASCII digits that int() would happily accept.
SHORT_CODE_PATTERN = "[1-9][0-9]{4,6}"
SHORT_CODE_RULE = "5 to 7 digits, not starting with 0"
_SHORT_CODE = re.compile(SHORT_CODE_PATTERN)


def is_short_code(text: str) -> bool:
    return _SHORT_CODE.fullmatch(text) is not None
