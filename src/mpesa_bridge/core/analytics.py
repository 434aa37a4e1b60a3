"""Payment analytics for the dashboard: buckets in the project's time zone, failure reasons, top
payers, time to a final state, and the overview's today / 7 / 30 days.

How buckets are made. The database counts payments per *UTC slot* — an hour, or a quarter of an
hour when the zone's offset within the range is not a whole number of hours (Asia/Kolkata,
Asia/Kathmandu) — and per status; Python then gives each slot to the local day or hour it starts in.
Every UTC offset in use is a multiple of 15 minutes, so a slot never straddles a local bucket's
edge, and the regrouping is exact: for Africa/Nairobi (UTC+3 all year), and across DST
transitions (Europe/London's 23- and 25-hour days; its repeated 01:00 hour is two buckets, told
apart by their UTC offset). One query reads only the `(project, mode, created_at, status, amount)`
index and returns at most (slots x statuses) rows, whatever the number of payments; the dialect-
specific part is one expression (the slot of a timestamp), identical in meaning on both engines.

Every bucket of the range is present, empty ones as zeros, so a chart has no holes. The range is
`start` (included) to `end` (excluded), both aware UTC; `AnalyticsQuery.local_days` builds one
from local calendar days.

Success rate = succeeded / finished, finished = succeeded + failed + cancelled + expired; `pending`
and `unknown` payments are counted but not finished, and a bucket with nothing finished has no rate
(None), never 0 %.

Time to a final state is measured from `created_at` to `completed_at` in whole seconds (the
database floors each duration to a second), so percentiles (nearest rank) are exact to the second.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mpesa_bridge.core.clock import Clock, ensure_utc
from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.payments.status import FINAL_STATUSES, PaymentStatus
from mpesa_bridge.core.phone import mask_phone
from mpesa_bridge.core.projects import Mode

Bucket = Literal["day", "hour"]
DEFAULT_TIME_ZONE = "Africa/Nairobi"
MAX_DAYS = 366  # a day-bucketed range
MAX_HOURS = 31 * 24 + 1  # an hour-bucketed range (a DST month has one hour more)
TOP = 10  # failure reasons and top payers shown
HOUR = 3600
QUARTER_HOUR = 900
BAD_RANGE = "parameter_invalid"
# The histogram of time to a final state: fixed edges in seconds (the last bin is open).
SETTLE_EDGES: tuple[int, ...] = (0, 10, 30, 60, 120, 300, 900, 3600)
FAILED_STATUSES = frozenset(FINAL_STATUSES - {PaymentStatus.SUCCEEDED})


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest(f"unknown time zone {name!r}", code=BAD_RANGE, param="time_zone") from None


@dataclass(frozen=True)
class AnalyticsQuery:
    """What to analyse: one project mode, `start` (included) to `end` (excluded), aware UTC."""

    project_id: str
    mode: Mode
    start: datetime
    end: datetime
    bucket: Bucket = "day"
    time_zone: str = DEFAULT_TIME_ZONE

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", ensure_utc(self.start))
        object.__setattr__(self, "end", ensure_utc(self.end))
        if self.bucket not in ("day", "hour"):
            raise InvalidRequest("bucket must be 'day' or 'hour'", code=BAD_RANGE, param="bucket")
        zone(self.time_zone)
        if self.start >= self.end:
            raise InvalidRequest("the range must end after it starts", code=BAD_RANGE, param="start")
        limit = timedelta(hours=MAX_HOURS) if self.bucket == "hour" else timedelta(days=MAX_DAYS + 1)
        if self.end - self.start > limit:
            raise InvalidRequest(f"the range is too long for {self.bucket} buckets", code=BAD_RANGE, param="end")

    @classmethod
    def local_days(
        cls,
        project_id: str,
        mode: Mode,
        first: date,
        last: date,
        *,
        bucket: Bucket = "day",
        time_zone: str = DEFAULT_TIME_ZONE,
    ) -> AnalyticsQuery:
        """The local calendar days first … last (both included) in `time_zone`."""
        tz = zone(time_zone)
        return cls(
            project_id, mode, local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz), bucket, time_zone
        )

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.time_zone)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant a local calendar day starts (the first existing instant of that day)."""
    at = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    # Where midnight does not exist (a DST gap at 00:00) the day starts an offset-change later.
    return at if at.astimezone(tz).date() == day else at + timedelta(hours=1)


# --- what the database returns (the AnalyticsReader port) ---------------------------------------


@dataclass(frozen=True)
class Scope:
    """The payments one reader call looks at: a project mode, created in since … before (excluded)."""

    project_id: str
    mode: str
    since: datetime
    before: datetime


@dataclass(frozen=True)
class SlotTotal:
    """The payments of one status created in one UTC slot (starting at `start`)."""

    start: datetime
    status: PaymentStatus
    count: int
    amount: int


@dataclass(frozen=True)
class ReasonCount:
    reason: str
    count: int


