"""`core.callbacks.retry`: the schedule of a callback whose handling keeps failing, as data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mpesa_bridge.core.callbacks.retry import InboxRetryPolicy, record_failure
from mpesa_bridge.core.payments.entity import InboundCallback

AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def test_the_default_schedule_is_the_documented_one() -> None:
    policy, now, offsets = InboxRetryPolicy(), AT, []
    for failures in range(1, 11):
        due = policy.next_attempt(failures, now)
        if due is None:
            break
        now = due
        offsets.append(int((now - AT).total_seconds()))
    # The module docstring: #2 10 s, #3 30 s, … #10 1 h 25 min 10 s, then `failed`.
    assert offsets == [10, 30, 70, 150, 310, 630, 1270, 2550, 5110]
    assert policy.next_attempt(10, now) is None


def test_the_wait_doubles_up_to_the_longest() -> None:
    policy = InboxRetryPolicy(max_attempts=100, first_delay=1.0, max_delay=60.0)
    assert [policy.next_attempt(n, AT) - AT for n in (1, 2, 6, 7, 99)] == [  # type: ignore[operator]
        timedelta(seconds=s) for s in (1, 2, 32, 60, 60)
    ]


@pytest.mark.parametrize(("attempts", "delay", "longest"), [(0, 10.0, 60.0), (3, 0.0, 60.0), (3, 61.0, 60.0)])
def test_a_policy_that_never_tries_or_never_waits_is_refused(attempts: int, delay: float, longest: float) -> None:
    with pytest.raises(ValueError):
        InboxRetryPolicy(max_attempts=attempts, first_delay=delay, max_delay=longest)


def _callback() -> InboundCallback:
    return InboundCallback(id="cb_1", kind="stk", received_at=AT, body=b"{}", token_hash="0" * 64)


def test_a_failure_is_counted_and_scheduled_then_the_last_one_leaves_it_failed() -> None:
    policy, callback = InboxRetryPolicy(max_attempts=2, first_delay=5.0), _callback()

    assert record_failure(callback, "DataError", AT, policy) is False
    assert (callback.state, callback.attempts, callback.last_error) == ("received", 1, "DataError")
    assert callback.next_attempt_at == AT + timedelta(seconds=5)

    later = AT + timedelta(seconds=5)
    assert record_failure(callback, "RuntimeError", later, policy) is True
    assert (callback.state, callback.attempts, callback.last_error) == ("failed", 2, "RuntimeError")
    assert callback.processed_at == later


def test_the_error_code_is_bounded() -> None:
    callback = _callback()
    record_failure(callback, "E" * 200, AT, InboxRetryPolicy())
    assert callback.last_error == "E" * 64
