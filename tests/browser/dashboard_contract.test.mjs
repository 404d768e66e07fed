// The operators' dashboard against a stand-in admin API that follows the
// contract (lib/fake_admin.mjs), for what the real gateway cannot be made to
// do on cue: the event stream breaking and refusing to come back, a viewer
// token, a field the server rejects. dashboard.test.mjs runs the same page
// against the real floodgate.
import test from "node:test";
import assert from "node:assert/strict";
import { launchBrowser, screenshot, sleep, waitFor } from "./lib/harness.mjs";
import { startFakeAdmin } from "./lib/fake_admin.mjs";

const OPERATOR = "operator-secret";
const VIEWER = "viewer-secret";

async function openDashboard(browser, fake, token) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  const requests = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.on("request", (r) => requests.push(r.url()));
  await page.goto(fake.url("/dashboard/"));
  await page.waitForSelector("#login:not([hidden])");
  await page.fill("#token-input", token);
  await page.click("#login-submit");
  await page.waitForSelector("#conn[data-state=live]", { timeout: 10000 });
  return { context, page, problems, requests };
}

function number(text) { return Number(String(text).replace(/[^0-9.\-]/g, "")); }

async function shown(page, room, field) {
  return page.textContent(`.room[data-room="${room}"] [data-field="${field}"]`);
}

test("the dashboard asks for the token once, shows the live numbers and loads nothing from outside", async () => {
  const fake = await startFakeAdmin();
  const browser = await launchBrowser();
  try {
    const { page, problems, requests } = await openDashboard(browser, fake, OPERATOR);
    await page.waitForSelector('.room[data-room="vaccine"]');
    await page.waitForSelector('.room[data-room="concert"]');
    assert.equal(await page.locator(".room").count(), 2);

    // What the cards show is what the API says (the numbers move each second: take both within one tick).
    await sleep(1500);
    for (const name of ["vaccine", "concert"]) {
      const r = fake.rooms.find((x) => x.name === name);
      // The fake moves every second and a busy machine may paint a tick late: the page must
      // catch up with the API within a few seconds, not match one instant.
      let waiting = -1;
      for (const until = Date.now() + 5000; Date.now() < until; await sleep(200)) {
        waiting = number(await shown(page, name, "waiting"));
        if (Math.abs(waiting - r.stats.waiting) <= Math.max(3, r.stats.waiting * 0.2)) break;
      }
      assert.ok(Math.abs(waiting - r.stats.waiting) <= Math.max(3, r.stats.waiting * 0.2), `${name}: waiting ${waiting} vs ${r.stats.waiting}`);
      assert.match(await shown(page, name, "rate"), new RegExp(`of ${r.settings.rate}/s`));
      assert.equal(await page.getAttribute(`.room[data-room="${name}"] .badge.mode`, "data-mode"), r.mode);
    }
    // Four uPlot charts a room, drawn from the history plus the live points.
    assert.equal(await page.locator('.room[data-room="vaccine"] .uplot').count(), 4);
    assert.ok(await page.evaluate(() => typeof window.uPlot === "function"), "uPlot is loaded from the gateway");

    // Nothing moves while the numbers change (no layout jumps).
    const boxes = () => page.evaluate(() => [...document.querySelectorAll(".room .stat, .room .chart, .room .controls")]
      .map((e) => { const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height].map(Math.round).join(","); }));
    const before = await boxes();
    await sleep(3200);
    assert.deepEqual(await boxes(), before, "the cards keep their layout while the numbers update");

    // A reload in the same tab keeps the token: no second prompt.
    await page.reload();
    await page.waitForSelector("#conn[data-state=live]", { timeout: 10000 });
    assert.equal(await page.isVisible("#login"), false);

    await screenshot(page, "dashboard-contract.png", { fullPage: true });
    const outside = requests.filter((u) => !u.startsWith(fake.base) && !u.startsWith("data:"));
    assert.deepEqual(outside, [], "every request goes to the gateway itself");
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
    await fake.close();
  }
});

