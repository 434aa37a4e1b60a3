"""A JSON body is parsed once: at the edge (`api/middleware.py`, which refuses what no database can
store), and the route validates that document instead of parsing the bytes again
(`api/routing.py`). Whatever parses it (orjson at the edge, Python's json in Starlette), each parse
of the request's bytes is counted here."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from tests.fixtures.bridge import ADMIN_TOKEN, InProcessBridge

PAYMENT = {"phone": "0708374149", "amount": 100, "account_reference": "INV001", "metadata": {"order": 42}}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every JSON document parsed during the test, as the bytes (or text) handed to the parser."""
    seen: list[bytes] = []

    def spy(real: Callable[..., Any]) -> Callable[..., Any]:
        def parse(data: Any, *args: Any, **kwargs: Any) -> Any:
            seen.append(data.encode() if isinstance(data, str) else bytes(data))
            return real(data, *args, **kwargs)

        return parse

    monkeypatch.setattr(orjson, "loads", spy(orjson.loads))
    monkeypatch.setattr(json, "loads", spy(json.loads))
    return seen


async def test_a_payment_s_body_is_parsed_once(bridge: InProcessBridge, parsed: list[bytes]) -> None:
    shop = await bridge.create_project()
    body = json.dumps(PAYMENT).encode()
    response = await bridge.client.post("/v1/payments", content=body, headers={**JSON, **shop.headers()})
    assert response.status_code == 201, response.text
    assert response.json()["metadata"] == {"order": 42}
    assert parsed.count(body) == 1


async def test_a_refused_payment_s_body_is_parsed_once_and_named_as_before(
    bridge: InProcessBridge, parsed: list[bytes]
) -> None:
    shop = await bridge.create_project()
    body = json.dumps({**PAYMENT, "amount": "ten", "colour": "red"}).encode()
    response = await bridge.client.post("/v1/payments", content=body, headers={**JSON, **shop.headers()})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "parameter_unknown"
    assert response.json()["error"]["param"] == "colour"
    assert parsed.count(body) == 1


@pytest.mark.parametrize(
    ("path", "document"),
    [
        ("/v1/webhook_endpoints", {"url": "http://127.0.0.1:9/hook", "enabled_events": ["*"]}),
        ("/v1/admin/projects", {"name": "Another shop"}),
    ],
)
async def test_other_routes_parse_a_body_once(
    bridge: InProcessBridge, parsed: list[bytes], path: str, document: dict[str, Any]
) -> None:
    shop = await bridge.create_project()
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"} if "/admin/" in path else shop.headers()
    body = json.dumps(document).encode()
    response = await bridge.client.post(path, content=body, headers={**JSON, **headers})
    assert response.status_code == 201, response.text
    assert parsed.count(body) == 1


@pytest.mark.parametrize("number", [123456789012345678901234567890, -(2**63) - 1, 2**64])
async def test_integers_beyond_64_bits_are_read_as_integers(bridge: InProcessBridge, number: int) -> None:
    """orjson reads such a number as a float, Python's json (what the routes have always read) as
    an int: a body holding one is read as before, so the answer is the integer's, not a float's."""
    shop = await bridge.create_project()
    body = json.dumps({**PAYMENT, "metadata": {"n": number}}).encode()
    response = await bridge.client.post("/v1/payments", content=body, headers={**JSON, **shop.headers()})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_metadata", "metadata")
    assert "64 bits" in error["message"]
