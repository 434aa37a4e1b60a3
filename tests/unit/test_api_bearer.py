"""`Authorization: Bearer …` is read by one function for the routes, the SSE streams and the rate limiter."""

from __future__ import annotations

import pytest

from mpesa_bridge.api.bearer import bearer_token, scope_bearer_token


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer sk_test_1", "sk_test_1"),
        ("bearer sk_test_1", "sk_test_1"),
        ("BEARER   sk_test_1  ", "sk_test_1"),
        ("Bearer ", None),
        ("Bearer", None),
        ("Basic dXNlcjpwYXNz", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_the_scope_reader_takes_the_first_authorization_header_whatever_its_case() -> None:
    scope = {"headers": [(b"accept", b"*/*"), (b"Authorization", b"Bearer sk_a"), (b"authorization", b"Bearer sk_b")]}
    assert scope_bearer_token(scope) == "sk_a"
    assert scope_bearer_token({"headers": [(b"authorization", b"Basic x")]}) is None
    assert scope_bearer_token({"headers": []}) is None
