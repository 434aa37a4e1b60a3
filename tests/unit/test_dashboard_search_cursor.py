"""The dashboard's payment search query (core/payments/search.py): validation names the field, and
the keyset cursor round-trips and refuses anything edited, truncated or made for another sort."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.payments.search import PaymentSearch, decode_cursor, encode_cursor
from mpesa_bridge.core.payments.status import PaymentStatus

BASE: dict[str, Any] = {"project_id": "prj_1", "mode": "test"}
T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def refused(param: str, **fields: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        PaymentSearch(**{**BASE, **fields})
    assert caught.value.param == param


def test_defaults_are_the_newest_fifty_of_every_status() -> None:
    q = PaymentSearch(**BASE)
    assert (q.statuses, q.sort, q.limit, q.cursor, q.after) == ((), "-created", 50, None, None)


def test_values_are_normalised() -> None:
    nairobi = timezone(timedelta(hours=3))
    q = PaymentSearch(
        **BASE,
        statuses=("succeeded", PaymentStatus.PENDING, "succeeded"),
        created_from=datetime(2026, 11, 20, 9, 0, tzinfo=nairobi),
        phone="0712 345 678",
        text="  INV-1  ",
    )
    assert q.statuses == (PaymentStatus.PENDING, PaymentStatus.SUCCEEDED)
    assert q.created_from == T0 and q.created_from.tzinfo is UTC
    assert q.phone == "254712345678"
    assert q.text == "INV-1"
    assert PaymentSearch(**BASE, text="   ").text is None


@pytest.mark.parametrize(
    ("param", "fields"),
    [
        ("project_id", {"project_id": ""}),
        ("mode", {"mode": "prod"}),
        ("statuses", {"statuses": ("paid",)}),
        ("statuses", {"statuses": "succeeded"}),
        ("created_from", {"created_from": datetime(2026, 1, 1)}),
        ("created_before", {"created_before": "2026-01-01"}),
        ("created_before", {"created_from": T0, "created_before": T0}),
        ("phone", {"phone": "12345"}),
        ("amount_min", {"amount_min": -1}),
        ("amount_min", {"amount_min": True}),
        ("amount_max", {"amount_max": 1.5}),
        ("amount_max", {"amount_min": 100, "amount_max": 99}),
        ("text", {"text": "a\x00b"}),
        ("text", {"text": "x" * 65}),
        ("text", {"text": 5}),
        ("needs_attention", {"needs_attention": "yes"}),
        ("sort", {"sort": "-updated"}),
        ("limit", {"limit": 0}),
        ("limit", {"limit": 201}),
        ("limit", {"limit": True}),
        ("cursor", {"cursor": "not-a-cursor"}),
    ],
)
def test_a_bad_field_is_refused_by_name(param: str, fields: dict[str, Any]) -> None:
    refused(param, **fields)


def test_limits_at_the_edges_are_accepted() -> None:
    assert PaymentSearch(**BASE, limit=1).limit == 1
    assert PaymentSearch(**BASE, limit=200).limit == 200
    assert PaymentSearch(**BASE, amount_min=0, amount_max=0).amount_max == 0


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("-created", ("pay_01abc",)),
        ("created", ("pay_01abc",)),
        ("-amount", (250, "pay_01abc")),
        ("amount", (0, "pay_01x")),
    ],
)
def test_a_cursor_round_trips_and_is_opaque(sort: str, key: tuple[Any, ...]) -> None:
    cursor = encode_cursor(sort, key)  # type: ignore[arg-type]
    assert decode_cursor(cursor, sort) == key
    assert PaymentSearch(**BASE, sort=sort, cursor=cursor).after == key
    assert "pay_" not in cursor  # opaque: no raw id to edit by hand


def _tamper(cursor: str) -> str:
    body, check = cursor.split(".")
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).replace(b"pay_01abc", b"pay_01abd")
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode() + "." + check


def test_edited_truncated_or_foreign_cursors_are_refused() -> None:
    good = encode_cursor("-created", ("pay_01abc",))
    bad = [
        _tamper(good),  # the id changed, the checksum kept
        good[:-2],  # truncated
        good.replace(".", ""),  # no checksum
        good + ".x",
        "",
        "a" * 300,
        "@@@.@@@",
        encode_cursor("-amount", (5, "pay_01abc")),  # made for another sort
    ]
    for cursor in bad:
        with pytest.raises(InvalidRequest) as caught:
            PaymentSearch(**BASE, cursor=cursor)
        assert caught.value.param == "cursor", cursor


def test_a_well_signed_cursor_with_the_wrong_key_shape_is_refused() -> None:
    for sort, key in (("-created", (5,)), ("-amount", ("5", "pay_1")), ("amount", (True, "pay_1")), ("created", ("",))):
        with pytest.raises(InvalidRequest):
            decode_cursor(encode_cursor(sort, key), sort)  # type: ignore[arg-type]
