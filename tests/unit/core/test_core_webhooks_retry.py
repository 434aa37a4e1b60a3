"""The webhook retry schedule (`core.webhooks.retry.RetryPolicy`), driven by an injected clock and random."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from mpesa_bridge.core.clock import ManualClock
from mpesa_bridge.core.webhooks.retry import DEFAULT_DELAYS, RetryPolicy

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = 86_400.0


def middle() -> float:
    return 0.5  # no jitter


@pytest.mark.parametrize(
    ("failed", "rand", "delay"),
    [
        (1, 0.5, 5.0),
        (2, 0.5, 30.0),
        (3, 0.5, 120.0),
        (4, 0.5, 600.0),
        (5, 0.5, 1_800.0),
        (6, 0.5, 3_600.0),
        (7, 0.5, 7_200.0),
        (8, 0.5, 14_400.0),
        (9, 0.5, 28_800.0),
        (10, 0.5, 43_200.0),
        (11, 0.5, 43_200.0),  # the last delay repeats
        (500, 0.5, 43_200.0),
        (1, 0.0, 4.5),  # -10 %
        (1, 0.999_999, 5.499_999),  # just under +10 %
        (10, 0.0, 38_880.0),
        (10, 0.75, 45_360.0),
    ],
)
def test_delay_table(failed: int, rand: float, delay: float) -> None:
    assert RetryPolicy().delay(failed, rand) == pytest.approx(delay)


def test_the_schedule_of_a_delivery_that_always_fails() -> None:
    """With the manual clock standing in for time: every try, relative to the first, then giving up."""
    policy, clock = RetryPolicy(), ManualClock(T0)
    tries, failed = [0.0], 0
    while True:
        failed += 1
        due = policy.next_attempt(failed, T0, clock.now(), middle)
        if due is None:
            break
        clock.advance((due - clock.now()).total_seconds())
        tries.append((clock.now() - T0).total_seconds())
    assert tries == [0, 5, 35, 155, 755, 2555, 6155, 13355, 27755, 56555, 99755, 142955, 186155, 229355, 259200]
    assert tries[-1] == 3 * DAY  # the last try is three days after the first, then it is given up


@pytest.mark.parametrize("seed", [1, 2, 3, 42, 2026])
def test_jittered_schedules_stay_within_ten_percent_and_end_at_three_days(seed: int) -> None:
    generator = random.Random(seed)
    policy, clock = RetryPolicy(), ManualClock(T0)
    previous, failed, delays = T0, 0, []
    while (due := policy.next_attempt(failed + 1, T0, clock.now(), generator.random)) is not None:
        failed += 1
        delays.append((due - previous).total_seconds())
        clock.advance(delays[-1])
        previous = due
    assert clock.now() == T0 + timedelta(days=3)
    for n, delay in enumerate(delays[:-1]):
        base = DEFAULT_DELAYS[min(n, len(DEFAULT_DELAYS) - 1)]
        assert base * 0.9 <= delay <= base * 1.1, (n, delay)
    assert delays[-1] <= DEFAULT_DELAYS[-1] * 1.1  # the capped last one is shorter, never longer


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (T0, T0 + timedelta(seconds=5)),
        (T0 + timedelta(days=3) - timedelta(seconds=2), T0 + timedelta(days=3)),  # capped at the window's end
        (T0 + timedelta(days=3), None),
        (T0 + timedelta(days=5), None),  # a worker that was down long: the window is over
    ],
)
def test_the_window_caps_and_ends_the_retries(now: datetime, expected: datetime | None) -> None:
    assert RetryPolicy().next_attempt(1, T0, now, middle) == expected


@pytest.mark.parametrize(
    ("failing_since", "now", "exhausted"),
    [
        (None, T0 + timedelta(days=10), False),
        (T0, T0 + timedelta(days=3) - timedelta(seconds=1), False),
        (T0, T0 + timedelta(days=3), True),
        (T0, T0 + timedelta(days=4), True),
    ],
)
def test_an_endpoint_is_exhausted_after_a_whole_window_of_failures(
    failing_since: datetime | None, now: datetime, exhausted: bool
) -> None:
    assert RetryPolicy().endpoint_exhausted(failing_since, now) is exhausted


def test_a_custom_policy() -> None:
    policy = RetryPolicy(delays=(1.0, 2.0), window=10.0, jitter=0.0)
    assert [policy.delay(n, 0.9) for n in (1, 2, 3)] == [1.0, 2.0, 2.0]
    assert policy.next_attempt(3, T0, T0 + timedelta(seconds=9), middle) == T0 + timedelta(seconds=10)


@pytest.mark.parametrize("kwargs", [{"delays": ()}, {"delays": (5.0, 0.0)}, {"jitter": 1.0}, {"jitter": -0.1}])
def test_nonsense_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
