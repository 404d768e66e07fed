// A stand-in for floodgate's admin listener that follows the admin API
// contract (docs: the "Admin API" section of the design guide) with
// simulated rooms. It serves the real dashboard files from dashboard/web and
// uPlot from dashboard/node_modules, the way the gateway embeds them.
//
// Tests use it for what the real server cannot be made to do on cue: break
// the event stream, refuse to reconnect, answer a viewer token with 403.
// Run it by hand to work on the dashboard without building floodgate:
//   node tests/browser/lib/fake_admin.mjs 8099   # then open http://127.0.0.1:8099/dashboard/
//   (tokens: "operator-secret" and "viewer-secret")
import http from "node:http";
import { readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const dashboardDir = path.resolve(here, "../../../dashboard");
const ASSETS = {
  "uPlot.iife.min.js": path.join(dashboardDir, "node_modules/uplot/dist/uPlot.iife.min.js"),
  "uPlot.min.css": path.join(dashboardDir, "node_modules/uplot/dist/uPlot.min.css"),
};
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8" };

export const TOKENS = { "operator-secret": { role: "operator", name: "alice" }, "viewer-secret": { role: "viewer", name: "victor" } };

function room(name, settings, mode = "auto") {
  return {
    name, source: "config", upstream: "booking", mode,
    settings: { rate: 50, burst: 10, max_active: 500, idle_timeout_s: 600, session_ttl_s: 1800, banner: "", ...settings },
    overrides: [],
    match: { hosts: [], paths: ["/" + name], exact: [] },
    stats: { waiting: 0, active: 0, issued_total: 0, admitted_total: 0, abandoned_total: 0, noshows_total: 0,
             arrivals_per_s: 0, called_per_s: 0, admitted_per_s: 0, eta_s: 0, light: "green",
             upstream: { p50_ms: 0, p99_ms: 0, error_rate: 0, requests_per_s: 0 } },
  };
}

export function startFakeAdmin({ port = 0, arrivals = { vaccine: 80, concert: 12 } } = {}) {
  const rooms = [room("vaccine", { rate: 50, max_active: 3000 }), room("concert", { rate: 20, max_active: 200 }, "queue_all")];
  const history = Object.fromEntries(rooms.map((r) => [r.name, []]));
  const audit = [];
  const streams = new Set();
  let refuseStreams = false;
  let tick = 0;

  // Preload 10 minutes of history so the charts have something to draw.
  const now0 = Date.now();
  for (const r of rooms)
    for (let i = 600; i > 0; i--) {
      const t = now0 - i * 1000;
      const a = arrivals[r.name] * (0.8 + 0.4 * Math.sin(i / 40));
      history[r.name].push({ t, arrivals_per_s: a, admitted_per_s: Math.min(a, r.settings.rate), called_per_s: Math.min(a, r.settings.rate),
                             waiting: Math.max(0, Math.round((600 - i) * (a - r.settings.rate) / 4)), active: Math.round(r.settings.rate * 8),
                             p50_ms: 20 + 5 * Math.sin(i / 30), p99_ms: 120 + 40 * Math.sin(i / 25), error_rate: i % 97 === 0 ? 0.02 : 0 });
    }

  function step() {
    tick++;
    const t = Date.now();
    for (const r of rooms) {
      const s = r.stats;
      const a = Math.max(0, arrivals[r.name] * (0.9 + 0.2 * Math.sin(tick / 7)));
      const open = r.mode === "auto" || r.mode === "queue_all";
      const admitted = open ? Math.min(r.settings.rate || Infinity, s.waiting + a, Math.max(0, (r.settings.max_active || Infinity) - s.active * 0.9)) : 0;
      s.arrivals_per_s = r.mode === "closed" ? 0 : a;
      s.admitted_per_s = admitted;
      s.called_per_s = admitted;
      s.waiting = Math.max(0, Math.round(s.waiting + s.arrivals_per_s - admitted));
      s.active = Math.max(0, Math.round(s.active * 0.9 + admitted));
      s.issued_total += Math.round(s.arrivals_per_s);
      s.admitted_total += Math.round(admitted);
      s.eta_s = r.settings.rate > 0 ? Math.round(s.waiting / r.settings.rate) : -1;
      s.light = s.waiting === 0 ? "green" : s.eta_s < 300 ? "yellow" : "red";
      s.upstream = { p50_ms: 18 + Math.random() * 6, p99_ms: 110 + Math.random() * 40, error_rate: tick % 13 === 0 ? 0.01 : 0, requests_per_s: admitted * 3 };
      const h = history[r.name];
      h.push({ t, arrivals_per_s: s.arrivals_per_s, admitted_per_s: admitted, called_per_s: admitted, waiting: s.waiting, active: s.active,
               p50_ms: s.upstream.p50_ms, p99_ms: s.upstream.p99_ms, error_rate: s.upstream.error_rate });
      while (h.length > 600) h.shift();
    }
    send("stats", { time: t, rooms });
  }
  const timer = setInterval(step, 1000);

  function send(event, data) {
    const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of streams) res.write(text);
  }

  function json(res, status, body, headers = {}) {
    res.writeHead(status, { "Content-Type": "application/json", "Cache-Control": "no-store", ...headers });
    res.end(body === undefined ? "" : JSON.stringify(body));
  }
  function error(res, status, code, message, field) {
    const body = { error: code, message };
    if (field) body.field = field;
    json(res, status, body, status === 401 ? { "WWW-Authenticate": "Bearer" } : {});
  }
  function record(who, action, r, before, after) {
    const entry = { time: new Date().toISOString(), token: who.name, action, room: r.name, before, after };
    audit.push(entry);
    send("audit", entry);
  }

  function patch(r, body, who, res) {
    const allowed = ["rate", "burst", "max_active", "idle_timeout_s", "session_ttl_s", "mode", "banner"];
    for (const k of Object.keys(body)) {
      if (!allowed.includes(k)) return error(res, 400, "bad_request", `unknown field "${k}"`, k);
      const v = body[k];
      if (k === "banner") { if (v !== null && typeof v !== "string") return error(res, 400, "bad_request", "banner: expected a string", k); continue; }
      if (k === "mode") { if (!["auto", "queue_all", "paused", "closed"].includes(v)) return error(res, 400, "bad_request", "mode: expected auto, queue_all, paused or closed", k); continue; }
      if (v !== null && (typeof v !== "number" || !(v >= 0) || (k === "rate" ? v > 1e7 : !Number.isInteger(v))))
        return error(res, 400, "bad_request", `${k}: expected a ${k === "rate" ? "number" : "whole number"} of at least 0, got ${JSON.stringify(v)}`, k);
    }
    const before = {}, after = {};
    for (const [k, v] of Object.entries(body)) {
      const target = k === "mode" ? r : r.settings;
      before[k] = target[k];
      target[k] = v === null ? (k === "banner" ? "" : target[k]) : v;
      after[k] = target[k];
      if (!r.overrides.includes(k)) r.overrides.push(k);
    }
    record(who, "room.patch", r, before, after);
    json(res, 200, r);
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    const p = url.pathname;
    if (p === "/dashboard" ) { res.writeHead(308, { Location: "/dashboard/" }); return res.end(); }
    if (p.startsWith("/dashboard/")) {
      const name = p.slice("/dashboard/".length) || "dashboard.html";
      const file = ASSETS[name] || path.join(dashboardDir, "web", path.basename(name));
      if (!existsSync(file)) { res.writeHead(404); return res.end("not found"); }
      const headers = { "Content-Type": TYPES[path.extname(file)] || "application/octet-stream", "Cache-Control": "no-cache" };
      // The policy the gateway sends with the page: nothing inline but styles, nothing from elsewhere.
      if (name === "dashboard.html")
        headers["Content-Security-Policy"] = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";
      res.writeHead(200, headers);
      return res.end(readFileSync(file));
    }
    if (p === "/healthz" || p === "/readyz") return json(res, 200, { ok: true });
    if (!p.startsWith("/admin/v1/")) return error(res, 404, "not_found", "no such endpoint");
    const auth = req.headers.authorization || "";
    const who = TOKENS[auth.replace(/^Bearer /, "")];
    if (!auth.startsWith("Bearer ") || !who) return error(res, 401, "unauthorized", "a valid bearer token is required");
    const parts = p.slice("/admin/v1/".length).split("/");
    const read = req.method === "GET";
    if (!read && who.role !== "operator") return error(res, 403, "forbidden", `token "${who.name}" is a viewer and may not change anything`);

    if (p === "/admin/v1/rooms" && read) return json(res, 200, { time: Date.now(), rooms });
    if (p === "/admin/v1/history" && read) return json(res, 200, { rooms: history });
    if (p === "/admin/v1/audit" && read) {
      const limit = parseInt(url.searchParams.get("limit") || "100", 10);
      return json(res, 200, { entries: audit.slice(-limit) });
    }
    if (p === "/admin/v1/stream" && read) {
      if (refuseStreams) return error(res, 503, "unavailable", "try again later");
      res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-store" });
      res.write(": hello\n\n");
      streams.add(res);
      req.on("close", () => streams.delete(res));
      res.write(`event: stats\ndata: ${JSON.stringify({ time: Date.now(), rooms })}\n\n`);
      return;
    }
    if (parts[0] === "rooms" && parts.length >= 2) {
      const r = rooms.find((x) => x.name === decodeURIComponent(parts[1]));
      if (!r) return error(res, 404, "not_found", `no room "${parts[1]}"`);
      if (parts.length === 2 && read) return json(res, 200, r);
      if (parts.length === 2 && req.method === "PATCH") {
        let text = "";
        req.on("data", (c) => { text += c; });
        req.on("end", () => {
          let body;
          try { body = JSON.parse(text); } catch { return error(res, 400, "bad_request", "the body is not valid JSON"); }
          if (!body || typeof body !== "object" || Array.isArray(body)) return error(res, 400, "bad_request", "expected a JSON object");
          patch(r, body, who, res);
        });
        return;
      }
      const modes = { pause: "paused", resume: "auto", "queue-all": "queue_all", close: "closed" };
      if (parts.length === 3 && req.method === "POST" && modes[parts[2]]) {
        const before = { mode: r.mode };
        r.mode = modes[parts[2]];
        record(who, `room.${parts[2]}`, r, before, { mode: r.mode });
        return json(res, 200, r);
      }
    }
    return error(res, read ? 404 : 405, read ? "not_found" : "method_not_allowed", `${req.method} ${p}`);
  });

  return new Promise((resolve) => {
    server.listen(port, "127.0.0.1", () => {
      const base = `http://127.0.0.1:${server.address().port}`;
      resolve({
        base, rooms, audit,
        url: (x) => base + x,
        // Ends every open event stream (as a restart or a network cut would).
        dropStreams() { for (const res of streams) res.destroy(); streams.clear(); },
        refuseStreams(on) { refuseStreams = on; },
        streamCount: () => streams.size,
        close() {
          clearInterval(timer);
          for (const res of streams) res.destroy();
          server.closeAllConnections?.();
          return new Promise((r) => server.close(() => r()));
        },
      });
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const fake = await startFakeAdmin({ port: parseInt(process.argv[2] || "0", 10) });
  console.log(`fake admin API with the dashboard at ${fake.url("/dashboard/")}`);
}
