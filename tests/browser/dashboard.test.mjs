// The operators' dashboard against the real floodgate: a crowd queues for a
// room, the dashboard's numbers match GET /admin/v1/rooms, changing the rate
// in the page changes the room's settings and lets people in faster, and a
// pause asks first. Served by the gateway's admin listener at /dashboard/.
import test from "node:test";
import assert from "node:assert/strict";
import { startStack, startCrowd, adminGet, launchBrowser, screenshot, sleep, waitFor } from "./lib/harness.mjs";

const OPERATOR = "op-7f3c9a1e5b2d4c6f8a0b";
const VIEWER = "view-2b4d6f8a0c1e3f5a7b9c";
const ROOMS = `  vaccine:
    match: {paths: [/reserve]}
    upstream: booking
    admission: {rate: 2, burst: 1, max_active: 1000}
    mode: queue_all
    page: {title: Seoul Concert Hall}
  concert:
    match: {paths: [/concert]}
    upstream: booking
    admission: {rate: 50, burst: 10}
`;

function number(text) { return Number(String(text).replace(/[^0-9.\-]/g, "")); }

async function openDashboard(browser, stack, token) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  // Works without internet: everything comes from the gateway's admin listener.
  page.on("request", (r) => { if (!r.url().startsWith(stack.adminUrl("/")) && !r.url().startsWith("data:")) problems.push(`outside request: ${r.url()}`); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  const res = await page.goto(stack.adminUrl("/dashboard/"));
  assert.equal(res.status(), 200, "the admin listener serves the dashboard");
  await page.waitForSelector("#login:not([hidden])");
  await page.fill("#token-input", token);
  await page.click("#login-submit");
  await page.waitForSelector("#conn[data-state=live]", { timeout: 10000 });
  await page.waitForSelector('.room[data-room="vaccine"]');
  return { context, page, problems };
}

async function field(page, room, name) {
  return page.textContent(`.room[data-room="${room}"] [data-field="${name}"]`);
}

// admitted_total from the API over `seconds`.
async function admittedOver(stack, seconds) {
  const t0 = (await adminGet(stack, OPERATOR, "/admin/v1/rooms/vaccine")).stats.admitted_total;
  await sleep(seconds * 1000);
  const t1 = (await adminGet(stack, OPERATOR, "/admin/v1/rooms/vaccine")).stats.admitted_total;
  return t1 - t0;
}

test("the dashboard shows the live numbers, changes the rate and asks before a pause", async () => {
  const stack = await startStack({ rooms: ROOMS, tokens: [`operator alice ${OPERATOR}`, `viewer victor ${VIEWER}`] });
  let browser = null, crowd = null;
  try {
    browser = await launchBrowser();
    // More people arrive (6/s) than the room lets in (2/s): a line builds up.
    crowd = startCrowd(stack, "vaccine", "/reserve", { perSecond: 6, max: 400 });
    const { page, problems } = await openDashboard(browser, stack, OPERATOR);
    await waitFor("a line to build", async () => (await adminGet(stack, OPERATOR, "/admin/v1/rooms/vaccine")).stats.waiting >= 10, { timeoutMs: 20000, intervalMs: 500 });
    await sleep(1500);

    // The numbers on the page are the API's (they move every second: the API's
    // reading must fall between two readings of the page, give or take).
    for (const name of ["waiting", "active"]) {
      const a = number(await field(page, "vaccine", name));
      const api = (await adminGet(stack, OPERATOR, "/admin/v1/rooms/vaccine")).stats[name];
      await sleep(1100);
      const b = number(await field(page, "vaccine", name));
      const lo = Math.min(a, b), hi = Math.max(a, b), slack = 6 + 0.1 * hi;
      assert.ok(api >= lo - slack && api <= hi + slack, `${name}: the page showed ${a} then ${b}; the API said ${api}`);
    }
    const room = await adminGet(stack, OPERATOR, "/admin/v1/rooms/vaccine");
    assert.equal(await page.getAttribute('.room[data-room="vaccine"] .badge.mode', "data-mode"), room.mode);
    assert.match(await field(page, "vaccine", "rate"), /of 2\/s/);
    assert.match(await field(page, "vaccine", "max_active"), /of 1,000/);
    assert.equal(await page.locator('.room[data-room="concert"]').count(), 1, "a card for every room");

    // The rate, changed from the page.
    const before = await admittedOver(stack, 4);
    const shownBefore = number(await field(page, "vaccine", "admitted_per_s"));
    const card = page.locator('.room[data-room="vaccine"]');
    await card.locator("input[name=rate]").fill("10");
    await card.locator("button.apply").click();
    await waitFor("settings.rate to be 10", async () => (await adminGet(stack, OPERATOR, "/admin/v1/rooms/vaccine")).settings.rate === 10, { timeoutMs: 5000 });
    await waitFor("the card to show the new rate", async () => /of 10\/s/.test(await field(page, "vaccine", "rate")));
    await sleep(1000);
    const after = await admittedOver(stack, 4);
    let shownAfter = 0;
    for (let i = 0; i < 4; i++) { shownAfter = Math.max(shownAfter, number(await field(page, "vaccine", "admitted_per_s"))); await sleep(500); }
    console.log(`admitted in 4 s: ${before} at rate 2, ${after} at rate 10; admitted/s on the page: ${shownBefore} then up to ${shownAfter}`);
    assert.ok(before <= 2 * 4 + 4, `at rate 2, about 8 people in 4 s (got ${before})`);
    assert.ok(after >= before + 8, `the faster rate lets more people in (${before} then ${after} in 4 s)`);
    assert.ok(shownAfter > shownBefore, `admitted/s on the page rises (${shownBefore} then ${shownAfter})`);
    await screenshot(page, "dashboard.png", { fullPage: true });

    // The change is in the audit log, on the page.
    await waitFor("the audit row", async () => /alice.*vaccine.*rate/.test((await page.locator("#audit-body tr").allTextContents()).join("\n")));

    // A pause asks first: cancelled, nothing changes; confirmed, the room pauses.
    await card.locator("button[data-action=pause]").click();
    await page.waitForSelector("#confirm[open]");
    assert.match(await page.textContent("#confirm-text"), /keep their place/);
    await page.click("#confirm-cancel");
    await sleep(500);
    assert.equal((await adminGet(stack, OPERATOR, "/admin/v1/rooms/vaccine")).mode, "queue_all", "cancelled: still queueing");
    await card.locator("button[data-action=pause]").click();
    await page.waitForSelector("#confirm[open]");
    await screenshot(page, "dashboard-confirm-pause.png");
    await page.click("#confirm-ok");
    await waitFor("the room to pause", async () => (await adminGet(stack, OPERATOR, "/admin/v1/rooms/vaccine")).mode === "paused", { timeoutMs: 5000 });
    await waitFor("the card to say so", async () => (await card.locator(".badge.mode").getAttribute("data-mode")) === "paused");
    // And back to open (resume -> auto).
    await card.locator("button[data-action=resume]").click();
    await waitFor("the room to open", async () => (await adminGet(stack, OPERATOR, "/admin/v1/rooms/vaccine")).mode === "auto", { timeoutMs: 5000 });

    // A viewer sees everything but cannot change anything, and is told why.
    const viewer = await openDashboard(browser, stack, VIEWER);
    const vcard = viewer.page.locator('.room[data-room="vaccine"]');
    await vcard.locator("input[name=rate]").fill("99");
    await vcard.locator("button.apply").click();
    await waitFor("the 403", async () => /read-only/.test(await vcard.locator(".room-error").textContent()));
    assert.equal((await adminGet(stack, OPERATOR, "/admin/v1/rooms/vaccine")).settings.rate, 10);
    await viewer.context.close();

    assert.deepEqual(problems, [], "no script errors (and nothing the page's security policy refused)");
  } catch (e) {
    console.error(stack.logs());
    throw e;
  } finally {
    if (crowd) await crowd.stop();
    if (browser) await browser.close();
    await stack.cleanup();
  }
});
