// A minimal shop on Express and the mpesa-bridge SDK.
//
//   POST /orders {"amount": 100, "phone": "0708374149"}  → an order, and an STK push to that phone
//   POST /orders {"amount": 100}                         → an order, and a checkout session: send the
//                                                          customer to its `checkout_url`
//   GET  /orders/:id                                     → the order: "awaiting_payment" or "paid"
//   POST /webhooks/mpesa                                 → the bridge's webhooks, verified with
//                                                          verifyWebhook, mark the order paid
//
// Configuration (environment): MPESA_BRIDGE_URL, MPESA_BRIDGE_KEY (a secret key, sk_test_…),
// PORT (default 3000), SHOP_URL (how the bridge reaches this shop, default http://127.0.0.1:PORT),
// MPESA_BRIDGE_WEBHOOK_SECRET (the whsec_… of an endpoint you registered; without it the shop
// registers SHOP_URL/webhooks/mpesa itself at start).
import express from "express";
import { randomUUID } from "node:crypto";
import { MpesaBridge, verifyWebhook, WebhookVerificationError, ApiError } from "mpesa-bridge";

const port = Number(process.env.PORT ?? 3000);
const shopUrl = process.env.SHOP_URL ?? `http://127.0.0.1:${port}`;
const key = process.env.MPESA_BRIDGE_KEY;
if (!key) {
  console.error("Set MPESA_BRIDGE_KEY to a secret key (the sk_test_… printed by `make run`).");
  process.exit(2);
}
const bridge = new MpesaBridge(key, { baseUrl: process.env.MPESA_BRIDGE_URL ?? "http://127.0.0.1:8000" });

let webhookSecret = process.env.MPESA_BRIDGE_WEBHOOK_SECRET;
if (!webhookSecret) {
  const endpoint = await bridge.webhookEndpoints.create({
    url: `${shopUrl}/webhooks/mpesa`,
    enabled_events: ["payment.succeeded", "payment.failed", "payment.cancelled", "payment.expired", "checkout_session.completed"],
    description: "express shop example",
  });
  webhookSecret = endpoint.secret;
  console.log(`registered webhook endpoint ${endpoint.id} → ${endpoint.url}`);
}

/** The shop's orders (a real shop keeps them in its database). */
const orders = new Map();
/** Webhook ids already handled: delivery is at least once. */
const handled = new Set();

const app = express();

// The webhook route reads the raw body: the signature covers the exact bytes sent.
app.post("/webhooks/mpesa", express.raw({ type: "application/json" }), async (req, res) => {
  let event;
  try {
    event = await verifyWebhook(req.body, req.headers, webhookSecret);
  } catch (error) {
    if (error instanceof WebhookVerificationError) return res.status(400).json({ error: error.message });
    throw error;
  }
  if (!handled.has(event.id)) {
    handled.add(event.id);
    const object = event.data.object;
    const order = orders.get(object.metadata?.order_id);
    if (order && (event.type === "payment.succeeded" || event.type === "checkout_session.completed")) {
      order.status = "paid";
      order.paid_by = object.id;
      if (object.mpesa_receipt_number) order.receipt = object.mpesa_receipt_number;
    } else if (order && event.type.startsWith("payment.") && order.status !== "paid") {
      order.last_failure = object.failure_code;
    }
  }
  res.json({ received: true });
});

app.use(express.json());

app.post("/orders", async (req, res) => {
  const amount = Number(req.body?.amount);
  const phone = req.body?.phone;
  const order = { id: `order_${randomUUID().slice(0, 8)}`, amount, status: "awaiting_payment" };
  orders.set(order.id, order);
  try {
    if (phone) {
      // The order id is the Idempotency-Key: a retried request never prompts the customer twice.
      const payment = await bridge.payments.create(
        { phone, amount, account_reference: order.id.slice(-12), description: "Shop order", metadata: { order_id: order.id } },
        { idempotencyKey: order.id },
      );
      order.payment_id = payment.id;
      return res.status(201).json({ order, payment: { id: payment.id, status: payment.status, client_secret: payment.client_secret } });
    }
    const session = await bridge.checkoutSessions.create(
      { amount, reference: order.id.slice(-12), description: "Shop order", metadata: { order_id: order.id } },
      { idempotencyKey: order.id },
    );
    order.checkout_session_id = session.id;
    return res.status(201).json({
      order,
      checkout_session: { id: session.id, client_secret: session.client_secret },
      checkout_url: `${session.url}?client_secret=${encodeURIComponent(session.client_secret)}`,
    });
  } catch (error) {
    orders.delete(order.id);
    if (error instanceof ApiError) return res.status(error.status >= 500 ? 502 : 400).json({ error: error.code, message: error.message, request_id: error.requestId });
    throw error;
  }
});

app.get("/orders/:id", (req, res) => {
  const order = orders.get(req.params.id);
  if (!order) return res.status(404).json({ error: "no such order" });
  res.json(order);
});

app.listen(port, "127.0.0.1", () => console.log(`shop listening on http://127.0.0.1:${port}`));
