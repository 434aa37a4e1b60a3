"""A minimal shop that takes M-Pesa payments through mpesa-bridge with the Python SDK.

- `POST /orders` `{"phone": "0712345678", "amount": 10}`: records an order and sends the STK push.
- `GET /buy?amount=10`: records an order, opens a checkout session and sends the customer to the
  bridge's hosted payment page (they type their phone there).
- `POST /webhooks/mpesa`: the bridge's webhook. The signature is checked with `webhooks.verify` on
  the raw body; `payment.succeeded` marks the order paid (`payment.failed`, `…cancelled`,
  `…expired`: payment_failed). Repeated deliveries of one event are ignored.
- `GET /orders/{id}`: the order as the shop sees it.

Settings (environment): `SHOP_SECRET_KEY` (the bridge's `sk_test_…`), `SHOP_BRIDGE_URL` (default
http://127.0.0.1:8000), `SHOP_PUBLIC_URL` (where the bridge reaches this shop, default
http://127.0.0.1:8001). `SHOP_WEBHOOK_SECRET` (`whsec_…`): the secret of a webhook endpoint you
registered yourself; without it, the shop registers `{SHOP_PUBLIC_URL}/webhooks/mpesa` at start-up
(replacing an endpoint of the same URL) and keeps the new secret in memory.

Orders live in memory: this is an example, not a shop.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from mpesa_bridge_sdk import AsyncClient, InvalidRequestError, WebhookVerificationError, webhooks

WEBHOOK_PATH = "/webhooks/mpesa"
FAILED = {"payment.failed", "payment.cancelled", "payment.expired"}


@dataclass
class Order:
    id: str
    amount: int
    status: str = "pending_payment"  # -> paid | payment_failed
    payment_id: str | None = None
    checkout_session_id: str | None = None
    receipt: str | None = None


class NewOrder(BaseModel):
    phone: str
    amount: int = Field(ge=1)


@dataclass
class Shop:
    bridge: AsyncClient
    webhook_secret: str
    orders: dict[str, Order]
    seen_events: set[str]


async def _register_webhook(bridge: AsyncClient, public_url: str) -> str:
    """Register this shop's webhook URL (replacing an earlier registration) and return its secret."""
    url = public_url.rstrip("/") + WEBHOOK_PATH
    for endpoint in await bridge.webhook_endpoints.list():
        if endpoint.url == url:
            await bridge.webhook_endpoints.delete(endpoint.id)
    endpoint = await bridge.webhook_endpoints.create(
        url=url, enabled_events=["payment.succeeded", *sorted(FAILED)], description="fastapi_shop example"
    )
    assert endpoint.secret is not None
    return endpoint.secret


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    bridge = AsyncClient(
        os.environ["SHOP_SECRET_KEY"], base_url=os.environ.get("SHOP_BRIDGE_URL", "http://127.0.0.1:8000")
    )
    try:
        secret = os.environ.get("SHOP_WEBHOOK_SECRET") or await _register_webhook(
            bridge, os.environ.get("SHOP_PUBLIC_URL", "http://127.0.0.1:8001")
        )
        app.state.shop = Shop(bridge, secret, {}, set())
        yield
    finally:
        await bridge.close()


app = FastAPI(title="mpesa-bridge example shop", lifespan=lifespan)


def _shop(request: Request) -> Shop:
    shop: Shop = request.app.state.shop
    return shop


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/orders", status_code=201)
async def create_order(body: NewOrder, request: Request) -> dict[str, Any]:
    shop = _shop(request)
    order = Order(id="ord_" + uuid.uuid4().hex[:12], amount=body.amount)
    shop.orders[order.id] = order
    try:
        payment = await shop.bridge.payments.create(
            phone=body.phone,
            amount=body.amount,
            account_reference=order.id[-12:],
            description="Shop order",
            metadata={"order_id": order.id},
            idempotency_key=f"order-{order.id}",  # a retry of this call never prompts the customer twice
        )
    except InvalidRequestError as error:
        del shop.orders[order.id]
        raise HTTPException(400, f"{error.code}: {error.message}") from error
    order.payment_id = payment.id
    if payment.status == "failed":
        order.status = "payment_failed"
    return asdict(order)


@app.get("/buy")
async def buy(amount: int, request: Request) -> RedirectResponse:
    shop = _shop(request)
    order = Order(id="ord_" + uuid.uuid4().hex[:12], amount=amount)
    shop.orders[order.id] = order
    base = str(request.base_url).rstrip("/")
    session = await shop.bridge.checkout_sessions.create(
        amount=amount,
        reference=order.id[-12:],
        metadata={"order_id": order.id},
        success_url=f"{base}/orders/{order.id}",
        cancel_url=f"{base}/",
        idempotency_key=f"order-{order.id}",
    )
    order.checkout_session_id = session.id
    return RedirectResponse(f"{session.url}?client_secret={session.client_secret}", status_code=303)


@app.get("/orders/{order_id}")
async def get_order(order_id: str, request: Request) -> dict[str, Any]:
    order = _shop(request).orders.get(order_id)
    if order is None:
        raise HTTPException(404, "no such order")
    return asdict(order)


@app.post(WEBHOOK_PATH)
async def mpesa_webhook(request: Request) -> Response:
    shop = _shop(request)
    try:
        event = webhooks.verify(await request.body(), request.headers, shop.webhook_secret)
    except WebhookVerificationError as error:
        return JSONResponse({"error": str(error)}, status_code=400)
    if event.id in shop.seen_events:  # delivery is at least once
        return Response(status_code=204)
    payment = event.subject
    order = shop.orders.get((payment.get("metadata") or {}).get("order_id", ""))
    if order is not None and order.status != "paid":
        if event.type == "payment.succeeded":
            order.status, order.receipt, order.payment_id = "paid", payment.get("mpesa_receipt_number"), payment["id"]
        elif event.type in FAILED:
            order.status = "payment_failed"
    shop.seen_events.add(event.id)
    return Response(status_code=204)
