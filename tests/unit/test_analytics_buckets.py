"""core.analytics: UTC slots regrouped into local days and hours, percentiles, the query's checks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mpesa_bridge.core.analytics import (
    HOUR,
    QUARTER_HOUR,
    AnalyticsQuery,
    DurationCount,
    Figures,
    SlotTotal,
    histogram,
    local_midnight,
    percentile,
    regroup,
    settle_times,
    slot_seconds,
)
from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.payments.status import PaymentStatus as S
from mpesa_bridge.core.projects import Mode

NAIROBI = ZoneInfo("Africa/Nairobi")
LONDON = ZoneInfo("Europe/London")
KOLKATA = ZoneInfo("Asia/Kolkata")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def slot(at: datetime, status: S, count: int = 1, amount: int = 0) -> SlotTotal:
    return SlotTotal(at, status, count, amount)


def query(first: date, last: date, bucket: str = "day", tz: str = "Africa/Nairobi") -> AnalyticsQuery:
    return AnalyticsQuery.local_days("proj", Mode.TEST, first, last, bucket=bucket, time_zone=tz)  # type: ignore[arg-type]


def group(q: AnalyticsQuery, slots: list[SlotTotal]) -> list:
    seconds = slot_seconds(q.zone, q.start, q.end)
    return regroup(slots, start=q.start, end=q.end, tz=q.zone, bucket=q.bucket, slot=seconds)


def test_nairobi_days_start_at_local_midnight_and_count_the_late_evening_on_the_right_day() -> None:
    q = query(date(2026, 12, 1), date(2026, 12, 3))
    assert q.start == utc(2026, 11, 30, 21) and q.end == utc(2026, 12, 3, 21)
    buckets = group(
        q,
        [
            slot(utc(2026, 11, 30, 21), S.SUCCEEDED, 2, 300),  # 00:00 EAT on 1 Dec
            slot(utc(2026, 12, 1, 20), S.FAILED, 1),  # 23:00 EAT on 1 Dec
            slot(utc(2026, 12, 1, 21), S.SUCCEEDED, 1, 50),  # 00:00 EAT on 2 Dec
            slot(utc(2026, 12, 1, 21), S.PENDING, 4),
        ],
    )
    assert [b.start for b in buckets] == [datetime(2026, 12, d, tzinfo=NAIROBI) for d in (1, 2, 3)]
    assert [b.end.date() for b in buckets] == [date(2026, 12, 2), date(2026, 12, 3), date(2026, 12, 4)]
    assert [(b.count, b.finished, b.succeeded, b.succeeded_amount) for b in buckets] == [
        (3, 3, 2, 300),
        (5, 1, 1, 50),
        (0, 0, 0, 0),  # an empty day is there, as zeros
    ]
    assert buckets[0].success_rate == pytest.approx(2 / 3)
    assert buckets[1].success_rate == 1.0  # the pending ones are not finished
    assert buckets[2].success_rate is None  # nothing finished: no rate, not 0 %


def test_nairobi_hours_are_24_a_day_with_the_empty_ones() -> None:
    q = query(date(2026, 12, 1), date(2026, 12, 1), bucket="hour")
    buckets = group(q, [slot(utc(2026, 12, 1, 6), S.CANCELLED, 3), slot(utc(2026, 12, 1, 6), S.SUCCEEDED, 1, 10)])
    assert len(buckets) == 24
    assert [b.start.hour for b in buckets] == list(range(24))
    nine = buckets[9]  # 06:00 UTC = 09:00 EAT
    assert (nine.count, nine.succeeded, nine.succeeded_amount, nine.success_rate) == (4, 1, 10, 0.25)
    assert sum(b.count for b in buckets) == 4


def test_london_spring_forward_day_is_23_hours_and_autumn_day_25() -> None:
    spring = query(date(2026, 3, 28), date(2026, 3, 30), tz="Europe/London")
    days = group(spring, [slot(utc(2026, 3, 29, 0), S.SUCCEEDED, 1, 5), slot(utc(2026, 3, 29, 23), S.FAILED)])
    assert [(b.end.astimezone(UTC) - b.start.astimezone(UTC)) for b in days] == [
        timedelta(hours=24),
        timedelta(hours=23),
        timedelta(hours=24),
    ]
    # 23:00 UTC on 29 March is 00:00 BST on the 30th.
    assert [(b.count, b.succeeded_amount) for b in days] == [(0, 0), (1, 5), (1, 0)]

    autumn = query(date(2026, 10, 25), date(2026, 10, 25), tz="Europe/London")
    (day,) = group(autumn, [slot(utc(2026, 10, 24, 23), S.SUCCEEDED), slot(utc(2026, 10, 25, 23), S.FAILED)])
    assert day.end.astimezone(UTC) - day.start.astimezone(UTC) == timedelta(hours=25)
    # 24 Oct 23:00 UTC is 00:00 BST on the 25th, 25 Oct 23:00 UTC is 23:00 GMT on the 25th: both count.
    assert (day.count, day.succeeded) == (2, 1)


def test_london_repeated_hour_is_two_buckets_told_apart_by_offset() -> None:
    q = query(date(2026, 10, 25), date(2026, 10, 25), bucket="hour", tz="Europe/London")
    buckets = group(q, [slot(utc(2026, 10, 25, 0), S.SUCCEEDED, 1, 7), slot(utc(2026, 10, 25, 1), S.FAILED, 2)])
    assert len(buckets) == 25
    ones = [b for b in buckets if b.start.hour == 1]
    assert [b.start.utcoffset() for b in ones] == [timedelta(hours=1), timedelta(0)]
    assert [(b.count, b.succeeded_amount) for b in ones] == [(1, 7), (2, 0)]


def test_london_spring_forward_hours_skip_the_missing_one() -> None:
    q = query(date(2026, 3, 29), date(2026, 3, 29), bucket="hour", tz="Europe/London")
    buckets = group(q, [])
    assert len(buckets) == 23
    assert 1 not in [b.start.hour for b in buckets]


def test_half_hour_zones_use_quarter_hour_slots() -> None:
    q = query(date(2026, 12, 1), date(2026, 12, 1), tz="Asia/Kolkata")
    assert slot_seconds(KOLKATA, q.start, q.end) == QUARTER_HOUR
    assert slot_seconds(NAIROBI, q.start, q.end) == HOUR
    (day,) = group(
        q,
        [
            slot(utc(2026, 11, 30, 18), S.SUCCEEDED),  # 23:30 IST on 30 Nov: outside (and out of scope)
            slot(utc(2026, 11, 30, 18, 30), S.SUCCEEDED, 1, 9),  # 00:00 IST on 1 Dec
        ],
    )
    assert (day.count, day.succeeded_amount) == (1, 9)


def test_a_range_cut_mid_day_makes_partial_buckets() -> None:
    q = AnalyticsQuery("p", Mode.LIVE, utc(2026, 12, 1, 12), utc(2026, 12, 2, 12))
    buckets = group(q, [])
    assert [b.start.astimezone(UTC) for b in buckets] == [utc(2026, 12, 1, 12), utc(2026, 12, 1, 21)]
    assert buckets[-1].end.astimezone(UTC) == utc(2026, 12, 2, 12)


def test_local_midnight() -> None:
    assert local_midnight(date(2026, 12, 1), NAIROBI) == utc(2026, 11, 30, 21)
    assert local_midnight(date(2026, 7, 1), LONDON) == utc(2026, 6, 30, 23)
    # America/Havana springs forward at midnight: the day starts at 01:00 CDT.
    havana = ZoneInfo("America/Havana")
    start = local_midnight(date(2026, 3, 8), havana)
    assert start.astimezone(havana).date() == date(2026, 3, 8)
    assert (start - timedelta(seconds=1)).astimezone(havana).date() == date(2026, 3, 7)


def test_percentiles_are_nearest_rank() -> None:
    durations = [DurationCount(100, 10), DurationCount(5, 50), DurationCount(10, 40)]
    assert percentile(durations, 0.50) == 5  # rank 50
    assert percentile(durations, 0.51) == 10  # rank 51
    assert percentile(durations, 0.90) == 10  # rank 90
    assert percentile(durations, 0.91) == 100
    assert percentile([], 0.5) is None
    assert percentile([DurationCount(42, 1)], 0.99) == 42
    one_to_hundred = [DurationCount(s, 1) for s in range(1, 101)]
    assert [percentile(one_to_hundred, q) for q in (0.5, 0.9, 0.99)] == [50, 90, 99]


def test_settle_times_histogram_has_fixed_edges() -> None:
    times = settle_times([DurationCount(-2, 1), DurationCount(9, 2), DurationCount(10, 3), DurationCount(7200, 1)])
    assert times.count == 7
    assert (times.p50, times.p90, times.p99) == (10, 7200, 7200)
    counts = {b.label: b.count for b in times.histogram}
    assert counts["0 s\u201310 s"] == 3  # the negative one (clock skew) counts as 0 s
    assert counts["10 s\u201330 s"] == 3
    assert counts["\u2265 1 h"] == 1
    assert sum(counts.values()) == 7
    assert [b.count for b in histogram([])] == [0] * 8


def test_figures_rate() -> None:
    f = Figures()
    f.add(S.UNKNOWN, 3, 100)
    assert f.success_rate is None and f.count == 3 and f.succeeded_amount == 0
    f.add(S.EXPIRED, 1, 100)
    f.add(S.SUCCEEDED, 1, 100)
    assert (f.finished, f.succeeded, f.succeeded_amount, f.success_rate) == (2, 1, 100, 0.5)


@pytest.mark.parametrize(
    ("start", "end", "bucket", "tz"),
    [
        (datetime(2026, 12, 1), utc(2026, 12, 2), "day", "Africa/Nairobi"),  # naive: refused
        (utc(2026, 12, 2), utc(2026, 12, 1), "day", "Africa/Nairobi"),
        (utc(2026, 12, 1), utc(2026, 12, 2), "week", "Africa/Nairobi"),
        (utc(2026, 12, 1), utc(2026, 12, 2), "day", "Mars/Olympus"),
        (utc(2026, 1, 1), utc(2026, 3, 1), "hour", "Africa/Nairobi"),
        (utc(2024, 1, 1), utc(2026, 3, 1), "day", "Africa/Nairobi"),
    ],
)
def test_query_refuses_bad_ranges(start: datetime, end: datetime, bucket: str, tz: str) -> None:
    with pytest.raises((InvalidRequest, ValueError)):
        AnalyticsQuery("p", Mode.TEST, start, end, bucket, tz)  # type: ignore[arg-type]
