"""GET /v1/payments/totals — per Africa/Nairobi day — and the list's time filters, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mpesa_bridge.core.clock import ManualClock
from tests.fixtures.bridge import InProcessBridge, Tenant

# 20:30 UTC is 23:30 in Nairobi: an hour later it is the next day there, still the same day in UTC.
START = datetime(2026, 3, 10, 20, 30, tzinfo=UTC)
SUCCEEDS, CANCELS, FAILS = "0708374149", "0700001032", "0700000001"
STATUSES = ("pending", "unknown", "succeeded", "failed", "cancelled", "expired")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


async def _pay(bridge: InProcessBridge, tenant: Tenant, phone: str, amount: int, status: str) -> dict[str, Any]:
    created = await bridge.pay(tenant, phone=phone, amount=amount)
    return await bridge.wait_status(tenant, created["id"], status)


async def _totals(bridge: InProcessBridge, tenant: Tenant, mode: str = "test", **params: Any) -> dict[str, Any]:
    response = await bridge.client.get("/v1/payments/totals", params=params, headers=tenant.headers(mode))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _zeros() -> dict[str, int]:
    return dict.fromkeys(STATUSES, 0)


async def test_totals_count_each_payment_on_its_nairobi_day(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    await _pay(bridge, shop, SUCCEEDS, 100, "succeeded")  # 23:30 on the 10th in Nairobi
    await _pay(bridge, shop, CANCELS, 40, "cancelled")
    bridge.clock.advance(3600)  # 00:30 on the 11th in Nairobi, still the 10th in UTC
    await _pay(bridge, shop, SUCCEEDS, 250, "succeeded")
    await _pay(bridge, shop, SUCCEEDS, 7, "succeeded")
    await _pay(bridge, shop, FAILS, 900, "failed")

    body = await _totals(bridge, shop, days=3)

    assert body["object"] == "payment_totals"
    assert body["time_zone"] == "Africa/Nairobi" and body["currency"] == "KES"
    assert [d["date"] for d in body["data"]] == ["2026-03-09", "2026-03-10", "2026-03-11"]
    quiet, tenth, eleventh = body["data"]
    assert quiet == {
        "date": "2026-03-09",
        "count": 0,
        "succeeded_count": 0,
        "succeeded_amount": 0,
        "by_status": _zeros(),
    }
    assert tenth["count"] == 2 and tenth["succeeded_count"] == 1 and tenth["succeeded_amount"] == 100
    assert tenth["by_status"] == {**_zeros(), "succeeded": 1, "cancelled": 1}
    assert eleventh["count"] == 3 and eleventh["succeeded_count"] == 2 and eleventh["succeeded_amount"] == 257
    assert eleventh["by_status"] == {**_zeros(), "succeeded": 2, "failed": 1}
    assert body["total"] == {
        "count": 5,
        "succeeded_count": 3,
        "succeeded_amount": 357,
        "by_status": {**_zeros(), "succeeded": 3, "cancelled": 1, "failed": 1},
    }
    # The window: from midnight in Nairobi two days before today, to now.
    assert body["created_gte"] == "2026-03-08T21:00:00Z"
    assert datetime.fromisoformat(body["created_lte"]) == bridge.clock.now()


async def test_the_default_window_is_the_last_30_nairobi_days(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    await _pay(bridge, shop, SUCCEEDS, 10, "succeeded")
    bridge.clock.advance(29 * 86400)
    await _pay(bridge, shop, SUCCEEDS, 20, "succeeded")

    body = await _totals(bridge, shop)
    later = await _totals(bridge, shop, days=1)

    assert len(body["data"]) == 30
    assert body["data"][0]["date"] == "2026-03-10" and body["data"][-1]["date"] == "2026-04-08"
    assert body["data"][0]["succeeded_amount"] == 10 and body["data"][-1]["succeeded_amount"] == 20
    assert body["total"]["succeeded_amount"] == 30
    assert [d["date"] for d in later["data"]] == ["2026-04-08"] and later["total"]["succeeded_amount"] == 20


async def test_a_created_range_counts_what_the_list_shows(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    made = []
    for i in range(6):
        made.append(await _pay(bridge, shop, SUCCEEDS, 10 + i, "succeeded"))
        bridge.clock.advance(1800)
    window = {"created_gte": made[0]["created_at"], "created_lte": made[3]["created_at"]}  # both ends included

    body = await _totals(bridge, shop, **window)
    listed = (await bridge.client.get("/v1/payments", params=window, headers=shop.headers())).json()["data"]
    only_lte = await _totals(bridge, shop, created_lte=made[1]["created_at"])

    assert [p["id"] for p in listed] == [p["id"] for p in reversed(made[0:4])]
    assert body["total"]["count"] == 4 and body["total"]["succeeded_amount"] == sum(p["amount"] for p in listed)
    assert body["created_gte"] == made[0]["created_at"] and body["created_lte"] == made[3]["created_at"]
    assert [d["date"] for d in body["data"]] == ["2026-03-10", "2026-03-11"]  # 23:30, then 00:00 onwards
    assert [d["count"] for d in body["data"]] == [1, 3]
    assert len(only_lte["data"]) == 30 and only_lte["total"]["count"] == 2  # 30 days up to created_lte


async def test_totals_are_the_keys_own_project_and_mode(bridge: InProcessBridge) -> None:
    shop, other = await bridge.create_project("Shop"), await bridge.create_project("Other")
    await _pay(bridge, shop, SUCCEEDS, 100, "succeeded")
    await _pay(bridge, other, SUCCEEDS, 5, "succeeded")

    mine, theirs = await _totals(bridge, shop, days=1), await _totals(bridge, other, days=1)
    live = await _totals(bridge, shop, mode="live", days=1)  # no Daraja settings needed to read

    assert mine["total"]["succeeded_amount"] == 100 and mine["total"]["count"] == 1
    assert theirs["total"]["succeeded_amount"] == 5 and theirs["total"]["count"] == 1
    assert live["total"]["count"] == 0


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("days=0", "days"),
        ("days=367", "days"),
        ("days=-1", "days"),
        ("days=thirty", "days"),
        ("days=7&created_gte=2026-03-01T00:00:00Z", "days"),
        ("created_gte=2026-03-01T00:00:00", "created_gte"),  # no time zone
        ("created_lte=yesterday", "created_lte"),
        ("created_gte=2026-03-05T00:00:00Z&created_lte=2026-03-01T00:00:00Z", "created_gte"),
        ("created_gte=2025-01-01T00:00:00Z&created_lte=2026-03-01T00:00:00Z", "created_gte"),  # > 366 days
        ("created_gte=2030-01-01T00:00:00Z", "created_gte"),  # after now
        ("created_lte=0001-01-01T00:00:00Z", "created_lte"),  # 30 days before it is no date at all
        ("created_gte=9999-12-31T23:59:59.999999Z&created_lte=9999-12-31T23:59:59.999999Z", "created_gte"),
    ],
)
async def test_bad_totals_windows_are_a_400_naming_the_parameter(
    bridge: InProcessBridge, query: str, param: str
) -> None:
    shop = await bridge.create_project()
    response = await bridge.client.get(f"/v1/payments/totals?{query}", headers=shop.headers())
    assert response.status_code == 400, (query, response.text)
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error", (query, error)
    no_zone = query.startswith("created_gte=2026-03-01T00:00:00") and "Z" not in query
    assert error["code"] == ("invalid_request" if no_zone else "parameter_invalid"), (query, error)


async def test_totals_need_a_key(bridge: InProcessBridge) -> None:
    response = await bridge.client.get("/v1/payments/totals")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


async def test_time_filters_and_cursors_agree_with_created_at_across_days(bridge: InProcessBridge) -> None:
    """The list turns created_gte/created_lte into id bounds as well: the answers must not change."""
    shop = await bridge.create_project()
    payments = []
    for i in range(12):
        phone, status = (CANCELS, "cancelled") if i % 3 == 0 else (SUCCEEDS, "succeeded")
        payments.append(await _pay(bridge, shop, phone, 1 + i, status))
        bridge.clock.advance(5 * 3600 + 0.0005 * i)  # uneven steps, sub-millisecond parts included
    at = [datetime.fromisoformat(p["created_at"]) for p in payments]
    windows: list[dict[str, Any]] = [
        {"created_gte": payments[3]["created_at"]},
        {"created_lte": payments[7]["created_at"]},
        {"created_gte": payments[2]["created_at"], "created_lte": payments[9]["created_at"], "status": "succeeded"},
        {"created_gte": (at[5] + timedelta(microseconds=1)).isoformat(), "created_lte": payments[5]["created_at"]},
        {"created_gte": (at[5] - timedelta(microseconds=1)).isoformat(), "created_lte": payments[5]["created_at"]},
    ]
    for window in windows:
        expected = [
            p["id"]
            for p, created in zip(reversed(payments), reversed(at), strict=True)
            if ("created_gte" not in window or created >= datetime.fromisoformat(window["created_gte"]))
            and ("created_lte" not in window or created <= datetime.fromisoformat(window["created_lte"]))
            and ("status" not in window or p["status"] == window["status"])
        ]
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params = {**window, "limit": 2, **({"starting_after": cursor} if cursor else {})}
            page = (await bridge.client.get("/v1/payments", params=params, headers=shop.headers())).json()
            seen += [p["id"] for p in page["data"]]
            cursor = page["next_cursor"]
            if not page["has_more"]:
                break
        assert seen == expected, window
