// The real services the browser tests drive: Postgres (DATABASE_URL, or a throwaway cluster from
// deploy/services.sh), a dedicated tansu broker with sqlite storage on a fixed port (so a test can
// stop it and start it again), the control plane serving the built console, and one data plane fed
// by the config stream. Everything stops when the test process exits.

import { spawn, execFile } from "node:child_process";
import { chmodSync, mkdtempSync, openSync, readFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { randomBytes, randomUUID, createHmac } from "node:crypto";

import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Kafka, logLevel } from "kafkajs";

import { AuthService } from "../src/gen/webhook/gateway/v1/auth_pb.js";
import { AdminService } from "../src/gen/webhook/gateway/v1/admin_pb.js";
import { WebhookService } from "../src/gen/webhook/gateway/v1/webhooks_pb.js";
import { TriggerService } from "../src/gen/webhook/gateway/v1/triggers_pb.js";
import { ConfigParamService } from "../src/gen/webhook/gateway/v1/config_params_pb.js";
import { Role } from "../src/gen/webhook/gateway/v1/admin_pb.js";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, "../..");
const services = join(repo, "deploy/services.sh");
const targetDir = process.env.CARGO_TARGET_DIR ?? join(process.env.HOME ?? "/root", ".cache/webhook-gateway/target");
const bin = (name) => join(targetDir, "debug", name);
export const TOPIC = "webhook-gateway.events";

/** Polls `check` until it returns a truthy value or `ms` pass; the last error explains a failure. */
export async function eventually(what, check, ms = 20000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message ?? last}` : ""}`);
}

function kv(text) {
  return Object.fromEntries(
    text
      .trim()
      .split("\n")
      .map((l) => l.split(/=(.*)/s).slice(0, 2)),
  );
}

async function freePort() {
  const { stdout } = await run("bash", [services, "free-port"]);
  return Number(stdout.trim());
}

async function httpOk(url) {
  const res = await fetch(url).catch(() => null);
  return res?.ok ?? false;
}

