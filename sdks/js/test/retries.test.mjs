// Retries only where safe, against a tiny local server that misbehaves on purpose: 429 with
// Retry-After, 5xx on idempotent and non-idempotent requests, the retry cap, the same
// Idempotency-Key on every try of a create, a connection refused before anything was sent.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { MpesaBridge, RateLimitError, ServerError, ConnectionError } from "../dist/esm/index.js";
import { freePort } from "./helpers/bridge.mjs";

let server;
let url;
let script = [];
const seen = [];

before(async () => {
  server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      seen.push({ at: Date.now(), method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      const [status, headers = {}] = script.shift() ?? [200];
      const body = status < 400
        ? JSON.stringify({ id: "pay_ok", object: "payment", status: "pending" })
        : JSON.stringify({ error: { type: status === 429 ? "rate_limit_error" : "api_error", code: status === 429 ? "rate_limited" : "internal_error", message: "no", param: null, request_id: "req_" + "a".repeat(24) } });
      res.writeHead(status, { "Content-Type": "application/json", ...headers }).end(body);
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${server.address().port}`;
});
after(() => new Promise((r) => server.close(r)));

const client = (options = {}) => new MpesaBridge("sk_test_" + "k".repeat(32), { baseUrl: url, retryDelayMs: 10, ...options });
const reset = (steps) => {
  script = steps;
  seen.length = 0;
};

test("429 is retried after its Retry-After; the create keeps its Idempotency-Key", async () => {
  reset([[429, { "Retry-After": "1" }], [503], [201]]);
  const payment = await client().payments.create({ phone: "0708374149", amount: 1, account_reference: "R" });
  assert.equal(payment.id, "pay_ok");
  assert.equal(seen.length, 3);
  const keys = new Set(seen.map((r) => r.headers["idempotency-key"]));
  assert.equal(keys.size, 1);
  assert.match([...keys][0], /^[0-9a-f-]{36}$/);
  assert.ok(seen[1].at - seen[0].at >= 950, `waited ${seen[1].at - seen[0].at} ms`);
  assert.ok(seen.every((r) => r.body === seen[0].body));
});

test("each create gets a new key unless one is given", async () => {
  reset([[201], [201], [201]]);
  const c = client();
  await c.payments.create({ phone: "0708374149", amount: 1, account_reference: "R" });
  await c.payments.create({ phone: "0708374149", amount: 1, account_reference: "R" });
  await c.payments.create({ phone: "0708374149", amount: 1, account_reference: "R" }, { idempotencyKey: "order-7" });
  assert.notEqual(seen[0].headers["idempotency-key"], seen[1].headers["idempotency-key"]);
  assert.equal(seen[2].headers["idempotency-key"], "order-7");
});

test("Retry-After is capped by maxRetryDelayMs; retries are capped by maxRetries", async () => {
  reset([[429, { "Retry-After": "600" }], [200]]);
  const started = Date.now();
  await client({ maxRetryDelayMs: 100 }).payments.get("pay_ok");
  assert.ok(Date.now() - started < 2000);
  reset([[500], [500], [500], [500], [500]]);
  await assert.rejects(client({ maxRetries: 3 }).payments.get("pay_ok"), (e) => e instanceof ServerError && e.code === "internal_error" && e.requestId === "req_" + "a".repeat(24));
  assert.equal(seen.length, 4);
  reset([[429, { "Retry-After": "0" }], [429, { "Retry-After": "0" }], [429, { "Retry-After": "0" }]]);
  await assert.rejects(client({ maxRetries: 2 }).payments.get("pay_ok"), (e) => e instanceof RateLimitError && e.retryAfter === 0);
  assert.equal(seen.length, 3);
});

test("a 5xx is not retried where repeating could act twice", async () => {
  reset([[502], [200]]);
  await assert.rejects(client().project.rotatePublishableKey(), ServerError);
  assert.equal(seen.length, 1);
  reset([[500], [200]]);
  await assert.rejects(client().request({ method: "POST", path: "/v1/anything", body: {}, idempotent: false }), ServerError);
  assert.equal(seen.length, 1);
});

test("a connection refused before sending is retried, even for a request that is not idempotent", async () => {
  const port = await freePort(); // nothing listens there
  let attempts = 0;
  const counting = (u, init) => {
    attempts++;
    return fetch(u, init);
  };
  const c = new MpesaBridge("sk_test_" + "k".repeat(32), { baseUrl: `http://127.0.0.1:${port}`, fetch: counting, retryDelayMs: 5, maxRetries: 2 });
  await assert.rejects(c.project.rotatePublishableKey(), ConnectionError);
  assert.equal(attempts, 3);
});

test("a request timing out is retried only when idempotent", async () => {
  const slow = createServer(() => {}); // never answers
  await new Promise((r) => slow.listen(0, "127.0.0.1", r));
  let attempts = 0;
  const counting = (u, init) => {
    attempts++;
    return fetch(u, init);
  };
  const base = `http://127.0.0.1:${slow.address().port}`;
  const c = new MpesaBridge("sk_test_" + "k".repeat(32), { baseUrl: base, fetch: counting, retryDelayMs: 5, maxRetries: 1, timeoutMs: 150 });
  await assert.rejects(c.payments.get("pay_x"), { name: "TimeoutError" });
  assert.equal(attempts, 2);
  attempts = 0;
  await assert.rejects(c.project.rotatePublishableKey(), { name: "TimeoutError" });
  assert.equal(attempts, 1);
  slow.closeAllConnections();
  await new Promise((r) => slow.close(r));
});
