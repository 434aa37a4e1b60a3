"""Analytics over a real database (SQLite and PostgreSQL): every figure against a hand count."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from mpesa_bridge.core.analytics import AnalyticsQuery, AnalyticsService, ReasonCount
from mpesa_bridge.core.clock import ManualClock
from mpesa_bridge.core.payments.status import PaymentStatus
from mpesa_bridge.core.projects import Mode
from mpesa_bridge.storage import tables
from mpesa_bridge.storage.analytics import analytics_reader
from mpesa_bridge.storage.db import Database

A, B = "proj_analytics_a", "proj_analytics_b"
RICH, REGULAR = "254798765432", "254712345678"
NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)  # 19:00 on 2 Dec in Nairobi
LAST_MICROSECOND = datetime(2026, 12, 1, 20, 59, 59, 999999, tzinfo=UTC)  # of 1 Dec in Nairobi


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def payment(
    n: int,
    created: datetime,
    status: str,
    amount: int,
    *,
    project: str = A,
    mode: str = "test",
    phone: str = REGULAR,
    settle: float | None = 10.0,
    failure_code: str | None = None,
    result_code: str | None = None,
) -> dict[str, Any]:
    final = PaymentStatus(status).is_final
    return {
        "id": f"pay_analytics_{n:04d}",
        "project_id": project,
        "mode": mode,
        "status": status,
        "amount": amount,
        "phone": phone,
        "account_reference": f"INV{n}",
        "description": "Payment",
        "metadata": {},
        "business_short_code": "174379",
        "party_b": "174379",
        "transaction_type": "CustomerPayBillOnline",
        "daraja_environment": "simulator",
        "callback_token_hash": f"{n:064d}",
        "created_at": created,
        "updated_at": created,
        "failure_code": failure_code,
        "result_code": result_code,
        "completed_at": created + timedelta(seconds=settle) if final and settle is not None else None,
        "needs_attention": False,
        "query_attempts": 0,
    }


ROWS = [
    # In range (Nairobi days 1-3 Dec 2026: 30 Nov 21:00 UTC up to 3 Dec 21:00 UTC), project A, test mode.
    payment(1, utc(2026, 11, 30, 21), "succeeded", 100, settle=12),  # 00:00 on 1 Dec
    payment(2, LAST_MICROSECOND, "failed", 50, settle=30.5, failure_code="insufficient_funds", result_code="1"),
    payment(3, utc(2026, 12, 1, 21), "succeeded", 250, settle=45),  # 00:00 on 2 Dec
    payment(4, utc(2026, 12, 2, 10), "succeeded", 1000, phone=RICH, settle=5),  # 13:00 on 2 Dec
    payment(5, utc(2026, 12, 2, 11), "cancelled", 70, settle=20, result_code="1032"),
    payment(6, utc(2026, 12, 2, 12), "expired", 10, settle=3600, failure_code="timeout", result_code="1037"),
    payment(7, utc(2026, 12, 2, 13), "pending", 80),
    payment(8, utc(2026, 12, 2, 14), "failed", 5, settle=8),  # neither code: "unspecified"
    payment(9, utc(2026, 12, 2, 15), "failed", 5, settle=8, failure_code="insufficient_funds"),
    payment(15, NOW, "unknown", 1),
    # Out of the analytics range, or another tenant's.
    payment(10, datetime(2026, 11, 30, 20, 59, 59, tzinfo=UTC), "succeeded", 9999),  # 23:59:59 on 30 Nov
    payment(11, utc(2026, 12, 3, 21), "succeeded", 8888),  # the range's end: excluded (and after now)
    payment(12, utc(2026, 12, 2, 10), "succeeded", 7777, project=B, phone=RICH),
    payment(13, utc(2026, 12, 2, 10), "succeeded", 6666, mode="live", phone=RICH),
    payment(16, utc(2026, 12, 2, 10), "failed", 6666, mode="live", failure_code="other_mode"),
    payment(14, utc(2026, 11, 20, 10), "succeeded", 1),  # 12 days before now
    payment(17, utc(2026, 11, 2, 10), "succeeded", 1),  # 30 days and more before now
]


async def seed(db: Database, rows: list[dict[str, Any]]) -> None:
    async with db.write_engine.begin() as conn:
        projects = [{"id": p, "name": p, "created_at": utc(2026, 1, 1)} for p in (A, B)]
        await conn.execute(tables.projects.insert(), projects)
        await conn.execute(tables.payments.insert(), rows)


@pytest.fixture
async def service(database: Database) -> AnalyticsService:
    return AnalyticsService(lambda: analytics_reader(database), ManualClock(NOW))


async def test_daily_analytics_in_nairobi(database: Database, service: AnalyticsService) -> None:
    await seed(database, ROWS)
    result = await service.analytics(AnalyticsQuery.local_days(A, Mode.TEST, date(2026, 12, 1), date(2026, 12, 3)))

    assert [b.start.date() for b in result.buckets] == [date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 3)]
    assert [(b.count, b.finished, b.succeeded, b.succeeded_amount) for b in result.buckets] == [
        (2, 2, 1, 100),  # 1 and 2
        (8, 6, 2, 1250),  # 3 to 9 and 15 (7 pending, 15 unknown: not finished)
        (0, 0, 0, 0),
    ]
    assert [b.success_rate for b in result.buckets] == [0.5, pytest.approx(2 / 6), None]
    assert (result.total.count, result.total.succeeded, result.total.succeeded_amount) == (10, 3, 1350)
    assert result.failure_reasons == [
        ReasonCount("insufficient_funds", 2),
        ReasonCount("1032", 1),
        ReasonCount("timeout", 1),
        ReasonCount("unspecified", 1),
    ]
    assert [(c.phone, c.amount, c.count) for c in result.top_customers] == [
        ("2547****5432", 1000, 1),
        ("2547****5678", 350, 2),
    ]
    times = result.settle_times
    # Durations 12, 30 (30.5 floored), 45, 5, 20, 3600, 8, 8: sorted 5 8 8 12 20 30 45 3600.
    assert (times.count, times.p50, times.p90, times.p99) == (8, 12, 3600, 3600)
    assert [b.count for b in times.histogram] == [3, 2, 2, 0, 0, 0, 0, 1]


async def test_hourly_buckets_in_nairobi(database: Database, service: AnalyticsService) -> None:
    await seed(database, ROWS)
    query = AnalyticsQuery.local_days(A, Mode.TEST, date(2026, 12, 2), date(2026, 12, 2), bucket="hour")
    result = await service.analytics(query)
    assert len(result.buckets) == 24
    counts = {b.start.hour: (b.count, b.succeeded_amount) for b in result.buckets if b.count}
    assert counts == {
        0: (1, 250),
        13: (1, 1000),
        14: (1, 0),
        15: (1, 0),
        16: (1, 0),
        17: (1, 0),
        18: (1, 0),
        19: (1, 0),
    }


async def test_london_repeated_hour_on_the_database(database: Database, service: AnalyticsService) -> None:
    await seed(
        database,
        [
            payment(1, utc(2026, 10, 25, 0, 30), "succeeded", 10),  # 01:30 BST
            payment(2, utc(2026, 10, 25, 1, 30), "succeeded", 20),  # 01:30 GMT
            payment(3, utc(2026, 10, 25, 23, 59), "failed", 30),  # 23:59 GMT on the 25th
            payment(4, utc(2026, 10, 24, 22, 59), "succeeded", 40),  # 23:59 BST on the 24th
        ],
    )
    day = AnalyticsQuery.local_days(A, Mode.TEST, date(2026, 10, 24), date(2026, 10, 25), time_zone="Europe/London")
    days = (await service.analytics(day)).buckets
    assert [(b.count, b.succeeded_amount) for b in days] == [(1, 40), (3, 30)]
    hours = AnalyticsQuery.local_days(
        A, Mode.TEST, date(2026, 10, 25), date(2026, 10, 25), bucket="hour", time_zone="Europe/London"
    )
    buckets = (await service.analytics(hours)).buckets
    assert len(buckets) == 25
    assert [(b.start.utcoffset(), b.succeeded_amount) for b in buckets if b.start.hour == 1] == [
        (timedelta(hours=1), 10),
        (timedelta(0), 20),
    ]


async def test_half_hour_zone_on_the_database(database: Database, service: AnalyticsService) -> None:
    await seed(
        database,
        [
            payment(1, utc(2026, 11, 30, 18, 20), "succeeded", 10),  # 23:50 IST on 30 Nov
            payment(2, utc(2026, 11, 30, 18, 45), "succeeded", 20),  # 00:15 IST on 1 Dec
        ],
    )
    query = AnalyticsQuery.local_days(A, Mode.TEST, date(2026, 11, 30), date(2026, 12, 1), time_zone="Asia/Kolkata")
    assert [b.succeeded_amount for b in (await service.analytics(query)).buckets] == [10, 20]


async def test_overview_today_7_and_30_days(database: Database, service: AnalyticsService) -> None:
    await seed(database, ROWS)
    overview = await service.overview(A, Mode.TEST)
    assert overview.as_of == NOW
    assert overview.today.since == utc(2026, 12, 1, 21)
    today, week, month = overview.today.figures, overview.last_7_days.figures, overview.last_30_days.figures
    assert (today.count, today.succeeded, today.succeeded_amount, today.finished) == (8, 2, 1250, 6)
    # + 1, 2 and 10 (23:59:59 on 30 Nov in Nairobi); 11 is after now.
    assert (week.count, week.succeeded, week.succeeded_amount, week.finished) == (11, 4, 11349, 9)
    assert week.success_rate == pytest.approx(4 / 9)
    assert (month.count, month.succeeded, month.succeeded_amount) == (12, 5, 11350)  # + 14, not 17


async def test_an_empty_range_has_zero_buckets_and_no_rates(database: Database, service: AnalyticsService) -> None:
    await seed(database, ROWS)
    result = await service.analytics(AnalyticsQuery.local_days(B, Mode.LIVE, date(2026, 12, 1), date(2026, 12, 7)))
    assert len(result.buckets) == 7 and all(b.count == 0 and b.success_rate is None for b in result.buckets)
    assert result.failure_reasons == [] and result.top_customers == []
    assert result.settle_times.count == 0 and result.settle_times.p50 is None


async def test_durations_floor_to_the_second_alike_on_both_engines(
    database: Database, service: AnalyticsService
) -> None:
    start = datetime(2026, 12, 1, 8, 59, 59, 999999, tzinfo=UTC)
    await seed(
        database,
        [
            payment(1, start, "succeeded", 10, settle=29.999999),  # 29 s, crossing a minute and an hour
            payment(2, start, "failed", 10, settle=0.000001),  # 0 s
            payment(3, start, "expired", 10, settle=61.000001),  # 61 s
            payment(4, start, "cancelled", 10, settle=-2.5),  # completed before created (a clock ran back): 0 s
        ],
    )
    result = await service.analytics(AnalyticsQuery.local_days(A, Mode.TEST, date(2026, 12, 1), date(2026, 12, 1)))
    assert (result.settle_times.p50, result.settle_times.p90, result.settle_times.p99) == (0, 61, 61)
    assert [b.count for b in result.settle_times.histogram][:4] == [2, 1, 0, 1]
