/* mpesa-bridge checkout widget (no dependencies): <script src="https://<bridge>/v1/widget.js"></script>
 *   MpesaBridge.open({clientSecret, onSuccess, onError, onClose, theme, locale})   a modal
 *   MpesaBridge.mount(element, {...the same})                                     inline
 *   MpesaBridge.open({publishableKey, amount, reference, description, ...})       no session yet: the
 *     widget opens one with the project's publishable key (client-side amounts on), then the same flow
 * The browser holds only the session's client secret: it reads the session, starts the STK push and
 * watches it (SSE, with polling as the fallback). Styles live in a Shadow DOM; theme with
 * `theme: "light" | "dark" | "auto"` and the CSS variables --mb-accent, --mb-bg, --mb-text, --mb-radius.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var BASE = script && script.src ? new URL(script.src).origin : window.location.origin;
  var FAILED = { failed: 1, cancelled: 1, expired: 1 };
  var WORDS = {
    en: {
      title: "Pay with M-Pesa", phone: "M-Pesa phone number", hint: "For example 0712 345 678",
      amount: "Amount (KES {low} to {high})", pay: "Pay", again: "Try again", close: "Close",
      badPhone: "Enter a Kenyan mobile number, such as 0712 345 678.",
      badAmount: "Enter an amount from KES {low} to {high}.",
      check: "Check your phone", enterPin: "Enter your M-Pesa PIN on your phone{phone} to pay {amount}.",
      left: "{s} seconds left", stillWaiting: "Still waiting for M-Pesa…",
      paid: "Payment received", receipt: "M-Pesa receipt", notDone: "Payment not completed",
      user_cancelled: "You cancelled the payment on your phone.",
      insufficient_funds: "There is not enough money in your M-Pesa account.",
      timeout: "The prompt timed out before a PIN was entered.", wrong_pin: "The M-Pesa PIN was wrong.",
      other: "The payment did not go through.", expired: "This payment has expired.",
      network: "Could not reach the payment service. Check your connection and try again."
    },
    sw: {
      title: "Lipa kwa M-Pesa", phone: "Nambari ya simu ya M-Pesa", hint: "Kwa mfano 0712 345 678",
      amount: "Kiasi (KES {low} hadi {high})", pay: "Lipa", again: "Jaribu tena", close: "Funga",
      badPhone: "Weka nambari ya simu ya Kenya, kama 0712 345 678.",
      badAmount: "Weka kiasi kati ya KES {low} na {high}.",
      check: "Angalia simu yako", enterPin: "Weka PIN yako ya M-Pesa kwenye simu{phone} ili ulipe {amount}.",
      left: "Sekunde {s} zimebaki", stillWaiting: "Bado tunasubiri M-Pesa…",
      paid: "Malipo yamepokelewa", receipt: "Risiti ya M-Pesa", notDone: "Malipo hayakukamilika",
      user_cancelled: "Ulighairi malipo kwenye simu yako.",
      insufficient_funds: "Hakuna pesa za kutosha kwenye akaunti yako ya M-Pesa.",
      timeout: "Muda wa ombi uliisha kabla ya kuweka PIN.", wrong_pin: "PIN ya M-Pesa haikuwa sahihi.",
      other: "Malipo hayakufanikiwa.", expired: "Malipo haya yamepitwa na muda.",
      network: "Imeshindwa kufikia huduma ya malipo. Angalia mtandao wako ujaribu tena."
    }
  };
  var CSS = [
    ":host{all:initial;--mb-accent:#0a7d32;--mb-bg:#fff;--mb-text:#17211b;--mb-muted:#56605a;--mb-bad:#a4161a;",
    "--mb-radius:10px;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--mb-text)}",
    ":host([data-theme=dark]){--mb-accent:#3fbf6a;--mb-bg:#1b211e;--mb-text:#e8efe9;--mb-muted:#a3aea7;--mb-bad:#ff8a8a}",
    ".overlay{position:fixed;inset:0;background:rgba(0,0,0,.55);display:flex;align-items:center;justify-content:center;z-index:2147483647}",
    ".box{background:var(--mb-bg);color:var(--mb-text);border-radius:var(--mb-radius);padding:1.25rem;width:min(26rem,100%);box-sizing:border-box}",
    ".overlay .box{max-height:100vh;overflow:auto}",
    "h2{font-size:1.25rem;margin:0 0 .5rem}.muted{color:var(--mb-muted);font-size:.9rem}",
    ".amount{font-size:1.6rem;font-weight:700;margin:.25rem 0}",
    "label{display:block;font-weight:600;margin-top:.75rem}",
    "input{width:100%;box-sizing:border-box;font-size:1.1rem;padding:.6rem;margin-top:.25rem;border:1px solid var(--mb-muted);",
    "border-radius:calc(var(--mb-radius) - 2px);background:var(--mb-bg);color:var(--mb-text)}",
    "button{display:block;width:100%;margin-top:1rem;padding:.75rem;font-size:1.05rem;font-weight:700;color:#fff;",
    "background:var(--mb-accent);border:0;border-radius:calc(var(--mb-radius) - 2px);cursor:pointer}",
    "button.link{background:none;color:var(--mb-accent);font-weight:400;text-decoration:underline;margin-top:.5rem}",
    "button[disabled]{opacity:.6}:focus-visible{outline:3px solid var(--mb-accent);outline-offset:2px}",
    ".error,.bad{color:var(--mb-bad)}",
    ".sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}"
  ].join("");

  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, function (_, k) { return values && k in values ? values[k] : ""; });
  }

  // Any Kenyan way of writing a mobile number -> 2547XXXXXXXX / 2541XXXXXXXX, or null.
  function normalisePhone(raw) {
    var digits = String(raw || "").replace(/[\s\-().]/g, "").replace(/^\+/, "");
    if (/^0[17]\d{8}$/.test(digits)) { digits = "254" + digits.slice(1); }
    else if (/^[17]\d{8}$/.test(digits)) { digits = "254" + digits; }
    return /^254[17]\d{8}$/.test(digits) ? digits : null;
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(c); } });
    return node;
  }

  function Checkout(host, options, modal) {
    this.options = options;
    this.modal = modal;
    this.secret = options.clientSecret;
    this.sessionId = options.sessionId || String(this.secret).split("_secret_")[0];
    this.t = WORDS[options.locale === "sw" ? "sw" : "en"];
    this.host = host;
    var theme = options.theme || "auto";
    if (theme === "auto") { theme = window.matchMedia && matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"; }
    host.setAttribute("data-theme", theme);
    this.root = host.attachShadow({ mode: "open" });
    if ("adoptedStyleSheets" in this.root && window.CSSStyleSheet) {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      this.root.adoptedStyleSheets = [sheet];
    } else {
      this.root.appendChild(el("style", { text: CSS }));
    }
    this.box = el("div", { "class": "box", role: modal ? "dialog" : "region", "aria-labelledby": "mb-title" });
    this.live = el("div", { "class": "sr-only", role: "status", "aria-live": "polite" });
    this.box.appendChild(this.live);
    if (modal) {
      this.box.setAttribute("aria-modal", "true");
      this.overlay = el("div", { "class": "overlay" }, [this.box]);
      this.root.appendChild(this.overlay);
      this.returnFocus = document.activeElement;
      this.root.addEventListener("keydown", this.onKey.bind(this));
    } else {
      this.root.appendChild(this.box);
    }
    this.load();
  }

  Checkout.prototype.url = function (path) {
    return BASE + "/v1/checkout_sessions/" + encodeURIComponent(this.sessionId) + path +
      "?client_secret=" + encodeURIComponent(this.secret);
  };

  Checkout.prototype.call = function (method, path, body) {
    var init = { method: method, headers: { Accept: "application/json" }, credentials: "omit", cache: "no-store" };
    if (body) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    return fetch(this.url(path), init).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) { var e = new Error((data.error && data.error.message) || r.statusText); e.code = data.error && data.error.code; e.status = r.status; throw e; }
        return data;
      });
    });
  };

  Checkout.prototype.load = function () {
    var self = this;
    this.call("GET", "").then(function (s) { self.session = s; self.show(s); }, function (e) { self.fail(e); });
  };

  // With a publishable key and no client secret: open the session first (POST /v1/checkout_sessions
  // with the amount the page chose), then go on with its client secret as if it had been given.
  var loadSession = Checkout.prototype.load;
  Checkout.prototype.load = function () {
    if (this.secret || !this.options.publishableKey) { return loadSession.call(this); }
    var self = this, o = this.options, body = { amount: Number(o.amount) };
    if (o.reference) { body.reference = String(o.reference); }
    if (o.description) { body.description = String(o.description); }
    fetch(BASE + "/v1/checkout_sessions", {
      method: "POST", credentials: "omit", cache: "no-store", body: JSON.stringify(body),
      headers: { Accept: "application/json", "Content-Type": "application/json", Authorization: "Bearer " + o.publishableKey }
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) { var e = new Error((data.error && data.error.message) || r.statusText); e.code = data.error && data.error.code; e.status = r.status; throw e; }
        return data;
      });
    }).then(function (s) {
      self.secret = s.client_secret;
      self.sessionId = s.id;
      self.session = s;
      self.show(s);
    }, function (e) { self.fail(e); });
  };

  Checkout.prototype.view = function (nodes, focus) {
    this.stopWatching();
    while (this.box.childNodes.length > 1) { this.box.removeChild(this.box.lastChild); }
    var self = this;
    nodes.forEach(function (n) { if (n) { self.box.appendChild(n); } });
    if (this.modal) {
      var close = el("button", { "class": "link", type: "button", "data-mb": "close", text: this.t.close });
      close.addEventListener("click", function () { self.close(); });
      this.box.appendChild(close);
    }
    var target = focus || this.box.querySelector("h2");
    if (target) { if (target.tagName === "H2") { target.setAttribute("tabindex", "-1"); } target.focus(); }
  };

  Checkout.prototype.say = function (text) { this.live.textContent = text; };

  Checkout.prototype.header = function (title, amount) {
    var nodes = [el("h2", { id: "mb-title", text: title })];
    if (amount != null) { nodes.push(el("p", { "class": "amount", text: "KES " + Number(amount).toLocaleString("en") })); }
    return nodes;
  };

  Checkout.prototype.show = function (s) {
    if (s.status === "complete") { return this.success(s); }
    if (s.status === "expired") { return this.failure(this.t.expired, s, false); }
    if (s.payment_in_flight) { return this.waiting(s); }
    var p = s.payment;
    if (p && FAILED[p.status] && this.started) { return this.failure(this.words(p), s, true); }
    return this.form(s);
  };

  Checkout.prototype.words = function (p) {
    var t = this.t;
    if (p.failure_code && t[p.failure_code]) { return t[p.failure_code]; }
    if (p.status === "cancelled") { return t.user_cancelled; }
    if (p.status === "expired") { return t.timeout; }
    return t.other;
  };

  Checkout.prototype.form = function (s, message) {
    var t = this.t, self = this, range = s.amount == null;
    var low = range ? Number(s.amount_min).toLocaleString("en") : "", high = range ? Number(s.amount_max).toLocaleString("en") : "";
    var error = el("p", { "class": "error", id: "mb-error", role: "alert", text: message || "" });
    var amount = range ? el("input", { id: "mb-amount", name: "amount", type: "number", inputmode: "numeric", min: s.amount_min, max: s.amount_max, required: "" }) : null;
    var phone = el("input", { id: "mb-phone", name: "phone", type: "tel", inputmode: "tel", autocomplete: "tel", required: "", "aria-describedby": "mb-hint mb-error" });
    var form = el("form", { novalidate: "" }, [
      range ? el("label", { "for": "mb-amount", text: fill(t.amount, { low: low, high: high }) }) : null, amount,
      el("label", { "for": "mb-phone", text: t.phone }), phone,
      el("p", { "class": "muted", id: "mb-hint", text: t.hint }), error,
      el("button", { type: "submit", "data-mb": "pay", text: this.started ? t.again : t.pay })
    ]);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var msisdn = normalisePhone(phone.value), chosen = null;
      if (range) {
        chosen = Number(amount.value);
        if (!/^\d+$/.test(amount.value) || chosen < s.amount_min || chosen > s.amount_max) {
          error.textContent = fill(t.badAmount, { low: low, high: high }); amount.setAttribute("aria-invalid", "true"); amount.focus(); return;
        }
      }
      if (!msisdn) { error.textContent = t.badPhone; phone.setAttribute("aria-invalid", "true"); phone.focus(); return; }
      form.querySelector("button").disabled = true;
      self.pay(msisdn, chosen);
    });
    this.view(this.header(t.title, s.amount).concat([form]), amount || phone);
  };

  Checkout.prototype.pay = function (msisdn, amount) {
    var self = this, body = { phone: msisdn };
    if (amount != null) { body.amount = amount; }
    this.started = true;
    this.call("POST", "/pay", body).then(function (s) { self.session = s; self.show(s); }, function (e) {
      if (e.status && e.status < 500 && self.session) { self.form(self.session, e.message); } else { self.fail(e); }
    });
  };

  Checkout.prototype.waiting = function (s) {
    var t = this.t, self = this, p = s.payment || {};
    var left = el("p", { "class": "muted", id: "mb-countdown" });
    this.view(this.header(t.check, p.amount != null ? p.amount : s.amount).concat([
      el("p", { text: fill(t.enterPin, { amount: "KES " + Number(p.amount || s.amount).toLocaleString("en"), phone: p.phone ? " (" + p.phone + ")" : "" }) }),
      left
    ]));
    this.say(t.check);
    var ends = Date.now() + 60000;
    function tick() {
      var s2 = Math.max(0, Math.round((ends - Date.now()) / 1000));
      left.textContent = s2 > 0 ? fill(t.left, { s: s2 }) : t.stillWaiting;
    }
    tick();
    this.timers = [setInterval(tick, 1000), setInterval(function () { self.poll(); }, 2000)];
    if (window.EventSource) {
      try {
        this.source = new EventSource(this.url("/events"));
        this.source.addEventListener("checkout_session.completed", function () { self.poll(); });
        this.source.addEventListener("checkout_session.expired", function () { self.poll(); });
        this.source.onerror = function () { if (self.source) { self.source.close(); self.source = null; } }; // polling goes on
      } catch (ignored) { this.source = null; }
    }
  };

  Checkout.prototype.poll = function () {
    var self = this, watching = this.timers;
    this.call("GET", "").then(function (s) {
      if (self.timers !== watching) { return; } // another check's answer came first and moved on: tell the outcome once
      self.session = s;
      if (!s.payment_in_flight || s.status !== "open") { self.show(s); }
    }, function () { /* the next tick tries again */ });
  };

  Checkout.prototype.stopWatching = function () {
    (this.timers || []).forEach(clearInterval);
    this.timers = [];
    if (this.source) { this.source.close(); this.source = null; }
  };

  Checkout.prototype.success = function (s) {
    var t = this.t, p = s.payment || {};
    this.view(this.header(t.paid, p.amount != null ? p.amount : s.amount).concat([
      el("p", { text: t.receipt + ": " }, [el("strong", { id: "mb-receipt", text: p.mpesa_receipt_number || "" })])
    ]));
    this.say(t.paid);
    if (typeof this.options.onSuccess === "function") { this.options.onSuccess({ session: s, receipt: p.mpesa_receipt_number }); }
  };

  Checkout.prototype.failure = function (words, s, retry) {
    var t = this.t, self = this;
    var again = retry ? el("button", { type: "button", "data-mb": "again", text: t.again }) : null;
    if (again) { again.addEventListener("click", function () { self.form(s); }); }
    this.view(this.header(t.notDone, null).concat([el("p", { "class": "bad", id: "mb-failure", text: words }), again]), again);
    this.say(t.notDone + ". " + words);
    if (typeof this.options.onError === "function") {
      var p = s.payment || {};
      this.options.onError({ code: p.failure_code || p.status || s.status, message: words, session: s });
    }
  };

  Checkout.prototype.fail = function (e) {
    var words = e && e.status ? e.message : this.t.network;
    this.view(this.header(this.t.notDone, null).concat([el("p", { "class": "bad", id: "mb-failure", text: words })]));
    this.say(words);
    if (typeof this.options.onError === "function") { this.options.onError({ code: (e && e.code) || "network_error", message: words }); }
  };

  Checkout.prototype.onKey = function (event) {
    if (event.key === "Escape") { event.preventDefault(); this.close(); return; }
    if (event.key !== "Tab") { return; }
    var items = Array.prototype.filter.call(
      this.box.querySelectorAll("button, input, a[href], [tabindex]"), function (n) { return !n.disabled && n.getAttribute("tabindex") !== "-1"; });
    if (!items.length) { event.preventDefault(); return; }
    var first = items[0], last = items[items.length - 1], active = this.root.activeElement;
    if (event.shiftKey && (active === first || !this.box.contains(active))) { event.preventDefault(); last.focus(); }
    else if (!event.shiftKey && (active === last || !this.box.contains(active))) { event.preventDefault(); first.focus(); }
  };

  Checkout.prototype.close = function () {
    this.stopWatching();
    if (this.host.parentNode) { this.host.parentNode.removeChild(this.host); }
    if (this.returnFocus && this.returnFocus.focus) { this.returnFocus.focus(); }
    if (typeof this.options.onClose === "function") { this.options.onClose(); }
  };

  function host() { var h = document.createElement("div"); h.setAttribute("data-mpesa-bridge", ""); return h; }

  window.MpesaBridge = {
    normalisePhone: normalisePhone,
    open: function (options) {
      var h = host();
      document.body.appendChild(h);
      return new Checkout(h, options || {}, true);
    },
    mount: function (element, options) {
      var h = host();
      element.appendChild(h);
      return new Checkout(h, options || {}, false);
    }
  };
}());
