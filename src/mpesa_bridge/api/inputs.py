"""Input the bridge cannot store, refused before routing: NUL, unpaired surrogates, non-finite numbers.

PostgreSQL refuses U+0000 in `text` and `jsonb` (SQLite stores it), so a NUL reaching a query or an
insert was a 500 there, in whichever of a dozen routes, filters or path ids it came. No database
can encode an unpaired surrogate (`"\\ud800"`) as UTF-8. And Python's `json`, which FastAPI parses
bodies with, reads `NaN`, `Infinity` and `1e999` (none of them JSON) as floats that were then
stored as `null`. One check at the edge covers every route, present and future:

- a path holding a NUL answers 404, as an unknown id does;
- a query parameter (percent-decoded, as the routes read it) holds one: 400, `param` names it;
- a JSON body holds one in a string or a key, at any depth, or a non-finite number: 400, `param`
  names the top-level field.

The body is parsed once: the document read here goes on to the route (`api/routing.py`), which
validates it without reading the body again. Everything here is pure; `api/middleware.py` calls
it. Daraja's callbacks never come here: they are stored raw, whatever they hold.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

import orjson

NUL = "\x00"
_ESCAPED_NUL = b"\\u0000"  # the only way a NUL gets into valid JSON
_CHARACTERS = "invalid_characters"


class Refusal(NamedTuple):
    """An answer given before routing: status, error code, message and the parameter at fault."""

    status: int
    code: str
    message: str
    param: str | None = None


class _NonFinite:
    """What NaN, Infinity and out-of-range numbers parse to here (never stored: refused)."""


NON_FINITE = _NonFinite()
_UNREADABLE = object()
UNPARSED: Any = object()
"""`read_json`'s document when the route must parse the body itself."""
_LONG_NUMBER = re.compile(rb"[0-9]{19}")


def path_refusal(path: str) -> Refusal | None:
    """A NUL in the (percent-decoded) path: no id holds one, so it names nothing."""
    if NUL in path:
        return Refusal(404, "resource_missing", "Unrecognized request URL: the path holds a NUL character.")
    return None


def query_refusal(query_string: bytes) -> Refusal | None:
    """A NUL in a query parameter's name or value, decoded as Starlette decodes them for the routes."""
    if b"%00" not in query_string and b"\x00" not in query_string:
        return None  # the common case, without decoding
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if NUL in name or NUL in value:
            param = None if NUL in name else name
            where = f"The query parameter '{param}'" if param else "A query parameter's name"
            return Refusal(400, _CHARACTERS, f"{where} holds a NUL character (\\u0000).", param)
    return None


def read_json(body: bytes) -> tuple[Refusal | None, Any]:
    """Why a JSON body cannot be taken (or None), and the document the route is to validate: the
    body is parsed once, here (`api/routing.py` hands the document on). UNPARSED when it is not
    JSON, or when the route must read it itself to answer as it always has."""
    try:
        data = orjson.loads(body)  # strict: no NaN/Infinity, no overflow to inf, no unpaired surrogate
    except orjson.JSONDecodeError:
        data = _as_fastapi_reads(body)
        if data is _UNREADABLE:
            return None, UNPARSED  # the route answers "not JSON" (or a parse error) as before
        flaw = _first_flaw(data)
        # Without a flaw, no number was marked: `data` is what Python's json reads, as the route would.
        return flaw, (UNPARSED if flaw else data)
    if _ESCAPED_NUL in body:
        flaw = _first_flaw(data)
        if flaw is not None:
            return flaw, UNPARSED
    # orjson reads an integer beyond 64 bits as a float, Python's json as an int: such a body (any
    # run of 19 digits, to be sure) is left to the route to read, so it reads as it always has.
    return None, (UNPARSED if _LONG_NUMBER.search(body) else data)


def _as_fastapi_reads(body: bytes) -> Any:
    """The body as Python's json reads it, non-finite numbers marked; _UNREADABLE if it is not JSON."""
    try:
        return json.loads(body, parse_constant=lambda _: NON_FINITE, parse_float=_finite_or_marked)
    except (ValueError, RecursionError):
        return _UNREADABLE


def _finite_or_marked(text: str) -> float | _NonFinite:
    value = float(text)
    return value if math.isfinite(value) else NON_FINITE


def _first_flaw(data: Any) -> Refusal | None:
    fields = data.items() if isinstance(data, dict) else [(None, data)]
    for field, value in fields:
        if field is not None and _flaw(field) is not None:
            return Refusal(400, _CHARACTERS, f"A field name in the body holds {_flaw(field)}.")
        flaw = _flaw_within(value)
        if flaw is not None:
            where = f"'{field}'" if field is not None else "The body"
            code = "parameter_invalid" if flaw is _NOT_FINITE else _CHARACTERS
            return Refusal(400, code, f"{where} holds {flaw}.", field)
    return None


_NOT_FINITE = "a number that is not finite (NaN, Infinity or out of range are not JSON numbers)"


def _flaw(text: str) -> str | None:
    if NUL in text:
        return "a NUL character (\\u0000)"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "an unpaired surrogate (a \\ud800-\\udfff escape without its pair)"
    return None


def _flaw_within(value: Any) -> str | None:
    """The first unstorable string, key or number anywhere inside (iterative: depth is unbounded)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            flaw = _flaw(item)
            if flaw is not None:
                return flaw
        elif item is NON_FINITE:
            return _NOT_FINITE
        elif isinstance(item, dict):
            for key in item:
                flaw = _flaw(key)
                if flaw is not None:
                    return flaw
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None
