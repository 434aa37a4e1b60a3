"""Tenant isolation: no project, and no mode of a project, can see or touch another's objects.

Every route is classified from `app.routes` (a new one fails `test_every_route_is_classified` until
it is added below, to a probe or to the exemptions with a reason). Each route taking an object id is
called with ids of another project and of the same project's other mode (a test key on live objects
and the reverse): the answer is the 404 an id that never existed gets — same status, same error
shape, same message apart from the id the caller sent, same headers — with none of the owner's data,
and the object is left as it was. Listings and the project event stream show only the caller's own
project and mode.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import BaseRoute

from mpesa_bridge.api.deps import get_caller, get_tenant
from mpesa_bridge.config import SANDBOX_PASSKEY, SANDBOX_SHORTCODE, SIMULATOR_CONSUMER_KEY, SIMULATOR_CONSUMER_SECRET
from mpesa_bridge.core.c2b.confirmation import new_payment
from mpesa_bridge.core.c2b.entity import C2BRegistration
from mpesa_bridge.core.c2b.ports import IncomingC2B
from mpesa_bridge.core.ids import new_id
from mpesa_bridge.storage.db import Database
from tests.fixtures.bridge import ADMIN_TOKEN, InProcessBridge, Tenant, wait_until
from tests.fixtures.realtime import live_bridge

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EVERYONE = ("a:test", "a:live", "b:test", "b:live")


@pytest.fixture
def simulator_overrides() -> dict[str, Any]:
    return {"result_delay": 0.01}  # reversals' and balance queries' Results at once


# Live mode on the simulator: the bridge under test sends every Daraja request to it, whatever the host.
LIVE_DARAJA = {
    "environment": "production",
    "consumer_key": SIMULATOR_CONSUMER_KEY,
    "consumer_secret": SIMULATOR_CONSUMER_SECRET,
    "short_code": SANDBOX_SHORTCODE,
    "passkey": SANDBOX_PASSKEY,
}
PREFIX = {
    "payment": "pay_",
    "key": "key_",
    "webhook_endpoint": "we_",
    "event": "evt_",
    "checkout_session": "cs_",
    "payment_link": "plink_",
    "expected_payment": "exp_",
    "c2b_payment": "c2b_",
    "reversal": "rev_",
    "balance_query": "bq_",
    "payout": "po_",
    "transaction_status_query": "tsq_",
}

# Routes that take the id of a tenant's object: its kind, and a valid body where the route takes one
# (so that a refusal is about the id, not the body).
OBJECT_ROUTES: dict[tuple[str, str], tuple[str, dict[str, Any] | None]] = {
    ("GET", "/v1/payments/{id}"): ("payment", None),
    ("POST", "/v1/payments/{id}/refresh"): ("payment", None),
    ("GET", "/v1/payments/{id}/evidence"): ("payment", None),
    ("GET", "/v1/payments/{id}/events"): ("payment", None),  # SSE: a leak would stream, hence a timeout
    ("POST", "/v1/keys/{id}/revoke"): ("key", None),
    ("GET", "/v1/webhook_endpoints/{id}"): ("webhook_endpoint", None),
    ("PATCH", "/v1/webhook_endpoints/{id}"): ("webhook_endpoint", {"enabled": False}),
    ("DELETE", "/v1/webhook_endpoints/{id}"): ("webhook_endpoint", None),
    ("POST", "/v1/webhook_endpoints/{id}/rotate_secret"): ("webhook_endpoint", None),
    ("GET", "/v1/events/{id}"): ("event", None),
    ("POST", "/v1/events/{id}/redeliver"): ("event", None),
    ("GET", "/v1/checkout_sessions/{id}"): ("checkout_session", None),
    ("POST", "/v1/checkout_sessions/{id}/expire"): ("checkout_session", None),
    ("GET", "/v1/checkout_sessions/{id}/events"): ("checkout_session", None),  # SSE, as for payments
    ("GET", "/v1/checkout_sessions/{id}/qr"): ("checkout_session", None),
    ("GET", "/v1/payment_links/{id}"): ("payment_link", None),
    ("PATCH", "/v1/payment_links/{id}"): ("payment_link", {"active": False, "title": "taken over"}),
    ("GET", "/v1/payment_links/{id}/qr"): ("payment_link", None),
    ("GET", "/v1/expected_payments/{id}"): ("expected_payment", None),
    ("POST", "/v1/expected_payments/{id}/cancel"): ("expected_payment", None),
    ("GET", "/v1/c2b/payments/{id}"): ("c2b_payment", None),
    ("POST", "/v1/c2b/payments/{id}/match"): ("c2b_payment", {"type": "expected_payment", "id": "exp_unknown"}),
    ("POST", "/v1/c2b/payments/{id}/dismiss"): ("c2b_payment", {"note": "taken over"}),
    ("POST", "/v1/payments/{id}/reversals"): ("payment", {"remarks": "taken over"}),
    ("GET", "/v1/reversals/{id}"): ("reversal", None),
    ("GET", "/v1/balance_queries/{id}"): ("balance_query", None),
    ("GET", "/v1/payouts/{id}"): ("payout", None),
    ("POST", "/v1/payouts/{id}/approve"): ("payout", None),
    ("POST", "/v1/payouts/{id}/reject"): ("payout", {"reason": "taken over"}),
    ("GET", "/v1/transaction_status_queries/{id}"): ("transaction_status_query", None),
}
LISTING_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/v1/payments"): "payment",
    ("GET", "/v1/keys"): "key",
    ("GET", "/v1/webhook_endpoints"): "webhook_endpoint",
    ("GET", "/v1/events"): "event",
    ("GET", "/v1/checkout_sessions"): "checkout_session",
    ("GET", "/v1/payment_links"): "payment_link",
    ("GET", "/v1/expected_payments"): "expected_payment",
    ("GET", "/v1/c2b/payments"): "c2b_payment",
    ("GET", "/v1/reversals"): "reversal",
    ("GET", "/v1/balance_queries"): "balance_query",
    ("GET", "/v1/payouts"): "payout",
    ("GET", "/v1/transaction_status_queries"): "transaction_status_query",
}
# Tenant routes with no id to send: they act in the caller's own project and mode.
CALLER_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/v1/payments"): "test_creating_a_payment_stays_in_the_callers_project_and_mode",
    ("POST", "/v1/keys/rotate"): "test_rotating_a_key_touches_only_the_callers_keys",
    ("POST", "/v1/webhook_endpoints"): "test_listings_show_only_the_callers_project_and_mode",
    ("POST", "/v1/checkout_sessions"): "test_listings_show_only_the_callers_project_and_mode",
    ("POST", "/v1/payment_links"): "test_listings_show_only_the_callers_project_and_mode",
    ("POST", "/v1/balance_queries"): "test_listings_show_only_the_callers_project_and_mode",
    ("POST", "/v1/payouts"): "test_listings_show_only_the_callers_project_and_mode",
    ("GET", "/v1/payouts/settings"): "test_listings_show_only_the_callers_project_and_mode",
    ("POST", "/v1/transaction_status_queries"): "test_listings_show_only_the_callers_project_and_mode",
    ("GET", "/v1/events/stream"): "test_the_project_event_stream_carries_only_the_callers_events",
    ("GET", "/v1/payments/totals"): "test_daily_totals_count_only_the_callers_payments",
    ("POST", "/v1/qr_codes"): "test_a_qr_code_is_asked_with_the_callers_own_daraja_settings",
    ("GET", "/v1/project"): "test_browser_settings_and_publishable_keys_stay_in_the_callers_project",
    ("PATCH", "/v1/project"): "test_browser_settings_and_publishable_keys_stay_in_the_callers_project",
    ("POST", "/v1/project/publishable_key/rotate"): (
        "test_browser_settings_and_publishable_keys_stay_in_the_callers_project"
    ),
    ("POST", "/v1/expected_payments"): "test_listings_show_only_the_callers_project_and_mode",
    ("GET", "/v1/c2b/settings"): "test_c2b_settings_and_registrations_stay_in_the_callers_project_and_mode",
    ("POST", "/v1/c2b/settings"): "test_c2b_settings_and_registrations_stay_in_the_callers_project_and_mode",
    ("GET", "/v1/c2b/registrations"): "test_c2b_settings_and_registrations_stay_in_the_callers_project_and_mode",
    ("POST", "/v1/c2b/registrations"): "test_c2b_settings_and_registrations_stay_in_the_callers_project_and_mode",
}
# Tenant routes that authenticate the caller themselves rather than through the secret-key dependency.
OWN_AUTHENTICATION = {
    ("GET", "/v1/payments/{id}/events"): "a secret key, or the payment's own client secret",
    ("GET", "/v1/checkout_sessions/{id}"): "a secret key, or the session's own client secret",
    ("GET", "/v1/checkout_sessions/{id}/events"): "a secret key, or the session's own client secret",
    ("POST", "/v1/checkout_sessions"): "a secret key, or a publishable key (client-side amounts, core/browser.py)",
}
EXEMPT: dict[tuple[str, str], str] = {
    (
        "POST",
        "/v1/callbacks/daraja/{kind}/{token}",
    ): "Daraja's, not a tenant's: the unguessable token names the payment",
    ("GET", "/v1/admin/projects"): "operator API (admin token): spans every project by design",
    ("POST", "/v1/admin/projects"): "operator API (admin token)",
    ("PUT", "/v1/admin/projects/{id}/daraja/{mode}"): "operator API (admin token)",
    ("POST", "/v1/admin/projects/{id}/keys/{mode}"): "operator API (admin token)",
    ("PATCH", "/v1/admin/projects/{id}"): "operator API (admin token)",
    ("POST", "/v1/admin/keys/{id}/revoke"): "operator API (admin token)",
    ("PUT", "/v1/admin/projects/{id}/payout_settings/{mode}"): "operator API (admin token)",
    ("POST", "/v1/checkout_sessions/{id}/pay"): "the session's client secret only (a secret key is refused 401, "
    "whatever the id); a client secret naming another session is 404: tests/integration/test_checkout_sessions.py",
    ("GET", "/l/{slug}"): "a payment link's public page (no key): the unguessable slug names the link; it shows "
    "the link's form, or says the link is gone: tests/integration/test_payment_links.py",
    ("POST", "/l/{slug}"): "a payment link's form (no key): opens a session of the link the slug names and "
    "pushes; nothing else of the project: tests/integration/test_payment_links.py",
    ("POST", "/api/v1/transactions/stk-push"): "the earlier system's push (x-api-key): acts in the key's own project "
    "and mode, off unless the project turned legacy_api on: tests/integration/test_legacy_api.py",
    ("GET", "/api/v1/transactions/status/{id}"): "the earlier system's status call (x-api-key): another project's or "
    "mode's id is the 404 of an id that never existed: tests/integration/test_legacy_api.py",
    ("GET", "/healthz"): "no tenant data",
    ("GET", "/readyz"): "no tenant data",
    ("GET", "/openapi.json"): "the public API description",
    ("HEAD", "/openapi.json"): "the public API description",
    ("GET", "/docs"): "Swagger UI page, no data",
    ("*", "/docs/assets"): "Swagger UI static files",
    ("*", "/simulator"): "the Daraja simulator (development only), no tenant data",
    ("GET", "/demo"): "demo page (development only): static HTML, it calls the API like any client",
    ("GET", "/demo/demo.js"): "demo page's script, static",
    ("GET", "/demo/demo.css"): "demo page's style sheet, static",
    ("GET", "/dashboard"): "a redirect to /dashboard/, no data",
    ("GET", "/pay/{id}"): "the hosted payment page: the session's client secret only, its own session only "
    "(tests/integration/test_checkout_page.py)",
    ("POST", "/pay/{id}"): "the hosted page's form: the session's client secret only (test_checkout_page.py)",
    ("GET", "/pay/assets/{name}"): "the hosted page's style sheet and script, static",
    ("GET", "/v1/widget.js"): "the checkout widget's script, static",
    ("*", "/dashboard"): "the dashboard (a mount): sessions, not secret keys; its pages are scoped to the person's "
    "projects and tested for it in tests/integration/test_dashboard_*.py",
    ("*", "/socket.io"): "Socket.IO gateway (a mount, not routes): authorizes each connection itself; not probed here",
}


def _walk(app: FastAPI) -> list[tuple[str, str, BaseRoute]]:
    """(method, path, route) for every route, included routers flattened (FastAPI ≥ 0.16x keeps them lazy).

    Path parameters are written `{id}` whatever their name (`{payment_id}`, `{key_id}`, …)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is flat already
        found = [(route, getattr(route, "path", ""), getattr(route, "methods", None)) for route in app.routes]
    else:
        found = [(rc.original_route, rc.path or "", rc.methods) for rc in iter_route_contexts(app.routes)]
    out = []
    for route, path, methods in found:
        generic = "/".join("{id}" if p.startswith("{") and p.endswith("_id}") else p for p in path.split("/"))
        out += [(method, generic, route) for method in sorted(methods or {"*"})]
    return out


