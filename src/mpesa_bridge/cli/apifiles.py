"""`mpesa-bridge openapi --out docs`: the API's OpenAPI document and a Postman collection, from the app.

Both files are built from `create_app(...).openapi()` (the app is built, never started: no database,
no server), so they describe exactly the routes the code serves. The output is deterministic —
sorted keys, two-space indents, no timestamps, no machine's address — so a committed copy can be
compared with a fresh one (`tests/unit/test_api_files.py`) and regenerated with one command:
`make api-docs`.

The Postman collection (format v2.1) walks the API in an order that works top to bottom against
`make run` (a development bridge with the built-in simulator) once `adminToken` is set: the admin
API creates a project and its test key is kept as `secretKey`; each later request reads the ids
earlier ones stored. Its test scripts use a small, fixed set of statements (see `STATUS_LINE`,
`BODY_LINE`, `CAPTURE_LINE`), which `tests/e2e/test_postman_collection.py` interprets to walk the
collection against a real bridge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from mpesa_bridge.api.docs import REQUEST_EXAMPLES
from mpesa_bridge.cli import app

OPENAPI_FILE = "openapi.json"
POSTMAN_FILE = "mpesa-bridge.postman_collection.json"
REGENERATE = "make api-docs"  # what the drift test tells you to run
SERVER_URL = "http://localhost:8000"
POSTMAN_SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
METHODS = ("get", "put", "post", "patch", "delete")
# Daraja calls this route, never your code: a request from Postman would only store a flagged callback.
# daraja_callback: Daraja's, not a merchant's. The C2B payment ones need a customer's payment first
# (`mpesa-bridge simulator pay`), which no request of the collection can make. The earlier system's
# two calls answer only projects that turned them on; new code uses /v1.
LEFT_OUT = {
    "daraja_callback",
    "get_c2b_payment",
    "match_c2b_payment",
    "dismiss_c2b_payment",
    "legacy_stk_push",
    "legacy_transaction_status",
    "approve_payout",  # its approver must be another key than the creator: docs/payouts.md
}

STATUS_LINE = 'pm.test("status is {expected}", function () {{ pm.expect(pm.response.code).to.be.oneOf([{codes}]); }});'
BODY_LINE = "const body = pm.response.json();"
CAPTURE_LINE = 'pm.collectionVariables.set("{variable}", body{path});'

# A path parameter's value in the collection, by parameter name (a step may name another).
PATH_VALUES = {
    "payment_id": "{{paymentId}}",
    "session_id": "{{checkoutSessionId}}",
    "link_id": "{{paymentLinkId}}",
    "endpoint_id": "{{webhookEndpointId}}",
    "event_id": "{{eventId}}",
    "project_id": "{{projectId}}",
    "key_id": "{{keyId}}",
    "expected_id": "{{expectedPaymentId}}",
    "payout_id": "{{payoutId}}",
    "status_query_id": "{{statusQueryId}}",
    "mode": "test",
}
PATH_VALUES["reversal_id"] = "{{reversalId}}"  # reversals
PATH_VALUES["balance_query_id"] = "{{balanceQueryId}}"  # balance queries
# Collection variables: what a run starts with. The empty ones are filled by the test scripts.
VARIABLES = {
    "baseUrl": SERVER_URL,
    "adminToken": "",
    "secretKey": "",
    "projectId": "",
    "adminKeyId": "",
    "paymentId": "",
    "checkoutSessionId": "",
    "clientSecret": "",
    "expiringCheckoutSessionId": "",
    "paymentLinkId": "",
    "eventId": "",
    "webhookUrl": "http://localhost:4000/hooks/mpesa",
    "webhookEndpointId": "",
    "keyId": "",
    "publishableKey": "",
    "expectedPaymentId": "",
    "payoutId": "",
    "pendingPayoutId": "",
    "statusQueryId": "",
}
VARIABLES["reversalId"] = ""  # reversals
VARIABLES["balanceQueryId"] = ""  # balance queries
AUTH_VARIABLE = {
    "SecretKey": "secretKey",
    "ClientSecret": "clientSecret",
    "AdminToken": "adminToken",
    "PublishableKey": "publishableKey",
    "PublishableKeyHeader": "publishableKey",  # the same key, in the earlier system's X-Api-Key header
    "ApiKeyHeader": "secretKey",  # the earlier system's calls (left out of the collection)
}


BROWSER_SCHEMES = ("PublishableKey", "PublishableKeyHeader")


def auth_variable(scheme: str) -> str:
    """The collection variable holding a scheme's token; a scheme added later gets `schemeName`."""
    return AUTH_VARIABLE.get(scheme, scheme[:1].lower() + scheme[1:])


