"""The go-live doctor's verdicts (`core/golive.py`): facts in, a check in plain words out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mpesa_bridge.core import golive
from mpesa_bridge.core.golive import Status
from mpesa_bridge.core.projects import DarajaEnvironment, ShortcodeType

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("offset", "status"),
    [(0, Status.OK), (29, Status.OK), (-45, Status.WARN), (301, Status.FAIL), (-3600, Status.FAIL)],
)
def test_clock_skew_against_darajas_date(offset: int, status: Status) -> None:
    check = golive.clock_skew(NOW + timedelta(seconds=offset), NOW, "Daraja")
    assert check.status is status
    if offset:
        assert ("ahead of" if offset > 0 else "behind") in check.detail


def test_no_date_header_is_said_not_checked() -> None:
    assert golive.clock_skew(NOW, None, "Daraja").status is Status.SKIPPED


@pytest.mark.parametrize(
    ("url", "addresses", "status"),
    [
        ("https://pay.example.com/cb", ["1.1.1.1", "2606:4700:4700::1111"], Status.OK),
        ("http://pay.example.com/cb", ["1.1.1.1"], Status.FAIL),
        ("https://pay.example.com/cb", ["1.1.1.1", "10.0.0.4"], Status.FAIL),
        ("https://localhost/cb", ["127.0.0.1"], Status.FAIL),
        ("https://pay.example.com/cb", ["169.254.169.254"], Status.FAIL),
        ("https://nowhere.invalid/cb", None, Status.FAIL),
    ],
)
def test_callback_url(url: str, addresses: list[str] | None, status: Status) -> None:
    assert golive.callback_url(url, addresses).status is status


def test_migrations() -> None:
    assert golive.migrations("0017", "0017").status is Status.OK
    behind = golive.migrations("0016", "0017")
    assert behind.status is Status.FAIL and "db upgrade" in behind.fix
    assert "never migrated" in golive.migrations(None, "0017").detail


def test_environment_mismatch() -> None:
    prod = DarajaEnvironment.PRODUCTION
    good = golive.environment_mismatch(prod, "https://api.safaricom.co.ke", "600100", "p", "s")
    assert good.status is Status.OK
    assert golive.environment_mismatch(prod, "https://sandbox.safaricom.co.ke", "600100", "p", "s").status is (
        Status.FAIL
    )
    assert golive.environment_mismatch(prod, "https://api.safaricom.co.ke", "174379", "p", "s").status is Status.FAIL
    sandbox = golive.environment_mismatch(DarajaEnvironment.SANDBOX, "https://api.safaricom.co.ke", "1", "p", "s")
    assert sandbox.status is Status.FAIL


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("[MerchantValidate] - Wrong credentials", Status.FAIL),
        ("Merchant does not exist", Status.FAIL),
        ("Bad Request - Invalid CheckoutRequestID", Status.OK),
        ("The transaction is being processed", Status.OK),
        (None, Status.OK),
    ],
)
def test_pairing_from_the_query_answer(message: str | None, status: Status) -> None:
    assert golive.pairing(ShortcodeType.PAYBILL, message, reached=True).status is status


def test_pairing_without_an_answer_is_not_checked() -> None:
    check = golive.pairing(ShortcodeType.PAYBILL, None, reached=False, other="Daraja unreachable")
    assert check.status is Status.SKIPPED and "Daraja unreachable" in check.detail


def test_till_or_paybill() -> None:
    assert golive.till_or_paybill(ShortcodeType.PAYBILL, "600100", None, "s").status is Status.OK
    assert golive.till_or_paybill(ShortcodeType.TILL, "600200", "5550001", "s").status is Status.OK
    assert golive.till_or_paybill(ShortcodeType.TILL, "600200", "600200", "s").status is Status.WARN
    assert golive.till_or_paybill(ShortcodeType.TILL, "600200", None, "s").status is Status.FAIL


def test_master_key_backup() -> None:
    assert golive.master_key_backup(None, [], "abcd1234", NOW, live=True).status is Status.FAIL
    assert golive.master_key_backup(None, [], "abcd1234", NOW, live=False).status is Status.WARN
    fresh = golive.master_key_backup(NOW - timedelta(hours=2), ["abcd1234"], "abcd1234", NOW, live=True)
    assert fresh.status is Status.OK
    old = golive.master_key_backup(NOW - timedelta(days=3), ["abcd1234"], "abcd1234", NOW, live=True)
    assert old.status is Status.WARN
    other = golive.master_key_backup(NOW, ["0badc0de"], "abcd1234", NOW, live=True)
    assert other.status is Status.FAIL


def test_reachability() -> None:
    assert golive.reachability("https://x/healthz", None, None).status is Status.SKIPPED
    assert golive.reachability("https://x/healthz", "https://check", 200).status is Status.OK
    assert golive.reachability("https://x/healthz", "https://check", None, "timeout").status is Status.FAIL
    assert golive.reachability("https://x/healthz", "https://check", 502).status is Status.FAIL
