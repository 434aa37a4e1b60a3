// The demo page: create a test payment, then follow it live with its client secret.
"use strict";

const FINAL = new Set(["succeeded", "failed", "cancelled", "expired"]);
const EVENT_TYPES = ["payment.created", "payment.succeeded", "payment.failed", "payment.cancelled",
  "payment.expired", "payment.unknown"];
const $ = (id) => document.getElementById(id);
let stream = null;
let poller = null;

function keyFromFragment() {
  const match = /(?:^|[#&])key=(sk_test_[A-Za-z0-9]+)/.exec(window.location.hash);
  return match ? match[1] : window.localStorage.getItem("mpesa-bridge-demo-key") || "";
}

function show(payment) {
  $("result").hidden = false;
  $("payment-id").textContent = payment.id;
  $("status").textContent = payment.status;
  $("status").dataset.status = payment.status;
  $("reason").textContent = payment.failure_code ? `(${payment.failure_code})` : "";
  $("receipt").textContent = payment.mpesa_receipt_number ? `M-Pesa receipt ${payment.mpesa_receipt_number}` : "";
  if (FINAL.has(payment.status)) { stop(); $("submit").disabled = false; }
}

function log(text) {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  $("log").appendChild(item);
}

function stop() {
  if (stream) { stream.close(); stream = null; }
  if (poller) { window.clearInterval(poller); poller = null; }
}

function follow(payment, key) {
  const url = `/v1/payments/${encodeURIComponent(payment.id)}/events?client_secret=${encodeURIComponent(payment.client_secret || "")}`;
  if (window.EventSource && payment.client_secret) {
    stream = new EventSource(url);
    for (const type of EVENT_TYPES) {
      stream.addEventListener(type, (message) => {
        const event = JSON.parse(message.data);
        log(`${event.type}${event.late_correction ? " (late correction)" : ""}`);
        show(event.data.object);
      });
    }
    stream.onerror = () => { if (stream && !FINAL.has($("status").dataset.status)) startPolling(payment, key); };
  } else {
    startPolling(payment, key);
  }
}

function startPolling(payment, key) {
  if (stream) { stream.close(); stream = null; }
  if (poller) return;
  poller = window.setInterval(async () => {
    const response = await fetch(`/v1/payments/${encodeURIComponent(payment.id)}`, {
      headers: { Authorization: `Bearer ${key}` },
    });
    if (response.ok) show(await response.json());
  }, 1000);
}

async function pay(event) {
  event.preventDefault();
  stop();
  $("error").textContent = "";
  $("log").replaceChildren();
  const key = $("key").value.trim();
  if (!key.startsWith("sk_test_")) { $("error").textContent = "Use a test secret key (sk_test_…)."; return; }
  window.localStorage.setItem("mpesa-bridge-demo-key", key);
  $("submit").disabled = true;
  const body = { phone: $("phone").value, amount: Number($("amount").value), account_reference: "DEMO",
    description: "Demo payment" };
  const response = await fetch("/v1/payments", {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) {
    $("error").textContent = data.error ? `${data.error.code}: ${data.error.message}` : "Request failed";
    $("submit").disabled = false;
    return;
  }
  log(`created ${data.id}`);
  show(data);
  if (!FINAL.has(data.status)) follow(data, key);
}

$("key").value = keyFromFragment();
$("pay").addEventListener("submit", pay);