COLLECTION_HELP = """Generated from the bridge's OpenAPI document by `mpesa-bridge openapi` (`make api-docs`): \
do not edit it, regenerate it.

Run it top to bottom against a development bridge: start one with an admin token \
(`MPESA_BRIDGE_ADMIN_TOKEN=… make run`), set the collection variables `baseUrl` and `adminToken`, and run the \
collection. The admin folder creates a project and keeps its test key as `secretKey`; each test script checks the \
status and keeps the ids later requests use. To use an existing project instead, set `secretKey` (the key \
`mpesa-bridge serve --dev` prints) and skip the admin folder. `webhookUrl` is where the webhook endpoint it creates \
sends events (a development bridge accepts a loopback URL in test mode)."""


@dataclass(frozen=True)
class Step:
    """One request of the collection: an operation, and what its test script keeps from the answer."""

    operation: str
    name: str = ""  # default: the operation's summary
    captures: dict[str, str] = field(default_factory=dict)  # variable -> path in the body (".id", ".data[0].id")
    path: dict[str, str] = field(default_factory=dict)  # path parameter -> value, over PATH_VALUES
    body: dict[str, Any] | None = None  # default: the operation's example body
    auth: str | None = None  # a scheme of SECURITY_SCHEMES; default: the operation's first
    folder: str | None = None  # default: the operation's first tag


# The walk, in order. Folders appear in the order of their first step.
STEPS: list[Step] = [
    Step("healthz", name="Liveness"),
    Step("readyz", name="Readiness (database and migrations)"),
    Step(
        "admin_create_project",
        name="Create a project (keeps its test key as secretKey)",
        captures={"projectId": ".id", "secretKey": ".secret_keys.test"},
    ),
    Step("admin_list_projects", name="List projects"),
    Step("admin_put_daraja_settings", name="Set live mode's Daraja settings", path={"mode": "live"}),
    Step("admin_create_key", name="Issue another test key", captures={"adminKeyId": ".id"}),
    Step("admin_update_project", name="Change the project's security settings"),
    Step("admin_revoke_key", name="Revoke that key (any project's)", path={"key_id": "{{adminKeyId}}"}),
    Step("create_payment", captures={"paymentId": ".id"}),
    Step("list_payments"),
    Step("get_payment_totals"),
    Step("get_payment"),
    Step("refresh_payment"),
    Step("get_payment_evidence"),
    Step("create_checkout_session", captures={"checkoutSessionId": ".id", "clientSecret": ".client_secret"}),
    Step("list_checkout_sessions"),
    Step("get_checkout_session", name="Read a checkout session (client secret)", auth="ClientSecret"),
    Step("get_checkout_session_qr", folder="checkout sessions"),
    Step("pay_checkout_session"),
    Step(
        "create_checkout_session",
        name="Open another checkout session, to expire it",
        captures={"expiringCheckoutSessionId": ".id"},
    ),
    Step("expire_checkout_session", path={"session_id": "{{expiringCheckoutSessionId}}"}),
    Step(
        "get_project",
        name="Read the browser settings (keeps the publishable key)",
        captures={"publishableKey": ".publishable_key"},
    ),
    Step("update_project", name="Turn on client-side amounts for https://shop.example"),
    Step(
        "create_checkout_session",
        name="Open a checkout session with the publishable key (an amount chosen in the browser)",
        auth="PublishableKey",
        body={"amount": 250},
        folder="project",
    ),
    Step("rotate_publishable_key", captures={"publishableKey": ".publishable_key"}),
    Step("create_payment_link", captures={"paymentLinkId": ".id"}),
    Step("list_payment_links"),
    Step("get_payment_link"),
    Step("update_payment_link"),
    Step("get_payment_link_qr"),
    Step("create_payout", captures={"payoutId": ".id"}),
    Step("list_payouts"),
    Step("get_payout_settings"),
    Step("get_payout"),
    Step("create_transaction_status_query", captures={"statusQueryId": ".id"}),
    Step("list_transaction_status_queries"),
    Step("get_transaction_status_query"),
    Step("admin_put_payout_settings", name="Require approval of this project's test payouts"),
    Step("create_payout", name="Send a payout that waits for approval", captures={"pendingPayoutId": ".id"}),
    # Approving needs another key or a person than the creator: the collection rejects it instead.
    Step("reject_payout", path={"payout_id": "{{pendingPayoutId}}"}),
    Step("create_qr_code"),
    Step("get_c2b_settings"),
    Step("update_c2b_settings"),
    # A development bridge's test mode talks to the built-in simulator, which takes 600984's URLs.
    Step("create_c2b_registration"),
    Step("list_c2b_registrations"),
    Step("list_c2b_payments"),
    Step("create_expected_payment", captures={"expectedPaymentId": ".id"}),
    Step("list_expected_payments"),
    Step("get_expected_payment"),
    Step("cancel_expected_payment"),
    # The payment created above has succeeded by now (the simulator's default number pays).
    Step("create_reversal", captures={"reversalId": ".id"}),
    Step("list_reversals"),
    Step("get_reversal"),
    Step("create_balance_query", captures={"balanceQueryId": ".id"}),
    Step("list_balance_queries"),
    Step("get_balance_query"),
    Step("list_events", captures={"eventId": ".data[0].id"}),
    Step("get_event"),
    # Every enabled endpoint subscribed to the event: none yet (the webhook folder comes next).
    Step("redeliver_event", body={}),
    # A development bridge takes loopback URLs in test mode: point webhookUrl at your receiver.
    Step(
        "create_webhook_endpoint",
        captures={"webhookEndpointId": ".id"},
        body={**REQUEST_EXAMPLES["create_webhook_endpoint"], "url": "{{webhookUrl}}"},
    ),
    Step("list_webhook_endpoints"),
    Step("get_webhook_endpoint"),
    Step("update_webhook_endpoint"),
    Step("rotate_webhook_endpoint_secret"),
    Step("delete_webhook_endpoint"),
    Step("list_keys"),
    # The new key is kept as secretKey; the calling key is revoked with it next.
    Step("rotate_key", captures={"secretKey": ".secret_key", "keyId": ".previous_key.id"}),
    Step("revoke_key"),
]


