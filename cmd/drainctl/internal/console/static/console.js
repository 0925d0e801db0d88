// drain console: live refresh of the pipeline page. The page is complete without this
// script; with it, the numbers are fetched from /api/status (the JSON of
// `drainctl status --json`) every 2 s and the tables are rebuilt from it. Each live table
// names its list (data-list), its row key (data-key) and, per column header, the field
// (data-k), its format (data-fmt) and an optional link prefix (data-link).
"use strict";
(function () {
  if (document.body.dataset.page !== "pipeline") {
    return;
  }
  var period = 2000;
  var live = document.getElementById("live");
  var refreshed = 0;
  // The page was served without the tables (the state could not be read): reload it as soon
  // as /api/status answers, instead of filling tables that are not there.
  var errorPage = live === null;

  var formats = {
    rate: function (v) { return v === null || v === undefined ? "\u2013" : v.toFixed(1); },
    ready: function (v) { return v ? "ready" : "not ready"; },
    code: function (v) { return v ? String(v) : "\u2013"; },
    answer: function (v, item) { return item.error ? item.error : v; },
    stream: function (v, item) { return item.missing ? "missing" : String(v); }
  };

  function text(v, th, item) {
    var f = formats[th.dataset.fmt];
    if (f) {
      return f(v, item);
    }
    return v === null || v === undefined ? "" : String(v);
  }

  function rebuild(table, items) {
    var heads = table.querySelectorAll("thead th[data-k]");
    var keys = (table.dataset.key || "").split(",");
    var body = document.createElement("tbody");
    items.forEach(function (item) {
      var tr = document.createElement("tr");
      tr.dataset.key = keys.map(function (k) { return item[k]; }).join("/");
      if (table.dataset.list === "services") {
        tr.className = item.ready ? "ok" : "bad";
      }
      heads.forEach(function (th) {
        var td = document.createElement("td");
        td.dataset.k = th.dataset.k;
        if (th.classList.contains("num")) {
          td.className = "num";
        }
        var value = text(item[th.dataset.k], th, item);
        if (th.dataset.link) {
          var a = document.createElement("a");
          a.href = th.dataset.link + encodeURIComponent(value);
          a.textContent = value;
          td.appendChild(a);
        } else {
          td.textContent = value;
        }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    table.replaceChild(body, table.tBodies[0]);
  }

  function show(st) {
    document.getElementById("dirty").textContent = String(st.dirty);
    document.getElementById("leased").textContent = String(st.leased);
    document.getElementById("dead-letters").textContent = String(st.dead_letters);
    document.getElementById("sampled").textContent = st.time.replace("T", " ").replace(/\.\d+Z$/, "Z");
    document.querySelectorAll("table[data-list]").forEach(function (table) {
      rebuild(table, st[table.dataset.list] || []);
    });
  }

  function tick() {
    if (document.hidden) {
      setTimeout(tick, period);
      return;
    }
    fetch("/api/status", { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (res) {
        return res.json().then(function (body) {
          if (!res.ok) {
            throw new Error(body.error || res.status + " " + res.statusText);
          }
          return body;
        });
      })
      .then(function (st) {
        if (errorPage) {
          window.location.reload();
          return;
        }
        show(st);
        refreshed++;
        document.body.dataset.refreshed = String(refreshed);
        live.textContent = "Live: refreshed every 2 s.";
      })
      .catch(function (err) {
        if (!errorPage) {
          live.textContent = "Refresh failed (" + err.message + "); retrying.";
        }
      })
      .then(function () { setTimeout(tick, period); });
  }
  setTimeout(tick, period);
})();
