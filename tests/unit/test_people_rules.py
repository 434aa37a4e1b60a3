"""The people rules that are data: password strength, the lockout schedule, who may do what."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.people.entity import DashboardSession, Role, User, at_least
from mpesa_bridge.core.people.passwords import PasswordHasher, check_strength
from mpesa_bridge.core.people.service import Identity, PeoplePolicy, digest, normalise_email
from mpesa_bridge.dashboard.pages.access import safe_next

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("password", "email", "why"),
    [
        ("short", "", "at least 10"),
        ("x" * 257, "", "at most 256"),
        ("1234567890", "", "too easy"),
        ("aaaaaaaaaaaa", "", "too easy"),
        ("PASSWORD123", "", "too easy"),
        ("wanjiku-2026-pay", "wanjiku@example.com", "your email"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password: str, email: str, why: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_strength(password, email)
    assert why in refused.value.message and refused.value.param == "password"


def test_a_long_uncommon_password_is_accepted() -> None:
    check_strength("correct horse battery staple", "wanjiku@example.com")


def test_the_hasher_verifies_and_refuses() -> None:
    hasher = PasswordHasher(time_cost=1, memory_cost=1024)
    stored = hasher.hash("correct horse battery staple")
    assert stored.startswith("$argon2id$")
    assert hasher.verify(stored, "correct horse battery staple")
    assert not hasher.verify(stored, "wrong horse battery staple")
    assert not hasher.verify(None, "correct horse battery staple")  # unknown email: a decoy, never True
    assert not hasher.verify("not a hash", "x")
    assert PasswordHasher(time_cost=2, memory_cost=2048).needs_rehash(stored)


def test_the_lockout_waits_double_from_the_third_failure_up_to_fifteen_minutes() -> None:
    policy = PeoplePolicy()
    waits = [policy.lock_for(n).total_seconds() for n in range(1, 13)]
    assert waits == [0, 0, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900]


def test_roles_rank_and_the_admin_owns_everything() -> None:
    assert at_least(Role.OWNER, Role.DEVELOPER) and not at_least(Role.VIEWER, Role.DEVELOPER)
    session = DashboardSession("s", "u", "c", NOW, NOW, NOW + timedelta(hours=1))
    person = User("u", "a@example.com", "", "h", False, NOW, NOW)
    identity = Identity(person, session, {"proj_a": Role.VIEWER})
    assert identity.can("proj_a", Role.VIEWER) and not identity.can("proj_a", Role.DEVELOPER)
    assert identity.role_in("proj_b") is None
    admin = Identity(User("v", "b@example.com", "", "h", True, NOW, NOW), session)
    assert admin.role_in("proj_b") == Role.OWNER


def test_emails_are_normalised_or_refused() -> None:
    assert normalise_email("  Wanjiku@Example.COM ") == "wanjiku@example.com"
    for bad in ("", "no-at-sign", "a@b", "a b@example.com"):
        with pytest.raises(InvalidRequest):
            normalise_email(bad)


def test_session_ids_are_digests_of_the_cookie() -> None:
    assert digest("token") == digest("token") != digest("token2") and len(digest("token")) == 64


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/dashboard/payments?x=1", "/dashboard/payments?x=1"),
        (None, "/dashboard/"),
        ("//evil.example", "/dashboard/"),
        ("https://evil.example/dashboard", "/dashboard/"),
        ("/dashboard\\evil", "/dashboard/"),
        ("/v1/payments", "/dashboard/"),
    ],
)
def test_only_dashboard_paths_are_followed_after_sign_in(target: str | None, safe: str) -> None:
    assert safe_next(target) == safe
