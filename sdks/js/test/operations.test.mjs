// operations.json maps every operationId of the bridge's OpenAPI document to an SDK method, or says
// why it is deliberately absent. The keys must be exactly the live document's operationIds, and each
// method path must resolve to a function on a client instance.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as sdk from "../dist/esm/index.js";
import { startBridge } from "./helpers/bridge.mjs";

const operations = JSON.parse(readFileSync(new URL("../operations.json", import.meta.url), "utf8"));
const instances = {
  MpesaBridge: new sdk.MpesaBridge("sk_test_" + "x".repeat(32), { baseUrl: "http://127.0.0.1:9" }),
  MpesaBridgeAdmin: new sdk.MpesaBridgeAdmin("admin", { baseUrl: "http://127.0.0.1:9" }),
  CheckoutClient: new sdk.CheckoutClient("cs_x_secret_y", { baseUrl: "http://127.0.0.1:9" }),
};

let bridge;
before(async () => {
  bridge = await startBridge();
});
after(async () => {
  await bridge?.stop();
});

test("operations.json lists exactly the bridge's operationIds", async () => {
  const document = await (await fetch(`${bridge.url}/openapi.json`)).json();
  const ids = Object.values(document.paths).flatMap((methods) => Object.values(methods).map((op) => op.operationId));
  assert.deepEqual(Object.keys(operations).sort(), [...new Set(ids)].sort());
});

test("every mapped operation is a method of a client instance; every absence has a reason", () => {
  for (const [operationId, target] of Object.entries(operations)) {
    if (typeof target === "object") {
      assert.equal(typeof target.absent, "string", operationId);
      assert.ok(target.absent.length > 10, `${operationId}: give a reason`);
      continue;
    }
    const [root, ...path] = target.split(".");
    let owner = instances[root];
    assert.ok(owner, `${operationId}: unknown class ${root}`);
    for (const part of path.slice(0, -1)) owner = owner[part];
    assert.equal(typeof owner?.[path.at(-1)], "function", `${operationId}: ${target} is not a function`);
  }
});
