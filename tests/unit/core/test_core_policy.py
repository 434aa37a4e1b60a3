"""Reconcile timing rules (`core.payments.policy.ReconcilePolicy`)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpesa_bridge.core.payments.policy import ReconcilePolicy


def test_defaults() -> None:
    policy = ReconcilePolicy()
    assert policy.query_delay == 60.0
    assert policy.max_age == 600.0
    assert policy.backoff == (15.0, 30.0, 60.0)
    assert policy.unknown_backoff == (60.0, 300.0, 900.0)
    assert policy.push_grace == 120.0
    assert policy.match_window == 86_400.0


@pytest.mark.parametrize(("attempts", "delay"), [(0, 15.0), (1, 30.0), (2, 60.0), (3, 60.0), (50, 60.0)])
def test_pending_backoff_repeats_its_last_step(attempts: int, delay: float) -> None:
    assert ReconcilePolicy().next_delay(attempts) == delay


@pytest.mark.parametrize(("attempts", "delay"), [(0, 60.0), (1, 300.0), (2, 900.0), (3, 900.0), (1000, 900.0)])
def test_unknown_backoff_is_slower(attempts: int, delay: float) -> None:
    assert ReconcilePolicy().next_delay(attempts, unknown=True) == delay


def test_custom_steps() -> None:
    policy = ReconcilePolicy(backoff=(5.0,), unknown_backoff=(1.0, 2.0))
    assert [policy.next_delay(n) for n in range(3)] == [5.0, 5.0, 5.0]
    assert [policy.next_delay(n, unknown=True) for n in range(3)] == [1.0, 2.0, 2.0]


def test_the_policy_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ReconcilePolicy().max_age = 1.0  # type: ignore[misc]


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=10_000), st.booleans())
def test_delays_never_shrink_and_come_from_the_steps(attempts: int, unknown: bool) -> None:
    policy = ReconcilePolicy()
    steps = policy.unknown_backoff if unknown else policy.backoff
    delay = policy.next_delay(attempts, unknown=unknown)
    assert delay in steps
    assert policy.next_delay(attempts + 1, unknown=unknown) >= delay
