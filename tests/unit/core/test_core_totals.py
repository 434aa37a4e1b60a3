"""Daily totals (`core.payments.totals`): the window asked for, in Africa/Nairobi days, and the folding."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.core.payments.totals import MAX_DAYS, fold_days, totals_public, totals_window
from mpesa_bridge.core.ports import DayStatusTotal

NOW = datetime(2026, 3, 10, 21, 15, tzinfo=UTC)  # 00:15 on 11 March in Nairobi


def test_days_end_today_in_nairobi_and_start_at_its_midnight() -> None:
    window = totals_window(NOW, days=2, created_gte=None, created_lte=None)
    assert (window.first_day, window.last_day) == (date(2026, 3, 10), date(2026, 3, 11))
    assert window.since == datetime(2026, 3, 9, 21, 0, tzinfo=UTC)  # 00:00 on the 10th, Nairobi
    assert window.until == NOW and window.before == NOW + timedelta(microseconds=1)


def test_the_default_is_30_days() -> None:
    window = totals_window(NOW, days=None, created_gte=None, created_lte=None)
    assert len(window.days()) == 30 and window.days()[-1] == date(2026, 3, 11)


def test_a_created_range_keeps_its_ends_and_an_open_end_is_filled_in() -> None:
    gte, lte = datetime(2026, 3, 1, 20, 59, tzinfo=UTC), datetime(2026, 3, 2, 21, 0, tzinfo=UTC)
    both = totals_window(NOW, days=None, created_gte=gte, created_lte=lte)
    only_gte = totals_window(NOW, days=None, created_gte=gte, created_lte=None)
    only_lte = totals_window(NOW, days=None, created_gte=None, created_lte=lte)
    assert (both.since, both.until) == (gte, lte)
    assert both.days() == [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)]  # 23:59 and 00:00 in Nairobi
    assert only_gte.until == NOW and only_gte.last_day == date(2026, 3, 11)
    assert only_lte.until == lte and len(only_lte.days()) == 30


@pytest.mark.parametrize(
    ("days", "gte", "lte", "param"),
    [
        (0, None, None, "days"),
        (MAX_DAYS + 1, None, None, "days"),
        (3, NOW, None, "days"),
        (None, NOW + timedelta(seconds=1), None, "created_gte"),
        (None, NOW, NOW - timedelta(seconds=1), "created_gte"),
        (None, NOW - timedelta(days=MAX_DAYS), None, "created_gte"),
        (None, None, datetime(1, 1, 1, tzinfo=UTC), "created_lte"),
        (None, datetime.max.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC), "created_gte"),
    ],
)
def test_windows_that_cannot_be_counted_name_the_parameter(
    days: int | None, gte: datetime | None, lte: datetime | None, param: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        totals_window(NOW, days=days, created_gte=gte, created_lte=lte)
    assert refused.value.param == param


def test_366_days_is_the_most() -> None:
    assert len(totals_window(NOW, days=MAX_DAYS, created_gte=None, created_lte=None).days()) == MAX_DAYS


def test_folding_fills_every_day_and_sums_only_what_succeeded() -> None:
    window = totals_window(NOW, days=3, created_gte=None, created_lte=None)
    rows = [
        DayStatusTotal(date(2026, 3, 9), PaymentStatus.SUCCEEDED, 2, 300),
        DayStatusTotal(date(2026, 3, 9), PaymentStatus.FAILED, 1, 1000),
        DayStatusTotal(date(2026, 3, 11), PaymentStatus.CANCELLED, 4, 40),
    ]
    days = fold_days(window, rows)
    body = totals_public(window, days)
    assert [d["date"] for d in body["data"]] == ["2026-03-09", "2026-03-10", "2026-03-11"]
    assert [(d["count"], d["succeeded_count"], d["succeeded_amount"]) for d in body["data"]] == [
        (3, 2, 300),
        (0, 0, 0),
        (4, 0, 0),
    ]
    assert body["total"]["count"] == 7 and body["total"]["succeeded_amount"] == 300
    assert body["total"]["by_status"] == {
        "pending": 0,
        "unknown": 0,
        "succeeded": 2,
        "failed": 1,
        "cancelled": 4,
        "expired": 0,
    }
    assert body["created_gte"] == "2026-03-08T21:00:00Z" and body["created_lte"] == "2026-03-10T21:15:00Z"
