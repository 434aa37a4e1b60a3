// Payments against a real bridge and its simulator: create (idempotency), get, list with
// auto-pagination, refresh, evidence, totals, waitUntilFinal over the stream and by polling, errors.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { MpesaBridge, NotFoundError, InvalidRequestError, ApiError, ConnectionError } from "../dist/esm/index.js";
import { startBridge, freshPhone } from "./helpers/bridge.mjs";

const LATE_SECONDS = 4;
let bridge;
let client;
before(async () => {
  // The "late" number (254700000902) pays, but its callback comes only after this delay: long
  // enough that waitUntilFinal's first poll always finds the payment pending.
  bridge = await startBridge({ MPESA_BRIDGE_SIMULATOR_LATE_CALLBACK_DELAY: String(LATE_SECONDS) });
  client = new MpesaBridge(bridge.secretKey, { baseUrl: bridge.url });
});
after(async () => {
  await bridge?.stop();
});

test("create answers a pending payment with its client secret; get reads it", async () => {
  const payment = await client.payments.create({ phone: freshPhone(), amount: 10, account_reference: "SDK1", metadata: { order: "1" } });
  assert.match(payment.id, /^pay_/);
  assert.equal(payment.status, "pending");
  assert.equal(payment.amount, 10);
  assert.match(payment.client_secret, new RegExp(`^${payment.id}_secret_`));
  const read = await client.payments.get(payment.id);
  assert.equal(read.id, payment.id);
  assert.deepEqual(read.metadata, { order: "1" });
  assert.equal(read.client_secret, undefined);
});

test("the same Idempotency-Key answers the same payment, never a second one", async () => {
  const params = { phone: freshPhone(), amount: 11, account_reference: "SDKIDEM" };
  const first = await client.payments.create(params, { idempotencyKey: "order-idem-1" });
  const again = await client.payments.create(params, { idempotencyKey: "order-idem-1" });
  assert.equal(again.id, first.id);
  const page = await client.payments.list({ reference: "SDKIDEM" });
  assert.equal(page.data.length, 1);
});

test("an error carries the API's code, type, param and request id", async () => {
  await assert.rejects(client.payments.get("pay_doesnotexist"), (error) => {
    assert.ok(error instanceof NotFoundError);
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 404);
    assert.equal(error.code, "resource_missing");
    assert.match(error.requestId, /^req_[0-9a-f]{24}$/);
    return true;
  });
  await assert.rejects(client.payments.create({ phone: "12", amount: 10, account_reference: "X" }), (error) => {
    assert.ok(error instanceof InvalidRequestError);
    assert.equal(error.code, "invalid_phone");
    assert.equal(error.param, "phone");
    return true;
  });
  const wrongKey = new MpesaBridge("sk_test_" + "x".repeat(32), { baseUrl: bridge.url });
  await assert.rejects(wrongKey.payments.list().then(), { name: "AuthenticationError", code: "invalid_api_key" });
});

test("list walks every page by itself", async () => {
  const created = [];
  for (let i = 0; i < 5; i++) {
    created.push((await client.payments.create({ phone: freshPhone(), amount: 20 + i, account_reference: "SDKPAGES" })).id);
  }
  const first = await client.payments.list({ reference: "SDKPAGES", limit: 2 });
  assert.equal(first.data.length, 2);
  assert.equal(first.has_more, true);
  const seen = [];
  for await (const payment of client.payments.list({ reference: "SDKPAGES", limit: 2 })) seen.push(payment.id);
  assert.deepEqual(seen, [...created].reverse());
  assert.deepEqual((await client.payments.list({ reference: "SDKPAGES", limit: 2 }).toArray(3)).map((p) => p.id), seen.slice(0, 3));
});

test("waitUntilFinal follows the payment's event stream", async () => {
  // Not freshPhone(): its callback comes 0.3 s after the push, and under load the first poll came later
  // still and found the payment settled (poll:succeeded), so nothing came by the stream.
  const payment = await client.payments.create({ phone: "0700000902", amount: 30, account_reference: "SDKSSE" });
  const via = [];
  const final = await client.payments.waitUntilFinal(payment.id, {
    timeoutMs: 20000,
    streamPollIntervalMs: 60000, // only the first poll: the outcome must come by the stream
    onUpdate: (p, how) => via.push(`${how}:${p.status}`),
  });
  assert.equal(final.status, "succeeded");
  assert.ok(final.mpesa_receipt_number);
  assert.ok(via.includes("stream:succeeded"), via.join(","));
  assert.equal(via[0], "poll:pending", via.join(","));
});