def _depends_on_the_caller(route: BaseRoute) -> bool:
    pending = [getattr(route, "dependant", None)]
    while pending:
        dependant = pending.pop()
        if dependant is None:
            continue
        if dependant.call in (get_caller, get_tenant):
            return True
        pending.extend(dependant.dependencies)
    return False


def test_every_route_is_classified(bridge: InProcessBridge) -> None:
    probed = OBJECT_ROUTES.keys() | LISTING_ROUTES.keys() | CALLER_ROUTES.keys()
    seen = set()
    for method, path, route in _walk(bridge.app):
        key = (method, path)
        seen.add(key)
        assert key in probed or key in EXEMPT, f"{method} {path}: add it to a probe, or to EXEMPT with a reason"
        assert not (key in probed and key in EXEMPT), key
        if _depends_on_the_caller(route):
            assert key in probed, f"{method} {path} is a tenant route: it needs an isolation probe, not an exemption"
        elif key in probed:
            assert key in OWN_AUTHENTICATION, f"{method} {path} no longer takes a secret key: reclassify it"
    assert probed <= seen, f"probes for routes that no longer exist: {probed - seen}"
    assert {name for name in CALLER_ROUTES.values() if name not in globals()} == set()


@dataclass
class World:
    """Projects A and B, each with objects of every kind in both modes. Intruders: the other three keys."""

    a: Tenant
    b: Tenant
    objects: dict[str, dict[str, list[dict[str, Any]]]]  # kind -> "a:test", … -> that tenant's objects

    def key(self, who: str) -> dict[str, str]:
        project, mode = who.split(":")
        return (self.a if project == "a" else self.b).headers(mode)

    def ids(self, kind: str, who: str) -> list[str]:
        return [o["id"] for o in self.objects[kind][who]]

    def owner_data(self, owner: str) -> list[str]:
        """Strings that would give the owner's objects away if an intruder's answer held them."""
        project = self.a if owner.startswith("a:") else self.b
        values = [project.project_id, f"metadata-of-{owner}"]
        for payment in self.objects["payment"][owner]:
            values += [payment[k] for k in ("phone", "account_reference", "checkout_request_id", "merchant_request_id")]
            values += [payment["mpesa_receipt_number"]]
        values += [k["display"] for k in self.objects["key"][owner]]
        values += [v for e in self.objects["webhook_endpoint"][owner] for v in (e["url"], e["secret"])]
        values += [v for c in self.objects["checkout_session"][owner] for v in (c["reference"], c["client_secret"])]
        values += [v for link in self.objects["payment_link"][owner] for v in (link["title"], link["slug"])]
        values += [e["reference"] for e in self.objects["expected_payment"][owner]]
        values += [v for c in self.objects["c2b_payment"][owner] for v in (c["trans_id"], c["bill_ref_number"])]
        values += [
            v for r in self.objects["reversal"][owner] for v in (r["receipt"], r["remarks"], r["conversation_id"])
        ]
        values += [q["conversation_id"] for q in self.objects["balance_query"][owner]]
        values += [v for po in self.objects["payout"][owner] for v in (po["remarks"], po["originator_conversation_id"])]
        return [v for v in values if v]


