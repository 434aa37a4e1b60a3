"""/metrics over ASGI with the simulator as Daraja, on SQLite and PostgreSQL: what a payment moves,
the database gauges, and who may read it (development, token, production without either)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mpesa_bridge.api.app import create_app
from mpesa_bridge.config import Settings
from tests.fixtures.bridge import BRIDGE_URL, InProcessBridge, make_settings, wait_until
from tests.integration.test_qr_codes_api import BODY as QR_BODY

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


async def test_a_payment_moves_the_counters_and_the_gauges(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    before = await scrape(bridge.client)

    created = await bridge.pay(shop, phone="0708374149", amount=100)
    await bridge.wait_status(shop, created["id"], "succeeded")
    stuck = await bridge.pay(shop, phone="0700000900", amount=50)  # paid, but its callback never comes
    bridge.clock.advance(120)
    after = await scrape(bridge.client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "mpesa_bridge_http_request_duration_seconds_count"
    assert delta(requests, route="/v1/payments", method="POST", status="2xx") == 2
    assert delta(requests, route="/v1/payments/{payment_id}", method="GET", status="2xx") >= 1
    assert delta("mpesa_bridge_daraja_calls_total", api="stk_push") == 2
    assert delta("mpesa_bridge_callbacks_received_total", kind="stk", outcome="stored") == 1
    assert delta("mpesa_bridge_callbacks_applied_total", kind="stk", outcome="applied") == 1
    assert value(after, "mpesa_bridge_payments", mode="test", status="succeeded") == 1
    assert value(after, "mpesa_bridge_payments", mode="test", status="pending") == 1
    assert value(after, "mpesa_bridge_reconciliation_backlog") == 1
    assert value(after, "mpesa_bridge_reconciliation_oldest_pending_seconds") == pytest.approx(120, abs=2)
    assert value(after, "mpesa_bridge_inbox_backlog", state="received") == 0
    assert value(after, "mpesa_bridge_webhook_deliveries_pending") == 0
    assert stuck["status"] == "pending"
    # Raw paths never become labels: the payment's id appears nowhere in the output.
    assert created["id"] not in (await bridge.client.get("/metrics")).text


async def test_a_daraja_error_is_counted_by_api_and_code(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    before = await scrape(bridge.client)
    body = QR_BODY | {"merchant_name": "Duka & Sons"}  # refused by the Daraja client before sending
    response = await bridge.client.post("/v1/qr_codes", json=body, headers=shop.headers())
    after = await scrape(bridge.client)
    assert response.json()["error"]["code"] == "invalid_for_daraja"

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("mpesa_bridge_daraja_calls_total", api="dynamic_qr") == 1
    assert delta("mpesa_bridge_daraja_errors_total", api="dynamic_qr", code="invalid_for_daraja") == 1


async def test_the_callback_fast_path_and_unknown_paths_are_labelled_by_template(bridge: InProcessBridge) -> None:
    before = await scrape(bridge.client)
    await bridge.client.post("/v1/callbacks/daraja/stk/not-a-token", json={"Body": {}})
    await bridge.client.get("/no/such/page/254708374149")
    after = await scrape(bridge.client)
    callback = ("mpesa_bridge_http_request_duration_seconds_count",)
    keys = [k for k in after if k[0] == callback[0] and after[k] != before.get(k, 0.0)]
    routes = {dict(labels)["route"] for _, labels in keys}
    assert "/v1/callbacks/daraja/{kind}/{token}" in routes
    assert "unmatched" in routes
    assert not any("254708374149" in r or "not-a-token" in r for r in routes)


async def test_the_inbox_backlog_counts_stored_callbacks_not_yet_applied(bridge: InProcessBridge) -> None:
    await bridge.runtime.inbox.stop()  # nothing applies what is stored from now on
    shop = await bridge.create_project()
    created = await bridge.pay(shop, phone="0708374149")

    async def waiting() -> bool:
        samples = await scrape(bridge.client)
        return value(samples, "mpesa_bridge_inbox_backlog", state="received") == 1

    await wait_until(waiting)
    assert created["status"] == "pending"


def production(db_url: str, data_dir: Path, **overrides: object) -> Settings:
    return make_settings(
        db_url,
        data_dir,
        env="production",
        public_base_url="https://bridge.example",
        simulator_url=None,
        webhook_test_allow_loopback=False,
        **overrides,
    )


async def read_metrics(settings: Settings, **headers: str) -> httpx.Response:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url=BRIDGE_URL) as client:
        return await client.get("/metrics", headers=headers)


async def test_production_needs_the_token(database: object, db_url: str, tmp_path: Path) -> None:
    settings = production(db_url, tmp_path, metrics_token="scrape-me-please")

    assert (await read_metrics(settings)).status_code == 401
    assert (await read_metrics(settings, Authorization="Bearer wrong")).status_code == 401
    answer = await read_metrics(settings, Authorization="Bearer scrape-me-please")
    assert answer.status_code == 200 and "mpesa_bridge_payments" in answer.text


async def test_production_without_token_or_port_answers_404(database: object, db_url: str, tmp_path: Path) -> None:
    answer = await read_metrics(production(db_url, tmp_path))
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


async def test_a_metrics_port_serves_metrics_alone(database: object, db_url: str, tmp_path: Path) -> None:
    settings = production(db_url, tmp_path, metrics_port=9464)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        on_port = httpx.ASGITransport(app=app, client=("10.0.0.9", 5000))
        async with httpx.AsyncClient(transport=on_port, base_url="http://bridge.test:9464") as client:
            # httpx's ASGI transport gives the URL's port as the server's.
            assert (await client.get("/metrics")).status_code == 200
            assert (await client.get("/healthz")).status_code == 404
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BRIDGE_URL) as client:
            assert (await client.get("/metrics")).status_code == 404  # the main port: neither open nor a token
            assert (await client.get("/healthz")).status_code == 200


async def test_the_initiator_apis_are_counted_at_their_choke_point(bridge: InProcessBridge) -> None:
    shop = await bridge.create_project()
    before = await scrape(bridge.client)
    balance = await bridge.client.post("/v1/balance_queries", json={}, headers=shop.headers())
    assert balance.status_code == 201, balance.text
    status = await bridge.client.post(
        "/v1/transaction_status_queries", json={"transaction_id": "SG632NMUAB"}, headers=shop.headers()
    )
    assert status.status_code == 201, status.text
    after = await scrape(bridge.client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("mpesa_bridge_daraja_calls_total", api="account_balance") == 1
    assert delta("mpesa_bridge_daraja_calls_total", api="transaction_status") == 1
    assert delta("mpesa_bridge_daraja_errors_total", api="account_balance", code="daraja_no_answer") == 0
