"""Payment link validation (core/links/validation.py): pure functions, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.links.validation import validate_link_changes, validate_link_create
from mpesa_bridge.core.payments.validation import PaymentLimits

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def create(**overrides: Any) -> Any:
    values: dict[str, Any] = {
        "title": "Fees",
        "description": None,
        "amount": 100,
        "amount_min": None,
        "amount_max": None,
        "active": None,
        "expires_at": None,
        "max_payments": None,
        "collect": None,
        "metadata": None,
        "limits": PaymentLimits(),
        "now": NOW,
    }
    values.update(overrides)
    return validate_link_create(**values)


def test_defaults_and_normalisation() -> None:
    link = create(title="  Fees  ", collect=["reference", "name", "name"], expires_at="2026-12-06T09:00:00+03:00")
    assert link.title == "Fees" and link.description == "" and link.active is True
    assert link.collect == ["name", "reference"]  # each once, in a fixed order
    assert link.expires_at == datetime(2026, 12, 6, 6, 0, tzinfo=UTC)  # stored in UTC
    assert link.max_payments is None and link.metadata == {}


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"title": "a\x00b"}, "title"),
        ({"description": "x" * 501}, "description"),
        ({"expires_at": (NOW + timedelta(seconds=30)).isoformat()}, "expires_at"),
        ({"expires_at": (NOW + timedelta(days=367)).isoformat()}, "expires_at"),
        ({"max_payments": 1_000_001}, "max_payments"),
        ({"collect": "name"}, "collect"),
        ({"active": 0}, "active"),
    ],
)
def test_refusals_name_the_field(overrides: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        create(**overrides)
    assert refused.value.param == param


def test_changes_keep_only_what_was_sent_and_null_clears() -> None:
    changes = validate_link_changes({"expires_at": None, "max_payments": None, "active": False}, NOW)
    assert changes.values == {"expires_at": None, "max_payments": None, "active": False}
    assert validate_link_changes({}, NOW).values == {}
    with pytest.raises(InvalidRequest) as refused:
        validate_link_changes({"amount": 5}, NOW)
    assert refused.value.param == "amount" and refused.value.code == "parameter_unknown"