function tail(file, lines = 30) {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

const token = () => `gwt_${randomBytes(32).toString("base64url")}`;

export class Stack {
  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), "console-test-"));
    // Postgres runs as the `postgres` user when we are root: it must reach its folder in here.
    chmodSync(this.dir, 0o755);
    this.children = [];
  }

  /**
   * Starts everything; throws (with log tails) when a service cannot be had. `controlPlaneEnv` adds
   * settings of the control plane.
   */
  async start(controlPlaneEnv = {}) {
    for (const b of ["control-plane", "data-plane"]) {
      if (!existsSync(bin(b))) throw new Error(`${bin(b)} is missing: run cargo build -p control-plane -p data-plane`);
    }
    const consoleDir = join(repo, "console/dist");
    if (!existsSync(join(consoleDir, "index.html"))) throw new Error("console/dist is missing: run npm run build in console/");
    if (process.env.DATABASE_URL) {
      this.databaseUrl = process.env.DATABASE_URL;
    } else {
      this.ownPostgres = join(this.dir, "pg");
      const { stdout } = await run("bash", [services, "postgres", this.ownPostgres, String(process.pid)]);
      this.databaseUrl = kv(stdout).DATABASE_URL;
    }
    // A fresh database per stack.
    const db = `console_${randomBytes(6).toString("hex")}`;
    await this.psql(`CREATE DATABASE ${db}`);
    this.databaseUrl = this.databaseUrl.replace(/\/[^/]*$/, `/${db}`);

    this.kafkaPort = await freePort();
    await this.startBroker();
    const tansu = (await run("bash", [services, "tansu-bin"])).stdout.trim();
    await run(tansu, ["topic", "create", TOPIC, "--broker", `tcp://${this.kafka}`, "--partitions", "1"]);

    this.organizationId = randomUUID();
    this.adminToken = token();
    const cpPort = await freePort();
    const cpAdmin = await freePort();
    const dpPort = await freePort();
    const dpAdmin = await freePort();
    this.grpc = `http://127.0.0.1:${cpPort}`;
    this.consoleUrl = `${this.grpc}/`;
    this.dataPlaneUrl = `http://127.0.0.1:${dpPort}`;
    await run(bin("control-plane"), ["migrate", "--database-url", this.databaseUrl]);
    this.spawn("control-plane", bin("control-plane"), ["serve"], {
      DATABASE_URL: this.databaseUrl,
      CP_LISTEN: `127.0.0.1:${cpPort}`,
      CP_METRICS_LISTEN: `127.0.0.1:${cpAdmin}`,
      CP_MASTER_KEYS: `k1=${randomBytes(32).toString("base64")}`,
      CP_JWT_SIGNING_KEY: randomBytes(48).toString("base64url"),
      CP_PUBLIC_BASE_URL: this.dataPlaneUrl,
      CP_BOOTSTRAP_TOKEN: this.adminToken,
      CP_BOOTSTRAP_ORGANIZATION_ID: this.organizationId,
      CP_KAFKA_BOOTSTRAP: this.kafka,
      CP_KAFKA_TOPIC: TOPIC,
      CP_KAFKA_PRODUCE_TIMEOUT: "3s",
      CP_CONSOLE_DIR: consoleDir,
      ...controlPlaneEnv,
    });
    await eventually("the control plane's /healthz", () => httpOk(`http://127.0.0.1:${cpAdmin}/healthz`), 30000).catch(
      (e) => this.fail(e, "control-plane"),
    );

    const transport = createGrpcTransport({ baseUrl: this.grpc });
    const authClient = createClient(AuthService, transport);
    const { jwtToken } = await authClient.exchangeToken({ apiToken: this.adminToken });
    const bearer = (next) => async (req) => {
      req.header.set("authorization", `Bearer ${jwtToken}`);
      return next(req);
    };
    const authed = createGrpcTransport({ baseUrl: this.grpc, interceptors: [bearer] });
    this.api = {
      admin: createClient(AdminService, authed),
      webhooks: createClient(WebhookService, authed),
      triggers: createClient(TriggerService, authed),
      params: createClient(ConfigParamService, authed),
    };
    const dp = await this.api.admin.createApiToken({
      organizationId: this.organizationId,
      role: Role.DATA_PLANE,
      name: "console test data plane",
    });
    this.spawn("data-plane", bin("data-plane"), [], {
      DP_LISTEN: `127.0.0.1:${dpPort}`,
      DP_ADMIN_LISTEN: `127.0.0.1:${dpAdmin}`,
      DP_KAFKA_BOOTSTRAP: this.kafka,
      DP_KAFKA_TOPIC: TOPIC,
      DP_PRODUCE_TIMEOUT: "2s",
      DP_CONTROL_PLANE_URL: this.grpc,
      DP_CONTROL_PLANE_TOKEN: dp.apiToken,
      DP_ID: "console-test-dp",
    });
    await eventually("the data plane's /readyz", () => httpOk(`http://127.0.0.1:${dpAdmin}/readyz`), 60000).catch((e) =>
      this.fail(e, "data-plane"),
    );
    this.kafkaClient = new Kafka({ clientId: "console-test", brokers: [this.kafka], logLevel: logLevel.NOTHING });
    return this;
  }

  fail(error, name) {
    throw new Error(`${error.message}\n--- ${name} log ---\n${tail(join(this.dir, `${name}.log`))}`);
  }

  async psql(sql) {
    const url = new URL(this.databaseUrl);
    await run("psql", ["-h", url.hostname, "-p", url.port, "-U", url.username || "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql]);
  }

  spawn(name, file, args, env) {
    const log = openSync(join(this.dir, `${name}.log`), "a");
    const child = spawn(file, args, {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, RUST_LOG: "info", ...env },
      stdio: ["ignore", log, log],
    });
    this.children.push(child);
    return child;
  }

  get kafka() {
    return `127.0.0.1:${this.kafkaPort}`;
  }

  /** Starts (or restarts) the dedicated broker on its fixed port; its sqlite file keeps the topic. */
  async startBroker() {
    const { stdout } = await run("bash", [services, "tansu", join(this.dir, "tansu"), "sqlite", String(process.pid), String(this.kafkaPort)]);
    this.tansuPid = Number(kv(stdout).TANSU_PID);
  }

  /** Stops the broker and waits until its port is closed. */
  async stopBroker() {
    process.kill(this.tansuPid, "SIGTERM");
    await eventually("the broker to stop", async () => {
      try {
        process.kill(this.tansuPid, 0);
        return false;
      } catch {
        return true;
      }
    });
  }

  /** An app of this organization with fresh ids. */
  newApp() {
    return { organizationId: this.organizationId, workspaceId: randomUUID(), appId: randomUUID() };
  }

  /**
   * Waits until a record whose envelope has `eventId` is in the topic; returns the envelope.
   * Reads the topic from the start with a fresh consumer group.
   */
  async findEvent(eventId, ms = 30000) {
    const consumer = this.kafkaClient.consumer({ groupId: `console-test-${randomUUID()}` });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
      let found = null;
      await consumer.run({
        eachMessage: async ({ message }) => {
          try {
            const env = JSON.parse(message.value?.toString() ?? "");
            if (env.eventId === eventId) found = env;
          } catch {
            // Not an envelope: not ours.
          }
        },
      });
      return await eventually(`event ${eventId} in ${TOPIC}`, () => found, ms);
    } finally {
      await consumer.disconnect();
    }
  }

  /** POSTs `body` to a Slack webhook URL, signed with `secret` (v0 HMAC-SHA256 of v0:ts:body). */
  async postSlack(url, body, secret) {
    const ts = String(Math.floor(Date.now() / 1000));
    const sig = `v0=${createHmac("sha256", secret).update(`v0:${ts}:${body}`).digest("hex")}`;
    return fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", "x-slack-request-timestamp": ts, "x-slack-signature": sig },
      body,
    });
  }

  async stop() {
    for (const c of this.children) c.kill("SIGTERM");
    await Promise.all(
      this.children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once("exit", r)) : null)),
    );
    if (this.tansuPid) {
      try {
        await this.stopBroker();
      } catch {
        // Already stopped.
      }
    }
    // The Postgres cluster this stack started (the watchdog would stop it too once this process
    // ends, but a test runner that kills its whole process group takes the watchdog with it).
    if (this.ownPostgres) await run("bash", [services, "stop-postgres", this.ownPostgres]);
    if (process.env.KEEP_TEST_LOGS) {
      console.error(`test logs kept in ${this.dir}`);
    } else {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
