// Floodgate operators' dashboard: live room stats over the admin API's SSE
// stream, charts of the last 10 minutes (uPlot), and the controls operators
// use during a sale (rate, max_active, mode, banner), with the audit log.
//
// The one thing not to get wrong: EventSource cannot send the Authorization
// header, so the stream is read with fetch() + ReadableStream and parsed
// here; when it breaks, the page says so ("disconnected") and reconnects with
// backoff, and it never shows stale numbers as if they were live.
(function () {
  "use strict";

  var API = "/admin/v1";
  var TOKEN_KEY = "floodgate.admin_token";
  var WINDOW_S = 600;            // charts show the last 10 minutes
  var STALL_MS = 5000;           // stats come every second; this long without any is a broken stream
  var BACKOFF_MIN_MS = 1000, BACKOFF_MAX_MS = 15000;
  var AUDIT_ROWS = 200;
  var CHART_HEIGHT = 150;        // canvas and axes; the legend sits below, in a fixed-height row

  var $ = function (id) { return document.getElementById(id); };
  var rooms = new Map();          // name -> room view
  var lastTime = 0;               // server time (unix ms) of the newest stats
  var streamAbort = null;
  var connGeneration = 0;         // bumps when the token changes: old loops stop

  // ---------- formatting ----------
  var nf0 = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  var nf1 = new Intl.NumberFormat("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  function count(n) { return typeof n === "number" && isFinite(n) ? nf0.format(n) : "—"; }
  function perSecond(n) { return typeof n === "number" && isFinite(n) ? nf1.format(n) : "—"; }
  function limit(n) { return typeof n === "number" && n > 0 ? nf0.format(n) : "no limit"; }
  function rateText(n) { return typeof n === "number" && n > 0 ? (n % 1 ? nf1.format(n) : nf0.format(n)) : "no limit"; }
  function ms(n) {
    if (typeof n !== "number" || !isFinite(n)) return "—";
    return n < 10 ? n.toFixed(1) : nf0.format(Math.round(n));
  }
  function percent(r) {
    if (typeof r !== "number" || !isFinite(r)) return "—";
    var p = r * 100;
    return (p > 0 && p < 0.1 ? "<0.1" : p.toFixed(1)) + "%";
  }
  function duration(s) {
    if (typeof s !== "number" || !isFinite(s) || s < 0) return "—";
    if (s < 1) return "now";
    if (s < 60) return Math.round(s) + " s";
    if (s < 3600) return Math.round(s / 60) + " min";
    var h = Math.floor(s / 3600), m = Math.round((s % 3600) / 60);
    return h + " h " + m + " min";
  }
  function clock(ms) {
    var d = new Date(ms);
    var p = function (n) { return (n < 10 ? "0" : "") + n; };
    return p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }
  var MODE_NAMES = { auto: "Open (auto)", queue_all: "Queue all", paused: "Paused", closed: "Closed" };
  var LIGHT_NAMES = { green: "Smooth", yellow: "Delayed", red: "Congested" };

  function setText(el, text) { if (el.textContent !== text) el.textContent = text; }

  // ---------- token ----------
  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
  function askToken(message) {
    stopStream();
    setConn("disconnected", message ? "Disconnected: token needed" : "Not connected");
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("token-input").value = "";
    $("token-input").focus();
  }
  $("login-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var t = $("token-input").value.trim();
    if (!t) return;
    sessionStorage.setItem(TOKEN_KEY, t);
    $("login").hidden = true;
    start();
  });
  $("change-token").addEventListener("click", function () {
    sessionStorage.removeItem(TOKEN_KEY);
    askToken("");
  });

  // ---------- API ----------
  // Resolves with the parsed JSON (or null for 204); rejects with an ApiError
  // carrying the server's error code, message and field.
  function ApiError(status, body) {
    this.status = status;
    this.code = (body && body.error) || "http_" + status;
    this.field = (body && body.field) || "";
    this.message = (body && body.message) || ("HTTP " + status);
  }
  ApiError.prototype.describe = function () {
    var what;
    if (this.status === 403) what = "Not allowed (this token is read-only): " + this.message;
    else if (this.status === 401) what = "The token was not accepted: " + this.message;
    else if (this.status === 0) what = this.message;
    else what = this.message + (this.field ? " (field: " + this.field + ")" : "") + " [" + this.status + " " + this.code + "]";
    return what;
  };
  function api(method, path, body) {
    var init = { method: method, cache: "no-store", headers: { "Authorization": "Bearer " + token(), "Accept": "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(API + path, init).then(function (res) {
      return res.text().then(function (text) {
        var json = null;
        if (text) { try { json = JSON.parse(text); } catch (e) { json = null; } }
        if (!res.ok) {
          var err = new ApiError(res.status, json || { message: text.slice(0, 200) });
          if (res.status === 401) askToken("The token was not accepted (" + err.message + ").");
          throw err;
        }
        return json;
      });
    }, function (e) {
      throw new ApiError(0, { error: "network", message: "The gateway did not answer (" + e.message + ")." });
    });
  }

  // A page-wide message; kind "load" messages go away by themselves once the stream is live again.
  function showNotice(text, kind) {
    $("notice-text").textContent = text;
    $("notice").setAttribute("data-kind", kind || "");
    $("notice").hidden = false;
  }
  $("notice-close").addEventListener("click", function () { $("notice").hidden = true; });

  // ---------- connection state ----------
  function setConn(state, text) {
    var el = $("conn");
    el.setAttribute("data-state", state);
    setText($("conn-text"), text);
    rooms.forEach(function (v) { v.el.classList.toggle("stale", state !== "live"); });
  }
  setInterval(function () {
    if (!lastTime) return;
    var age = Math.max(0, Math.round((Date.now() - lastSeenAt) / 1000));
    setText($("updated"), clock(lastTime) + (age >= 3 ? " (" + age + " s ago)" : ""));
  }, 1000);
  var lastSeenAt = 0;

  // ---------- charts ----------
  var COLORS = { arrivals: "#64748b", admitted: "#2563eb", rate: "#16a34a", waiting: "#d97706",
                 active: "#7c3aed", p50: "#0891b2", p99: "#dc2626", errors: "#dc2626" };
  // People are counted in whole numbers: no axis step below 1.
  var COUNT_INCRS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1e3, 2e3, 2.5e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5,
                     1e6, 2e6, 5e6, 1e7, 2e7, 5e7, 1e8];
  function xRange() {
    var now = (lastTime || Date.now()) / 1000;
    return [now - WINDOW_S, now];
  }
  function chartSpec(kind) {
    // Axis labels: whole numbers once the step is 1 or more, else as many decimals as the step needs.
    var num = function (u, vals, axis, space, incr) {
      var d = incr >= 1 ? 0 : Math.min(3, Math.ceil(-Math.log10(incr)));
      return vals.map(function (v) { return v == null ? "" : (d ? v.toFixed(d) : nf0.format(v)); });
    };
    switch (kind) {
      case "flow": return {
        series: [{ label: "arrivals/s", stroke: COLORS.arrivals, width: 1.5 },
                 { label: "admitted/s", stroke: COLORS.admitted, width: 2 },
                 { label: "rate", stroke: COLORS.rate, width: 1, dash: [6, 4] }],
        axes: [{ values: num }] };
      case "queue": return {
        series: [{ label: "waiting", stroke: COLORS.waiting, width: 2, fill: "rgba(217,119,6,.08)", count: true },
                 { label: "active", stroke: COLORS.active, width: 2, scale: "active", count: true }],
        axes: [{ values: num, incrs: COUNT_INCRS }, { scale: "active", side: 1, grid: { show: false }, values: num, incrs: COUNT_INCRS }] };
      case "latency": return {
        series: [{ label: "p50 ms", stroke: COLORS.p50, width: 2 },
                 { label: "p99 ms", stroke: COLORS.p99, width: 1.5 }],
        axes: [{ values: num }] };
      default: return {
        series: [{ label: "5xx %", stroke: COLORS.errors, width: 2, fill: "rgba(220,38,38,.08)" }],
        axes: [{ values: function (u, vals) { return vals.map(function (v) { return v == null ? "" : v.toFixed(v < 1 ? 1 : 0) + "%"; }); } }] };
    }
  }
  function makeChart(kind, target) {
    var spec = chartSpec(kind);
    var series = [{}].concat(spec.series.map(function (s) {
      return { label: s.label, stroke: s.stroke, width: s.width, dash: s.dash, fill: s.fill, scale: s.scale || "y",
               spanGaps: false, points: { show: false },
               value: function (u, v) { return v == null ? "—" : (s.count || Math.abs(v) >= 10 ? nf0.format(v) : v.toFixed(1)); } };
    }));
    var opts = {
      width: Math.max(200, target.clientWidth || 300), height: CHART_HEIGHT,
      series: series,
      scales: { x: { time: true, range: function () { return xRange(); } },
                y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } },
                active: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } },
      axes: [{ size: 30, values: "{HH}:{mm}", space: 60 }].concat(spec.axes.map(function (a) {
        return { scale: a.scale || "y", side: a.side === undefined ? 3 : a.side, size: 48,
                 grid: a.grid || { stroke: "#eef2f7" }, values: a.values, incrs: a.incrs };
      })),
      legend: { live: true },
      cursor: { drag: { x: false, y: false } }
    };
    var empty = [[]].concat(spec.series.map(function () { return []; }));
    return new uPlot(opts, empty, target);
  }

  // Per room: columns of the last 10 minutes (seconds; values).
  function emptySeries() {
    return { t: [], arrivals: [], admitted: [], rate: [], waiting: [], active: [], p50: [], p99: [], errors: [] };
  }
  function pushPoint(s, tMs, p) {
    var t = tMs / 1000;
    if (s.t.length && t <= s.t[s.t.length - 1]) return;   // duplicates after a reconnect
    s.t.push(t);
    s.arrivals.push(p.arrivals); s.admitted.push(p.admitted); s.rate.push(p.rate);
    s.waiting.push(p.waiting); s.active.push(p.active);
    s.p50.push(p.p50); s.p99.push(p.p99); s.errors.push(p.errors);
  }
  function trim(s, nowMs) {
    var cut = nowMs / 1000 - WINDOW_S - 5, n = 0;
    while (n < s.t.length && s.t[n] < cut) n++;
    if (n) Object.keys(s).forEach(function (k) { s[k].splice(0, n); });
  }
  function redraw(v) {
    var s = v.series;
    v.charts.flow.setData([s.t, s.arrivals, s.admitted, s.rate]);
    v.charts.queue.setData([s.t, s.waiting, s.active]);
    v.charts.latency.setData([s.t, s.p50, s.p99]);
    v.charts.errors.setData([s.t, s.errors]);
    // Unless the operator points at a moment, the legends show the newest values.
    Object.keys(v.charts).forEach(function (k) {
      var u = v.charts[k];
      if (s.t.length && (u.cursor.left == null || u.cursor.left < 0)) u.setLegend({ idx: s.t.length - 1 });
    });
  }
  var resizer = typeof ResizeObserver === "function" ? new ResizeObserver(function (entries) {
    entries.forEach(function (e) {
      var chart = e.target.__chart;
      var w = Math.floor(e.contentRect.width);
      if (chart && w > 0 && Math.abs(chart.width - w) > 2) chart.setSize({ width: w, height: CHART_HEIGHT });
    });
  }) : null;

  // ---------- room cards ----------
  function roomView(name) {
    var v = rooms.get(name);
    if (v) return v;
    var el = $("room-template").content.firstElementChild.cloneNode(true);
    el.setAttribute("data-room", name);
    el.querySelector(".room-name").textContent = name;
    $("rooms").appendChild(el);
    v = { name: name, el: el, room: null, series: emptySeries(), charts: {}, fields: {} };
    el.querySelectorAll("[data-field]").forEach(function (f) { v.fields[f.getAttribute("data-field")] = f; });
    el.querySelectorAll(".chart").forEach(function (fig) {
      var plot = fig.querySelector(".plot");
      var chart = makeChart(fig.getAttribute("data-chart"), plot);
      plot.__chart = chart;
      if (resizer) resizer.observe(plot);
      v.charts[fig.getAttribute("data-chart")] = chart;
    });
    wireControls(v);
    rooms.set(name, v);
    $("rooms-empty").hidden = true;
    el.classList.toggle("stale", $("conn").getAttribute("data-state") !== "live");
    return v;
  }
  function dropRoom(name) {
    var v = rooms.get(name);
    if (!v) return;
    Object.keys(v.charts).forEach(function (k) { v.charts[k].destroy(); });
    v.el.remove();
    rooms.delete(name);
  }

  function render(v, room) {
    v.room = room;
    var st = room.stats || {}, set = room.settings || {}, up = st.upstream || {};
    var el = v.el;
    var light = st.light || "red";
    var lightEl = el.querySelector(".light");
    if (lightEl.getAttribute("data-light") !== light) lightEl.setAttribute("data-light", light);
    setText(el.querySelector(".light-label"), LIGHT_NAMES[light] || light);
    var badge = el.querySelector(".badge.mode");
    if (badge.getAttribute("data-mode") !== room.mode) badge.setAttribute("data-mode", room.mode);
    setText(badge, MODE_NAMES[room.mode] || room.mode);
    var meta = "upstream " + (room.upstream || "—") + (room.source === "runtime" ? " · created at run time" : "");
    setText(el.querySelector(".meta"), meta);

    var f = v.fields;
    setText(f.waiting, count(st.waiting));
    setText(f.active, count(st.active));
    setText(f.max_active, "of " + limit(set.max_active));
    setText(f.arrivals_per_s, perSecond(st.arrivals_per_s));
    setText(f.admitted_per_s, perSecond(st.admitted_per_s));
    setText(f.rate, "of " + rateText(set.rate) + "/s");
    setText(f.eta, room.mode === "closed" ? "closed" : duration(st.eta_s));
    setText(f.latency, ms(up.p50_ms) + " / " + ms(up.p99_ms) + " ms");
    setText(f.error_rate, percent(up.error_rate));
    setText(f.admitted_total, count(st.admitted_total));
    f.error_rate.style.color = up.error_rate >= 0.05 ? "var(--red)" : "";

    el.querySelectorAll(".modes button").forEach(function (b) {
      var on = b.getAttribute("data-mode") === room.mode ? "true" : "false";
      if (b.getAttribute("aria-pressed") !== on) b.setAttribute("aria-pressed", on);
    });
    // Inputs show the live settings unless the operator is editing them.
    var form = el.querySelector("form.limits");
    fillInput(form.elements.rate, set.rate);
    fillInput(form.elements.max_active, set.max_active);
    var overridden = (room.overrides || []).filter(function (k) { return k !== "mode"; });
    setText(el.querySelector(".limits .current"),
            "Now: " + rateText(set.rate) + "/s, max active " + limit(set.max_active) +
            ", burst " + count(set.burst) + (overridden.length ? " · changed at run time: " + overridden.join(", ") : ""));
    var banner = el.querySelector(".banner-form").elements.banner;
    if (!banner.dataset.dirty && document.activeElement !== banner && banner.value !== (set.banner || ""))
      banner.value = set.banner || "";
  }
  function fillInput(input, value) {
    if (input.dataset.dirty || document.activeElement === input) return;
    var text = value === undefined || value === null ? "" : String(value);
    if (input.value !== text) input.value = text;
  }

  function roomError(v, err) {
    var el = v.el;
    el.querySelectorAll("[aria-invalid]").forEach(function (i) { i.removeAttribute("aria-invalid"); });
    setText(el.querySelector(".room-ok"), "");
    setText(el.querySelector(".room-error"), err ? err.describe() : "");
    if (err && err.field) {
      var input = el.querySelector("[name='" + err.field.replace(/[^a-z_]/gi, "") + "']");
      if (input) input.setAttribute("aria-invalid", "true");
    }
  }
  function roomOk(v, text) {
    roomError(v, null);
    setText(v.el.querySelector(".room-ok"), text);
    clearTimeout(v.okTimer);
    v.okTimer = setTimeout(function () { setText(v.el.querySelector(".room-ok"), ""); }, 4000);
  }
  function applied(v, room, text) {
    if (room && room.name) render(v, room);
    roomOk(v, text);
  }

  function confirmAction(title, text, okLabel) {
    var dlg = $("confirm");
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    $("confirm-ok").textContent = okLabel;
    return new Promise(function (resolve) {
      dlg.returnValue = "";
      dlg.addEventListener("close", function onClose() {
        dlg.removeEventListener("close", onClose);
        resolve(dlg.returnValue === "ok");
      });
      dlg.showModal();
      $("confirm-cancel").focus();
    });
  }

  function wireControls(v) {
    var el = v.el;
    var path = "/rooms/" + encodeURIComponent(v.name);
    var limits = el.querySelector("form.limits");
    ["rate", "max_active"].forEach(function (n) {
      limits.elements[n].addEventListener("input", function () { this.dataset.dirty = "1"; });
    });
    limits.addEventListener("submit", function (e) {
      e.preventDefault();
      var body = {}, set = (v.room && v.room.settings) || {};
      ["rate", "max_active"].forEach(function (n) {
        var input = limits.elements[n];
        var text = input.value.trim();
        if (text === "" && !input.validity.badInput) return;
        var num = Number(text);
        // Malformed text goes to the server as it is typed, so its 400 names the field.
        var value = text === "" || isNaN(num) ? text : num;
        if (value !== set[n]) body[n] = value;
      });
      if (!Object.keys(body).length) {
        ["rate", "max_active"].forEach(function (n) { delete limits.elements[n].dataset.dirty; });
        roomOk(v, "Nothing to change.");
        return;
      }
      var button = limits.querySelector(".apply");
      button.disabled = true;
      api("PATCH", path, body).then(function (room) {
        ["rate", "max_active"].forEach(function (n) { delete limits.elements[n].dataset.dirty; });
        applied(v, room, "Applied: " + Object.keys(body).map(function (k) { return k + " " + body[k]; }).join(", "));
      }, function (err) { roomError(v, err); }).then(function () { button.disabled = false; });
    });

    el.querySelectorAll(".modes button").forEach(function (b) {
      b.addEventListener("click", function () {
        var action = b.getAttribute("data-action");
        var st = (v.room && v.room.stats) || {};
        var ask = null;
        if (action === "pause")
          ask = confirmAction("Pause " + v.name + "?",
            "Nobody new is called from the line while the room is paused. The " + count(st.waiting) +
            " people waiting keep their place; people already inside keep their access.", "Pause");
        else if (action === "close")
          ask = confirmAction("Close " + v.name + "?",
            "New visitors see the closed page and get no ticket. The " + count(st.waiting) +
            " people waiting stop advancing; passes already issued keep working until they expire.", "Close room");
        Promise.resolve(ask === null ? true : ask).then(function (ok) {
          if (!ok) { roomOk(v, "Cancelled."); return; }
          b.disabled = true;
          api("POST", path + "/" + action).then(function (room) {
            applied(v, room, "Mode: " + (MODE_NAMES[room && room.mode] || action));
          }, function (err) { roomError(v, err); }).then(function () { b.disabled = false; });
        });
      });
    });

    var bannerForm = el.querySelector(".banner-form");
    var banner = bannerForm.elements.banner;
    banner.addEventListener("input", function () { banner.dataset.dirty = "1"; });
    function setBanner(text) {
      api("PATCH", path, { banner: text }).then(function (room) {
        delete banner.dataset.dirty;
        if (!text) banner.value = "";
        applied(v, room, text ? "Banner set." : "Banner cleared.");
      }, function (err) { roomError(v, err); });
    }
    bannerForm.addEventListener("submit", function (e) { e.preventDefault(); setBanner(banner.value.trim()); });
    el.querySelector(".clear-banner").addEventListener("click", function () { setBanner(""); });
  }

  // ---------- data ----------
  function statsPoint(room) {
    var st = room.stats || {}, up = st.upstream || {}, set = room.settings || {};
    return { arrivals: st.arrivals_per_s, admitted: st.admitted_per_s, rate: set.rate > 0 ? set.rate : null,
             waiting: st.waiting, active: st.active, p50: up.p50_ms, p99: up.p99_ms,
             errors: typeof up.error_rate === "number" ? up.error_rate * 100 : null };
  }
  function onRooms(msg) {
    if (!msg || !Array.isArray(msg.rooms)) return;
    lastTime = msg.time || Date.now();
    lastSeenAt = Date.now();
    var seen = new Set();
    msg.rooms.forEach(function (room) {
      seen.add(room.name);
      var v = roomView(room.name);
      render(v, room);
      pushPoint(v.series, lastTime, statsPoint(room));
      trim(v.series, lastTime);
      redraw(v);
    });
    rooms.forEach(function (v, name) { if (!seen.has(name)) dropRoom(name); });
    $("rooms-empty").hidden = rooms.size > 0;
    setText($("updated"), clock(lastTime));
  }
  function onHistory(msg) {
    var byRoom = (msg && msg.rooms) || {};
    Object.keys(byRoom).forEach(function (name) {
      var v = rooms.get(name);
      if (!v || !Array.isArray(byRoom[name])) return;
      var fresh = emptySeries();
      byRoom[name].forEach(function (h) {
        pushPoint(fresh, h.t, { arrivals: h.arrivals_per_s, admitted: h.admitted_per_s, rate: null,
                                waiting: h.waiting, active: h.active, p50: h.p50_ms, p99: h.p99_ms,
                                errors: typeof h.error_rate === "number" ? h.error_rate * 100 : null });
      });
      // Keep the live points newer than the history's last one.
      var last = fresh.t.length ? fresh.t[fresh.t.length - 1] : -Infinity;
      var s = v.series;
      for (var i = 0; i < s.t.length; i++) {
        if (s.t[i] > last) {
          pushPoint(fresh, s.t[i] * 1000, { arrivals: s.arrivals[i], admitted: s.admitted[i], rate: s.rate[i],
            waiting: s.waiting[i], active: s.active[i], p50: s.p50[i], p99: s.p99[i], errors: s.errors[i] });
        }
      }
      v.series = fresh;
      trim(v.series, lastTime || Date.now());
      redraw(v);
    });
  }

  // "settings.rate 2 → 10, mode "auto" → "paused"": what changed, as dotted paths
  // (the server may log whole objects before and after).
  function flatten(value, prefix, out) {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      Object.keys(value).forEach(function (k) { flatten(value[k], prefix ? prefix + "." + k : k, out); });
    } else {
      out[prefix] = JSON.stringify(value);
    }
    return out;
  }
  function summarize(before, after) {
    if (before == null && after == null) return "";
    var b = flatten(before, "", {}), a = flatten(after, "", {});
    var keys = Object.keys(b).concat(Object.keys(a).filter(function (k) { return !(k in b); }));
    var parts = [];
    keys.forEach(function (k) {
      if (b[k] === a[k]) return;
      var name = k || "value";
      parts.push(name + " " + (b[k] === undefined ? "—" : b[k]) + " → " + (a[k] === undefined ? "—" : a[k]));
    });
    return parts.join(", ") || "no change";
  }
  var auditKeys = new Set();
  function addAudit(entry, fresh) {
    if (!entry) return;
    var key = [entry.time, entry.token, entry.action, entry.room, JSON.stringify(entry.after)].join("|");
    if (auditKeys.has(key)) return;
    auditKeys.add(key);
    var tr = document.createElement("tr");
    var when = Date.parse(entry.time);
    var cells = [isNaN(when) ? String(entry.time || "") : clock(when), entry.token || "", entry.action || "",
                 entry.room || "", summarize(entry.before, entry.after)];
    cells.forEach(function (text, i) {
      var td = document.createElement("td");
      td.textContent = text;
      if (i === 0) { td.className = "time"; td.title = String(entry.time || ""); }
      tr.appendChild(td);
    });
    if (fresh) tr.className = "fresh";
    var body = $("audit-body");
    body.insertBefore(tr, body.firstChild);   // newest on top
    while (body.rows.length > AUDIT_ROWS) body.deleteRow(body.rows.length - 1);
    $("audit-empty").hidden = true;
  }

  // ---------- the stream ----------
  function stopStream() {
    connGeneration++;
    if (streamAbort) { streamAbort.abort(); streamAbort = null; }
  }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  // One SSE connection: resolves when it ends (server closed, stalled or aborted).
  function readStream(gen) {
    var ctl = new AbortController();
    streamAbort = ctl;
    var stallTimer = null;
    function armStall() {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(function () { ctl.abort(); }, STALL_MS);
    }
    armStall();
    return fetch(API + "/stream", {
      cache: "no-store", signal: ctl.signal,
      headers: { "Authorization": "Bearer " + token(), "Accept": "text/event-stream" }
    }).then(function (res) {
      if (res.status === 401 || res.status === 403) {
        return res.json().catch(function () { return {}; }).then(function (b) {
          var err = new ApiError(res.status, b);
          askToken(err.describe());
          throw err;
        });
      }
      if (!res.ok || !res.body) throw new ApiError(res.status, { message: "stream answered HTTP " + res.status });
      var reader = res.body.getReader();
      var decoder = new TextDecoder();
      var buf = "";
      var gotEvent = false;
      function dispatch(block) {
        var event = "message", data = [];
        block.split(/\r\n|\r|\n/).forEach(function (line) {
          if (!line || line.charAt(0) === ":") return;
          var i = line.indexOf(":");
          var field = i < 0 ? line : line.slice(0, i);
          var value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
          if (field === "event") event = value;
          else if (field === "data") data.push(value);
        });
        if (!data.length) return;
        var msg;
        try { msg = JSON.parse(data.join("\n")); } catch (e) { return; }
        if (!gotEvent) { gotEvent = true; backoff = BACKOFF_MIN_MS; setConn("live", "Live");
          if ($("notice").getAttribute("data-kind") === "load") $("notice").hidden = true; }
        if (event === "stats" || event === "message") onRooms(msg);
        else if (event === "audit") addAudit(msg, true);
      }
      function pump() {
        return reader.read().then(function (r) {
          if (gen !== connGeneration) { ctl.abort(); return; }
          if (r.done) return;
          armStall();
          buf += decoder.decode(r.value, { stream: true });
          var m;
          while ((m = /\r\n\r\n|\n\n|\r\r/.exec(buf))) {
            var block = buf.slice(0, m.index);
            buf = buf.slice(m.index + m[0].length);
            dispatch(block);
          }
          return pump();
        });
      }
      return pump();
    }).then(function () { clearTimeout(stallTimer); }, function (e) { clearTimeout(stallTimer); throw e; });
  }

  var backoff = BACKOFF_MIN_MS;
  function streamLoop(gen) {
    if (gen !== connGeneration) return;
    setConn(lastTime ? "reconnecting" : "connecting", lastTime ? "Reconnecting…" : "Connecting…");
    // (Re)load what the stream does not carry: history for the charts and the audit log.
    loadSnapshot(gen).then(function () { return readStream(gen); }).catch(function (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) throw err;
      return null;
    }).then(function () {
      if (gen !== connGeneration) return;
      var wait = Math.round(backoff * (0.8 + Math.random() * 0.4));
      backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
      countdown(gen, wait).then(function () { streamLoop(gen); });
    }, function () { /* waiting for a new token */ });
  }
  function countdown(gen, wait) {
    var until = Date.now() + wait;
    function tick() {
      if (gen !== connGeneration) return;
      var s = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      setConn("disconnected", "Disconnected · retrying in " + s + " s");
    }
    tick();
    var timer = setInterval(tick, 500);
    return sleep(wait).then(function () { clearInterval(timer); });
  }

  function loadSnapshot(gen) {
    return api("GET", "/rooms").then(function (msg) {
      if (gen !== connGeneration) return;
      onRooms(msg);
      return Promise.all([
        api("GET", "/history").then(function (h) { if (gen === connGeneration) onHistory(h); },
                                    function (err) { showNotice("Could not load the history: " + err.describe(), "load"); }),
        api("GET", "/audit?limit=100").then(function (a) {
          if (gen !== connGeneration || !a || !Array.isArray(a.entries)) return;
          a.entries.forEach(function (e) { addAudit(e, false); });   // oldest first, newest ends on top
        }, function (err) { showNotice("Could not load the audit log: " + err.describe(), "load"); })
      ]);
    }, function (err) {
      if (err.status !== 401) showNotice("Could not load the rooms: " + err.describe(), "load");
      throw err;
    });
  }

  function start() {
    stopStream();
    $("notice").hidden = true;
    backoff = BACKOFF_MIN_MS;
    streamLoop(connGeneration);
  }

  if (!token()) askToken("");
  else start();
})();
