"""The payment links page's words: every refusal it can show beside a field and every notice has
its Swahili (they are looked up at run time, so tests/unit/test_dashboard_i18n.py cannot see them),
and every refusal of the API's validation lands beside a field of the form."""

from __future__ import annotations

import re

import pytest

from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.payments.validation import PaymentLimits
from mpesa_bridge.dashboard import i18n
from mpesa_bridge.dashboard.pages.links import FIELD_MESSAGES, NOTICES, _expiry_text, _explain, _metadata, _number

FORM_FIELDS = {"title", "description", "amount", "amount_min", "amount_max", "expires_at", "max_payments"}
FORM_FIELDS |= {"collect", "metadata", "active"}


def test_every_message_and_notice_has_its_swahili_with_the_same_placeholders() -> None:
    swahili = i18n.catalogue("sw")
    for english in [*FIELD_MESSAGES.values(), *NOTICES.values()]:
        assert english in swahili, english
        assert set(re.findall(r"{\w+}", english)) == set(re.findall(r"{\w+}", swahili[english])), english


@pytest.mark.parametrize(
    ("param", "code", "expected"),
    [
        ("title", "parameter_too_long", "At most 100 characters."),
        ("description", "parameter_too_long", "At most 500 characters."),
        ("amount_max", "amount_out_of_range", "Enter an amount from 1 to 250000 shillings."),
        ("metadata", "metadata_too_large", "At most 50 keys and 4096 bytes of JSON."),
        ("max_payments", "something_new", "This value is not accepted."),
    ],
)
def test_a_refusal_is_explained_beside_its_field(param: str, code: str, expected: str) -> None:
    limits = PaymentLimits(max_amount=250_000)
    field, message = _explain(InvalidRequest("x", code=code, param=param), limits, i18n.translator("en"))
    assert (field, message) == (param, expected)
    assert field in FORM_FIELDS


def test_what_a_form_sends_is_read_as_the_api_would_take_it() -> None:
    from zoneinfo import ZoneInfo

    assert _number(" 1,500 ") == 1500 and _number("") is None and _number("12abc") == "12abc"
    nairobi = ZoneInfo("Africa/Nairobi")
    assert _expiry_text("2026-12-06T10:00", nairobi) == "2026-12-06T07:00:00+00:00"
    assert _expiry_text("", nairobi) is None and _expiry_text("soon", nairobi) == "soon"
    assert _expiry_text("0001-01-01T00:00", nairobi) == "0001-01-01T00:00"  # overflows: refused as typed
    assert _metadata('{"order": 42}') == {"order": 42} and _metadata(" ") is None
    for unstorable in ('{"a": NaN}', '{"a": "\\u0000"}', '{"a": "\\ud800"}', "[1, 2", "not json"):
        assert _metadata(unstorable) == unstorable  # check_metadata refuses text: not a JSON object
