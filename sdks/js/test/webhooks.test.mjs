// Webhook endpoints (CRUD, rotation), events (list, get, redeliver) and verifyWebhook with
// node:crypto and WebCrypto, on real deliveries from the bridge to a node http receiver.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { MpesaBridge, verifyWebhook, WebhookVerificationError } from "../dist/esm/index.js";
import { startBridge, freshPhone, waitUntil } from "./helpers/bridge.mjs";

let bridge;
let client;
let receiver;
let receiverUrl;
const deliveries = [];

before(async () => {
  bridge = await startBridge();
  client = new MpesaBridge(bridge.secretKey, { baseUrl: bridge.url });
  receiver = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      deliveries.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200).end("ok");
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  receiverUrl = `http://127.0.0.1:${receiver.address().port}/hooks`;
});
after(async () => {
  await bridge?.stop();
  await new Promise((r) => receiver?.close(r));
});

const deliveriesOf = (eventType) => deliveries.filter((d) => JSON.parse(d.body.toString()).type === eventType);

test("a real delivery verifies with node:crypto and with WebCrypto; a changed one does not", async () => {
  const endpoint = await client.webhookEndpoints.create({ url: receiverUrl, enabled_events: ["payment.succeeded"], description: "sdk" });
  assert.match(endpoint.secret, /^whsec_/);
  const payment = await client.payments.create({ phone: freshPhone(), amount: 50, account_reference: "SDKHOOK" });
  const delivery = await waitUntil(() => deliveriesOf("payment.succeeded").find((d) => d.body.includes(payment.id)), { what: "the webhook" });
  for (const impl of ["node", "webcrypto"]) {
    const event = await verifyWebhook(delivery.body, delivery.headers, endpoint.secret, { crypto: impl });
    assert.equal(event.type, "payment.succeeded");
    assert.equal(event.data.object.id, payment.id);
    assert.equal(event.id, delivery.headers["webhook-id"]);
    // The raw body as a string, the headers as a Headers object.
    const again = await verifyWebhook(delivery.body.toString(), new Headers(delivery.headers), endpoint.secret, { crypto: impl });
    assert.equal(again.id, event.id);
    const tampered = Buffer.from(delivery.body.toString().replace('"amount":50', '"amount":5000'));
    await assert.rejects(verifyWebhook(tampered, delivery.headers, endpoint.secret, { crypto: impl }), WebhookVerificationError);
    await assert.rejects(verifyWebhook(delivery.body, delivery.headers, "whsec_" + Buffer.alloc(32, 1).toString("base64"), { crypto: impl }), WebhookVerificationError);
    const late = () => Number(delivery.headers["webhook-timestamp"]) + 301;
    await assert.rejects(verifyWebhook(delivery.body, delivery.headers, endpoint.secret, { crypto: impl, now: late }), /too old/);
  }
  await assert.rejects(verifyWebhook(delivery.body, {}, endpoint.secret), /missing/);
  await client.webhookEndpoints.del(endpoint.id);
});

test("endpoints: list, get, update, rotate the secret (both secrets verify in the grace period), delete", async () => {
  const endpoint = await client.webhookEndpoints.create({ url: receiverUrl, enabled_events: ["payment.failed"] });
  const listed = await client.webhookEndpoints.list();
  assert.ok(listed.data.some((e) => e.id === endpoint.id));
  const read = await client.webhookEndpoints.get(endpoint.id);
  assert.equal(read.secret, undefined);
  const updated = await client.webhookEndpoints.update(endpoint.id, { description: "failures", enabled_events: ["payment.failed", "payment.cancelled"] });
  assert.deepEqual(updated.enabled_events, ["payment.failed", "payment.cancelled"]);
  assert.equal(updated.description, "failures");
  const rotated = await client.webhookEndpoints.rotateSecret(endpoint.id, { grace_period_seconds: 600 });
  assert.match(rotated.secret, /^whsec_/);
  assert.notEqual(rotated.secret, endpoint.secret);
  assert.ok(rotated.previous_secret_expires_at);

  const payment = await client.payments.create({ phone: "0700001032", amount: 51, account_reference: "SDKROT" });
  const delivery = await waitUntil(() => deliveriesOf("payment.cancelled").find((d) => d.body.includes(payment.id)), { what: "the cancelled webhook" });
  assert.equal(delivery.headers["webhook-signature"].split(" ").length, 2);
  for (const secret of [endpoint.secret, rotated.secret]) {
    assert.equal((await verifyWebhook(delivery.body, delivery.headers, secret)).data.object.id, payment.id);
  }
  const deleted = await client.webhookEndpoints.del(endpoint.id);
  assert.equal(deleted.deleted, true);
  await assert.rejects(client.webhookEndpoints.get(endpoint.id), { status: 404 });
});

test("events: list by subject with auto-pagination, get with deliveries, redeliver to an endpoint", async () => {
  const endpoint = await client.webhookEndpoints.create({ url: receiverUrl, enabled_events: ["*"] });
  const payment = await client.payments.create({ phone: freshPhone(), amount: 52, account_reference: "SDKEVT" });
  await client.payments.waitUntilFinal(payment.id, { timeoutMs: 20000 });
  const types = [];
  for await (const event of client.events.list({ subject: payment.id, limit: 1 })) types.push(event.type);
  assert.deepEqual(types, ["payment.succeeded", "payment.created"]);
  const page = await client.events.list({ subject: payment.id, type: "payment.succeeded" });
  const succeeded = page.data[0];
  const detail = await waitUntil(async () => {
    const d = await client.events.get(succeeded.id);
    return d.deliveries.some((x) => x.status === "succeeded") && d;
  }, { what: "the first delivery" });
  assert.equal(detail.id, succeeded.id);
  const count = () => deliveries.filter((d) => d.headers["webhook-id"] === succeeded.id).length;
  const before = count();
  const answer = await client.events.redeliver(succeeded.id, { endpoint_id: endpoint.id });
  assert.ok(answer);
  await waitUntil(() => count() > before, { what: "the redelivery" });
  const redelivered = deliveries.filter((d) => d.headers["webhook-id"] === succeeded.id).at(-1);
  assert.equal((await verifyWebhook(redelivered.body, redelivered.headers, endpoint.secret)).id, succeeded.id);
  await client.webhookEndpoints.del(endpoint.id);
});

test("the project's event stream resumes after the last event id", async () => {
  const controller = new AbortController();
  const stream = client.events.stream({ signal: controller.signal });
  const first = stream.next(); // opens the stream
  await new Promise((r) => setTimeout(r, 300));
  const payment = await client.payments.create({ phone: freshPhone(), amount: 53, account_reference: "SDKPROJ" });
  const { value } = await first;
  assert.equal(value.type, "payment.created");
  assert.equal(value.data.object.id, payment.id);
  controller.abort();
  await stream.return();
  const later = [];
  const resumed = new AbortController();
  for await (const event of client.events.stream({ lastEventId: value.id, signal: resumed.signal })) {
    later.push(event);
    if (event.data.object.id === payment.id && event.type === "payment.succeeded") break;
  }
  resumed.abort();
  assert.ok(later.every((e) => e.id !== value.id));
});