test("waitUntilFinal polls when asked not to stream, and when the stream cannot be opened", async () => {
  const payment = await client.payments.create({ phone: "0700000001", amount: 31, account_reference: "SDKPOLL" });
  const via = [];
  const final = await client.payments.waitUntilFinal(payment.id, { stream: false, pollIntervalMs: 200, timeoutMs: 20000, onUpdate: (p, how) => via.push(how) });
  assert.equal(final.status, "failed");
  assert.equal(final.failure_code, "insufficient_funds");
  assert.ok(via.every((how) => how === "poll"));

  // A fetch that cannot open streams (as on a platform without streaming bodies): polling takes over.
  const noStreams = (url, init) => (String(url).includes("/events") ? Promise.reject(new TypeError("no streams here")) : fetch(url, init));
  const fallback = new MpesaBridge(bridge.secretKey, { baseUrl: bridge.url, fetch: noStreams });
  const other = await fallback.payments.create({ phone: freshPhone(), amount: 32, account_reference: "SDKFALL" });
  const via2 = [];
  const done = await fallback.payments.waitUntilFinal(other.id, { pollIntervalMs: 200, streamPollIntervalMs: 60000, timeoutMs: 20000, onUpdate: (p, how) => via2.push(how) });
  assert.equal(done.status, "succeeded");
  assert.ok(via2.length >= 2 && via2.every((how) => how === "poll"), via2.join(","));
});

test("stream yields the payment's events from its start, in order", async () => {
  const payment = await client.payments.create({ phone: freshPhone(), amount: 33, account_reference: "SDKSTREAM" });
  const controller = new AbortController();
  const types = [];
  try {
    for await (const event of client.payments.stream(payment.id, { signal: controller.signal })) {
      types.push(event.type);
      assert.equal(event.data.object.id, payment.id);
      if (event.type === "payment.succeeded") break;
    }
  } finally {
    controller.abort();
  }
  assert.deepEqual(types, ["payment.created", "payment.succeeded"]);
});

test("refresh, evidence and totals", async () => {
  const payment = await client.payments.create({ phone: freshPhone(), amount: 40, account_reference: "SDKREFR" });
  const done = await client.payments.waitUntilFinal(payment.id, { timeoutMs: 20000 });
  const refreshed = await client.payments.refresh(payment.id);
  assert.equal(refreshed.id, payment.id);
  assert.equal(refreshed.status, done.status);
  const evidence = await client.payments.evidence(payment.id);
  assert.equal(evidence.object, "list");
  assert.ok(evidence.data.some((e) => e.source === "callback" && e.verdict === "apply"));
  const totals = await client.payments.totals({ days: 1 });
  assert.equal(totals.object, "payment_totals");
  assert.ok(totals.total.succeeded_amount >= 40);
});

test("keys: list, rotate (new key works, the old one in its grace period), revoke", async () => {
  const { secretKey } = await bridge.newProject("Keys");
  const own = new MpesaBridge(secretKey, { baseUrl: bridge.url });
  const before = await own.keys.list();
  assert.equal(before.data.length, 1);
  const rotated = await own.keys.rotate({ grace_period_seconds: 60 });
  assert.match(rotated.secret_key, /^sk_test_/);
  assert.equal(rotated.previous_key.id, before.data[0].id);
  const fresh = new MpesaBridge(rotated.secret_key, { baseUrl: bridge.url });
  const revoked = await fresh.keys.revoke(before.data[0].id);
  assert.ok(revoked.revoked_at);
  await assert.rejects(own.keys.list(), { code: "invalid_api_key" });
});

test("health and readiness need no key; a dead address is a ConnectionError", async () => {
  assert.equal((await client.health()).status, "ok");
  assert.equal((await client.ready()).checks.migrations, "ok");
  const nowhere = new MpesaBridge(bridge.secretKey, { baseUrl: "http://127.0.0.1:9", maxRetries: 1, retryDelayMs: 10 });
  await assert.rejects(nowhere.payments.get("pay_x"), (error) => error instanceof ConnectionError);
});

test("a Dynamic QR code from the simulator, as JSON and as PNG bytes", async () => {
  const params = { merchant_name: "SDK Shop", reference: "QR1", amount: 100, trx_code: "PB", cpi: "174379" };
  const json = await client.qrCodes.create(params);
  assert.equal(typeof json, "object");
  assert.ok(!(json instanceof Uint8Array));
  const png = await client.qrCodes.create(params, { format: "png" });
  assert.deepEqual([...png.slice(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
});
