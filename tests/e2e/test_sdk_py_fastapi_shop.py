"""examples/fastapi_shop run for real: uvicorn on a free port, a real bridge with its simulator, the
shop's webhook endpoint registered at its own URL; a payment taken two ways (an STK push from the
shop, and the bridge's checkout session) ends with the order marked paid by a verified webhook."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mpesa_bridge_sdk import Client
from tests.fixtures.servers import ServerProcess, free_port, sandbox_bridge

pytestmark = pytest.mark.slow

SHOP_DIR = Path(__file__).resolve().parents[2] / "examples" / "fastapi_shop"


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    with sandbox_bridge(tmp_path_factory.mktemp("shop"), "Shop", callback_delay=0.5) as started:
        yield started


@pytest.fixture(scope="module")
def shop(bridge: tuple[ServerProcess, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server, key = bridge
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SHOP_SECRET_KEY": key, "SHOP_BRIDGE_URL": server.url, "SHOP_PUBLIC_URL": url}
    log_path = tmp_path_factory.mktemp("shoplog") / "shop.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=SHOP_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, log_path.read_text()
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "the shop did not start:\n" + log_path.read_text()
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            process.wait(10)


def order_when(shop: str, order_id: str, status: str, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        order: dict[str, object] = httpx.get(f"{shop}/orders/{order_id}", timeout=5).json()
        if order["status"] == status:
            return order
        assert time.monotonic() < deadline, f"order still {order['status']}"
        time.sleep(0.1)


def test_the_shop_registered_its_webhook_at_its_own_url(bridge: tuple[ServerProcess, str], shop: str) -> None:
    server, key = bridge
    with Client(key, base_url=server.url) as sdk:
        assert [e.url for e in sdk.webhook_endpoints.list()] == [shop + "/webhooks/mpesa"]


def test_an_stk_payment_marks_the_order_paid_through_a_verified_webhook(
    bridge: tuple[ServerProcess, str], shop: str
) -> None:
    server, key = bridge
    created = httpx.post(f"{shop}/orders", json={"phone": "0712555001", "amount": 25}, timeout=10)
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["status"] == "pending_payment" and order["payment_id"].startswith("pay_")
    paid = order_when(shop, order["id"], "paid")
    assert paid["receipt"] and paid["payment_id"] == order["payment_id"]
    with Client(key, base_url=server.url) as sdk:
        (event,) = sdk.events.list(subject=order["payment_id"], type="payment.succeeded").data
        detail = sdk.events.retrieve(event.id)
    assert detail.deliveries is not None
    assert [d.status for d in detail.deliveries] == ["succeeded"]
    assert detail.deliveries[0].attempts[-1].status_code == 204  # the shop accepted the signature


def test_a_failed_payment_marks_the_order_failed(shop: str) -> None:
    created = httpx.post(f"{shop}/orders", json={"phone": "0700001032", "amount": 10}, timeout=10).json()
    order_when(shop, created["id"], "payment_failed")  # the simulator's "customer cancels" number


def test_a_checkout_session_order_is_paid_on_the_hosted_page(bridge: tuple[ServerProcess, str], shop: str) -> None:
    server, key = bridge
    redirect = httpx.get(f"{shop}/buy", params={"amount": 40}, timeout=10)
    assert redirect.status_code == 303
    location = urlsplit(redirect.headers["location"])
    assert location.path.startswith("/pay/cs_") and f"{location.scheme}://{location.netloc}" == server.url
    session_id = location.path.rsplit("/", 1)[1]
    client_secret = parse_qs(location.query)["client_secret"][0]
    assert httpx.get(redirect.headers["location"], timeout=10).status_code == 200  # the hosted page opens
    with Client(base_url=server.url) as customer:  # what the hosted page does with the phone typed
        customer.checkout_sessions.pay(session_id, client_secret=client_secret, phone="0712555002")
    with Client(key, base_url=server.url) as sdk:
        session = sdk.checkout_sessions.retrieve(session_id)
    assert session.metadata is not None and session.amount == 40
    order = order_when(shop, str(session.metadata["order_id"]), "paid")
    assert order["checkout_session_id"] == session_id and order["receipt"]


def test_a_forged_webhook_is_refused_and_changes_nothing(shop: str) -> None:
    created = httpx.post(f"{shop}/orders", json={"phone": "0700000902", "amount": 10}, timeout=10).json()  # pays late
    body = (
        '{"id":"evt_forged","object":"event","type":"payment.succeeded","created":"2026-01-01T00:00:00Z","mode":"test",'
        '"data":{"object":{"id":"pay_x","status":"succeeded","metadata":{"order_id":"' + created["id"] + '"}}}}'
    )
    headers = {
        "webhook-id": "evt_forged",
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": "v1,bm90IGEgcmVhbCBzaWduYXR1cmUgYXQgYWxsISEhISE=",
        "content-type": "application/json",
    }
    refused = httpx.post(f"{shop}/webhooks/mpesa", content=body, headers=headers, timeout=5)
    assert refused.status_code == 400
    assert httpx.get(f"{shop}/orders/{created['id']}", timeout=5).json()["status"] == "pending_payment"
