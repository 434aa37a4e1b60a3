"""docs/openapi.json and docs/mpesa-bridge.postman_collection.json are what the app generates, and the
collection is one the runner of tests/fixtures/postman.py (and Postman) can walk top to bottom.

The app is built, never started: `create_app(settings).openapi()` is pure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mpesa_bridge.api.docs import REQUEST_EXAMPLES
from mpesa_bridge.cli import app, register_commands
from mpesa_bridge.cli.apifiles import (
    LEFT_OUT,
    OPENAPI_FILE,
    POSTMAN_FILE,
    REGENERATE,
    STEPS,
    VARIABLES,
    api_files,
    build_schema,
    operations,
    postman_collection,
    unplanned,
)
from tests.fixtures.postman import requests, script_of, variables_used

DOCS = Path(__file__).resolve().parents[2] / "docs"
PRESET = {"baseUrl", "adminToken", "webhookUrl", "$guid"}  # what a run starts with (the user sets the first two)


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    return api_files()


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return build_schema()


@pytest.fixture(scope="module")
def collection(files: dict[str, str]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(files[POSTMAN_FILE])
    return document


@pytest.mark.parametrize("name", [OPENAPI_FILE, POSTMAN_FILE])
def test_the_committed_file_is_what_the_app_generates(files: dict[str, str], name: str) -> None:
    committed = (DOCS / name).read_text(encoding="utf-8") if (DOCS / name).exists() else ""
    assert committed == files[name], f"docs/{name} differs from the running app's API: run `{REGENERATE}` and commit it"


def test_the_files_are_deterministic_and_name_no_machine(files: dict[str, str]) -> None:
    assert api_files() == files
    for text in files.values():
        assert "127.0.0.1" not in text and "/tmp/" not in text and "/work/" not in text
    document = json.loads(files[OPENAPI_FILE])
    assert document["servers"] == [
        {"url": "http://localhost:8000", "description": document["servers"][0]["description"]}
    ]
    assert set(document["components"]["securitySchemes"]) == {
        "SecretKey",
        "ClientSecret",
        "AdminToken",
        "PublishableKey",
        "PublishableKeyHeader",
        "ApiKeyHeader",
    }


def test_the_environment_does_not_change_the_files(files: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    # A production shell without a master key (the defaults would refuse it) and a setting that does not parse.
    monkeypatch.setenv("MPESA_BRIDGE_ENV", "production")
    monkeypatch.setenv("MPESA_BRIDGE_PORT", "not-a-port")
    monkeypatch.setenv("MPESA_BRIDGE_MAX_AMOUNT", "1000")
    assert api_files() == files


def test_every_request_body_has_an_example(schema: dict[str, Any]) -> None:
    for method, path, operation in operations(schema).values():
        if "requestBody" in operation:
            media = operation["requestBody"]["content"]["application/json"]
            assert "example" in media, f"{method.upper()} {path}: add an example body to REQUEST_EXAMPLES (api/docs.py)"
    assert set(REQUEST_EXAMPLES) <= set(operations(schema)), "an example for an operation the app no longer has"


def test_every_operation_is_walked_in_order(schema: dict[str, Any], collection: dict[str, Any]) -> None:
    ops = operations(schema)
    assert unplanned(schema) == [], "add these operations to STEPS in cli/apifiles.py, where their ids exist"
    assert {step.operation for step in STEPS} <= set(ops), "STEPS names an operation the app no longer has"
    sent = [(item["request"]["method"], "/".join(item["request"]["url"]["path"])) for item, _ in requests(collection)]
    assert len(sent) == len(STEPS)
    expected = {
        (method.upper(), path.strip("/").replace("{", ":").replace("}", ""))
        for name, (method, path, _) in ops.items()
        if name not in LEFT_OUT
    }
    assert set(sent) == expected


def test_each_variable_is_set_before_a_request_uses_it(collection: dict[str, Any]) -> None:
    declared = {variable["key"] for variable in collection["variable"]}
    assert declared == set(VARIABLES)
    known = set(PRESET)
    for item, _ in requests(collection):
        used = variables_used(item)
        assert used <= known, f"{item['name']} uses {sorted(used - known)} before any request sets it"
        script = script_of(item)  # only the statements the runner interprets
        assert set(script.captures) <= declared, item["name"]
        known |= set(script.captures)


def test_each_request_carries_the_credential_its_operation_declares(
    schema: dict[str, Any], collection: dict[str, Any]
) -> None:
    assert collection["auth"]["bearer"][0]["value"] == "{{secretKey}}"
    by_name = {item["name"]: item["request"] for item, _ in requests(collection)}
    assert by_name["Liveness"]["auth"] == {"type": "noauth"}
    admin = [request for request in by_name.values() if "admin" in request["url"]["path"]]
    assert admin and all(r["auth"]["bearer"][0]["value"] == "{{adminToken}}" for r in admin)
    client = [
        r for r in by_name.values() if r.get("auth", {}).get("bearer", [{}])[0].get("value") == "{{clientSecret}}"
    ]
    assert {"/".join(r["url"]["path"]) for r in client} == {
        "v1/checkout_sessions/:session_id",
        "v1/checkout_sessions/:session_id/pay",
    }
    paths = {"/".join(r["url"]["path"]): r for r in by_name.values()}
    assert [(v["key"], v["value"]) for v in paths["v1/payments/:payment_id"]["url"]["variable"]] == [
        ("payment_id", "{{paymentId}}")
    ]
    create = next(r for r in by_name.values() if r["method"] == "POST" and r["url"]["path"] == ["v1", "payments"])
    assert json.loads(create["body"]["raw"]) == REQUEST_EXAMPLES["create_payment"]
    assert {"key": "Idempotency-Key", "value": "{{$guid}}", "description": "a new key each send"} in create["header"]


def test_the_command_writes_both_files_and_checks_them(tmp_path: Path) -> None:
    register_commands()
    runner = CliRunner()
    written = runner.invoke(app, ["openapi", "--out", str(tmp_path)])
    assert written.exit_code == 0, written.output
    assert (tmp_path / OPENAPI_FILE).read_text(encoding="utf-8") == api_files()[OPENAPI_FILE]
    assert runner.invoke(app, ["openapi", "--out", str(tmp_path), "--check"]).exit_code == 0
    (tmp_path / POSTMAN_FILE).write_text("{}\n", encoding="utf-8")
    stale = runner.invoke(app, ["openapi", "--out", str(tmp_path), "--check"])
    assert stale.exit_code == 1 and REGENERATE in stale.stderr
    assert (tmp_path / POSTMAN_FILE).read_text(encoding="utf-8") == "{}\n"  # --check writes nothing


def test_the_collection_is_a_postman_v2_1_collection(collection: dict[str, Any]) -> None:
    assert collection["info"]["schema"] == "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
    for folder in collection["item"]:
        assert folder["name"] and folder["item"]
        for item in folder["item"]:
            request = item["request"]
            assert request["url"]["raw"].startswith("{{baseUrl}}/") and request["url"]["host"] == ["{{baseUrl}}"]
            assert [event["listen"] for event in item["event"]] == ["test"]
    assert postman_collection(build_schema()) == collection


def test_a_route_added_later_still_lands_in_the_collection(schema: dict[str, Any]) -> None:
    """Regenerating after a merge never fails: a new route and a new scheme are added (at the end of
    their folder, with a variable for the scheme's token); the tests above then ask for a step."""
    grown = json.loads(json.dumps(schema))
    grown["components"]["securitySchemes"]["PublishableKey"] = {"type": "http", "scheme": "bearer"}
    grown["paths"]["/v1/publishable_things"] = {
        "get": {
            "operationId": "list_publishable_things",
            "summary": "List publishable things",
            "tags": ["payments"],
            "security": [{"PublishableKey": []}],
            "responses": {"200": {"description": "ok"}},
        }
    }
    assert unplanned(grown) == ["list_publishable_things"]
    collection = postman_collection(grown)
    (payments,) = [folder for folder in collection["item"] if folder["name"] == "Payments"]
    added = payments["item"][-1]
    assert added["name"] == "List publishable things"
    assert added["request"]["auth"]["bearer"][0]["value"] == "{{publishableKey}}"
    assert "publishableKey" in {variable["key"] for variable in collection["variable"]}
    assert script_of(added).expected == [200]