async def _setup(bridge: InProcessBridge) -> World:
    a, b = await bridge.create_project("Owner"), await bridge.create_project("Intruder")
    tenants = {"a": a, "b": b}
    objects: dict[str, dict[str, list[dict[str, Any]]]] = {kind: {} for kind in PREFIX}
    for tenant in (a, b):
        response = await bridge.client.put(
            f"/v1/admin/projects/{tenant.project_id}/daraja/live", json=LIVE_DARAJA, headers=ADMIN
        )
        assert response.status_code == 200, response.text
    phones = {"a:test": "0708374149", "a:live": "0711223344", "b:test": "0722000111", "b:live": "0722000112"}
    for who in EVERYONE:
        project, mode = who.split(":")
        tenant, headers = tenants[project], tenants[project].headers(mode)
        objects["payment"][who] = [await _pay(bridge, tenant, mode, phones[who], who)]
        await bridge.client.post(f"/v1/admin/projects/{tenant.project_id}/keys/{mode}", headers=ADMIN)  # a 2nd key
        objects["key"][who] = (await bridge.client.get("/v1/keys", headers=headers)).json()["data"]
        assert len(objects["key"][who]) == 2 and {k["mode"] for k in objects["key"][who]} == {mode}
        host = "http://127.0.0.1:9" if mode == "test" else "https://93.184.216.34"  # live: public addresses only
        body = {"url": f"{host}/hook-{who.replace(':', '-')}", "enabled_events": ["*"]}
        created = await bridge.client.post("/v1/webhook_endpoints", json=body, headers=headers)
        assert created.status_code == 201, created.text
        objects["webhook_endpoint"][who] = [created.json()]
        events = (await bridge.client.get("/v1/events", headers=headers)).json()["data"]
        assert events, f"{who}: a payment made no event"
        objects["event"][who] = events
        session = {"amount": 55, "reference": "CS-" + who.replace(":", "-"), "metadata": {"note": f"metadata-of-{who}"}}
        opened = await bridge.client.post("/v1/checkout_sessions", json=session, headers=headers)
        assert opened.status_code == 201, opened.text
        objects["checkout_session"][who] = [opened.json()]
        link = {"title": "Link-of-" + who.replace(":", "-"), "amount": 66, "metadata": {"note": f"metadata-of-{who}"}}
        created_link = await bridge.client.post("/v1/payment_links", json=link, headers=headers)
        assert created_link.status_code == 201, created_link.text
        objects["payment_link"][who] = [created_link.json()]
        expected = {
            "reference": "EXP-" + who.replace(":", "-"),
            "amount": 88,
            "metadata": {"note": f"metadata-of-{who}"},
        }
        created_expected = await bridge.client.post("/v1/expected_payments", json=expected, headers=headers)
        assert created_expected.status_code == 201, created_expected.text
        objects["expected_payment"][who] = [created_expected.json()]
        c2b_id = await _c2b_payment(bridge, tenant, mode, who)
        objects["c2b_payment"][who] = [(await bridge.client.get(f"/v1/c2b/payments/{c2b_id}", headers=headers)).json()]
        objects["reversal"][who] = [await _reversal(bridge, tenant, mode, objects["payment"][who][0])]
        objects["balance_query"][who] = [await _balance_query(bridge, tenant, mode)]
        # Approval required: the payouts stay pending (approve/reject probes need one), never sent.
        put = await bridge.client.put(
            f"/v1/admin/projects/{tenant.project_id}/payout_settings/{mode}",
            json={"approval_required": True},
            headers=ADMIN,
        )
        assert put.status_code == 200, put.text
        payout = {"phone": phones[who], "amount": 50, "remarks": "Payout-of-" + who.replace(":", "-")}
        keyed = {**headers, "Idempotency-Key": f"payout-{who}"}
        created_payout = await bridge.client.post("/v1/payouts", json=payout, headers=keyed)
        assert created_payout.status_code == 201, created_payout.text
        objects["payout"][who] = [created_payout.json()]
        receipt = objects["payment"][who][0]["mpesa_receipt_number"]
        asked = await bridge.client.post(
            "/v1/transaction_status_queries",
            json={"transaction_id": receipt},
            headers={**headers, "Idempotency-Key": f"tsq-{who}"},
        )
        assert asked.status_code == 201, asked.text
        objects["transaction_status_query"][who] = [asked.json()]
    return World(a, b, objects)


