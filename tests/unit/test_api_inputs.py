"""`api/inputs.py`: what is refused before routing, and what is not, decided on bytes alone."""

from __future__ import annotations

import json

import pytest

from mpesa_bridge.api.inputs import UNPARSED, Refusal, path_refusal, query_refusal, read_json


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"metadata": {"a": "\\u0000"}}', "metadata"),
        (b'{"metadata": {"\\u0000": 1}}', "metadata"),
        (b'{"metadata": [[[{"x": ["ok", "b\\u0000"]}]]]}', "metadata"),
        (b'{"name": "\\u0000", "other": 1}', "name"),
        (b'{"a\\u0000": 1}', None),  # a top-level key: no parameter to name
        (b'["\\u0000"]', None),
        (b'"\\u0000"', None),
        (b'{"metadata": {"a": "\\ud800"}}', "metadata"),  # unpaired surrogate: no UTF-8 for it
        (b'{"metadata": {"\\udfff": 1}}', "metadata"),
    ],
)
def test_unstorable_characters_are_refused_with_the_field_named(body: bytes, param: str | None) -> None:
    refusal = read_json(body)[0]
    assert refusal is not None and refusal.status == 400 and refusal.code == "invalid_characters", refusal
    assert refusal.param == param
    assert "\x00" not in refusal.message


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e400", b"1.5e309", b"2e308"])
def test_non_finite_numbers_are_refused_anywhere(number: bytes) -> None:
    for body, param in (
        (b'{"metadata": {"x": ' + number + b"}}", "metadata"),
        (b'{"metadata": [1, {"y": [' + number + b"]}]}", "metadata"),
        (b'{"grace_period_seconds": ' + number + b"}", "grace_period_seconds"),
    ):
        refusal = read_json(body)[0]
        assert refusal is not None and (refusal.status, refusal.code, refusal.param) == (
            400,
            "parameter_invalid",
            param,
        )


@pytest.mark.parametrize(
    "body",
    [
        b'{"metadata": {"text": "\\\\u0000"}}',  # an escaped backslash, then the text u0000
        b'{"metadata": {"tab": "\\t", "bell": "\\u0007", "pair": "\\ud83d\\ude00", "big": 1e308}}',
        b'{"amount": 18446744073709551616000}',  # not orjson's, but finite: the route judges it
        b'{"a": -0.0, "b": 1E+2, "c": 0.5}',
        b"{",  # not JSON: FastAPI answers invalid_json
        b"",
        b"\xff\xfe",
        json.dumps({"deep": [[[[[[[[[[{"ok": "yes"}]]]]]]]]]]}).encode(),
        b"[" * 5000 + b"]" * 5000,  # deeper than any parser's recursion: not our concern here
    ],
)
def test_storable_bodies_pass(body: bytes) -> None:
    assert read_json(body)[0] is None


def test_the_query_string_is_checked_percent_decoded() -> None:
    for query, param in ((b"limit=3&reference=INV%00&x=1", "reference"), (b"client_secret=\x00", "client_secret")):
        refused = query_refusal(query)
        assert refused is not None and (refused.status, refused.code, refused.param) == (
            400,
            "invalid_characters",
            param,
        )
    name = query_refusal(b"a%00=1")
    assert name is not None and name.param is None
    assert query_refusal(b"reference=INV%2500&q=%5Cu0000&r=%01") is None  # "%00", "\u0000" and U+0001 as text
    assert query_refusal(b"") is None


def test_a_nul_in_the_path_names_nothing() -> None:
    assert path_refusal("/v1/payments/pay_\x00") == Refusal(
        404, "resource_missing", "Unrecognized request URL: the path holds a NUL character."
    )
    assert path_refusal("/v1/payments/pay_%00") is None  # already decoded by the server: this is text


@pytest.mark.parametrize(
    "body",
    [b'{"a": 1, "b": [1.5, -0.0, "x\\u00e9"], "a": {"c": null}}', b"\xef\xbb\xbf[1]", b'"\\ud83d\\ude00"'],
)
def test_the_document_handed_on_is_what_python_s_json_reads(body: bytes) -> None:
    refusal, document = read_json(body)
    assert refusal is None
    assert document == json.loads(body)  # what the routes read before the body was parsed once


@pytest.mark.parametrize("body", [b"{", b"", b'{"n": 18446744073709551616}', b'{"ref": "1234567890123456789"}'])
def test_the_route_reads_the_body_itself_when_the_edge_did_not_or_would_read_it_otherwise(body: bytes) -> None:
    refusal, document = read_json(body)
    assert refusal is None and document is UNPARSED
