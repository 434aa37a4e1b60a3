// mpesa-bridge dashboard: small conveniences on pages that work without them.
// - selects marked data-autosubmit submit their form when changed;
// - buttons marked data-copy copy their text;
// - a table marked data-live-list follows /dashboard/live (Server-Sent Events): new payments are
//   added at the top, status changes update their row in place (fixed row heights: no layout shift).
"use strict";
(function () {
  document.documentElement.classList.add("js");

  function ready(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }

  function autosubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  }

  function copyButtons() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var text = button.getAttribute("data-copy");
        var done = function () { var was = button.textContent; button.textContent = "✓"; setTimeout(function () { button.textContent = was; }, 1200); };
        if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, done);
        else { var area = document.createElement("textarea"); area.value = text; document.body.appendChild(area); area.select(); try { document.execCommand("copy"); } catch (e) {} area.remove(); done(); }
      });
    });
  }

  var zone = "Africa/Nairobi";
  var labels = {};
  function localTime(iso) {
    if (!iso) return "—";
    var parts = new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hour12: false }).formatToParts(new Date(iso));
    var get = function (type) { var p = parts.find(function (x) { return x.type === type; }); return p ? p.value : ""; };
    return get("year") + "-" + get("month") + "-" + get("day") + " " + get("hour").replace("24", "00") + ":" + get("minute");
  }
  function kes(amount) { return "KES " + Number(amount).toLocaleString("en-US"); }
  function masked(phone) { return phone && phone.length >= 8 ? phone.slice(0, 4) + "****" + phone.slice(-4) : "****"; }

  function setStatus(cell, status) {
    var badge = cell.querySelector(".status");
    if (!badge) return;
    badge.className = "status status-" + status;
    badge.textContent = labels[status] || status;
  }

  function setReceipt(row, payment) {
    var cell = row.querySelector("[data-receipt]");
    if (cell) cell.textContent = payment.mpesa_receipt_number || "—";
  }

  function live() {
    var tables = document.querySelectorAll("table[data-live-list]");
    var states = document.querySelectorAll("[data-live-state]");
    if (!tables.length && !document.querySelector("[data-live-payment]")) return;
    if (document.body.dataset.zone) zone = document.body.dataset.zone;
    try { labels = JSON.parse(document.body.dataset.statusLabels || "{}"); } catch (e) { labels = {}; }
    var source = new EventSource("/dashboard/live");
    source.onopen = function () { states.forEach(function (s) { s.classList.add("on"); }); };
    source.onerror = function () { states.forEach(function (s) { s.classList.remove("on"); }); };
    var handle = function (message) {
      var event; try { event = JSON.parse(message.data); } catch (e) { return; }
      var payment = event && event.data && event.data.object;
      if (!payment || payment.object !== "payment") return;
      document.dispatchEvent(new CustomEvent("mb:payment", { detail: { type: event.type, payment: payment } }));
      tables.forEach(function (table) { upsert(table, payment); });
      refreshFigures();
      var single = document.querySelector("[data-live-payment='" + payment.id + "']");
      if (single) {
        var cell = single.querySelector("[data-status]");
        if (cell) setStatus(cell, payment.status);
        if (payment.status !== "pending") single.setAttribute("data-final", "true");
      }
    };
    ["payment.created", "payment.succeeded", "payment.failed", "payment.cancelled", "payment.expired",
     "payment.unknown", "payment.needs_attention", "payment.updated"].forEach(function (type) {
      source.addEventListener(type, handle);
    });
    source.onmessage = handle;
  }

  // The overview's figures: fetched again (at most every 2 s) after a payment event, swapped in
  // place; each figure keeps its size, so nothing moves.
  var figuresTimer = null;
  function refreshFigures() {
    var box = document.querySelector("[data-live-figures]");
    if (!box || figuresTimer) return;
    figuresTimer = setTimeout(function () {
      figuresTimer = null;
      fetch(box.getAttribute("data-live-figures"), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) box.innerHTML = new DOMParser().parseFromString(html, "text/html").body.innerHTML; });
    }, 2000);
  }

  function upsert(table, payment) {
    var body = table.tBodies[0];
    var row = body.querySelector("tr[data-payment='" + payment.id + "']");
    if (row) { setStatus(row.querySelector("[data-status]"), payment.status); setReceipt(row, payment); return; }
    if (table.dataset.liveAppend === "false") return;
    var template = document.getElementById("row-template");
    if (!template) return;
    row = template.content.firstElementChild.cloneNode(true);
    row.setAttribute("data-payment", payment.id);
    var cells = row.cells;
    var link = cells[0].querySelector("a");
    link.href = "/dashboard/payments/" + payment.id; link.textContent = localTime(payment.created_at);
    cells[1].textContent = kes(payment.amount);
    cells[2].textContent = masked(payment.phone);
    cells[3].textContent = payment.account_reference;
    setStatus(row.querySelector("[data-status]"), payment.status);
    setReceipt(row, payment);
    row.classList.add("fresh");
    body.insertBefore(row, body.firstChild);
    var limit = Number(table.dataset.liveLimit || 0);
    while (limit && body.rows.length > limit) body.deleteRow(body.rows.length - 1);
    var empty = table.parentNode.querySelector(".empty");
    if (empty) empty.remove();
  }

  ready(function () { autosubmit(); copyButtons(); live(); });
})();
