"""Daily totals of a tenant's payments, by Africa/Nairobi calendar day.

People read these against M-Pesa statements and their own books, which are kept in Kenyan time:
a payment counts on the Nairobi day (EAT, UTC+3 all year) on which it was created, whatever the
reader's time zone. The window is either the last `days` Nairobi days up to now, or a
created_gte/created_lte range as `GET /v1/payments` takes it (both ends included); every day of it
is reported, days without payments as zeros, oldest first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from mpesa_bridge.core.clock import NAIROBI
from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.payments.public import iso
from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.core.ports import DayStatusTotal

DEFAULT_DAYS = 30
MAX_DAYS = 366
TIME_ZONE = "Africa/Nairobi"
BAD_WINDOW = "parameter_invalid"  # the code the API gives any query parameter out of range


def nairobi_day(at: datetime) -> date:
    return at.astimezone(NAIROBI).date()


def nairobi_midnight(day: date) -> datetime:
    """The UTC instant a Nairobi calendar day starts."""
    return datetime.combine(day, time(0), tzinfo=NAIROBI).astimezone(UTC)


@dataclass(frozen=True)
class TotalsWindow:
    since: datetime  # aware UTC, included
    until: datetime  # aware UTC, included
    before: datetime  # the first instant after the window (times are kept to the microsecond)
    first_day: date  # Nairobi days
    last_day: date

    def days(self) -> list[date]:
        return [self.first_day + timedelta(days=i) for i in range((self.last_day - self.first_day).days + 1)]


def totals_window(
    now: datetime, *, days: int | None, created_gte: datetime | None, created_lte: datetime | None
) -> TotalsWindow:
    """The window asked for: `days` Nairobi days ending today, or created_gte..created_lte (an end
    left out is now, or the start of the Nairobi day DEFAULT_DAYS - 1 days before the other end)."""
    if days is not None and (created_gte is not None or created_lte is not None):
        raise InvalidRequest("days cannot be combined with created_gte or created_lte", code=BAD_WINDOW, param="days")
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise InvalidRequest(f"days must be 1 to {MAX_DAYS}", code=BAD_WINDOW, param="days")
    try:
        return _window(now, days, created_gte, created_lte)
    except OverflowError:
        param = "created_gte" if created_gte is not None else "created_lte"
        message = "the window reaches beyond the dates the bridge can count"
        raise InvalidRequest(message, code=BAD_WINDOW, param=param) from None


def _window(now: datetime, days: int | None, gte: datetime | None, lte: datetime | None) -> TotalsWindow:
    until = lte if lte is not None else now
    if gte is not None:
        since = gte
    else:
        since = nairobi_midnight(nairobi_day(until) - timedelta(days=(days or DEFAULT_DAYS) - 1))
    if since > until:
        raise InvalidRequest("created_gte is after created_lte (or after now)", code=BAD_WINDOW, param="created_gte")
    window = TotalsWindow(since, until, until + timedelta(microseconds=1), nairobi_day(since), nairobi_day(until))
    if (window.last_day - window.first_day).days + 1 > MAX_DAYS:
        message = f"the window spans more than {MAX_DAYS} Nairobi days"
        raise InvalidRequest(message, code=BAD_WINDOW, param="created_gte")
    return window


@dataclass
class DayTotals:
    """One Nairobi day: every payment created that day, by status; and what succeeded, in shillings."""

    date: date
    by_status: dict[PaymentStatus, int] = field(default_factory=lambda: dict.fromkeys(PaymentStatus, 0))
    succeeded_amount: int = 0

    @property
    def count(self) -> int:
        return sum(self.by_status.values())

    def add(self, status: PaymentStatus, count: int, amount: int) -> None:
        self.by_status[status] += count
        if status is PaymentStatus.SUCCEEDED:
            self.succeeded_amount += amount


def fold_days(window: TotalsWindow, rows: Iterable[DayStatusTotal]) -> list[DayTotals]:
    """Every day of the window, oldest first, with the (day, status) totals of the database added."""
    days = {day: DayTotals(day) for day in window.days()}
    for row in rows:
        days[row.day].add(row.status, row.count, row.amount)
    return list(days.values())


def _totals_fields(totals: DayTotals) -> dict[str, Any]:
    return {
        "count": totals.count,
        "succeeded_count": totals.by_status[PaymentStatus.SUCCEEDED],
        "succeeded_amount": totals.succeeded_amount,
        "by_status": {str(status): n for status, n in totals.by_status.items()},
    }


def totals_public(window: TotalsWindow, days: Sequence[DayTotals]) -> dict[str, Any]:
    whole = DayTotals(window.last_day)
    for day in days:
        for status, count in day.by_status.items():
            whole.by_status[status] += count
        whole.succeeded_amount += day.succeeded_amount
    return {
        "object": "payment_totals",
        "time_zone": TIME_ZONE,
        "currency": "KES",
        "created_gte": iso(window.since),
        "created_lte": iso(window.until),
        "data": [{"date": day.date.isoformat(), **_totals_fields(day)} for day in days],
        "total": _totals_fields(whole),
    }
