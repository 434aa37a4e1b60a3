"""Every operation of the bridge's OpenAPI document has a method in the Python SDK, sync and async,
or is listed in `sdks/python/operations.json` as deliberately absent, with a reason."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest

from mpesa_bridge.api.app import create_app
from mpesa_bridge.config import Settings
from mpesa_bridge_sdk import AsyncClient, Client

MAP = Path(__file__).resolve().parents[3] / "sdks" / "python" / "operations.json"


@pytest.fixture(scope="module")
def operations() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(MAP.read_text())
    return loaded


def operation_ids() -> set[str]:
    schema = create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]
    return {op["operationId"] for ops in schema["paths"].values() for op in ops.values()}


def resolve(root: object, path: list[str]) -> Any:
    target: Any = root
    for name in path:
        target = getattr(target, name)
    return target


def test_the_map_names_exactly_the_operations_of_the_openapi_document(operations: dict[str, Any]) -> None:
    ids = operation_ids()
    assert set(operations) - ids == set(), "mapped operations the bridge does not have"
    assert ids - set(operations) == set(), "operations with neither an SDK method nor a reason"


def test_every_method_exists_on_client_and_async_client(operations: dict[str, Any]) -> None:
    sync, asynchronous = Client("sk_test_" + "A" * 32), AsyncClient("sk_test_" + "A" * 32)
    methods = {op: target for op, target in operations.items() if isinstance(target, str)}
    assert len(methods) >= 30
    for operation, target in methods.items():
        root, *path = target.split(".")
        assert root == "Client", f"{operation}: {target} must start with Client."
        method = resolve(sync, path)
        twin = resolve(asynchronous, path)
        assert callable(method) and not inspect.iscoroutinefunction(method), f"{operation}: {target}"
        assert inspect.iscoroutinefunction(twin), f"{operation}: AsyncClient.{'.'.join(path)} is not async"
        assert list(inspect.signature(method).parameters) == list(inspect.signature(twin).parameters), operation
        assert method.__doc__ and twin.__doc__, f"{operation}: no docstring"
    sync.close()


def test_every_absent_operation_says_why(operations: dict[str, Any]) -> None:
    absent = {op: target for op, target in operations.items() if not isinstance(target, str)}
    assert "daraja_callback" in absent
    for operation, target in absent.items():
        assert set(target) == {"absent"} and len(target["absent"]) > 20, operation
