// The hosted page, live: follow the session's SSE (and poll as a fallback) while a payment is in
// flight, and swap in the server-rendered page when its state changes. Without this file the page
// refreshes itself (<noscript><meta http-equiv="refresh">) and works the same.
(function () {
  "use strict";
  var source = null;
  var timer = null;
  var leaving = null;

  function main() { return document.getElementById("checkout"); }

  function stop() {
    if (source) { source.close(); source = null; }
    if (timer) { clearInterval(timer); timer = null; }
  }

  function refresh() {
    var current = main();
    if (!current) { return; }
    fetch(current.dataset.self, { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var next = doc.getElementById("checkout");
        var now = main();
        if (!next || !now || next.dataset.state === now.dataset.state) { return; }
        now.replaceWith(document.importNode(next, true));
        document.title = doc.title;
        var heading = main().querySelector("h1");
        if (heading) { heading.focus(); }
        follow();
      })
      .catch(function () { /* the next tick tries again */ });
  }

  function follow() {
    var m = main();
    if (!m) { return; }
    var form = m.querySelector("form");
    if (form) {
      form.addEventListener("submit", function () {
        var button = form.querySelector("button");
        if (button) { button.disabled = true; }
      });
    }
    if (m.dataset.state === "paid" && m.dataset.next && !leaving) {
      leaving = setTimeout(function () { window.location.assign(m.dataset.next); }, Number(m.dataset.delay) * 1000);
    }
    if (m.dataset.state !== "waiting") { stop(); return; }
    if (!source && window.EventSource) {
      var url = "/v1/checkout_sessions/" + encodeURIComponent(m.dataset.session) +
        "/events?client_secret=" + encodeURIComponent(m.dataset.secret);
      source = new EventSource(url);
      source.addEventListener("checkout_session.completed", refresh);
      source.addEventListener("checkout_session.expired", refresh);
    }
    // A failed or cancelled payment frees the session without a session event: poll for it.
    if (!timer) { timer = setInterval(refresh, 1500); }
  }

  document.addEventListener("DOMContentLoaded", follow);
}());
