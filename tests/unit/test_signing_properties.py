"""Properties of request signing (`core.signing`): what is signed verifies, anything else never does."""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from mpesa_bridge.core.errors import AuthenticationFailed
from mpesa_bridge.core.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, MemoryReplayGuard, sign, verify

TOLERANCE = 300.0
NOW = 1_764_150_000
# Derandomized: the same examples on every run. No timing checks: a busy machine is no failure.
SETTINGS = settings(deadline=None, derandomize=True, max_examples=200, suppress_health_check=[HealthCheck.too_slow])

secrets = st.text(min_size=1, max_size=64)
methods = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"])
paths = st.text(max_size=80).map(lambda s: "/" + s)
bodies = st.binary(max_size=512)
timestamps = st.integers(min_value=0, max_value=10**12 - 1)
skews = st.floats(min_value=-TOLERANCE, max_value=TOLERANCE, allow_nan=False)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(coro: Coroutine[Any, Any, None]) -> None:
    """Drive `verify` to the end: with the in-memory guard it never has to wait for anything."""
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()
    raise AssertionError("verify suspended although nothing it awaits can block")


def check(
    secret: str,
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    *,
    now: float,
    guard: MemoryReplayGuard | None = None,
) -> None:
    run(
        verify(
            secret,
            headers,
            method,
            path,
            body,
            now=now,
            tolerance=TOLERANCE,
            replay=guard if guard is not None else MemoryReplayGuard(FakeMonotonic()),
        )
    )


def refusal(
    secret: str, headers: Mapping[str, str], method: str, path: str, body: bytes, *, now: float, **kw: Any
) -> str:
    with pytest.raises(AuthenticationFailed) as raised:
        check(secret, headers, method, path, body, now=now, **kw)
    return raised.value.code


def signed(secret: str, timestamp: str, method: str, path: str, body: bytes) -> dict[str, str]:
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, method, path, body)}


@SETTINGS
@given(secrets, methods, paths, bodies, timestamps, skews)
def test_a_signed_request_verifies_within_the_tolerance(
    secret: str, method: str, path: str, body: bytes, ts: int, skew: float
) -> None:
    headers = signed(secret, str(ts), method, path, body)
    check(secret, headers, method, path, body, now=ts + skew)  # raises if refused


@SETTINGS
# (A hundredth of a second past the edge: near 10^12 a float's own resolution is about 10^-4 s.)
@given(secrets, methods, paths, bodies, timestamps, st.floats(min_value=TOLERANCE + 0.01, max_value=1e6), st.booleans())
def test_outside_the_tolerance_it_is_refused(
    secret: str, method: str, path: str, body: bytes, ts: int, skew: float, ahead: bool
) -> None:
    headers = signed(secret, str(ts), method, path, body)
    now = ts - skew if ahead else ts + skew
    assert refusal(secret, headers, method, path, body, now=now) == "signature_timestamp_out_of_range"


@SETTINGS
@given(secrets, methods, paths, st.binary(min_size=1, max_size=512), timestamps, st.data())
def test_flipping_any_byte_of_the_body_is_refused(
    secret: str, method: str, path: str, body: bytes, ts: int, data: st.DataObject
) -> None:
    headers = signed(secret, str(ts), method, path, body)
    index = data.draw(st.integers(min_value=0, max_value=len(body) - 1), label="index")
    mask = data.draw(st.integers(min_value=1, max_value=255), label="mask")
    tampered = body[:index] + bytes([body[index] ^ mask]) + body[index + 1 :]

    assert refusal(secret, headers, method, path, tampered, now=ts) == "signature_invalid"
    check(secret, headers, method, path, body, now=ts)  # the control: the untouched body passes


@SETTINGS
@given(secrets, methods, paths, paths, bodies, timestamps)
def test_another_path_is_refused(secret: str, method: str, path: str, other: str, body: bytes, ts: int) -> None:
    assume(other != path)
    headers = signed(secret, str(ts), method, path, body)
    assert refusal(secret, headers, method, other, body, now=ts) == "signature_invalid"


@SETTINGS
@given(secrets, methods, methods, paths, bodies, timestamps)
def test_another_method_is_refused(secret: str, method: str, other: str, path: str, body: bytes, ts: int) -> None:
    assume(other != method)
    headers = signed(secret, str(ts), method, path, body)
    assert refusal(secret, headers, other, path, body, now=ts) == "signature_invalid"