async def _c2b_payment(bridge: InProcessBridge, tenant: Tenant, mode: str, who: str) -> str:
    """A customer's C2B payment of the tenant, unmatched (as a confirmation would leave it)."""
    at = bridge.clock.now()
    tag = who.replace(":", "").upper()
    registration = C2BRegistration(
        new_id("c2breg", at), tenant.project_id, mode, "600984", "Completed", True, 2, secrets.token_hex(32),
        "http://bridge.test/v", "http://bridge.test/c", "registered", None, at, at,
    )  # fmt: skip
    body = IncomingC2B(
        "Pay Bill", f"TX{tag}{secrets.token_hex(3).upper()}", at, 99, "600984", f"C2B-{tag}", "", None, "",
        "2547 ***** 149", "masked", "JOHN",
    )  # fmt: skip
    payment = new_payment(body, tenant.project_id, mode, registration.id, new_id("cb", at), at)
    async with bridge.db.write() as uow:
        await uow.c2b.save_registration(registration)
        assert await uow.c2b.add_payment(payment)
    return payment.id


async def _reversal(bridge: InProcessBridge, tenant: Tenant, mode: str, payment: dict[str, Any]) -> dict[str, Any]:
    """Test mode: reversed through the API (settled before the probes); live mode (production, no
    initiator here): a reversal row of its own, written through the storage."""
    headers = tenant.headers(mode)
    if mode == "test":
        body = {"remarks": f"Refund of {tenant.project_id}"}
        made = await bridge.client.post(f"/v1/payments/{payment['id']}/reversals", json=body, headers=headers)
        assert made.status_code == 201, made.text
        reversal_id = made.json()["id"]
    else:
        reversal_id = await _stored_reversal(bridge, tenant, payment)

    async def settled() -> dict[str, Any] | None:
        found: dict[str, Any] = (await bridge.client.get(f"/v1/reversals/{reversal_id}", headers=headers)).json()
        return found if found["status"] in ("succeeded", "failed") else None

    result: dict[str, Any] = await wait_until(settled)
    return result


