// strata's web UI: live updates only. Every page is complete without this script; it
// keeps the builds list current and follows a running build's state and log. Text from
// the server is only ever inserted as text (textContent), never as markup, except the
// builds table, which is taken from this server's own rendered (escaped) page.
(function () {
  "use strict";

  function later(f, ms) { window.setTimeout(f, ms); }

  // The builds list: the page itself, fetched again every 3 seconds, its table swapped in.
  function followList(table) {
    function tick() {
      fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) {
          if (!r.ok || r.redirected) { throw new Error("HTTP " + r.status); }
          return r.text();
        })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("builds");
          var current = document.getElementById("builds");
          if (fresh && current) { current.replaceWith(document.importNode(fresh, true)); }
          later(tick, 3000);
        })
        .catch(function () { later(tick, 10000); });
    }
    later(tick, 3000);
  }

  // A running build: its log from where the page's ends, one long-polling request at a
  // time; the page is loaded again once the build has ended, to show its results.
  function followLog(pre) {
    var id = pre.getAttribute("data-build");
    var next = Number(pre.getAttribute("data-next")) || 0;
    var state = document.getElementById("state");
    var status = document.getElementById("log-status");
    function atBottom() {
      return window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    }
    function tick() {
      fetch("/builds/" + encodeURIComponent(id) + "/log?wait=10&offset=" + next, { credentials: "same-origin" })
        .then(function (r) {
          if (!r.ok) { throw new Error("HTTP " + r.status); }
          return r.json();
        })
        .then(function (c) {
          var follow = atBottom();
          if (c.offset === next && c.data) {
            pre.appendChild(document.createTextNode(c.data));
            next = c.next;
            pre.setAttribute("data-next", String(next));
          }
          if (state && c.state) {
            state.textContent = c.state;
            state.className = "state " + c.state;
          }
          ["run", "queued"].forEach(function (k) {
            var el = document.getElementById(k);
            if (el && c[k]) { el.textContent = c[k]; }
          });
          if (follow) { window.scrollTo(0, document.body.scrollHeight); }
          if (c.complete) {
            pre.setAttribute("data-live", "0");
            if (status) { status.textContent = "The build is " + c.state + "."; }
            window.location.reload();
            return;
          }
          later(tick, c.data ? 300 : 1000);
        })
        .catch(function () { later(tick, 5000); });
    }
    later(tick, 300);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var table = document.getElementById("builds");
    if (table && table.getAttribute("data-live") === "1") { followList(table); }
    var pre = document.getElementById("log");
    if (pre && pre.getAttribute("data-live") === "1") { followLog(pre); }
  });
})();
