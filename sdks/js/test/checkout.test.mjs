// Checkout sessions from both sides (the secret key opens, lists, expires; the client secret
// reads, pays and watches) and payment links, against a real bridge and its simulator.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { MpesaBridge, CheckoutClient, watchPayment, idOfClientSecret, ConflictError, AuthenticationError } from "../dist/esm/index.js";
import * as browser from "../dist/esm/browser.js";
import { startBridge, freshPhone } from "./helpers/bridge.mjs";

let bridge;
let client;
before(async () => {
  bridge = await startBridge();
  client = new MpesaBridge(bridge.secretKey, { baseUrl: bridge.url });
});
after(async () => {
  await bridge?.stop();
});

test("the server opens a session; the browser pays it and sees it paid (stream + polling)", async () => {
  const session = await client.checkoutSessions.create({ amount: 150, reference: "ORDER42", description: "Order 42", metadata: { order: "42" } });
  assert.match(session.id, /^cs_/);
  assert.equal(session.status, "open");
  assert.equal(idOfClientSecret(session.client_secret), session.id);
  assert.equal((await client.checkoutSessions.get(session.id)).metadata.order, "42");

  const checkout = new browser.CheckoutClient(session.client_secret, { baseUrl: bridge.url });
  const seen = await checkout.retrieve();
  assert.equal(seen.amount, 150);
  assert.equal(seen.metadata ?? null, null); // the browser never sees metadata
  const paying = await checkout.pay({ phone: freshPhone() });
  assert.equal(paying.payment.status, "pending");
  const outcome = await checkout.waitForOutcome({ timeoutMs: 20000, pollIntervalMs: 300 });
  assert.equal(outcome.status, "succeeded");
  assert.ok(outcome.receipt);
  const paid = await client.checkoutSessions.get(session.id);
  assert.equal(paid.status, "complete");
  await assert.rejects(checkout.pay({ phone: freshPhone() }), (e) => e instanceof ConflictError && e.code === "checkout_session_complete");
  // A client secret is no key.
  const asKey = new MpesaBridge(session.client_secret, { baseUrl: bridge.url });
  await assert.rejects(asKey.payments.list().then(), AuthenticationError);
});

test("a failed try is an outcome the customer can retry; the second try pays", async () => {
  const session = await client.checkoutSessions.create({ amount_min: 10, amount_max: 500, reference: "RETRY" });
  const checkout = new CheckoutClient(session.client_secret, { baseUrl: bridge.url });
  await assert.rejects(checkout.pay({ phone: freshPhone(), amount: 5000 }), { code: "amount_out_of_range" });
  await checkout.pay({ phone: "0700000001", amount: 120 });
  const failed = await checkout.waitForOutcome({ timeoutMs: 20000, pollIntervalMs: 200, stream: false });
  assert.equal(failed.status, "failed");
  assert.equal(failed.code, "insufficient_funds");
  await checkout.pay({ phone: freshPhone(), amount: 120 });
  const updates = [];
  const outcome = await new Promise((resolve) => {
    const stop = checkout.watch((s) => {
      updates.push(s.status);
      if (s.status === "complete") {
        stop();
        resolve(s);
      }
    }, { pollIntervalMs: 5000 });
  });
  assert.equal(outcome.payment.status, "succeeded");
  assert.equal(outcome.amount, null);
});