test("errors from the API reach the operator: a viewer's 403 and a rejected field's 400", async () => {
  const fake = await startFakeAdmin();
  const browser = await launchBrowser();
  try {
    const viewer = await openDashboard(browser, fake, VIEWER);
    const card = viewer.page.locator('.room[data-room="vaccine"]');
    await card.locator("input[name=rate]").fill("75");
    await card.locator("button.apply").click();
    await waitFor("the 403 message", async () => /read-only/.test(await card.locator(".room-error").textContent()));
    assert.match(await card.locator(".room-error").textContent(), /victor/, "the server's own message is shown");
    assert.equal(fake.rooms[0].settings.rate, 50, "nothing changed");
    await viewer.context.close();

    const op = await openDashboard(browser, fake, OPERATOR);
    const opCard = op.page.locator('.room[data-room="vaccine"]');
    await opCard.locator("input[name=rate]").fill("-3");
    await opCard.locator("button.apply").click();
    await waitFor("the 400 message", async () => /rate/.test(await opCard.locator(".room-error").textContent()));
    const text = await opCard.locator(".room-error").textContent();
    assert.match(text, /field: rate/);
    assert.match(text, /400 bad_request/);
    assert.equal(await opCard.locator("input[name=rate]").getAttribute("aria-invalid"), "true");
    assert.equal(await opCard.locator("input[name=rate]").inputValue(), "-3", "the operator's input is kept to fix");
    await screenshot(op.page, "dashboard-contract-error.png");

    // Fixing it clears the error and changes the room.
    await opCard.locator("input[name=rate]").fill("75");
    await opCard.locator("button.apply").click();
    await waitFor("the rate to change", () => fake.rooms[0].settings.rate === 75);
    await waitFor("the error to clear", async () => (await opCard.locator(".room-error").textContent()) === "");
    assert.equal(await opCard.locator("input[name=rate]").getAttribute("aria-invalid"), null);

    // A token the server does not know: asked again, with the reason.
    await op.page.evaluate(() => sessionStorage.setItem("floodgate.admin_token", "wrong"));
    await op.page.reload();
    await op.page.waitForSelector("#login:not([hidden])");
    assert.match(await op.page.textContent("#login-error"), /not accepted/);
  } finally {
    await browser.close();
    await fake.close();
  }
});

test("a broken event stream shows 'disconnected' and the page reconnects by itself", async () => {
  const fake = await startFakeAdmin();
  const browser = await launchBrowser();
  try {
    const { page } = await openDashboard(browser, fake, OPERATOR);
    fake.refuseStreams(true);
    fake.dropStreams();
    await page.waitForSelector("#conn[data-state=disconnected]", { timeout: 10000 });
    assert.match(await page.textContent("#conn-text"), /Disconnected/);
    assert.equal(await page.locator(".room.stale").count(), 2, "the numbers are shown as stale");
    await screenshot(page, "dashboard-contract-disconnected.png");

    fake.refuseStreams(false);
    await page.waitForSelector("#conn[data-state=live]", { timeout: 20000 });
    assert.equal(await page.locator(".room.stale").count(), 0);
    assert.equal(fake.streamCount(), 1, "one stream, not one per attempt");
  } finally {
    await browser.close();
    await fake.close();
  }
});

test("pause and close ask first; every change lands in the audit log", async () => {
  const fake = await startFakeAdmin();
  const browser = await launchBrowser();
  try {
    const { page } = await openDashboard(browser, fake, OPERATOR);
    const card = page.locator('.room[data-room="vaccine"]');
    await card.locator("button[data-action=pause]").click();
    await page.waitForSelector("#confirm[open]");
    assert.match(await page.textContent("#confirm-title"), /Pause vaccine/);
    await page.click("#confirm-cancel");
    await sleep(300);
    assert.equal(fake.rooms[0].mode, "auto", "cancelled: nothing changed");

    await card.locator("button[data-action=pause]").click();
    await page.waitForSelector("#confirm[open]");
    await page.click("#confirm-ok");
    await waitFor("the room to pause", () => fake.rooms[0].mode === "paused");
    await waitFor("the card to say so", async () => (await card.locator(".badge.mode").getAttribute("data-mode")) === "paused");
    assert.equal(await card.locator("button[data-action=pause]").getAttribute("aria-pressed"), "true");

    // Queue-all needs no confirmation.
    await card.locator("button[data-action=queue-all]").click();
    await waitFor("queue_all", () => fake.rooms[0].mode === "queue_all");
    assert.equal(await page.isVisible("#confirm"), false);

    await card.locator("input[name=banner]").fill("Sale opens at 20:00");
    await card.locator(".banner-form button[type=submit]").click();
    await waitFor("the banner", () => fake.rooms[0].settings.banner === "Sale opens at 20:00");

    // The audit log shows the three changes, newest first, from the stream.
    await waitFor("three audit rows", async () => (await page.locator("#audit-body tr").count()) === 3);
    const rows = await page.locator("#audit-body tr").allTextContents();
    assert.match(rows[0], /alice.*room\.patch.*vaccine.*banner/);
    assert.match(rows[1], /room\.queue-all/);
    assert.match(rows[2], /room\.pause.*mode "auto" → "paused"/);
    // And from GET /admin/v1/audit after a reload.
    await page.reload();
    await page.waitForSelector("#conn[data-state=live]");
    await waitFor("the audit log", async () => (await page.locator("#audit-body tr").count()) === 3);
    await screenshot(page, "dashboard-contract-audit.png", { fullPage: true });
  } finally {
    await browser.close();
    await fake.close();
  }
});