@SETTINGS
@given(secrets, methods, paths, bodies, st.integers(min_value=1_000, max_value=10**11 - 1), st.integers(-300, 300))
def test_another_timestamp_is_refused(secret: str, method: str, path: str, body: bytes, ts: int, shift: int) -> None:
    assume(shift != 0)
    signature = sign(secret, str(ts), method, path, body)
    for forged in (str(ts + shift), "0" + str(ts)):  # a moved timestamp; the same instant spelled otherwise
        headers = {TIMESTAMP_HEADER: forged, SIGNATURE_HEADER: signature}
        assert refusal(secret, headers, method, path, body, now=ts) == "signature_invalid"


@SETTINGS
@given(secrets, secrets, methods, paths, bodies, timestamps)
def test_another_secret_is_refused(secret: str, other: str, method: str, path: str, body: bytes, ts: int) -> None:
    assume(other != secret)
    headers = signed(other, str(ts), method, path, body)
    assert refusal(secret, headers, method, path, body, now=ts) == "signature_invalid"


@SETTINGS
@given(secrets, methods, paths, bodies, timestamps, skews, st.floats(min_value=0, max_value=10 * TOLERANCE))
def test_a_replay_is_refused_whenever_it_comes(
    secret: str, method: str, path: str, body: bytes, ts: int, skew: float, later: float
) -> None:
    monotonic = FakeMonotonic()
    guard = MemoryReplayGuard(monotonic)
    headers = signed(secret, str(ts), method, path, body)
    check(secret, headers, method, path, body, now=ts + skew, guard=guard)

    # Wall clock and monotonic clock move on together by `later` seconds, then the same request again.
    monotonic.now += later
    now = ts + skew + later
    code = refusal(secret, headers, method, path, body, now=now, guard=guard)

    if abs(now - ts) <= TOLERANCE:
        assert code == "signature_replayed"
    else:
        assert code == "signature_timestamp_out_of_range"  # the guard may forget what the window refuses


def test_the_replay_guard_forgets_only_after_its_ttl() -> None:
    monotonic = FakeMonotonic()
    guard = MemoryReplayGuard(monotonic)

    def first_use(signature: str) -> bool:
        result: list[bool] = []

        async def probe() -> None:
            result.append(await guard.first_use(signature, 600))

        run(probe())
        return result[0]

    assert first_use("v1=aa") is True
    assert first_use("v1=bb") is True  # another signature is its own
    monotonic.now += 599
    assert first_use("v1=aa") is False
    monotonic.now += 2
    assert first_use("v1=aa") is True


HEADER_TEXT = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(10**14), max_value=10**14).map(str),
    st.just(str(NOW)),
    st.text(max_size=70).map(lambda s: "v1=" + s),
    st.lists(st.text(max_size=20), max_size=4).map(", ".join),
)


def _only_authentication_failed(timestamp: str | None, signature: str | None, secret: str, body: bytes) -> None:
    headers = {}
    if timestamp is not None:
        headers[TIMESTAMP_HEADER] = timestamp
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    try:
        check(secret, headers, "POST", "/v1/payments", body, now=NOW)
    except AuthenticationFailed:
        return
    # Arbitrary headers can only pass by carrying the right signature (a 2^-256 event here).
    assert headers.get(SIGNATURE_HEADER) == sign(secret, headers[TIMESTAMP_HEADER], "POST", "/v1/payments", body)


ascii_text = st.text(alphabet=st.characters(max_codepoint=127), max_size=70)


@SETTINGS
@given(st.one_of(st.none(), ascii_text, st.just(str(NOW))), st.one_of(st.none(), ascii_text), secrets, bodies)
def test_verify_raises_only_authentication_failed_for_ascii_headers(
    timestamp: str | None, signature: str | None, secret: str, body: bytes
) -> None:
    _only_authentication_failed(timestamp, signature, secret, body)


@SETTINGS
@given(st.one_of(st.none(), HEADER_TEXT), st.one_of(st.none(), HEADER_TEXT), secrets, bodies)
@example(timestamp="²", signature="v1=00", secret="s", body=b"")
@example(timestamp=str(NOW), signature="v1=é", secret="s", body=b"")
def test_verify_raises_only_authentication_failed_for_any_header_text(
    timestamp: str | None, signature: str | None, secret: str, body: bytes
) -> None:
    _only_authentication_failed(timestamp, signature, secret, body)