@dataclass(frozen=True)
class PhoneTotal:
    phone: str  # the full MSISDN: masked by the service, never shown
    amount: int
    count: int


@dataclass(frozen=True)
class DurationCount:
    seconds: int
    count: int


class AnalyticsReader(Protocol):
    """The aggregate reads analytics needs; every one is scoped by project, mode and range."""

    async def slot_totals(self, scope: Scope, slot_seconds: int) -> Sequence[SlotTotal]:
        """Per UTC slot of `slot_seconds` (900 or 3600) and status: count and summed amount."""
        ...

    async def failure_reasons(self, scope: Scope, limit: int) -> Sequence[ReasonCount]:
        """Failed, cancelled and expired payments by failure_code (else result_code, else
        "unspecified"), most frequent first (ties by reason), at most `limit`."""
        ...

    async def top_payers(self, scope: Scope, limit: int) -> Sequence[PhoneTotal]:
        """Succeeded payments by phone, largest total first (then count, then phone)."""
        ...

    async def settle_durations(self, scope: Scope) -> Sequence[DurationCount]:
        """Payments in a final state with a completed_at, by whole seconds from created to completed."""
        ...


ReaderFactory = Callable[[], AbstractAsyncContextManager[AnalyticsReader]]


# --- results -----------------------------------------------------------------------------------------


def success_rate(succeeded: int, finished: int) -> float | None:
    return succeeded / finished if finished else None


@dataclass
class Figures:
    """Counts of a set of payments: all of them, the finished, the succeeded and their amount."""

    count: int = 0
    finished: int = 0
    succeeded: int = 0
    succeeded_amount: int = 0

    def add(self, status: PaymentStatus, count: int, amount: int) -> None:
        self.count += count
        if status in FINAL_STATUSES:
            self.finished += count
        if status is PaymentStatus.SUCCEEDED:
            self.succeeded += count
            self.succeeded_amount += amount

    @property
    def success_rate(self) -> float | None:
        return success_rate(self.succeeded, self.finished)


@dataclass
class BucketFigures(Figures):
    """One local day or hour: `start` and `end` are aware datetimes in the query's time zone."""

    start: datetime = field(default=datetime.min.replace(tzinfo=UTC))
    end: datetime = field(default=datetime.min.replace(tzinfo=UTC))


@dataclass(frozen=True)
class CustomerFigures:
    phone: str  # masked (core.phone.mask_phone)
    amount: int
    count: int


@dataclass(frozen=True)
class HistogramBin:
    low: int  # seconds, included
    high: int | None  # seconds, excluded; None: no upper edge
    count: int

    @property
    def label(self) -> str:
        return f"≥ {_duration(self.low)}" if self.high is None else f"{_duration(self.low)}\u2013{_duration(self.high)}"


@dataclass(frozen=True)
class SettleTimes:
    count: int
    p50: int | None  # seconds
    p90: int | None
    p99: int | None
    histogram: tuple[HistogramBin, ...]


@dataclass(frozen=True)
class Analytics:
    query: AnalyticsQuery
    buckets: list[BucketFigures]
    total: Figures
    failure_reasons: list[ReasonCount]
    top_customers: list[CustomerFigures]
    settle_times: SettleTimes


@dataclass(frozen=True)
class Period:
    """One overview period: local midnight `days - 1` days ago until now."""

    label: str
    since: datetime  # aware, in the time zone
    until: datetime
    figures: Figures


@dataclass(frozen=True)
class Overview:
    time_zone: str
    as_of: datetime
    today: Period
    last_7_days: Period
    last_30_days: Period


# --- pure computations ---------------------------------------------------------------------------------


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    if seconds < HOUR:
        return f"{seconds // 60} min"
    return f"{seconds // HOUR} h"


def slot_seconds(tz: ZoneInfo, start: datetime, end: datetime) -> int:
    """An hour when every offset the zone uses in start … end is whole hours, else 15 minutes."""
    at = start.replace(minute=0, second=0, microsecond=0)
    while at < end:
        offset = at.astimezone(tz).utcoffset() or timedelta(0)
        if offset.total_seconds() % HOUR:
            return QUARTER_HOUR
        at += timedelta(hours=1)
    return HOUR


def _floor(at: datetime, seconds: int) -> datetime:
    stamp = int(at.timestamp())
    return datetime.fromtimestamp(stamp - stamp % seconds, UTC)


def _bucket_key(slot_start: datetime, tz: ZoneInfo, bucket: Bucket) -> tuple[object, ...]:
    local = slot_start.astimezone(tz)
    if bucket == "day":
        return (local.date(),)
    # A repeated local hour (DST ends) is two buckets: the offset tells them apart.
    return (local.date(), local.hour, local.utcoffset())


def _slots(start: datetime, end: datetime, seconds: int) -> Iterator[datetime]:
    at = _floor(start, seconds)
    while at < end:
        yield at
        at += timedelta(seconds=seconds)


