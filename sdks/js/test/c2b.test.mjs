// C2B against a real bridge and its built-in simulator: settings, a short code registered, an
// expected payment matched when a simulated customer pays it, an unmatched one in the review queue
// (suggestions, dismiss), and an expected payment cancelled.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { MpesaBridge, ConflictError } from "../dist/esm/index.js";
import { startBridge, waitUntil } from "./helpers/bridge.mjs";

let bridge;
let client;
before(async () => {
  bridge = await startBridge();
  client = new MpesaBridge(bridge.secretKey, { baseUrl: bridge.url });
});
after(async () => {
  await bridge?.stop();
});

async function customerPays(amount, account) {
  const response = await fetch(`${bridge.url}/simulator/c2b/payments`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ type: "paybill", short_code: "600984", amount, account }),
  });
  assert.equal(response.status, 201);
  return response.json();
}

async function c2bPayment(transId) {
  return waitUntil(
    async () => {
      const page = await client.c2bPayments.list({ limit: 100 });
      return page.data.find((p) => p.trans_id === transId);
    },
    { timeoutMs: 15000, what: `C2B payment ${transId}` },
  );
}

test("a registered short code's payments are matched, reviewed and dismissed", async () => {
  const settings = await client.c2b.updateSettings({ validation_rule: "known_references", default_action: "accept" });
  assert.equal(settings.validation_rule, "known_references");
  assert.match(settings.signing_secret, /^whsec_/);
  assert.equal((await client.c2b.settings()).validation_rule, "known_references");

  const registration = await client.c2b.register({ short_code: "600984" });
  assert.match(registration.id, /^c2breg_/);
  assert.deepEqual((await client.c2b.registrations()).data.map((r) => r.id), [registration.id]);

  const expected = await client.expectedPayments.create({ reference: "SDK-1", amount: 120 });
  assert.equal(expected.status, "open");
  const paid = await customerPays(120, "sdk 1");
  assert.equal(paid.status, "completed");
  const matched = await c2bPayment(paid.TransID);
  assert.equal(matched.status, "matched");
  assert.equal(matched.matched.id, expected.id);
  assert.equal((await client.expectedPayments.get(expected.id)).status, "paid");

  await client.c2b.updateSettings({ validation_rule: "accept_all" });
  const stray = await customerPays(120, "SDK-2");
  const unmatched = await c2bPayment(stray.TransID);
  assert.equal(unmatched.status, "unmatched");
  const detail = await client.c2bPayments.get(unmatched.id);
  assert.deepEqual(detail.same_reference, [unmatched.id]);
  assert.equal(detail.validations[0].decided_by, "accept_all");
  const dismissed = await client.c2bPayments.dismiss(unmatched.id, { note: "a test" });
  assert.equal(dismissed.status, "dismissed");
  await assert.rejects(client.c2bPayments.match(unmatched.id, { type: "expected_payment", id: expected.id }), ConflictError);

  const later = await client.expectedPayments.create({ reference: "SDK-3", amount: 5 });
  assert.equal((await client.expectedPayments.cancel(later.id)).status, "cancelled");
  const open = await client.expectedPayments.list({ status: "open" });
  assert.equal(open.data.length, 0);
});