async def _stored_reversal(bridge: InProcessBridge, tenant: Tenant, payment: dict[str, Any]) -> str:
    from mpesa_bridge.core.ids import new_id
    from mpesa_bridge.core.reversals.entity import Reversal, ReversalStatus

    now = bridge.clock.now()
    reversal = Reversal(
        id=new_id("rev", now),
        project_id=tenant.project_id,
        mode="live",
        payment_id=payment["id"],
        status=ReversalStatus.FAILED,
        amount=payment["amount"],
        original_receipt=payment["mpesa_receipt_number"],
        short_code=payment["business_short_code"],
        daraja_environment="production",
        callback_token_hash=secrets.token_hex(32),
        remarks=f"Remarks of {tenant.project_id}",
        created_at=now,
        updated_at=now,
        failure_code="initiator_invalid",
    )
    async with bridge.db.write() as uow:
        await uow.reversals.add(reversal)
    return reversal.id


async def _balance_query(bridge: InProcessBridge, tenant: Tenant, mode: str) -> dict[str, Any]:
    headers = tenant.headers(mode)
    if mode == "test":
        made = await bridge.client.post("/v1/balance_queries", json={"wait": 5}, headers=headers)
        assert made.status_code == 201 and made.json()["status"] == "completed", made.text
        result: dict[str, Any] = made.json()
        return result
    from mpesa_bridge.core.balances.entity import BalanceQuery, BalanceQueryStatus
    from mpesa_bridge.core.ids import new_id

    now = bridge.clock.now()
    query = BalanceQuery(
        id=new_id("bq", now),
        project_id=tenant.project_id,
        mode="live",
        status=BalanceQueryStatus.COMPLETED,
        short_code="600100",
        daraja_environment="production",
        callback_token_hash=secrets.token_hex(32),
        created_at=now,
        updated_at=now,
        accounts=[{"name": f"Account of {tenant.project_id}", "currency": "KES", "available": 1, "amounts": [1]}],
    )
    async with bridge.db.write() as uow:
        await uow.balance_queries.add(query)
    found: dict[str, Any] = (await bridge.client.get(f"/v1/balance_queries/{query.id}", headers=headers)).json()
    return found


