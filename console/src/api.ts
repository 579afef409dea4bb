// The control plane's public gRPC API over grpc-web, from the origin that served the console.
// The bearer JWT lives in this module's memory only: never in a URL, a cookie, localStorage or
// sessionStorage. Reloading the page signs out.

import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

import { AuthService } from "./gen/webhook/gateway/v1/auth_pb.js";
import { AppService } from "./gen/webhook/gateway/v1/apps_pb.js";
import { WebhookService } from "./gen/webhook/gateway/v1/webhooks_pb.js";
import { TriggerService } from "./gen/webhook/gateway/v1/triggers_pb.js";
import { ConfigParamService } from "./gen/webhook/gateway/v1/config_params_pb.js";
import { ConfigDistributionService } from "./gen/webhook/gateway/v1/config_distribution_pb.js";
import { ActionService } from "./gen/webhook/gateway/v1/actions_pb.js";
import { create } from "@bufbuild/protobuf";
import { AppRefSchema, type AppRef } from "./gen/webhook/gateway/v1/tenancy_pb.js";

/** What the JWT says about the signed-in token (its claims; the server checks them on every call). */
export interface Identity {
  tokenId: string;
  organizationId: string;
  /** Empty for an organization-wide token. */
  workspaceId: string;
  role: string;
  expiresAt: Date;
}

let jwt: string | null = null;
let identity: Identity | null = null;
const listeners = new Set<() => void>();

function notify() {
  for (const l of listeners) l();
}

/** Calls `listener` whenever the session changes (sign in, sign out, expiry). */
export function onSessionChange(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function currentIdentity(): Identity | null {
  return identity;
}

function decodeClaims(token: string): Identity {
  const part = token.split(".")[1] ?? "";
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
  const claims = JSON.parse(json) as { sub: string; org: string; ws?: string; role: string; exp: number };
  return {
    tokenId: claims.sub,
    organizationId: claims.org,
    workspaceId: claims.ws ?? "",
    role: claims.role,
    expiresAt: new Date(claims.exp * 1000),
  };
}

const withBearer: Interceptor = (next) => async (req) => {
  if (jwt) req.header.set("authorization", `Bearer ${jwt}`);
  return next(req);
};

const transport = createGrpcWebTransport({
  baseUrl: window.location.origin,
  interceptors: [withBearer],
});

export const auth: Client<typeof AuthService> = createClient(AuthService, transport);
export const apps: Client<typeof AppService> = createClient(AppService, transport);
export const webhooks: Client<typeof WebhookService> = createClient(WebhookService, transport);
export const triggers: Client<typeof TriggerService> = createClient(TriggerService, transport);
export const params: Client<typeof ConfigParamService> = createClient(ConfigParamService, transport);
export const actions: Client<typeof ActionService> = createClient(ActionService, transport);
export const distribution: Client<typeof ConfigDistributionService> = createClient(
  ConfigDistributionService,
  transport,
);

/** Exchanges an API token for a JWT and keeps the JWT in memory. */
export async function signIn(apiToken: string): Promise<Identity> {
  const res = await auth.exchangeToken({ apiToken: apiToken.trim() });
  const who = decodeClaims(res.jwtToken);
  jwt = res.jwtToken;
  identity = who;
  notify();
  return who;
}

export function signOut() {
  jwt = null;
  identity = null;
  notify();
}

/** The app reference for calls, with the signed-in organization. */
export function appRef(workspaceId: string, appId: string): AppRef {
  return create(AppRefSchema, { organizationId: identity?.organizationId ?? "", workspaceId, appId });
}

/** Page size of every list. */
export const PAGE_SIZE = 20;
