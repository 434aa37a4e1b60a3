"""One source of time. Datetimes are timezone-aware UTC; Nairobi only for Daraja and people."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

NAIROBI = ZoneInfo("Africa/Nairobi")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return utc_now()


class ManualClock:
    """A clock that only moves when told to (tests and simulations)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or utc_now()

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now = self._now + timedelta(seconds=seconds)


def ensure_utc(value: datetime) -> datetime:
    """Refuse naive datetimes and normalise aware ones to UTC."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: every datetime in mpesa-bridge is timezone-aware")
    return value.astimezone(UTC)