def regroup(
    slots: Iterable[SlotTotal], *, start: datetime, end: datetime, tz: ZoneInfo, bucket: Bucket, slot: int
) -> list[BucketFigures]:
    """Every local bucket of start … end, oldest first, with the slots' totals added to theirs.

    A bucket starts at its first slot and ends where the next one starts (or at the range's end), so
    a DST day is 23 or 25 hours long and a bucket cut by the range is only the part inside it."""
    buckets: dict[tuple[object, ...], BucketFigures] = {}
    by_slot: dict[datetime, BucketFigures] = {}
    for at in _slots(start, end, slot):
        key = _bucket_key(at, tz, bucket)
        if key not in buckets:
            buckets[key] = BucketFigures(start=max(at, start).astimezone(tz))
        by_slot[at] = buckets[key]
    ordered = list(buckets.values())
    for current, following in zip(ordered, [*ordered[1:], None], strict=True):
        current.end = (following.start if following is not None else end).astimezone(tz)
    for row in slots:
        figures = by_slot.get(_floor(row.start, slot))
        if figures is not None:  # the database's scope is the range: a stray slot is not ours
            figures.add(row.status, row.count, row.amount)
    return ordered


def percentile(durations: Sequence[DurationCount], q: float) -> int | None:
    """The nearest-rank percentile (q in 0..1] of a distribution given as (seconds, count)."""
    total = sum(d.count for d in durations)
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for d in sorted(durations, key=lambda d: d.seconds):
        seen += d.count
        if seen >= rank:
            return d.seconds
    raise AssertionError("unreachable: the ranks add up to the total")


def histogram(durations: Sequence[DurationCount], edges: Sequence[int] = SETTLE_EDGES) -> tuple[HistogramBin, ...]:
    highs: list[int | None] = [*edges[1:], None]
    counts = [0] * len(edges)
    for d in durations:
        seconds = max(d.seconds, edges[0])
        index = max(i for i, low in enumerate(edges) if seconds >= low)
        counts[index] += d.count
    return tuple(HistogramBin(low, high, n) for low, high, n in zip(edges, highs, counts, strict=True))


def settle_times(durations: Sequence[DurationCount]) -> SettleTimes:
    clamped = [DurationCount(max(d.seconds, 0), d.count) for d in durations]  # clocks never run back
    return SettleTimes(
        count=sum(d.count for d in clamped),
        p50=percentile(clamped, 0.50),
        p90=percentile(clamped, 0.90),
        p99=percentile(clamped, 0.99),
        histogram=histogram(clamped),
    )


def total(buckets: Iterable[Figures]) -> Figures:
    whole = Figures()
    for b in buckets:
        whole.count += b.count
        whole.finished += b.finished
        whole.succeeded += b.succeeded
        whole.succeeded_amount += b.succeeded_amount
    return whole


# --- the service ---------------------------------------------------------------------------------------


class AnalyticsService:
    """Analytics of one project mode, read through `read()` (a read-only reader per call)."""

    def __init__(self, read: ReaderFactory, clock: Clock) -> None:
        self._read = read
        self._clock = clock

    async def analytics(self, query: AnalyticsQuery) -> Analytics:
        tz = query.zone
        slot = slot_seconds(tz, query.start, query.end)
        scope = Scope(query.project_id, query.mode.value, query.start, query.end)
        async with self._read() as reader:
            slots = await reader.slot_totals(scope, slot)
            reasons = await reader.failure_reasons(scope, TOP)
            payers = await reader.top_payers(scope, TOP)
            durations = await reader.settle_durations(scope)
        buckets = regroup(slots, start=query.start, end=query.end, tz=tz, bucket=query.bucket, slot=slot)
        return Analytics(
            query=query,
            buckets=buckets,
            total=total(buckets),
            failure_reasons=list(reasons),
            top_customers=[CustomerFigures(mask_phone(p.phone), p.amount, p.count) for p in payers],
            settle_times=settle_times(durations),
        )

    async def overview(self, project_id: str, mode: Mode, time_zone: str = DEFAULT_TIME_ZONE) -> Overview:
        """Today, the last 7 and the last 30 local days (today included), up to now included."""
        tz = zone(time_zone)
        now = ensure_utc(self._clock.now())
        before = now + timedelta(microseconds=1)
        today = now.astimezone(tz).date()
        starts = {days: local_midnight(today - timedelta(days=days - 1), tz) for days in (1, 7, 30)}
        slot = slot_seconds(tz, starts[30], before)
        async with self._read() as reader:
            slots = await reader.slot_totals(Scope(project_id, mode.value, starts[30], before), slot)
        periods: dict[int, Figures] = {days: Figures() for days in starts}
        for row in slots:
            for days, since in starts.items():
                if row.start >= since:  # a period starts at a local midnight: a slot boundary
                    periods[days].add(row.status, row.count, row.amount)
        local_now = now.astimezone(tz)

        def period(days: int, label: str) -> Period:
            return Period(label, starts[days].astimezone(tz), local_now, periods[days])

        return Overview(time_zone, local_now, period(1, "today"), period(7, "last 7 days"), period(30, "last 30 days"))
