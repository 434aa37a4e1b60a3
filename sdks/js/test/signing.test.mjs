// Signed requests, exactly as the bridge checks them (core/signing.py): with the secret key, then
// with a generated signing secret; an unsigned client is refused.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { MpesaBridge, signRequest, AuthenticationError } from "../dist/esm/index.js";
import { startBridge, freshPhone } from "./helpers/bridge.mjs";

let bridge;
before(async () => {
  bridge = await startBridge();
});
after(async () => {
  await bridge?.stop();
});

test("signRequest gives the README's worked example", async () => {
  const body = '{"phone":"0708374149","amount":10,"account_reference":"INV001"}';
  const headers = await signRequest("sk_test_4eC39HqLyjWDarjtT1zdp7dcXUvwxyz1", "post", "/v1/payments", body, 1764150000);
  assert.deepEqual(headers, {
    "MB-Timestamp": "1764150000",
    "MB-Signature": "v1=7a05f55412d0f922b808c605e134ebf3bbe48d3b319ec11b88a5cc2e05accea5",
  });
});

test("a project that requires signed requests: unsigned refused, signed with the key or the signing secret accepted", async () => {
  const { projectId, secretKey } = await bridge.newProject("Signed");
  await bridge.admin.projects.update(projectId, { require_signed_requests: true });
  const unsigned = new MpesaBridge(secretKey, { baseUrl: bridge.url });
  await assert.rejects(unsigned.payments.list().then(), (error) => error instanceof AuthenticationError && error.code === "signature_missing");

  const signed = new MpesaBridge(secretKey, { baseUrl: bridge.url, signRequests: true });
  const payment = await signed.payments.create({ phone: freshPhone(), amount: 60, account_reference: "SDKSIGN", metadata: { note: "ünïcode ✓" } });
  assert.deepEqual((await signed.payments.get(payment.id)).metadata, { note: "ünïcode ✓" });
  const page = await signed.payments.list({ reference: "SDKSIGN", limit: 5, status: "pending" }).then();
  assert.ok(Array.isArray(page.data));
  const final = await signed.payments.waitUntilFinal(payment.id, { timeoutMs: 20000, streamPollIntervalMs: 60000 });
  assert.equal(final.status, "succeeded");

  const updated = await bridge.admin.projects.update(projectId, { signing_secret: "generate" });
  assert.match(updated.signing_secret, /^mbsig_/);
  await assert.rejects(signed.payments.get(payment.id), { code: "signature_invalid" });
  const withSecret = new MpesaBridge(secretKey, { baseUrl: bridge.url, signingSecret: updated.signing_secret });
  assert.equal((await withSecret.payments.get(payment.id)).id, payment.id);
  const webhook = await withSecret.webhookEndpoints.create({ url: "http://127.0.0.1:9/x", enabled_events: ["*"] });
  assert.match(webhook.secret, /^whsec_/);
});

test("the admin client: list projects, set Daraja settings, issue and revoke a key", async () => {
  const { projectId } = await bridge.newProject("Admin");
  const listed = await bridge.admin.projects.list();
  assert.ok(listed.data.some((p) => p.id === projectId));
  const settings = await bridge.admin.projects.setDaraja(projectId, "live", {
    environment: "production", consumer_key: "key", consumer_secret: "secret", short_code: "600100", passkey: "passkey",
  });
  assert.equal(settings.short_code, "600100");
  assert.equal(settings.consumer_secret, undefined);
  const issued = await bridge.admin.projects.createKey(projectId, "test");
  assert.match(issued.secret_key, /^sk_test_/);
  const own = new MpesaBridge(issued.secret_key, { baseUrl: bridge.url });
  assert.equal((await own.payments.list()).object, "list");
  const revoked = await bridge.admin.keys.revoke(issued.id);
  assert.ok(revoked.revoked_at);
  await assert.rejects(own.payments.list().then(), { code: "invalid_api_key" });
  const wrong = new (bridge.admin.constructor)("not-the-token", { baseUrl: bridge.url });
  await assert.rejects(wrong.projects.list(), { code: "invalid_admin_token" });
});
