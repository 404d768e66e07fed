// The waiting page as a person sees it in a real browser: their place in
// line falls while they watch (without reloading), the wait is estimated, the
// page speaks Korean or English, and when their turn comes the browser lands
// on the booking page they first asked for. Nothing on the page talks about
// token failures, even when the browser brings a forged ticket.
import test from "node:test";
import assert from "node:assert/strict";
import { startStack, joinLine, launchBrowser, screenshot, sleep } from "./lib/harness.mjs";

const ROOMS = `  hall:
    match: {paths: [/reserve]}
    upstream: booking
    admission: {rate: 1, burst: 1}
    mode: queue_all
    page: {default_language: en, title: Seoul Concert Hall}
`;
const LEAKY = /expired|signature|tamper|invalid|forged/i;
const AHEAD = 8;  // people in line before the browsers (one is let in a second)

const LANGS = {
  ko: {
    context: { locale: "ko-KR", extraHTTPHeaders: { "Accept-Language": "ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7" } },
    heading: "대기 중입니다",
    eta: /분|측정 중/,
  },
  en: {
    context: { locale: "en-US", extraHTTPHeaders: { "Accept-Language": "en-US,en;q=0.9" } },
    heading: "You are in line",
    eta: /minute|being measured/,
  },
};

// One person in a browser tab: opens `target`, watches the page until it
// turns into the booking page. Returns what they saw.
async function openTab(browser, lang) {
  const context = await browser.newContext({ ...LANGS[lang].context, viewport: { width: 420, height: 820 } });
  return { context, page: await context.newPage() };
}

async function waitInBrowser({ context, page }, stack, lang, target) {
  const spec = LANGS[lang];
  const seen = { lang, positions: [], etas: new Set(), reloadedWhileWaiting: false };
  try {
    const res = await page.goto(stack.publicUrl(target));
    assert.equal(res.status(), 200, `${lang}: the waiting page answers 200`);
    assert.match(res.headers()["cache-control"] || "", /no-store/, `${lang}: the waiting page is not cached`);
    assert.equal(await page.evaluate(() => document.documentElement.lang), lang);
    assert.equal((await page.textContent("#fg-heading")).trim(), spec.heading);
    const html = await page.content();
    assert.doesNotMatch(html, LEAKY, `${lang}: the waiting page says nothing about token failures`);
    const text = await page.evaluate(() => document.body.innerText);
    assert.doesNotMatch(text, /\{\{|\}\}/, `${lang}: every placeholder is filled`);

    const first = parseInt((await page.textContent("#fg-position")).replace(/[^0-9]/g, ""), 10);
    // A few of the people ahead may have been let in while the page loaded (one a second).
    assert.ok(first >= 3, `${lang}: starts behind people in line (position ${first})`);
    seen.positions.push(first);
    seen.etas.add((await page.textContent("#fg-eta")).trim());
    // Marks this document: a reload (or a navigation) would lose it.
    await page.evaluate(() => { window.__fgSameDocument = true; });
    seen.queuedShot = await screenshot(page, `waiting-${lang}-queued.png`, { fullPage: true });

    // Watch until the booking page appears.
    const deadline = Date.now() + 60000;
    for (;;) {
      assert.ok(Date.now() < deadline, `${lang}: admitted within 60 s (positions seen: ${seen.positions.join(", ")})`);
      let state;
      try {
        state = await page.evaluate(() => {
          if (document.getElementById("book")) return { booking: true };
          const p = document.getElementById("fg-position");
          const eta = document.getElementById("fg-eta");
          return p ? { same: window.__fgSameDocument === true, position: p.textContent, eta: eta.textContent, heading: document.getElementById("fg-heading").textContent } : { other: true };
        });
      } catch {
        await sleep(100);  // the page is navigating
        continue;
      }
      if (state.booking) break;
      if (state.position !== undefined) {
        if (!state.same && !/차례|turn/.test(state.heading)) seen.reloadedWhileWaiting = true;
        const n = parseInt(state.position.replace(/[^0-9]/g, ""), 10);
        if (n !== seen.positions[seen.positions.length - 1]) seen.positions.push(n);
        seen.etas.add(state.eta.trim());
      }
      await sleep(200);
    }
    seen.url = new URL(page.url());
    seen.bookingTitle = await page.title();
    seen.admittedShot = await screenshot(page, `waiting-${lang}-admitted.png`, { fullPage: true });
    seen.passCookie = (await context.cookies()).some((c) => c.name === "fg_pass_hall");
  } finally {
    await context.close();
  }
  return seen;
}

