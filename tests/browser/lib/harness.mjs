// What every browser test needs: the real floodgate binary and the demo
// booking site started on 127.0.0.1 with ephemeral ports, plain-HTTP clients
// that play the people already in line, headless Chromium driven by
// playwright-core, and a place for screenshots.
//
// The one thing not to get wrong: every process a test starts is killed by
// its PID when the test ends, whatever happens. Tests call stack.cleanup() in
// a finally block (or after()); an exit hook SIGKILLs anything still alive if
// the runner itself dies.
//
//   const stack = await startStack({ rooms: "  hall:\n    match: {paths: [/reserve]}\n ..." });
//   try { ... stack.publicUrl("/reserve") ... } finally { await stack.cleanup(); }
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, mkdirSync, openSync, readFileSync, writeFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export { sleep };

export const FLOODGATE_BIN = process.env.FLOODGATE_BIN;
export const DEMO_BIN = process.env.FLOODGATE_DEMO_BIN;
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const ARTIFACTS = process.env.FLOODGATE_BROWSER_ARTIFACTS || path.resolve("artifacts");

const live = new Set();  // child processes not yet reaped
process.on("exit", () => {
  for (const child of live) {
    try { process.kill(child.pid, "SIGKILL"); } catch { /* already gone */ }
  }
});

function need(value, name) {
  if (!value) throw new Error(`${name} is not set (ctest sets it; see tests/browser/CMakeLists.txt)`);
  if (!existsSync(value)) throw new Error(`${name}=${value} does not exist`);
  return value;
}

async function waitFor(what, fn, { timeoutMs = 10000, intervalMs = 50 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError = null;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}` + (lastError ? `: ${lastError.message}` : ""));
    await sleep(intervalMs);
  }
}
export { waitFor };

// A child process with its output in files under dir.
function startProcess(name, bin, args, dir) {
  const out = path.join(dir, `${name}.out`);
  const outFd = openSync(out, "a");
  const child = spawn(bin, args, { stdio: ["ignore", outFd, outFd], cwd: dir });
  closeSync(outFd);  // the child has its own copy
  live.add(child);
  child.exitStatus = null;
  child.exited = new Promise((resolve) => child.on("exit", (code, signal) => {
    live.delete(child);
    child.exitStatus = signal ? `signal ${signal}` : `exit ${code}`;
    resolve(child.exitStatus);
  }));
  child.logFile = out;
  child.label = name;
  return child;
}

async function stopProcess(child, graceMs = 2000) {
  if (!child || child.exitStatus !== null) return;
  try { process.kill(child.pid, "SIGTERM"); } catch { return; }
  const done = await Promise.race([child.exited, sleep(graceMs).then(() => null)]);
  if (done === null) {
    try { process.kill(child.pid, "SIGKILL"); } catch { /* gone */ }
    await child.exited;
  }
}

function tail(file, max = 4000) {
  try {
    const t = readFileSync(file, "utf8");
    return t.length > max ? "…" + t.slice(-max) : t;
  } catch { return ""; }
}

// Starts the demo booking site and floodgate in front of it.
//   rooms:   YAML lines under "rooms:" (indented two spaces)
//   tokens:  admin token file lines ("operator alice secret"); none: no tokens_file
//   demoArgs: more arguments for floodgate-demo-booking
export async function startStack({ rooms, tokens = null, demoArgs = [], extraConfig = "" } = {}) {
  need(FLOODGATE_BIN, "FLOODGATE_BIN");
  need(DEMO_BIN, "FLOODGATE_DEMO_BIN");
  const dir = mkdtempSync(path.join(process.env.TMPDIR || tmpdir(), "fg-browser-"));
  const stack = { dir, procs: [] };
  stack.cleanup = async (keepDir = false) => {
    for (const p of stack.procs.slice().reverse()) await stopProcess(p);
    if (!keepDir) rmSync(dir, { recursive: true, force: true });
  };
  stack.logs = () => stack.procs.map((p) => `---- ${p.label} (pid ${p.pid}, ${p.exitStatus ?? "running"})\n${tail(p.logFile)}`).join("\n");

  try {
    // The booking site.
    const demoPortFile = path.join(dir, "demo.port");
    const demo = startProcess("demo", DEMO_BIN, ["--listen", "127.0.0.1:0", "--port-file", demoPortFile, ...demoArgs], dir);
    stack.procs.push(demo);
    const demoPort = await waitFor("the demo site's port file", () => {
      if (demo.exitStatus !== null) throw new Error(`demo exited (${demo.exitStatus})\n${tail(demo.logFile)}`);
      return existsSync(demoPortFile) && parseInt(readFileSync(demoPortFile, "utf8"), 10);
    });
    stack.demoPort = demoPort;
    await waitFor("the demo site to answer", async () => (await fetch(`http://127.0.0.1:${demoPort}/ping`)).ok);

    // Floodgate.
    let admin = "admin: {address: 127.0.0.1:0";
    if (tokens) {
      const tokensFile = path.join(dir, "admin-tokens");
      writeFileSync(tokensFile, tokens.join("\n") + "\n", { mode: 0o600 });
      admin += `, tokens_file: ${tokensFile}`;
    }
    admin += "}";
    const config = [
      "threads: 1",
      "listen: [{address: 127.0.0.1:0}]",
      admin,
      `state_dir: ${path.join(dir, "state")}`,
      "log_level: info",
      "access_log: stdout",
      "timeouts: {shutdown_grace: 1s}",
      "upstreams:",
      `  booking: {servers: [127.0.0.1:${demoPort}]}`,
      "default_upstream: booking",
      "rooms:",
      rooms.replace(/\n$/, ""),
      extraConfig,
    ].join("\n") + "\n";
    const configFile = path.join(dir, "floodgate.yaml");
    writeFileSync(configFile, config);
    stack.config = config;
    const portsFile = path.join(dir, "ports");
    const gw = startProcess("floodgate", FLOODGATE_BIN, ["--config", configFile, "--ports-file", portsFile], dir);
    stack.procs.push(gw);
    const ports = await waitFor("floodgate's ports file", () => {
      if (gw.exitStatus !== null) throw new Error(`floodgate exited (${gw.exitStatus})\nconfig:\n${config}\n${tail(gw.logFile)}`);
      if (!existsSync(portsFile)) return null;
      const p = {};
      for (const line of readFileSync(portsFile, "utf8").split("\n")) {
        const w = line.trim().split(/\s+/);
        if (w[0] === "listen" && w.length >= 3) p[`listen${w[1]}`] = w[2];
        if (w[0] === "admin" && w.length >= 2) p.admin = w[1];
      }
      return p.listen0 ? p : null;
    });
    stack.publicBase = `http://${ports.listen0}`;
    stack.adminBase = ports.admin ? `http://${ports.admin}` : null;
    stack.publicUrl = (p) => stack.publicBase + p;
    stack.adminUrl = (p) => stack.adminBase + p;
    await waitFor("floodgate to answer", async () => (await fetch(stack.publicUrl("/__fg/v1/lights"))).status === 200);
    return stack;
  } catch (e) {
    const logs = stack.logs();
    await stack.cleanup(true);
    e.message += `\n(files kept in ${dir})\n${logs}`;
    throw e;
  }
}