async def _pay(bridge: InProcessBridge, tenant: Tenant, mode: str, phone: str, who: str) -> dict[str, Any]:
    reference = "REF-" + who.replace(":", "-")  # each tenant's own reference and metadata: a leak would show
    body = {"phone": phone, "amount": 77, "account_reference": reference, "metadata": {"note": f"metadata-of-{who}"}}
    response = await bridge.client.post("/v1/payments", json=body, headers=tenant.headers(mode))
    assert response.status_code == 201, response.text
    created = response.json()

    async def settled() -> dict[str, Any] | None:  # so that its ids and receipt exist, and a leak of them would show
        payment: dict[str, Any] = (
            await bridge.client.get(f"/v1/payments/{created['id']}", headers=tenant.headers(mode))
        ).json()
        return payment if payment["status"] == "succeeded" else None

    result: dict[str, Any] = await wait_until(settled)
    return result


@pytest.fixture
async def world(bridge: InProcessBridge) -> World:
    return await _setup(bridge)


def _shape(response: httpx.Response, sent: str) -> tuple[int, dict[str, Any], list[str]]:
    """What a caller learns from a refusal, with the id it sent and the request id blanked out."""
    body = response.json()
    assert list(body) == ["error"], body
    error = body["error"]
    assert set(error) == {"type", "code", "message", "param", "request_id"}, error
    assert error["request_id"] == response.headers["x-request-id"]
    blanked = {**error, "request_id": "…", "message": error["message"].replace(sent, "<id>")}
    headers = sorted(name for name in response.headers if name not in ("content-length", "ratelimit-reset"))
    return response.status_code, blanked, headers


