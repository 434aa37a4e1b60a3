"""STK password and timestamp, and scrubbing secrets out of text we did not write."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

__all__ = ["NAIROBI", "redact", "stk_password", "stk_timestamp"]

# Safaricom's own clocks run on EAT (UTC+3, no DST); integrations generating the timestamp in
# another zone have been reported to fail, so the timestamp is always Nairobi local time.
NAIROBI = ZoneInfo("Africa/Nairobi")

REDACTED = "[redacted]"


def stk_timestamp(now: datetime) -> str:
    """Format an aware datetime as Daraja's `YYYYMMDDHHmmss` in Africa/Nairobi local time."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("stk_timestamp needs a timezone-aware datetime")
    local = now.astimezone(NAIROBI)
    # Not strftime: "%Y" is not zero-padded for years < 1000 on every platform.
    return f"{local.year:04d}{local.month:02d}{local.day:02d}{local.hour:02d}{local.minute:02d}{local.second:02d}"


def stk_password(short_code: str, passkey: str, timestamp: str) -> str:
    """Daraja's STK `Password`: base64(BusinessShortCode + Passkey + Timestamp)."""
    return base64.b64encode(f"{short_code}{passkey}{timestamp}".encode()).decode("ascii")


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each non-empty secret in `text`.

    Daraja echoes the bearer token in some error messages (401.002.01), so any text that came
    from the wire passes through here before it reaches an exception.
    """
    # Longest first, so a secret that contains another is removed whole.
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text