test("the secret key lists sessions page by page, follows one's stream, draws its QR code and expires one", async () => {
  const a = await client.checkoutSessions.create({ amount: 10, reference: "LIST1" });
  const b = await client.checkoutSessions.create({ amount: 10, reference: "LIST2" });
  const ids = (await client.checkoutSessions.list({ limit: 1 }).toArray(2)).map((s) => s.id);
  assert.deepEqual(ids, [b.id, a.id]);
  const svg = new TextDecoder().decode(await client.checkoutSessions.qr(a.id));
  assert.match(svg, /<svg/);
  const png = await client.checkoutSessions.qr(a.id, "png");
  assert.deepEqual([...png.slice(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  const controller = new AbortController();
  const events = client.checkoutSessions.stream(a.id, { signal: controller.signal });
  const next = events.next();
  const expired = await client.checkoutSessions.expire(a.id);
  assert.equal(expired.status, "expired");
  const { value } = await next;
  assert.equal(value.type, "checkout_session.expired");
  controller.abort();
  await events.return();
  await assert.rejects(client.checkoutSessions.expire(a.id), { code: "checkout_session_not_open" });
});

test("a payment's client secret watches it to its end", async () => {
  const payment = await client.payments.create({ phone: freshPhone(), amount: 70, account_reference: "WATCH" });
  const types = [];
  const final = await watchPayment(payment.client_secret, { baseUrl: bridge.url, timeoutMs: 20000, onEvent: (e) => types.push(e.type) });
  assert.equal(final.status, "succeeded");
  assert.deepEqual(types, ["payment.created", "payment.succeeded"]);
});

test("payment links: create, get, list, update, QR code", async () => {
  const link = await client.paymentLinks.create({ title: "Tuition, term 1", amount: 1500, metadata: { term: 1 } });
  assert.match(link.id, /^plink_/);
  assert.match(link.url, /\/l\//);
  const read = await client.paymentLinks.get(link.id);
  assert.equal(read.payments_succeeded, 0);
  const updated = await client.paymentLinks.update(link.id, { active: false, description: "closed" });
  assert.equal(updated.active, false);
  assert.ok((await client.paymentLinks.list().toArray()).some((l) => l.id === link.id));
  assert.match(new TextDecoder().decode(await client.paymentLinks.qr(link.id)), /<svg/);
});

test("reversals and balance queries: reverse a paid payment, read the balances", async () => {
  const created = await client.payments.create({ phone: freshPhone(), amount: 30, account_reference: "REVJS" });
  const payment = await client.payments.waitUntilFinal(created.id, { timeoutMs: 20000 });
  assert.equal(payment.status, "succeeded");
  const reversal = await client.reversals.create(payment.id, { remarks: "Order cancelled" });
  assert.match(reversal.id, /^rev_/);
  assert.equal(reversal.status, "sent");
  const deadline = Date.now() + 20000;
  while ((await client.reversals.get(reversal.id)).status !== "succeeded") {
    assert.ok(Date.now() < deadline, "the reversal never succeeded");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok((await client.reversals.list({ payment_id: payment.id }).toArray()).some((r) => r.id === reversal.id));
  assert.ok((await client.payments.get(payment.id)).reversed_at);
  const query = await client.balanceQueries.create({ wait: 15 });
  assert.equal(query.status, "completed");
  assert.ok(query.accounts.some((a) => a.name === "Utility Account" && Number.isInteger(a.available)));
  assert.equal((await client.balanceQueries.get(query.id)).id, query.id);
});

test("a publishable key opens a session from the browser once client-side amounts are on", async () => {
  const settings = await client.project.get();
  assert.match(settings.publishable_key, /^pk_test_/);
  await assert.rejects(
    browser.CheckoutClient.create(settings.publishable_key, { amount: 250 }, { baseUrl: bridge.url }),
    (error) => error.status === 403 && error.code === "client_side_amounts_disabled",
  );
  const on = await client.project.update({ client_side_amounts: true, client_side_amount_max: 1000 });
  assert.equal(on.client_side_amounts, true);
  const checkout = await browser.CheckoutClient.create(settings.publishable_key, { amount: 250 }, { baseUrl: bridge.url });
  const session = await checkout.retrieve();
  assert.equal(session.amount, 250);
  assert.equal(session.status, "open");
  await checkout.pay({ phone: freshPhone() });
  const outcome = await checkout.waitForOutcome({ timeoutMs: 15000 });
  assert.equal(outcome.status, "succeeded");
  const rotated = await client.project.rotatePublishableKey();
  assert.equal(rotated.previous_publishable_key, settings.publishable_key);
  await assert.rejects(
    browser.CheckoutClient.create(settings.publishable_key, { amount: 250 }, { baseUrl: bridge.url }),
    (error) => error.status === 401,
  );
});

// A stand-in for the platform's EventSource (Node has none): it reads the stream over fetch and
// dispatches named events, as a browser's would, so the SDK's EventSource path runs for real.
class RecordingEventSource {
  static urls = [];
  constructor(url) {
    RecordingEventSource.urls.push(url);
    this.listeners = {};
    this.onerror = null;
    this.controller = new AbortController();
    void (async () => {
      try {
        const { readSse } = await import("../dist/esm/index.js");
        const response = await fetch(url, { headers: { Accept: "text/event-stream" }, signal: this.controller.signal });
        for await (const message of readSse(response.body)) {
          for (const listener of this.listeners[message.event] ?? []) listener({ data: message.data, lastEventId: message.id });
        }
      } catch (error) {
        this.onerror?.(error);
      }
    })();
  }
  addEventListener(type, listener) {
    (this.listeners[type] ??= []).push(listener);
  }
  close() {
    this.controller.abort();
  }
}

test("where the platform has EventSource, the browser subset uses it, with the client secret in the URL", async () => {
  globalThis.EventSource = RecordingEventSource;
  try {
    const session = await client.checkoutSessions.create({ amount: 90, reference: "ES" });
    const checkout = new CheckoutClient(session.client_secret, { baseUrl: bridge.url });
    await checkout.pay({ phone: freshPhone() });
    const outcome = await checkout.waitForOutcome({ timeoutMs: 20000, pollIntervalMs: 60000 });
    assert.equal(outcome.status, "succeeded");
    const payment = await client.payments.create({ phone: freshPhone(), amount: 91, account_reference: "ES" });
    const final = await watchPayment(payment.client_secret, { baseUrl: bridge.url, timeoutMs: 20000 });
    assert.equal(final.status, "succeeded");
    const urls = RecordingEventSource.urls;
    assert.equal(urls.length, 2);
    assert.equal(urls[0], `${bridge.url}/v1/checkout_sessions/${session.id}/events?client_secret=${encodeURIComponent(session.client_secret)}`);
    assert.equal(urls[1], `${bridge.url}/v1/payments/${payment.id}/events?client_secret=${encodeURIComponent(payment.client_secret)}`);
  } finally {
    delete globalThis.EventSource;
  }
});
