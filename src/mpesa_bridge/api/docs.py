"""/docs: Swagger UI served from the bridge itself, never a CDN; and the OpenAPI document it reads.

FastAPI serves OpenAPI 3.1, which only Swagger UI 5 reads (4.x refuses it: "does not specify a
valid version field"). Its files come from the installed `fastapi-offline` package, which ships
Swagger UI 5 as package data; only its script, stylesheet and icon are served, each at a fixed URL.
The page and its start-up script are the bridge's own (`static/docs.html`, `static/docs.js`), so
the page runs under a Content-Security-Policy that allows nothing from anywhere but this origin.

`/openapi.json` is adjusted in two ways:
- FastAPI documents a 422 `HTTPValidationError` on every route with parameters, but this API
  answers invalid input with 400 and the usual error shape (`api/errors.py`): removed.
- Each operation names the credentials its route checks, read from the route's own dependencies
  (`api/deps.py`): a secret key, the admin token, or none (Daraja's callback, the health probes).
  So "Authorize" and "Try it out" work, and the document cannot claim a check the code does not make.
- Each request body carries a whole example (`REQUEST_EXAMPLES`, by operationId): "Try it out" starts
  from a request the bridge accepts, and the exported Postman collection sends the same bodies.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route, Router

from mpesa_bridge.api.deps import get_caller, require_admin

ASSETS = "/docs/assets"
_FASTAPI_422 = "#/components/schemas/HTTPValidationError"
_SWAGGER_UI = files("fastapi_offline") / "static"
_OURS = files("mpesa_bridge.api") / "static"
# name -> (folder, media type): only what the page loads, nothing else of either folder.
_FILES: dict[str, tuple[Traversable, str]] = {
    "swagger-ui-bundle.js": (_SWAGGER_UI, "text/javascript"),
    "swagger-ui.css": (_SWAGGER_UI, "text/css"),
    "favicon.png": (_SWAGGER_UI, "image/png"),
    "docs.js": (_OURS, "text/javascript"),
}
# Swagger UI styles its elements from script (CSSOM, which style-src does not govern) and draws its
# icons from data: URIs in its stylesheet; "Try it out" calls this origin's API.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "SecretKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "sk_test_… or sk_live_…",
        "description": "A project's secret key, sent as `Authorization: Bearer sk_test_…` (or `sk_live_…`). "
        "Its mode decides where a payment goes: `sk_test_` to the simulator or Daraja's sandbox, "
        "`sk_live_` to production.",
    },
    "ClientSecret": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "cs_…_secret_…",
        "description": "A checkout session's client secret, for the browser: it reads, pays and watches that "
        "one session, nothing else. Sent as `Authorization: Bearer cs_…_secret_…` or `?client_secret=`.",
    },
    "PublishableKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "pk_test_… or pk_live_…",
        "description": "A project's publishable key, for the browser: no secret. It opens one route, "
        "`POST /v1/checkout_sessions` with an amount chosen in the browser, and only for a project whose owner "
        "turned on client-side amounts. Every other route refuses it.",
    },
    "PublishableKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Api-Key",
        "description": "The publishable key in the earlier system's header (`X-Api-Key: pk_test_…`).",
    },
    "ApiKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "The earlier system's header, read only by its two calls under /api/v1/transactions "
        "(docs/migrating.md): a secret key, or a publishable key where client-side amounts are on.",
    },
    "AdminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The operator's `MPESA_BRIDGE_ADMIN_TOKEN`, for `/v1/admin/*` only. "
        "Without that setting the admin routes answer 404.",
    },
}
# A request the bridge accepts, for each operation with a body (by operationId). Nothing here may
# expire (no `expires_at`) or be refused on a development bridge with the built-in simulator:
# `mpesa-bridge openapi` puts these bodies in the Postman collection, which tests/e2e walks.
REQUEST_EXAMPLES: dict[str, dict[str, Any]] = {
    "legacy_stk_push": {"phoneNumber": "0708374149", "amount": 10, "description": "Order 42"},
    "update_c2b_settings": {"validation_rule": "known_references", "default_action": "accept"},
    "create_c2b_registration": {"short_code": "600984", "response_type": "Completed", "validation": True},
    "match_c2b_payment": {"type": "expected_payment", "id": "exp_01jz5m3k6q8w2d1c4b7n9p0r5t"},
    "dismiss_c2b_payment": {"note": "A tip; nothing to match"},
    "create_expected_payment": {
        "reference": "INV-0042",
        "amount": 1500,
        "phone": "0708374149",
        "description": "Invoice 42",
        "metadata": {"invoice_id": "42"},
    },
    "create_payment": {
        "phone": "0708374149",
        "amount": 10,
        "account_reference": "INV00042",
        "description": "Order 42",
        "metadata": {"order_id": "42"},
    },
    "rotate_key": {"grace_period_seconds": 3600},
    "create_webhook_endpoint": {
        "url": "https://shop.example.com/hooks/mpesa",
        "enabled_events": ["payment.succeeded", "payment.failed"],
        "description": "Order updates",
    },
    "update_webhook_endpoint": {"enabled_events": ["*"], "description": "Every event"},
    "rotate_webhook_endpoint_secret": {"grace_period_seconds": 3600},
    "redeliver_event": {"endpoint_id": "we_01jz5m3k6q8w2d1c4b7n9p0r5t"},
    "create_qr_code": {
        "merchant_name": "TEST SUPERMARKET",
        "reference": "Invoice 42",
        "amount": 100,
        "trx_code": "BG",
        "cpi": "373132",
        "size": 300,
    },
    "create_checkout_session": {
        "amount": 1500,
        "reference": "ORDER42",
        "description": "Order 42",
        "metadata": {"order_id": "42"},
        "success_url": "https://shop.example/thanks",
        "cancel_url": "https://shop.example/cart",
    },
    "pay_checkout_session": {"phone": "0712345678"},
    "create_reversal": {"remarks": "Order 42 cancelled"},
    "create_balance_query": {"wait": 10},
    "create_payment_link": {"title": "Tuition, term 1", "amount": 1500, "max_payments": 100},
    "update_payment_link": {"title": "Tuition, term 1 (2027)", "description": "Pay before 10 January"},
    "admin_create_project": {"name": "Shop"},
    "admin_put_daraja_settings": {
        "environment": "production",
        "consumer_key": "your-consumer-key",
        "consumer_secret": "your-consumer-secret",
        "short_code": "600100",
        "passkey": "your-passkey",
        "shortcode_type": "paybill",
    },
    "admin_update_project": {"confirm_by_query": False},
    "create_payout": {
        "phone": "0708374149",
        "amount": 100,
        "command_id": "BusinessPayment",
        "remarks": "Refund order 42",
        "metadata": {"order_id": "42"},
    },
    "reject_payout": {"reason": "wrong phone number"},
    "admin_put_payout_settings": {"approval_required": True, "max_amount": 50000, "daily_limit": 200000},
    "create_transaction_status_query": {"transaction_id": "SG632NMUAB"},
    "update_project": {
        "client_side_amounts": True,
        "client_side_amount_max": 5000,
        "allowed_origins": ["https://shop.example"],
    },
}
# The dependency that checks a credential -> the scheme that describes it; the admin check first.
_CHECKS: list[tuple[Callable[..., Any], str]] = [(require_admin, "AdminToken"), (get_caller, "SecretKey")]


def _without_fastapi_422(schema: dict[str, Any]) -> dict[str, Any]:
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            media = responses.get("422", {}).get("content", {}).get("application/json", {})
            if media.get("schema", {}).get("$ref") == _FASTAPI_422:
                del responses["422"]
    components = schema.get("components", {}).get("schemas", {})
    if _FASTAPI_422.encode() not in orjson.dumps(schema):
        components.pop("HTTPValidationError", None)
        if b'"#/components/schemas/ValidationError"' not in orjson.dumps(schema):
            components.pop("ValidationError", None)
    return schema


def _calls(dependant: Dependant) -> set[Callable[..., Any]]:
    found: set[Callable[..., Any]] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        if current.call is not None:
            found.add(current.call)
        pending.extend(current.dependencies)
    return found


def scheme_of(route: RouteContext) -> str | None:
    """The security scheme of the credential this route checks, or None for an open route."""
    calls = _calls(route.dependant)
    return next((scheme for check, scheme in _CHECKS if check in calls), None)


def _with_security(schema: dict[str, Any], routes: list[Any]) -> dict[str, Any]:
    schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    # The routes as FastAPI's own OpenAPI pass sees them: included routers expanded, their prefixes and
    # router-level dependencies (the admin check) applied.
    for route in iter_route_contexts(routes):
        if not (isinstance(route.original_route, APIRoute) and route.include_in_schema):
            continue
        scheme = scheme_of(route)
        path = route.path_format or route.original_route.path
        operations = schema["paths"].get(path, {})
        for method in route.methods or ():
            if method.lower() not in operations:
                continue
            operations[method.lower()]["operationId"] = operation_id(path, route.original_route.name)
            if scheme is not None:  # an open route declares nothing
                operations[method.lower()]["security"] = [{scheme: []}]
            _with_example(operations[method.lower()])
    seen = [op["operationId"] for item in schema["paths"].values() for op in item.values() if "operationId" in op]
    duplicated = sorted({name for name in seen if seen.count(name) > 1})
    if duplicated:  # pragma: no cover - a new route named like another: rename its function
        raise RuntimeError(f"two operations share an operationId: {duplicated}")
    return schema


def _with_example(operation: dict[str, Any]) -> None:
    media = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if media is not None and operation["operationId"] in REQUEST_EXAMPLES:
        media["example"] = copy.deepcopy(REQUEST_EXAMPLES[operation["operationId"]])


def operation_id(path: str, name: str) -> str:
    """A stable, readable operationId: the route function's name (`create_payment`), `admin_` before
    the admin API's. SDKs and the Postman collection refer to operations by it."""
    return f"admin_{name}" if path.startswith("/v1/admin/") and not name.startswith("admin_") else name


def _assets() -> Router:
    """A mount with one route per file: any other name is the usual 404, no folder is browsable."""

    def serve(name: str, folder: Traversable, media_type: str) -> Route:
        async def asset(_: Request) -> Response:
            return Response((folder / name).read_bytes(), media_type=media_type)

        return Route(f"/{name}", asset, methods=["GET"])

    return Router([serve(name, folder, media_type) for name, (folder, media_type) in _FILES.items()])


async def _page() -> HTMLResponse:
    page = (_OURS / "docs.html").read_text(encoding="utf-8")
    return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP})


def install_docs(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_security(_without_fastapi_422(generate()), app.routes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_api_route("/docs", _page, methods=["GET"], include_in_schema=False)
    app.mount(ASSETS, _assets(), name="docs-assets")
