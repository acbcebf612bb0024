// The journey a couple and a guest make through the reference web client, in headless
// Chromium (Debian's package, through playwright-core), against the real stack. Each
// step asserts what a person sees on the page.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { Stack } from "./stack.mjs";

const OUT = resolve(dirname(fileURLToPath(import.meta.url)), "../test-output");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const WAIT = 20_000;

const stack = new Stack();
let context;
let profile;
let tabA;
let tabB;
let page; // the page the couple creates: {id, slug}

let failed = false;
/** A step of the journey; after a failed one the processes' logs are printed. */
function step(name, fn) {
  it(name, async () => {
    try {
      await fn();
    } catch (e) {
      failed = true;
      throw e;
    }
  });
}

/** Waits until `fn(text of selector)` holds; fails with what the page showed. */
async function seen(tab, selector, fn, what) {
  const deadline = Date.now() + WAIT;
  let text = null;
  while (Date.now() < deadline) {
    text = await tab.locator(selector).first().textContent({ timeout: 1000 }).catch(() => null);
    if (text !== null && fn(text)) return text;
    await tab.waitForTimeout(100);
  }
  const error = await tab.locator("#error").textContent().catch(() => "");
  assert.fail(`${what}: ${selector} shows ${JSON.stringify(text)} (error box: ${JSON.stringify(error)})`);
}

const lastAnswer = (tab) => tab.locator(".msg.assistant").last();
async function answerState(tab) {
  return lastAnswer(tab).getAttribute("data-state", { timeout: 1000 }).catch(() => null);
}
async function untilState(tab, states, what) {
  const deadline = Date.now() + WAIT;
  let state = null;
  while (Date.now() < deadline) {
    state = await answerState(tab);
    if (states.includes(state)) return state;
    await tab.waitForTimeout(50);
  }
  assert.fail(`${what}: last answer is ${state}; chat: ${await tab.locator("#chat-status").textContent()}`);
}

