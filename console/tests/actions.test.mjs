// The Actions and HMAC-key screens in a real headless Chromium against the real services: the
// control plane allows plain-http action servers on loopback (CP_ACTIONS_ALLOW_HTTP,
// CP_ACTIONS_ALLOW_CIDRS) so the test's own action server can answer the signed test request.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";

import { Stack } from "./stack.mjs";
import { openConsole } from "./browser.mjs";

const STEP = { timeout: 90_000 };

describe("console: actions and HMAC keys", () => {
  let stack;
  let ui;
  let page;
  let server;
  let calls = [];
  let keyId = "";
  const app = { workspaceId: randomUUID(), appId: randomUUID() };

  before(async () => {
    stack = new Stack();
    await stack.start({ CP_ACTIONS_ALLOW_HTTP: "true", CP_ACTIONS_ALLOW_CIDRS: "127.0.0.1/32" });
    // An action server that accepts the signed test request.
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        calls.push({ headers: req.headers, body });
        res.writeHead(200, { "content-type": "application/json" });
        res.end("{}");
      });
    });
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    ui = await openConsole(stack.consoleUrl);
    page = ui.page;
    page.setDefaultTimeout(15_000);
    await page.getByLabel("API token").fill(stack.adminToken);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.evaluate((h) => (location.hash = h), `#/apps/${app.workspaceId}/${app.appId}/actions`);
    await page.getByRole("heading", { level: 1, name: "Actions" }).waitFor();
  });

  after(async () => {
    await ui?.browser.close();
    server?.close();
    await stack?.stop();
  });

  it("creates an HMAC key and shows its value once, with Copy", STEP, async () => {
    await page.getByLabel("Label of the new key").fill("primary");
    await page.getByRole("button", { name: "Create HMAC key" }).click();
    const dialog = page.getByRole("dialog", { name: "New HMAC key" });
    const value = await dialog.getByLabel("Key value").inputValue();
    assert.match(value, /^[A-Za-z0-9_-]{43}$/);
    keyId = (await dialog.locator("code").last().textContent()).trim();
    await dialog.getByRole("button", { name: "Copy" }).click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), value);
    await ui.screenshots("hmac-key-created", [dialog.getByLabel("Key value")]);
    await dialog.getByRole("button", { name: "Done" }).click();
    await page.locator('tr[data-hmac="primary"]').waitFor();
    assert.ok(!(await page.content()).includes(value), "the key value is still in the page");
    await ui.assertClean();
  });

  it("registers an action after its URL passes the signed test request", STEP, async () => {
    const url = `http://127.0.0.1:${server.address().port}/act`;
    await page.getByLabel("Name", { exact: true }).fill("send_invoice");
    await page.getByLabel("Description").fill("Sends the invoice");
    await page.getByLabel("Action server URL").fill(url);
    await page.getByLabel("Parameter JSON Schema (optional)").fill('{"type":"object"}');
    await page.getByRole("button", { name: "Validate and register" }).click();
    await page.locator('tr[data-action="send_invoice"]').waitFor();
    assert.equal(calls.length, 1);
    assert.equal(JSON.parse(calls[0].body).test, true);
    assert.equal(calls[0].headers["x-signature-key-id"], keyId, "signed with the key the screen created");
    await ui.assertClean();
    await page.getByRole("heading", { level: 1, name: "Actions" }).scrollIntoViewIfNeeded();
    await page.evaluate(() => window.scrollTo(0, 0));
    await ui.screenshots("actions");
  });

  it("shows a refused registration in words", STEP, async () => {
    await page.getByLabel("Name", { exact: true }).fill("Bad Name");
    assert.equal(await page.getByLabel("Name", { exact: true }).getAttribute("aria-invalid"), "true");
    await page.getByLabel("Name", { exact: true }).fill("send_invoice");
    await page.getByLabel("Description").fill("again");
    await page.getByLabel("Action server URL").fill(`http://127.0.0.1:${server.address().port}/act`);
    await page.getByRole("button", { name: "Validate and register" }).click();
    const error = page.locator(".error[role=alert]");
    await error.waitFor();
    assert.equal(await error.getAttribute("data-reason"), "ACTION_NAME_TAKEN");
    await ui.assertClean(["ACTION_NAME_TAKEN"]);
  });

  it("shows why an action server refused the test request, and saves nothing", STEP, async () => {
    const failing = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(500);
        res.end("down");
      });
    });
    await new Promise((r) => failing.listen(0, "127.0.0.1", r));
    try {
      await page.getByLabel("Name", { exact: true }).fill("refund");
      await page.getByLabel("Description").fill("Refunds");
      await page.getByLabel("Action server URL").fill(`http://127.0.0.1:${failing.address().port}/refund`);
      await page.getByRole("button", { name: "Validate and register" }).click();
      const error = page.locator('.error[role=alert][data-reason="ACTION_VALIDATION_FAILED"]');
      await error.waitFor();
      assert.match(await error.textContent(), /status 500/);
      assert.equal(await page.locator('tr[data-action="refund"]').count(), 0);
      await ui.assertClean(["ACTION_VALIDATION_FAILED"]);
      // Editing the form clears the answer about the values sent before.
      await page.getByLabel("Name", { exact: true }).fill("");
      await error.waitFor({ state: "detached" });
    } finally {
      failing.close();
    }
  });

  it("deletes an action after confirmation", STEP, async () => {
    await page.getByRole("button", { name: "Delete send_invoice" }).click();
    const dialog = page.getByRole("dialog", { name: "Delete send_invoice?" });
    await dialog.getByRole("button", { name: "Delete", exact: true }).click();
    await page.getByRole("status").filter({ hasText: "Deleted send_invoice." }).waitFor();
    await page.locator('tr[data-action="send_invoice"]').waitFor({ state: "detached" });
    await ui.assertClean();
  });

  it("revokes the key; registering then needs a new one", STEP, async () => {
    await page.getByRole("button", { name: "Revoke key primary" }).click();
    await page.locator('tr[data-hmac="primary"]').waitFor({ state: "detached" });
    await page.getByLabel("Show revoked keys").check();
    await page.locator('tr[data-hmac="primary"]').filter({ hasText: "Revoked" }).waitFor();
    const before = calls.length;
    await page.getByLabel("Name", { exact: true }).fill("send_invoice");
    await page.getByLabel("Description").fill("Sends the invoice");
    await page.getByLabel("Action server URL").fill(`http://127.0.0.1:${server.address().port}/act`);
    await page.getByRole("button", { name: "Validate and register" }).click();
    const error = page.locator('.error[role=alert][data-reason="HMAC_KEY_MISSING"]');
    await error.waitFor();
    assert.equal(calls.length, before, "no test request without an active key");
    await ui.assertClean(["HMAC_KEY_MISSING"]);
  });
});
