// The Actions and HMAC-key screens in a real headless Chromium against the real services. Not run by
// console/test.sh yet: the control plane does not serve the ActionService until outbound actions
// land (docs/console.md). Run it alone with `node --test tests/actions.test.mjs` once it does. The two
// control-plane settings below (plain-http action servers on loopback) are placeholders for the names
// the ActionService implementation gives them.

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
  const app = { workspaceId: randomUUID(), appId: randomUUID() };

  before(async () => {
    stack = new Stack();
    await stack.start({ CP_ACTIONS_ALLOW_HTTP: "true", CP_ACTIONS_ALLOWED_CIDRS: "127.0.0.0/8" });
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
    await ui.assertClean();
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
});
