"""The served OpenAPI document declares who may call what, so that /docs can "Authorize" and "Try it out".

The app is built but never started (no lifespan, no database): `app.openapi()` is pure.
"""

from __future__ import annotations

from typing import Any

import pytest

from mpesa_bridge.api.app import create_app
from mpesa_bridge.config import Settings

PUBLIC = {"POST /v1/callbacks/daraja/{kind}/{token}", "GET /healthz", "GET /readyz"}  # Daraja and probes: no key
# What a checkout session's client secret opens (api/v1/checkout_sessions.py): the read takes either credential.
CLIENT_SECRET = {
    "GET /v1/checkout_sessions/{session_id}": [{"SecretKey": []}, {"ClientSecret": []}],
    "POST /v1/checkout_sessions/{session_id}/pay": [{"ClientSecret": []}],
    # A secret key, or a publishable key (client-side amounts) in either header.
    "POST /v1/checkout_sessions": [{"SecretKey": []}, {"PublishableKey": []}, {"PublishableKeyHeader": []}],
    # The earlier system's two calls (api/legacy.py): its x-api-key header, or our bearer header.
    "POST /api/v1/transactions/stk-push": [{"ApiKeyHeader": []}, {"SecretKey": []}, {"PublishableKey": []}],
    "GET /api/v1/transactions/status/{transaction_id}": [
        {"ApiKeyHeader": []},
        {"SecretKey": []},
        {"PublishableKey": []},
    ],
}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    document: dict[str, Any] = create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]
    return document


def operations(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{method.upper()} {path}": op for path, ops in schema["paths"].items() for method, op in ops.items()}


def test_both_bearer_schemes_are_declared(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]
    assert set(schemes) == {
        "SecretKey",
        "AdminToken",
        "ClientSecret",
        "PublishableKey",
        "PublishableKeyHeader",
        "ApiKeyHeader",
    }
    bearers = {name: scheme for name, scheme in schemes.items() if "Header" not in name}
    assert all(scheme["type"] == "http" and scheme["scheme"] == "bearer" for scheme in bearers.values())
    assert schemes["PublishableKeyHeader"] | {"description": ""} == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Api-Key",
        "description": "",
    }
    assert "sk_test_" in schemes["SecretKey"]["description"] and "sk_live_" in schemes["SecretKey"]["description"]
    assert (
        "pk_test_" in schemes["PublishableKey"]["description"]
        or "pk_test_" in schemes["PublishableKey"]["bearerFormat"]
    )
    assert "security" not in schema  # no global requirement: Daraja's callback and the probes stay open


def test_each_operation_asks_for_the_credentials_its_route_checks(schema: dict[str, Any]) -> None:
    ops = operations(schema)
    assert set(ops) >= PUBLIC and "POST /v1/payments" in ops and "POST /v1/admin/projects" in ops
    for label, op in ops.items():
        path = label.split(" ", 1)[1]
        if label in PUBLIC:
            expected = None
        elif label in CLIENT_SECRET:
            expected = CLIENT_SECRET[label]
        elif path.startswith("/v1/admin/"):
            expected = [{"AdminToken": []}]
        else:
            assert path.startswith("/v1/"), label
            expected = [{"SecretKey": []}]
        assert op.get("security") == expected, label


def test_every_operation_has_a_readable_unique_id(schema: dict[str, Any]) -> None:
    """SDKs and the Postman collection name operations by operationId: the route function's name,
    never FastAPI's generated `create_payment_v1_payments_post`."""
    ids = {label: op["operationId"] for label, op in operations(schema).items()}
    assert len(set(ids.values())) == len(ids)
    assert ids["POST /v1/payments"] == "create_payment"
    assert ids["GET /v1/payments/{payment_id}"] == "get_payment"
    assert ids["POST /v1/webhook_endpoints"] == "create_webhook_endpoint"
    assert ids["POST /v1/admin/keys/{key_id}/revoke"] == "admin_revoke_key"
    assert ids["POST /v1/keys/{key_id}/revoke"] == "revoke_key"
    for label, name in ids.items():
        assert name.isidentifier() and name.islower() and "_v1_" not in name, (label, name)