test("a person in line watches their place fall, in Korean and in English, and lands on the page they asked for", async () => {
  const stack = await startStack({ rooms: ROOMS });
  let browser = null;
  const people = [];
  try {
    // The browser and its tabs first: starting them takes longer than a place in this line lasts.
    browser = await launchBrowser();
    const tabs = { ko: await openTab(browser, "ko"), en: await openTab(browser, "en") };
    for (let i = 0; i < AHEAD; i++) people.push(await joinLine(stack, "hall", "/reserve"));
    const targets = { ko: "/reserve?date=2021-07-26&seats=2", en: "/reserve?date=2021-07-27" };
    // Both join now (Korean first), so they wait at the same time.
    const ko = waitInBrowser(tabs.ko, stack, "ko", targets.ko);
    await sleep(300);
    const en = waitInBrowser(tabs.en, stack, "en", targets.en);
    const results = await Promise.all([ko, en]);

    for (const seen of results) {
      const asked = new URL(stack.publicUrl(targets[seen.lang]));
      console.log(`${seen.lang}: positions seen ${seen.positions.join(" → ")}; ETA texts: ${[...seen.etas].join(" | ")}`);
      // The place fell while the person watched, and never went up.
      assert.ok(seen.positions.length >= 3, `${seen.lang}: the position changed at least twice on the page (${seen.positions.join(", ")})`);
      for (let i = 1; i < seen.positions.length; i++)
        assert.ok(seen.positions[i] < seen.positions[i - 1], `${seen.lang}: the position never goes up (${seen.positions.join(", ")})`);
      assert.equal(seen.reloadedWhileWaiting, false, `${seen.lang}: the page updated itself, without reloading`);
      for (const eta of seen.etas) assert.match(eta, LANGS[seen.lang].eta, `${seen.lang}: the ETA is shown in the page's language`);
      // Admitted: the booking page, at the very path (and query) first asked for.
      assert.equal(seen.url.pathname + seen.url.search, asked.pathname + asked.search, `${seen.lang}: back on the page first asked for`);
      assert.equal(seen.url.host, asked.host, `${seen.lang}: same origin`);
      assert.match(seen.bookingTitle, /Seoul Concert Hall/);
      assert.ok(seen.passCookie, `${seen.lang}: the browser holds the room's pass`);
    }
  } catch (e) {
    console.error(stack.logs());
    throw e;
  } finally {
    for (const p of people) await p.stop();
    if (browser) await browser.close();
    await stack.cleanup();
  }
});

test("a forged or stale ticket just gets a normal place in line, with no word about why", async () => {
  const stack = await startStack({ rooms: ROOMS });
  let browser = null;
  try {
    browser = await launchBrowser();
    for (const lang of ["ko", "en"]) {
      const context = await browser.newContext({ ...LANGS[lang].context, viewport: { width: 420, height: 820 } });
      const url = new URL(stack.publicUrl("/"));
      await context.addCookies([
        { name: "fg_ticket_hall", value: "v1.k1.AAAA.BBBB", domain: url.hostname, path: "/" },
        { name: "fg_pass_hall", value: "v1.k1.eyJ0IjoicGFzcyJ9.c2lnbmF0dXJl", domain: url.hostname, path: "/" },
      ]);
      const page = await context.newPage();
      const res = await page.goto(stack.publicUrl("/reserve"));
      assert.equal(res.status(), 200);
      assert.equal((await page.textContent("#fg-heading")).trim(), LANGS[lang].heading);
      assert.doesNotMatch(await page.content(), LEAKY);
      assert.doesNotMatch(await page.evaluate(() => document.body.innerText), LEAKY);
      const ticket = (await context.cookies()).find((c) => c.name === "fg_ticket_hall");
      assert.ok(ticket && ticket.value !== "v1.k1.AAAA.BBBB", `${lang}: a new ticket replaced the forged one`);
      await context.close();
    }
  } catch (e) {
    console.error(stack.logs());
    throw e;
  } finally {
    if (browser) await browser.close();
    await stack.cleanup();
  }
});