async def _call(bridge: InProcessBridge, method: str, url: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    # Bounded: a stream opened by mistake would otherwise never end (the ASGI transport reads whole answers).
    return await asyncio.wait_for(bridge.client.request(method, url, json=body, headers=headers), timeout=10)


@pytest.mark.parametrize(("method", "path"), list(OBJECT_ROUTES))
async def test_another_projects_or_modes_ids_are_404_and_reveal_nothing(
    bridge: InProcessBridge, world: World, method: str, path: str
) -> None:
    kind, body = OBJECT_ROUTES[(method, path)]
    for owner in ("a:test", "a:live"):
        before = await _owner_view(bridge, world, owner, kind)
        for intruder in (who for who in EVERYONE if who != owner):
            headers = world.key(intruder)
            made_up = PREFIX[kind] + secrets.token_hex(13)
            baseline = await _call(bridge, method, path.format(id=made_up), body, headers)
            assert baseline.status_code == 404, baseline.text
            for object_id in world.ids(kind, owner):
                url = path.format(id=object_id)
                response = await _call(bridge, method, url, body, headers)
                where = f"{method} {url} as {intruder} on {owner}'s {kind}"
                assert response.status_code == 404, (where, response.text)
                assert _shape(response, object_id) == _shape(baseline, made_up), where
                assert object_id in response.json()["error"]["message"]  # echoes what was sent, nothing more
                for value in world.owner_data(owner):
                    assert value not in response.text, (where, value)
        assert await _owner_view(bridge, world, owner, kind) == before, f"{owner}'s {kind}s changed"


async def _owner_view(bridge: InProcessBridge, world: World, owner: str, kind: str) -> Any:
    """The owner's objects as the owner sees them: probes by intruders must leave them as they were."""
    headers = world.key(owner)
    if kind == "key":
        keys = (await bridge.client.get("/v1/keys", headers=headers)).json()["data"]
        return [(k["id"], k["revoked_at"], k["expires_at"]) for k in keys]
    paths = {
        "payment": ["/v1/payments/{}", "/v1/payments/{}/evidence"],
        "webhook_endpoint": ["/v1/webhook_endpoints/{}"],
        "event": ["/v1/events/{}"],  # with its deliveries: a redelivery would add one
        "checkout_session": ["/v1/checkout_sessions/{}"],
        "payment_link": ["/v1/payment_links/{}"],
        "expected_payment": ["/v1/expected_payments/{}"],
        "c2b_payment": ["/v1/c2b/payments/{}"],
        "reversal": ["/v1/reversals/{}"],
        "balance_query": ["/v1/balance_queries/{}"],
        "payout": ["/v1/payouts/{}"],
        "transaction_status_query": ["/v1/transaction_status_queries/{}"],
    }[kind]
    out = []
    for object_id in world.ids(kind, owner):
        for path in paths:
            response = await bridge.client.get(path.format(object_id), headers=headers)
            assert response.status_code == 200, response.text
            out.append(response.json())
    return out


async def test_listings_show_only_the_callers_project_and_mode(bridge: InProcessBridge, world: World) -> None:
    for caller in EVERYONE:
        headers = world.key(caller)
        mode = caller.split(":")[1]
        for (_, path), kind in LISTING_ROUTES.items():
            others = {i for who in EVERYONE if who != caller for i in world.ids(kind, who)}
            queries: list[dict[str, Any]] = [{}]
            if kind in ("payment", "event"):
                queries += [{"limit": 100}, {"starting_after": PREFIX[kind] + "~"}]
                for who in EVERYONE:
                    queries += [{"starting_after": i} for i in world.ids(kind, who)]
            if kind == "payment":
                for payment in (p for who in EVERYONE for p in world.objects["payment"][who]):
                    queries += [{"phone": payment["phone"]}, {"reference": payment["account_reference"]}]
                    queries += [{"created_gte": payment["created_at"]}, {"status": "succeeded"}]
            if kind == "event":
                queries += [{"payment": i} for who in EVERYONE for i in world.ids("payment", who)]
            for query in queries:
                listing = await bridge.client.get(path, params=query, headers=headers)
                assert listing.status_code == 200, (caller, path, query, listing.text)
                data = listing.json()["data"]
                assert not {item["id"] for item in data} & others, (caller, path, query)
                own = set(world.owner_data(caller))
                for value in (v for who in EVERYONE if who != caller for v in world.owner_data(who) if v not in own):
                    assert value not in listing.text, (caller, path, query, value)
                if kind in ("payment", "key", "webhook_endpoint"):
                    assert {item["mode"] for item in data} <= {mode}, (caller, path, query)
            everything = (await bridge.client.get(path, params={"limit": 100}, headers=headers)).json()["data"]
            assert set(world.ids(kind, caller)) <= {item["id"] for item in everything}, (caller, path)


async def test_creating_a_payment_stays_in_the_callers_project_and_mode(bridge: InProcessBridge, world: World) -> None:
    """Also: an Idempotency-Key is the caller's own — the same key and body elsewhere is a new payment."""
    body = {"phone": "0708374149", "amount": 5, "account_reference": "IDEM"}
    retry = {"Idempotency-Key": "shared-key-1"}
    first = await bridge.client.post("/v1/payments", json=body, headers={**world.key("a:test"), **retry})
    assert first.status_code == 201, first.text
    for intruder in ("a:live", "b:test", "b:live"):
        again = await bridge.client.post("/v1/payments", json=body, headers={**world.key(intruder), **retry})
        assert again.status_code == 201, again.text
        assert "idempotent-replayed" not in again.headers
        assert again.json()["id"] != first.json()["id"] and again.json()["mode"] == intruder.split(":")[1]
        seen = await bridge.client.get(f"/v1/payments/{first.json()['id']}", headers=world.key(intruder))
        assert seen.status_code == 404
    replay = await bridge.client.post("/v1/payments", json=body, headers={**world.key("a:test"), **retry})
    assert replay.json()["id"] == first.json()["id"] and replay.headers["idempotent-replayed"] == "true"


async def test_daily_totals_count_only_the_callers_payments(bridge: InProcessBridge, world: World) -> None:
    # Everyone has one payment of 77 (the world); the others get one more, of an amount of their own.
    phones = {"a:live": "0711223344", "b:test": "0722000111", "b:live": "0722000112"}
    extra = {"a:live": 300, "b:test": 500, "b:live": 1100}
    for who, amount in extra.items():
        body = {"phone": phones[who], "amount": amount, "account_reference": "TOTALS"}
        created = await bridge.client.post("/v1/payments", json=body, headers=world.key(who))
        assert created.status_code == 201, created.text

        async def settled(who: str = who, payment_id: str = created.json()["id"]) -> bool:
            payment = await bridge.client.get(f"/v1/payments/{payment_id}", headers=world.key(who))
            return bool(payment.json()["status"] == "succeeded")

        await wait_until(settled)
    for caller in EVERYONE:
        since = world.objects["payment"][caller][0]["created_at"]
        for query in ({}, {"days": 1}, {"created_gte": since}):
            response = await bridge.client.get("/v1/payments/totals", params=query, headers=world.key(caller))
            assert response.status_code == 200, (caller, query, response.text)
            total = response.json()["total"]
            own = 1 + (caller in extra)
            assert total["count"] == own and total["succeeded_count"] == own, (caller, query, total)
            assert total["succeeded_amount"] == 77 + extra.get(caller, 0), (caller, query, total)


async def test_a_qr_code_is_asked_with_the_callers_own_daraja_settings(bridge: InProcessBridge, world: World) -> None:
    # Nothing is stored, so the risk is the credentials: B's live ones broken, only B's live key fails.
    # (A key of its own: tokens are cached per environment and consumer key.)
    broken = LIVE_DARAJA | {"consumer_key": "unknown-consumer-key", "consumer_secret": "not-the-secret"}
    changed = await bridge.client.put(
        f"/v1/admin/projects/{world.b.project_id}/daraja/live", json=broken, headers=ADMIN
    )
    assert changed.status_code == 200, changed.text
    body = {"merchant_name": "SHOP", "reference": "INV1", "amount": 10, "trx_code": "PB", "cpi": "174379"}
    for who in EVERYONE:
        response = await bridge.client.post("/v1/qr_codes", json=body, headers=world.key(who))
        if who == "b:live":
            assert response.status_code == 502, response.text
            assert response.json()["error"]["code"] == "daraja_auth_failed"
        else:
            assert response.status_code == 200, (who, response.text)
            assert response.json()["object"] == "qr_code"


async def test_rotating_a_key_touches_only_the_callers_keys(bridge: InProcessBridge, world: World) -> None:
    before = {who: await _owner_view(bridge, world, who, "key") for who in ("a:live", "b:test", "b:live")}
    rotated = await bridge.client.post(
        "/v1/keys/rotate", json={"grace_period_seconds": 60}, headers=world.key("a:test")
    )
    assert rotated.status_code == 201, rotated.text
    assert rotated.json()["mode"] == "test"
    for who, view in before.items():
        assert await _owner_view(bridge, world, who, "key") == view, who
        assert rotated.json()["id"] not in str(view)


async def test_browser_settings_and_publishable_keys_stay_in_the_callers_project(
    bridge: InProcessBridge, world: World
) -> None:
    async def views() -> dict[str, Any]:
        return {who: (await bridge.client.get("/v1/project", headers=world.key(who))).json() for who in EVERYONE}

    before = await views()
    assert before["a:test"]["id"] == world.a.project_id and before["b:test"]["id"] == world.b.project_id
    changed = await bridge.client.patch(
        "/v1/project",
        json={"client_side_amounts": True, "allowed_origins": ["https://a.example"]},
        headers=world.key("a:test"),
    )
    assert changed.status_code == 200, changed.text
    rotated = await bridge.client.post("/v1/project/publishable_key/rotate", headers=world.key("a:test"))
    assert rotated.status_code == 201, rotated.text
    after = await views()
    assert after["b:test"] == before["b:test"] and after["b:live"] == before["b:live"]
    # The settings are the project's (both modes see them); the publishable key is the mode's.
    assert after["a:live"]["allowed_origins"] == ["https://a.example"] and after["a:live"]["client_side_amounts"]
    assert after["a:live"]["publishable_key"] == before["a:live"]["publishable_key"]
    assert (
        after["a:test"]["publishable_key"] == rotated.json()["publishable_key"] != before["a:test"]["publishable_key"]
    )


async def test_the_project_event_stream_carries_only_the_callers_events(
    database: Database, db_url: str, tmp_path: Path
) -> None:
    """SSE needs a real server (the ASGI transport reads whole answers): the bridge under uvicorn."""
    async with live_bridge(db_url, tmp_path, simulator_callback_delay=0.05) as live:
        a, b = await live.create_project("Owner"), await live.create_project("Intruder")
        for tenant in (a, b):
            path = f"/v1/admin/projects/{tenant.project_id}/daraja/live"
            put = await live.http.put(path, json=LIVE_DARAJA, headers=ADMIN)
            assert put.status_code == 200, put.text
        body = {"phone": "0708374149", "amount": 10, "account_reference": "STREAM"}

        async def pay(tenant: Tenant, mode: str) -> str:
            response = await live.http.post("/v1/payments", json=body, headers=tenant.headers(mode))
            assert response.status_code == 201, response.text
            payment_id: str = response.json()["id"]
            return payment_id

        async with live.stream("/v1/events/stream", headers=a.headers()) as stream:
            others = {await pay(b, "test"), await pay(b, "live"), await pay(a, "live")}
            own = await pay(a, "test")  # after the others: their events, if leaked, would come first
            seen: list[str] = []
            while seen.count(own) < 2:  # payment.created, then its outcome
                payload = json.loads((await stream.next_event(timeout=10)).data or "{}")
                seen.append(payload["data"]["object"]["id"])
        assert not set(seen) & others, seen
        assert set(seen) == {own}, seen


async def test_c2b_settings_and_registrations_stay_in_the_callers_project_and_mode(
    bridge: InProcessBridge, world: World
) -> None:
    changed = await bridge.client.post(
        "/v1/c2b/settings", json={"validation_rule": "known_references"}, headers=world.key("a:test")
    )
    assert changed.status_code == 200, changed.text
    secret = changed.json()["signing_secret"]
    registered = await bridge.client.post(
        "/v1/c2b/registrations", json={"short_code": "600984"}, headers=world.key("a:test")
    )
    assert registered.status_code == 201, registered.text
    for intruder in ("a:live", "b:test", "b:live"):
        seen = (await bridge.client.get("/v1/c2b/settings", headers=world.key(intruder))).json()
        assert seen["validation_rule"] == "accept_all" and seen["signing_secret"] != secret, intruder
        listed = (await bridge.client.get("/v1/c2b/registrations", headers=world.key(intruder))).json()["data"]
        assert registered.json()["id"] not in {r["id"] for r in listed}, intruder
        assert registered.json()["validation_url"] not in json.dumps(listed), intruder
