// The console's main flow in a real headless Chromium against the real control plane, data plane,
// Postgres and broker: sign in, create a Slack data source, commit a binding through the API,
// activate it in Manage Triggers, get and copy its URL, deliver events to Kafka, inspect and replay
// failed triggers, reset the API key. Screenshots of the main screens land in docs/screenshots.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";

import { Stack, eventually } from "./stack.mjs";
import { openConsole } from "./browser.mjs";
import { NodeKind } from "../src/gen/webhook/gateway/v1/triggers_pb.js";
import { Provider } from "../src/gen/webhook/gateway/v1/common_pb.js";

const SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
const STEP = { timeout: 90_000 };

describe("console", () => {
  /** @type {Stack} */
  let stack;
  let ui;
  let page;
  const app = { workspaceId: randomUUID(), appId: randomUUID() };
  const name = "slack-orders";
  let webhookId = "";
  let url = "";

  before(async () => {
    stack = new Stack();
    await stack.start();
    ui = await openConsole(stack.consoleUrl);
    page = ui.page;
    page.setDefaultTimeout(15_000);
  });

  after(async () => {
    await ui?.browser.close();
    await stack?.stop();
  });

  /** Goes to an app screen through the navigation. */
  async function open(screen) {
    await page.getByRole("navigation", { name: "Screens" }).getByRole("link", { name: screen, exact: true }).click();
    await page.getByRole("heading", { level: 1, name: screen }).waitFor();
  }

  /** The Manage Triggers row of our webhook. */
  const triggerRow = () => page.locator(`tr[data-trigger="${name}"]`);

  it("serves the console with a strict Content-Security-Policy and no external resources", STEP, async () => {
    const res = await fetch(stack.consoleUrl);
    assert.equal(res.status, 200);
    const csp = res.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /connect-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    const html = await res.text();
    assert.doesNotMatch(html, /https?:\/\//, "index.html references another origin");
    assert.doesNotMatch(html, /<script>(?!<\/script>)|<style>/, "inline script or style");
  });

  it("signs in with an API token, shows who you are, and keeps no credential in storage or the URL", STEP, async () => {
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await ui.screenshots("sign-in");
    await page.getByLabel("API token").fill("gwt_not-a-real-token-at-all-000000000000");
    await page.getByRole("button", { name: "Sign in" }).click();
    const refused = page.locator(".error[role=alert]");
    await refused.waitFor();
    assert.equal(await refused.getAttribute("data-reason"), "API_TOKEN_INVALID");
    assert.match(await refused.innerText(), /not valid/);

    await page.getByLabel("API token").fill(stack.adminToken);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { level: 1, name: "Apps" }).waitFor();
    const who = page.getByRole("region", { name: "Signed in as" });
    assert.equal(await who.getByTestId("role").innerText(), "ADMIN");
    assert.match(await who.innerText(), new RegExp(stack.organizationId.slice(0, 8)));
    assert.match(await who.innerText(), /Workspace\s+all/);

    const stored = await page.evaluate(() => ({
      local: Object.keys(localStorage).length,
      session: Object.keys(sessionStorage).length,
      cookie: document.cookie,
      url: location.href,
      html: document.documentElement.outerHTML,
    }));
    assert.equal(stored.local, 0, "localStorage is used");
    assert.equal(stored.session, 0, "sessionStorage is used");
    assert.equal(stored.cookie, "");
    assert.ok(!stored.url.includes(stack.adminToken) && !/eyJ/.test(stored.url), "a credential is in the URL");
    assert.ok(!stored.html.includes(stack.adminToken), "the API token is still in the page");
    await ui.assertClean();
  });

  it("opens an app by id and creates a Slack data source with its signing secret", STEP, async () => {
    await page.getByLabel("Workspace id").fill(app.workspaceId);
    await page.getByLabel("App id").fill(app.appId);
    await page.getByRole("button", { name: "Open" }).click();
    await page.getByRole("heading", { level: 1, name: "Data Sources" }).waitFor();
    await page.getByRole("button", { name: "New data source" }).click();

    // The name rule is shown while typing.
    const nameField = page.getByLabel("Name", { exact: true });
    await nameField.fill("slack orders!");
    assert.equal(await nameField.getAttribute("aria-invalid"), "true");
    assert.match(await page.locator("#new-name-rule").innerText(), /Only letters, digits/);
    await nameField.fill(name);
    assert.equal(await nameField.getAttribute("aria-invalid"), "false");

    await page.getByLabel("Provider").selectOption({ label: "Slack" });
    const secret = page.getByLabel("Signing secret");
    assert.equal(await secret.getAttribute("type"), "password", "the secret field is not masked");
    await secret.fill(SLACK_SECRET);
    await ui.screenshots("data-source-create");
    await page.getByRole("button", { name: "Create", exact: true }).click();

    const row = page.locator(`tr[data-webhook="${name}"]`);
    await row.waitFor();
    const text = await row.innerText();
    assert.match(text, /Slack/);
    assert.match(text, /Deactivated/);
    assert.match(text, /Set/);
    assert.ok(!(await page.content()).includes(SLACK_SECRET), "the secret is still in the page");
    await ui.assertClean();

    const list = await stack.api.webhooks.listWebhooks({ app: { organizationId: stack.organizationId, ...app } });
    const created = list.webhooks.find((w) => w.name === name);
    assert.ok(created, "the data source was not created through the API");
    assert.equal(created.provider, Provider.SLACK);
    assert.ok(created.hasProviderSecret);
    webhookId = created.id;
  });

  it("shows a committed binding in Manage Triggers as Deactivated and activates it by keyboard", STEP, async () => {
    await stack.api.triggers.commitTriggerBindings({
      app: { organizationId: stack.organizationId, ...app },
      processDefinitionId: "order-intake",
      projectId: "shop",
      branch: "main",
      processVersion: "3",
      bindings: [{ nodeId: "start", nodeKind: NodeKind.MESSAGE_START_EVENT, webhookId }],
    });
    await open("Manage Triggers");
    await triggerRow().waitFor();
    assert.equal(await triggerRow().getByTestId("state").innerText(), "Deactivated");
    const cells = await triggerRow().locator("td").allInnerTexts();
    assert.match(cells[1], /Webhook \(start process\)/);
    assert.match(cells[2], new RegExp(name));
    assert.match(cells[3], /shop \/ main/);
    await ui.screenshots("manage-triggers");

    // Keyboard only: the menu button opens the menu with focus on its first item.
    await triggerRow().getByRole("button", { name: `Actions for ${name}` }).focus();
    await page.keyboard.press("Enter");
    const menu = page.getByRole("menu", { name: `Actions for ${name}` });
    await menu.waitFor();
    await eventually("focus on the first menu item", async () =>
      (await page.evaluate(() => document.activeElement?.getAttribute("role") === "menuitem" && document.activeElement.textContent)) === "Activate",
    );
    await page.keyboard.press("Enter");
    await eventually("the trigger to show Active", async () => (await triggerRow().getByTestId("state").innerText()) === "Active");
    await ui.assertClean();
  });

  it("shows the URL in the Get URL modal and copies it; a signed POST to it lands in Kafka", STEP, async () => {
    await triggerRow().getByRole("button", { name: `Actions for ${name}` }).click();
    await page.getByRole("menuitem", { name: "Get URL" }).click();
    const dialog = page.getByRole("dialog", { name: `Webhook URL — ${name}` });
    await dialog.waitFor();
    const field = dialog.getByLabel("Webhook URL");
    url = await field.inputValue();
    assert.ok(url.startsWith(`${stack.dataPlaneUrl}/webhooks/incoming/slack/${stack.organizationId}/${app.workspaceId}/${app.appId}/${webhookId}?flowxApiKey=`), url);
    await dialog.getByRole("button", { name: "Copy" }).click();
    await dialog.getByText("Copied to the clipboard.").waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), url);
    await ui.screenshots("get-url", [field]);
    await ui.assertClean();
    await dialog.getByRole("button", { name: "Close", exact: true }).click();

    const body = JSON.stringify({ type: "event_callback", event_id: `Ev${Date.now()}`, event: { text: "order placed" } });
    const accepted = await eventually("the data plane to accept the activated webhook", async () => {
      const res = await stack.postSlack(url, body, SLACK_SECRET);
      return res.status === 200 ? res.json() : null;
    });
    const event = await stack.findEvent(accepted.eventId);
    assert.equal(event.webhookId, webhookId);
    assert.equal(event.webhookMessage.payload.event.text, "order placed");
  });

  it("lists a badly signed request in Failed Triggers with masked headers", STEP, async () => {
    const body = JSON.stringify({ type: "event_callback", event: { text: "forged" } });
    const res = await stack.postSlack(url, body, "not-the-secret");
    assert.equal(res.status, 401);
    await open("Failed Triggers");
    const row = page.locator('tr[data-failed="SIGNATURE_INVALID"]');
    await eventually("the failed trigger to be listed", async () => {
      await page.getByRole("button", { name: "Refresh" }).click();
      return (await row.count()) === 1;
    });
    assert.match(await row.innerText(), /Provider signature invalid/);
    await ui.screenshots("failed-triggers");
    await row.getByRole("button", { name: /Details/ }).click();
    const dialog = page.getByRole("dialog", { name: "Failed trigger" });
    await dialog.waitFor();
    const sig = dialog.getByRole("row").filter({ has: page.getByRole("rowheader", { name: "X-Slack-Signature" }) });
    assert.match(await sig.innerText(), /\[masked\]/);
    assert.match(await dialog.getByLabel("Payload").innerText(), /"text": "forged"/);
    assert.ok(!(await dialog.innerText()).includes("flowxApiKey="), "the API key is shown");
    // A request whose signature never verified is never replayed: no button, and the reason in words.
    await dialog.getByTestId("not-replayable").waitFor();
    assert.equal(await dialog.getByRole("button", { name: /Replay/ }).count(), 0);
    await ui.screenshots("failed-trigger-detail");
    await ui.assertClean();
    await dialog.getByRole("button", { name: "Close", exact: true }).click();
  });

  it("resets the API key from the Get URL modal: the old URL answers 401, the new one 200", STEP, async () => {
    await open("Manage Triggers");
    await triggerRow().getByRole("button", { name: `Actions for ${name}` }).click();
    await page.getByRole("menuitem", { name: "Get URL" }).click();
    const dialog = page.getByRole("dialog", { name: `Webhook URL — ${name}` });
    await dialog.getByRole("button", { name: "Reset API Key" }).click();
    await dialog.getByLabel("Keep the old key working for").selectOption("0");
    await dialog.getByRole("button", { name: "Reset the key" }).click();
    await dialog.getByText("A new API key was generated").waitFor();
    const fresh = await dialog.getByLabel("Webhook URL").inputValue();
    assert.notEqual(fresh, url);
    assert.ok(fresh.includes("flowxApiKey="));
    await ui.assertClean();
    await dialog.getByRole("button", { name: "Close", exact: true }).click();

    const body = JSON.stringify({ type: "event_callback", event: { text: "after reset" } });
    await eventually("the old URL to answer 401", async () => (await stack.postSlack(url, body, SLACK_SECRET)).status === 401);
    assert.equal((await stack.postSlack(fresh, body, SLACK_SECRET)).status, 200);
    url = fresh;
  });

  it("replays a request the broker did not take, from the console, and it lands in Kafka", STEP, async () => {
    await stack.stopBroker();
    const body = JSON.stringify({ type: "event_callback", event: { text: "during the outage" } });
    const res = await stack.postSlack(url, body, SLACK_SECRET);
    assert.equal(res.status, 503);
    await stack.startBroker();

    await open("Failed Triggers");
    const row = page.locator('tr[data-failed="BROKER_UNAVAILABLE"]');
    await eventually("the broker failure to be listed", async () => {
      await page.getByRole("button", { name: "Refresh" }).click();
      return (await row.count()) === 1;
    });
    // The filter narrows the list to this reason.
    await page.getByLabel("Reason").selectOption("BROKER_UNAVAILABLE");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await eventually("the filtered list", async () => (await page.locator("tr[data-failed]").count()) === 1);
    await row.getByRole("button", { name: /Details/ }).click();
    const dialog = page.getByRole("dialog", { name: "Failed trigger" });
    await dialog.getByRole("button", { name: "Replay", exact: true }).click();
    const eventId = await dialog.getByTestId("event-id").innerText({ timeout: 30_000 });
    const event = await stack.findEvent(eventId);
    assert.equal(event.webhookMessage.payload.event.text, "during the outage");
    await dialog.getByRole("button", { name: "Replay again" }).waitFor();
    assert.match(await dialog.getByTestId("replays").innerText(), /^1 /);
    await ui.assertClean();
    await dialog.getByRole("button", { name: "Close", exact: true }).click();
  });

  it("refuses to delete an active data source and says why", STEP, async () => {
    await open("Data Sources");
    await page.getByRole("button", { name: `Delete ${name}` }).click();
    const dialog = page.getByRole("dialog", { name: `Delete ${name}?` });
    await dialog.getByRole("button", { name: "Delete", exact: true }).click();
    const error = dialog.locator(".error[role=alert]");
    await error.waitFor();
    assert.equal(await error.getAttribute("data-reason"), "TRIGGER_ACTIVE");
    assert.match(await error.innerText(), /Deactivate it in Manage Triggers/);
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await ui.assertClean();
    await ui.screenshots("data-sources");
  });

  it("sets a rate limit and a replay window in Edit, and shows an out-of-range one in words", STEP, async () => {
    await open("Data Sources");
    await page.getByRole("button", { name: `Edit ${name}` }).click();
    const dialog = page.getByRole("dialog", { name: `Edit ${name}` });
    await dialog.getByLabel("Burst").fill("5");
    await dialog.getByLabel("Replay window (seconds)").fill("90000");
    await dialog.getByRole("button", { name: "Save" }).click();
    await dialog.locator('.error[role=alert][data-reason="WEBHOOK_REPLAY_WINDOW_INVALID"]').waitFor();
    await dialog.getByLabel("Rate limit (requests per second, for the whole fleet)").fill("25");
    await dialog.getByLabel("Replay window (seconds)").fill("300");
    await dialog.getByRole("button", { name: "Save" }).click();
    await dialog.waitFor({ state: "detached" });
    const listed = await stack.api.webhooks.listWebhooks({
      app: { organizationId: stack.organizationId, ...app },
    });
    const saved = listed.webhooks.find((w) => w.name === name);
    assert.deepEqual(
      [saved.rateLimitPerSecond, saved.rateLimitBurst, saved.replayWindowSeconds],
      [25, 5, 300],
    );
    await ui.assertClean();
  });

  it("keeps SECRET config params write-only", STEP, async () => {
    await open("Config Params");
    await page.getByLabel("Name", { exact: true }).fill("slackSigning");
    assert.equal(await page.getByLabel("Value").getAttribute("type"), "password");
    await page.getByLabel("Value").fill("super-secret-value-123");
    await page.getByRole("button", { name: "Save param" }).click();
    const row = page.locator('tr[data-param="slackSigning"]');
    await row.waitFor();
    assert.match(await row.innerText(), /hidden \(write-only\)/);
    assert.ok(!(await page.content()).includes("super-secret-value-123"));
    await ui.assertClean();
    await ui.screenshots("config-params");
  });

  it("pages through a list longer than a page", STEP, async () => {
    const big = { organizationId: stack.organizationId, workspaceId: randomUUID(), appId: randomUUID() };
    for (let i = 0; i < 21; i++) {
      await stack.api.webhooks.createWebhook({ app: big, name: `hook-${String(i).padStart(2, "0")}`, provider: Provider.GENERIC });
    }
    await page.evaluate((h) => (location.hash = h), `#/apps/${big.workspaceId}/${big.appId}/data-sources`);
    // A reload ends the session: the console asks to sign in again, then shows the same route.
    await page.reload();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await page.getByLabel("API token").fill(stack.adminToken);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { level: 1, name: "Data Sources" }).waitFor();
    await page.locator('tr[data-webhook="hook-19"]').waitFor();
    assert.equal(await page.locator("tr[data-webhook]").count(), 20);
    await page.getByRole("button", { name: "Next page" }).click();
    await page.locator('tr[data-webhook="hook-20"]').waitFor();
    assert.equal(await page.locator("tr[data-webhook]").count(), 1);
    assert.match(await page.getByRole("navigation", { name: "Data sources pages" }).innerText(), /Page 2/);
    await page.getByRole("button", { name: "Previous page" }).click();
    await page.locator('tr[data-webhook="hook-00"]').waitFor();
    await ui.assertClean();
  });

  it("lists the apps in scope and the connected data planes", STEP, async () => {
    await page.getByRole("navigation", { name: "Screens" }).getByRole("link", { name: "Apps" }).click();
    await page.getByRole("heading", { level: 1, name: "Apps" }).waitFor();
    await page.getByRole("link", { name: app.appId }).waitFor();
    assert.equal(await page.locator("tbody tr").count(), 2);
    await ui.screenshots("apps");
    await page.getByRole("link", { name: "Data Planes" }).click();
    const plane = page.locator('tr[data-plane="console-test-dp"]');
    await plane.waitFor();
    assert.match(await plane.innerText(), /current/);
    await ui.assertClean();
    await ui.screenshots("data-planes");
  });

  it("signs out", STEP, async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await ui.assertClean();
  });
});
