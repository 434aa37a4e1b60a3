"""Every operation of the bridge's OpenAPI document has a method in each SDK, or is listed as
deliberately absent with a reason: `sdks/python/operations.json` and `sdks/js/operations.json` map
each operationId to the method (a dotted path) or to `{"absent": "why"}`.

That each mapped method exists is checked in each SDK's own language:
`tests/unit/sdk_python/test_sdk_py_operations.py` (on `Client` and `AsyncClient`) and
`sdks/js/test/operations.test.mjs` (on a client instance; run by `tests/e2e/test_sdk_js.py`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mpesa_bridge.api.app import create_app
from mpesa_bridge.config import Settings

ROOT = Path(__file__).resolve().parents[2]
MAPS = {"python": ROOT / "sdks/python/operations.json", "js": ROOT / "sdks/js/operations.json"}


@pytest.fixture(scope="module")
def operation_ids() -> set[str]:
    schema: dict[str, Any] = create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]
    return {op["operationId"] for item in schema["paths"].values() for op in item.values()}


@pytest.mark.parametrize("language", sorted(MAPS))
def test_each_sdk_maps_every_operation_and_nothing_else(language: str, operation_ids: set[str]) -> None:
    mapped: dict[str, Any] = json.loads(MAPS[language].read_text())
    missing, stale = sorted(operation_ids - set(mapped)), sorted(set(mapped) - operation_ids)
    assert not missing, f"{language} SDK: operations with neither a method nor a reason: {missing}"
    assert not stale, f"{language} SDK: operations the bridge no longer has: {stale}"
    for name, target in mapped.items():
        if isinstance(target, dict):
            assert set(target) == {"absent"} and len(target["absent"].strip()) > 20, (language, name, target)
        else:
            assert isinstance(target, str) and target.count(".") >= 1, (language, name, target)


def test_only_safaricom_calls_the_callback_route() -> None:
    """Daraja's callback route is no SDK's business; each SDK says so rather than offering it."""
    for language, path in MAPS.items():
        target = json.loads(path.read_text())["daraja_callback"]
        assert isinstance(target, dict) and "absent" in target, language
