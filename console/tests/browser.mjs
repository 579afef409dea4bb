// Headless Chromium (Debian's `chromium` package) driven by playwright-core, which downloads
// nothing. A missing browser fails the test with the reason; it is never skipped.

import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";

import { chromium } from "playwright-core";

import { repo } from "./stack.mjs";

const CANDIDATES = [process.env.CHROMIUM, "/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser"];

export function chromiumPath() {
  const found = CANDIDATES.find((p) => p && existsSync(p));
  if (!found) {
    throw new Error("Chromium is not installed: apt-get install -y chromium (or set CHROMIUM to its executable)");
  }
  return found;
}

export const SCREENSHOTS = join(repo, "docs/screenshots");

/** A browser with one page on the console; collects every console error, page error and failed request. */
export async function openConsole(url) {
  const browser = await chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: "en-GB", timezoneId: "UTC" });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: new URL(url).origin });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => {
    // ERR_ABORTED: the page itself cancelled the request (a reload or navigation while it ran).
    if (r.failure()?.errorText !== "net::ERR_ABORTED") problems.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`);
  });
  await page.goto(url);
  return {
    browser,
    context,
    page,
    problems,
    /** Fails when the page logged errors, or a screen shows an error note (unless `allowed`). */
    async assertClean(allowed = []) {
      assert.deepEqual(problems, [], "the page logged errors");
      const shown = await page.locator(".error[role=alert]").evaluateAll((els) =>
        els.map((e) => ({ reason: e.getAttribute("data-reason"), text: e.textContent })),
      );
      const unexpected = shown.filter((e) => !allowed.includes(e.reason));
      assert.deepEqual(unexpected, [], "the screen shows an error it should not");
    },
    /** Writes `name`-1280.png and `name`-390.png into docs/screenshots (masking `mask` locators). */
    async screenshots(name, mask = []) {
      mkdirSync(SCREENSHOTS, { recursive: true });
      for (const width of [1280, 390]) {
        await page.setViewportSize({ width, height: width === 1280 ? 860 : 844 });
        await page.screenshot({ path: join(SCREENSHOTS, `${name}-${width}.png`), mask, animations: "disabled" });
      }
      await page.setViewportSize({ width: 1280, height: 860 });
    },
  };
}
