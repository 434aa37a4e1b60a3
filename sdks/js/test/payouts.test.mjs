// Payouts and Transaction Status queries against a real bridge and its built-in simulator.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { MpesaBridge, InvalidRequestError } from "../dist/esm/index.js";
import { startBridge } from "./helpers/bridge.mjs";

let bridge;
let client;
before(async () => {
  bridge = await startBridge();
  client = new MpesaBridge(bridge.secretKey, { baseUrl: bridge.url });
});
after(async () => {
  await bridge?.stop();
});

async function settled(id) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const payout = await client.payouts.get(id);
    if (["succeeded", "failed"].includes(payout.status)) return payout;
    if (Date.now() > deadline) throw new Error(`payout ${id} still ${payout.status}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

test("a payout is sent once per Idempotency-Key and succeeds; its receipt is found by Transaction Status", async () => {
  const params = { phone: "0708374149", amount: 20, remarks: "SDK payout" };
  const first = await client.payouts.create(params, { idempotencyKey: "sdk-payout-1" });
  const again = await client.payouts.create(params, { idempotencyKey: "sdk-payout-1" });
  assert.match(first.id, /^po_/);
  assert.equal(again.id, first.id);
  const done = await settled(first.id);
  assert.equal(done.status, "succeeded");
  assert.ok(done.receipt);
  const page = await client.payouts.list({ status: "succeeded" });
  assert.ok(page.data.some((p) => p.id === first.id));
  const settings = await client.payouts.settings();
  assert.equal(settings.object, "payout_settings");
  const query = await client.transactionStatusQueries.create({ transaction_id: done.receipt, wait: 10 });
  assert.equal(query.status, "completed");
  assert.equal(query.result.receipt, done.receipt);
  assert.equal((await client.transactionStatusQueries.get(query.id)).id, query.id);
  assert.ok((await client.transactionStatusQueries.list()).data.some((q) => q.id === query.id));
});

test("errors keep their codes: a payout not pending approval cannot be approved", async () => {
  const payout = await client.payouts.create({ phone: "0708374149", amount: 15 });
  await assert.rejects(client.payouts.approve(payout.id), (error) => error.status === 409);
  await assert.rejects(client.payouts.reject(payout.id, { reason: "late" }), (error) => error.status === 409);
  await assert.rejects(client.payouts.create({ phone: "12", amount: 15 }), InvalidRequestError);
});