def build_schema() -> dict[str, Any]:
    """The app's OpenAPI document, built from the default settings (the environment is not read)."""
    from mpesa_bridge.api.app import create_app
    from mpesa_bridge.config import Settings

    # A prefix no variable has: MPESA_BRIDGE_* settings of this shell must not change the files.
    settings = Settings(_env_file=None, _env_prefix="MPESA_BRIDGE_API_FILES_UNUSED_")
    schema: dict[str, Any] = json.loads(json.dumps(create_app(settings).openapi()))
    return schema


def openapi_document(schema: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(schema))
    document["servers"] = [
        {"url": SERVER_URL, "description": "a development bridge (`make run`); replace with your bridge's address"}
    ]
    return document


def operations(schema: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId -> (method, path, operation), in the document's order."""
    found: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                found[item[method]["operationId"]] = (method, path, item[method])
    return found


def unplanned(schema: dict[str, Any]) -> list[str]:
    """Operations no step sends (they are still added, at the end of their folder, untested)."""
    planned = {step.operation for step in STEPS} | LEFT_OUT
    return [name for name in operations(schema) if name not in planned]


def _bearer(variable: str) -> dict[str, Any]:
    return {"type": "bearer", "bearer": [{"key": "token", "value": "{{" + variable + "}}", "type": "string"}]}


def _success_codes(operation: dict[str, Any]) -> list[int]:
    return sorted(int(code) for code in operation["responses"] if code.startswith("2"))


def _script(operation: dict[str, Any], captures: dict[str, str]) -> list[str]:
    codes = _success_codes(operation)
    lines = [STATUS_LINE.format(expected=" or ".join(map(str, codes)), codes=", ".join(map(str, codes)))]
    if captures:
        lines.append(BODY_LINE)
        lines += [CAPTURE_LINE.format(variable=name, path=path) for name, path in captures.items()]
    return lines


def _url(path: str, operation: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    segments = [f":{part[1:-1]}" if part.startswith("{") else part for part in path.strip("/").split("/")]
    url: dict[str, Any] = {
        "raw": "{{baseUrl}}/" + "/".join(segments),
        "host": ["{{baseUrl}}"],
        "path": segments,
    }
    parameters = operation.get("parameters", [])
    variables = [
        {"key": p["name"], "value": values.get(p["name"], ""), "description": p.get("description", "")}
        for p in parameters
        if p["in"] == "path"
    ]
    if variables:
        url["variable"] = variables
    query = [
        {"key": p["name"], "value": "", "description": p.get("description", ""), "disabled": True}
        for p in parameters
        if p["in"] == "query"
    ]
    if query:
        url["query"] = query
    return url


def _request(step: Step, method: str, path: str, operation: dict[str, Any]) -> dict[str, Any]:
    headers: list[dict[str, Any]] = []
    request: dict[str, Any] = {"method": method.upper(), "description": operation.get("description", "")}
    media = operation.get("requestBody", {}).get("content", {}).get("application/json")
    body = step.body if step.body is not None else (media or {}).get("example")
    if media is not None:
        headers.append({"key": "Content-Type", "value": "application/json"})
        request["body"] = {
            "mode": "raw",
            "raw": json.dumps(body if body is not None else {}, indent=2, ensure_ascii=False),
            "options": {"raw": {"language": "json"}},
        }
    keyed = any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
    if keyed and step.auth not in BROWSER_SCHEMES:  # a browser's call opens a new session per try: no key
        headers.append({"key": "Idempotency-Key", "value": "{{$guid}}", "description": "a new key each send"})
    request["header"] = headers
    request["url"] = _url(path, operation, {**PATH_VALUES, **step.path})
    schemes = [name for requirement in operation.get("security", []) for name in requirement]
    scheme = step.auth or (schemes[0] if schemes else None)
    if scheme is None:
        request["auth"] = {"type": "noauth"}
    elif scheme != "SecretKey":  # the collection's own auth is the secret key
        request["auth"] = _bearer(auth_variable(scheme))
    return request


def postman_collection(schema: dict[str, Any]) -> dict[str, Any]:
    schemes = schema.get("components", {}).get("securitySchemes", {})
    variables = VARIABLES | {auth_variable(name): "" for name in schemes if auth_variable(name) not in VARIABLES}
    ops = operations(schema)
    steps = STEPS + [Step(name) for name in unplanned(schema)]
    folders: dict[str, list[dict[str, Any]]] = {}
    for step in steps:
        if step.operation not in ops:  # a planned operation the app no longer has
            continue
        method, path, operation = ops[step.operation]
        folder = step.folder or operation.get("tags", ["other"])[0]
        folders.setdefault(folder, []).append(
            {
                "name": step.name or operation.get("summary") or step.operation,
                "request": _request(step, method, path, operation),
                "event": [
                    {"listen": "test", "script": {"type": "text/javascript", "exec": _script(operation, step.captures)}}
                ],
            }
        )
    items = [
        {"name": name[:1].upper() + name[1:].replace("_", " "), "item": requests} for name, requests in folders.items()
    ]
    return {
        "info": {
            "name": schema["info"]["title"],
            "description": COLLECTION_HELP,
            "schema": POSTMAN_SCHEMA,
        },
        "auth": _bearer("secretKey"),
        "variable": [{"key": key, "value": value, "type": "string"} for key, value in variables.items()],
        "item": items,
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def api_files() -> dict[str, str]:
    """File name -> its text, as `mpesa-bridge openapi` writes it."""
    schema = build_schema()
    return {OPENAPI_FILE: render(openapi_document(schema)), POSTMAN_FILE: render(postman_collection(schema))}


@app.command("openapi")
def openapi_files(
    out: Annotated[
        Path,
        typer.Option(
            envvar="MPESA_BRIDGE_API_FILES_DIR", help="folder to write openapi.json and the Postman collection to"
        ),
    ] = Path("docs"),
    check: Annotated[
        bool,
        typer.Option(
            "--check/--write",
            envvar="MPESA_BRIDGE_API_FILES_CHECK",
            help="write nothing; exit 1 if a file in the folder differs from what the app gives",
        ),
    ] = False,
) -> None:
    """Write the OpenAPI document and the Postman collection (v2.1) generated from the app."""
    stale = []
    for name, text in api_files().items():
        target = out / name
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            typer.echo(f"{target}: up to date")
        elif check:
            stale.append(str(target))
            typer.echo(f"{target}: differs from the app", err=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            typer.echo(f"{target}: written")
    for name in unplanned(build_schema()):
        typer.echo(
            f"note: {name} is not in STEPS (cli/apifiles.py): added to its folder, not walked in order", err=True
        )
    if stale:
        typer.echo(f"run `{REGENERATE}` (or `mpesa-bridge openapi --out {out}`) and commit the files", err=True)
        raise typer.Exit(1)