describe("reference web client in Chromium", { timeout: 240_000 }, () => {
  before(async () => {
    mkdirSync(OUT, { recursive: true });
    await stack.start();
    profile = mkdtempSync(join(tmpdir(), "mocheong-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      chromiumSandbox: false,
      args: FLAGS,
      viewport: { width: 720, height: 900 },
      locale: "ko-KR",
    });
    tabA = context.pages()[0] ?? (await context.newPage());
    tabA.on("pageerror", (e) => console.error("tab A:", e.message));
  });

  after(async () => {
    await context?.close().catch(() => {});
    await stack.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
    if (failed) console.error(stack.logs());
  });

  step("registers and signs in from another origin", async () => {
    await tabA.goto(`${stack.web}/#/`);
    await tabA.fill("#login-form [name=email]", `couple-${stack.runId}@example.com`);
    await tabA.fill("#login-form [name=password]", "correct horse 42");
    await tabA.fill("#login-form [name=displayName]", "민수와 지영");
    await tabA.click("#register");
    await seen(tabA, "#who", (t) => t === "Signed in as 민수와 지영", "signed in");
  });

  step("creates and publishes a page", async () => {
    await tabA.fill("#page-form [name=groom]", "김민수");
    await tabA.fill("#page-form [name=bride]", "이지영");
    await tabA.fill("#page-form [name=when]", "2099-05-15T12:30");
    await tabA.fill("#page-form [name=venue]", "더채플앳청담");
    await tabA.click("#page-form button[type=submit]");
    const row = tabA.locator("#pages li").first();
    await seen(tabA, "#pages li .status", (t) => t === "draft", "new page is a draft");
    assert.match(await row.textContent(), /김민수 ♥ 이지영/);
    await row.locator(".publish").click();
    await seen(tabA, "#pages li .status", (t) => t === "published", "page published");
    const href = await row.locator(".guest-link").getAttribute("href");
    page = { id: await row.getAttribute("data-page"), slug: href.split("/").pop() };
  });

  step("shows the guest view and takes an RSVP", async () => {
    const guest = await context.newPage();
    await guest.goto(`${stack.web}/#/p/${page.slug}`);
    await seen(guest, "#couple", (t) => t === "김민수 ♥ 이지영", "guest view");
    await seen(guest, "#venue", (t) => t === "더채플앳청담", "venue");
    await guest.fill("#rsvp-form [name=name]", "박하객");
    await guest.fill("#rsvp-form [name=phone]", "010-1234-5678");
    await guest.click("#rsvp-form button[type=submit]");
    await seen(guest, "#rsvp-result", (t) => t === "Thank you, 박하객: see you there.", "RSVP saved");
    await guest.close();
  });

  step("chats in two tabs, polling first then upgraded to a websocket", async () => {
    await tabA.goto(`${stack.web}/#/chat/${page.id}`);
    tabB = await context.newPage();
    tabB.on("pageerror", (e) => console.error("tab B:", e.message));
    await tabB.goto(`${stack.web}/#/chat/${page.id}`);
    for (const tab of [tabA, tabB]) {
      await seen(tab, "#chat-status", (t) => t === "connected (websocket)", "socket upgraded");
      assert.equal(await tab.locator("#chat-status").getAttribute("data-transports"), "polling,websocket");
    }
  });

  step("streams an answer, and a tab reloaded mid-answer sees all of it", async () => {
    await tabA.fill("#chat-form [name=text]", "예식 정보 전부 알려주세요: 날짜, 장소, 주차, 교통, 계좌");
    await tabA.click("#chat-form button[type=submit]");
    // Tokens arrive one by one in both tabs.
    await untilState(tabA, ["streaming"], "tab A streams");
    const partial = await lastAnswer(tabA).textContent();
    await untilState(tabB, ["streaming", "answered"], "tab B streams");
    assert.equal(await answerState(tabA), "streaming", "still mid-answer when reloading");
    await tabA.reload();
    await untilState(tabB, ["answered"], "tab B has the whole answer");
    await untilState(tabA, ["answered"], "tab A, reloaded, has the whole answer");
    const full = await lastAnswer(tabB).textContent();
    assert.ok(full.length > partial.length && full.startsWith(partial.trim().slice(0, 5)), `${partial} / ${full}`);
    assert.equal(await lastAnswer(tabA).textContent(), full);
    assert.equal(
      await tabA.locator(".msg.user").last().textContent(),
      "예식 정보 전부 알려주세요: 날짜, 장소, 주차, 교통, 계좌",
    );
  });

  step("stops an answer; both tabs keep the partial text", async () => {
    await tabA.fill("#chat-form [name=text]", "예식 정보 전부 다시 알려주세요: 날짜, 장소, 주차, 교통, 계좌");
    await tabA.click("#chat-form button[type=submit]");
    await untilState(tabA, ["streaming"], "second answer streams");
    await tabA.click("#stop");
    await untilState(tabA, ["stopped"], "tab A shows the answer stopped");
    await untilState(tabB, ["stopped"], "tab B shows the answer stopped");
    const first = await tabA.locator(".msg.assistant").first().textContent();
    const stopped = await lastAnswer(tabA).textContent();
    assert.ok(stopped.length > 0 && stopped.length < first.length, `stopped: ${stopped}`);
    assert.equal(await lastAnswer(tabB).textContent(), stopped);
    await tabA.screenshot({ path: join(OUT, "web-client.png") });
  });

  step("two tabs refreshing the session at once both stay signed in", async () => {
    for (const tab of [tabA, tabB]) await tab.goto(`${stack.web}/#/`);
    // Both tabs hold the same refresh token (localStorage) and present it together.
    await Promise.all([tabA.click("#refresh-session"), tabB.click("#refresh-session")]);
    for (const tab of [tabA, tabB]) {
      await seen(tab, "#session-status", (t) => t === "session renewed", "refreshed");
    }
    for (const tab of [tabA, tabB]) {
      await tab.reload();
      await seen(tab, "#who", (t) => t === "Signed in as 민수와 지영", "still signed in");
      await seen(tab, "#pages li .status", (t) => t === "published", "pages still load");
    }
  });
});