// ---------- people in line, as plain HTTP clients ----------

function cookiesOf(res) {
  const out = {};
  const list = typeof res.headers.getSetCookie === "function" ? res.headers.getSetCookie() : [];
  for (const c of list) {
    const [pair] = c.split(";");
    const eq = pair.indexOf("=");
    if (eq > 0) out[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return out;
}

// One person who joined the line with a plain request and keeps polling the
// status endpoint when told to (as the waiting page would), so they stay
// "live" ahead of the browser. stop() ends the polling.
export async function joinLine(stack, room, pathname, { header = {} } = {}) {
  const res = await fetch(stack.publicUrl(pathname), { headers: { Accept: "application/json", ...header }, redirect: "manual" });
  const body = await res.json().catch(() => ({}));
  const cookies = cookiesOf(res);
  const ticket = cookies[`fg_ticket_${room}`] || body.ticket;  // the JSON carries it too (older Node has no getSetCookie)
  if (res.status !== 503 || !ticket) throw new Error(`joining ${room} answered ${res.status} ${JSON.stringify(body)}`);
  const person = { ticket, position: body.position, state: body.state, stopped: false };
  let next = body.poll_after_ms || 1000;
  person.done = (async () => {
    while (!person.stopped) {
      await sleep(Math.max(200, Math.min(next, 5000)));
      if (person.stopped) break;
      try {
        const r = await fetch(stack.publicUrl(`/__fg/v1/rooms/${room}/status`), { headers: { Accept: "application/json", Cookie: `fg_ticket_${room}=${ticket}` } });
        const st = await r.json();
        person.state = st.state;
        person.position = st.position;
        if (st.state === "admitted") { person.pass = st.pass; break; }
        next = st.poll_after_ms || 1000;
      } catch { next = 1000; }
    }
  })();
  person.stop = async () => { person.stopped = true; await person.done; };
  return person;
}

// ---------- the browser ----------

export async function launchBrowser() {
  const { chromium } = await import("playwright-core");
  need(CHROMIUM, "CHROMIUM");
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
      // The machine has no network but loopback: keep Chromium from trying.
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--disable-quic", "--no-first-run", "--no-default-browser-check", "--no-proxy-server",
      "--disable-features=Translate,MediaRouter,OptimizationHints,DialMediaRouteProvider",
    ],
  });
}

export function artifactPath(name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, name);
}

export async function screenshot(page, name, opts = {}) {
  const file = artifactPath(name);
  await page.screenshot({ path: file, ...opts });
  console.log(`screenshot: ${file}`);
  return file;
}

// A crowd arriving at `perSecond` (at most `max` people): each joins with a
// plain request, polls the status when told to, and once admitted asks for
// the protected page with the pass, as a browser would. stop() ends it all.
export function startCrowd(stack, room, pathname, { perSecond = 5, max = 200 } = {}) {
  const crowd = { joined: 0, admitted: 0, people: [], stopped: false, errors: 0 };
  crowd.done = (async () => {
    const start = Date.now();
    while (!crowd.stopped && crowd.joined < max) {
      const due = start + (crowd.joined * 1000) / perSecond;
      if (due > Date.now()) { await sleep(due - Date.now()); continue; }
      crowd.joined++;
      crowd.people.push(joinLine(stack, room, pathname).then((p) => {
        p.done.then(async () => {
          if (!p.pass) return;
          crowd.admitted++;
          try { await fetch(stack.publicUrl(pathname), { headers: { Cookie: `fg_pass_${room}=${p.pass}` } }).then((r) => r.arrayBuffer()); } catch { crowd.errors++; }
        });
        return p;
      }, () => { crowd.errors++; return null; }));
    }
  })();
  crowd.stop = async () => {
    crowd.stopped = true;
    await crowd.done;
    for (const p of await Promise.all(crowd.people)) if (p) await p.stop();
  };
  return crowd;
}

// The admin API with a token, for checking what the dashboard shows.
export async function adminGet(stack, token, pathname) {
  const res = await fetch(stack.adminUrl(pathname), { headers: { Authorization: `Bearer ${token}` } });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`GET ${pathname} answered ${res.status} ${JSON.stringify(body)}`);
  return body;
}
