// API errors in words. Every error the control plane returns carries a google.rpc.ErrorInfo with a
// stable reason; the console shows the sentence for that reason, never a raw gRPC code.

import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";

/** Sentences for the control plane's ErrorInfo reasons (docs/control-plane.md#errors). */
const REASONS: Record<string, string> = {
  AUTH_TOKEN_MISSING: "You are not signed in. Sign in with an API token.",
  AUTH_TOKEN_INVALID: "Your session has expired or its token was revoked. Sign in again.",
  API_TOKEN_INVALID: "This API token is not valid: it is unknown, mistyped or revoked.",
  ROLE_FORBIDDEN: "Your token's role does not allow this.",
  SCOPE_FORBIDDEN: "This app is outside your token's organization or workspace.",
  ID_INVALID: "An id is not a valid UUID.",
  APP_REQUIRED: "Choose an app first.",
  PAGE_SIZE_INVALID: "The page size is too large.",
  PAGE_TOKEN_INVALID: "This page is no longer valid. Go back to the first page.",
  TIME_INVALID: "A time filter is not a valid time.",
  WEBHOOK_NAME_INVALID: "The name must be 3–50 characters: letters, digits and [ ] ( ) . _ -",
  WEBHOOK_DESCRIPTION_INVALID: "The description must be at most 500 characters.",
  PROVIDER_REQUIRED: "Choose a provider.",
  CORRELATION_PATH_INVALID: "The correlation key path is not valid (for example a.b or entry[0].id).",
  WEBHOOK_META_SECRETS_REQUIRED: "Meta needs both the verify token and the app secret.",
  WEBHOOK_SECRET_REQUIRED: "This provider needs a signing secret.",
  WEBHOOK_SECRET_INVALID: "The signing secret is not valid for this provider.",
  WEBHOOK_PROVIDER_HAS_NO_SECRET: "The Generic provider has no secret: the API key in the URL authenticates.",
  PLACEHOLDER_INVALID: "A ${configParam.NAME} placeholder is malformed.",
  GRACE_PERIOD_INVALID: "The grace window must be at most 7 days.",
  BINDING_INVALID: "A trigger binding is not valid.",
  BINDING_RESUME_FIELDS_REQUIRED: "A resume binding needs a process correlation key and a process key.",
  CONFIG_PARAM_NAME_INVALID:
    "The name must be 1–100 letters, digits, _ - or ., starting with a letter or _.",
  CONFIG_PARAM_KIND_REQUIRED: "Choose Value or Secret.",
  CONFIG_PARAM_VALUE_INVALID: "The value is too long (at most 64 KiB).",
  API_TOKEN_NAME_INVALID: "The token name must be 1–100 characters.",
  ROLE_REQUIRED: "Choose a role.",
  WEBHOOK_NOT_FOUND: "This data source does not exist (or is outside your scope).",
  CONFIG_PARAM_NOT_FOUND: "A referenced config param does not exist in this app.",
  API_TOKEN_NOT_FOUND: "This API token does not exist.",
  FAILED_TRIGGER_NOT_FOUND: "This failed trigger no longer exists (it may have expired).",
  WEBHOOK_NAME_TAKEN: "Another data source in this app already has this name.",
  WEBHOOK_PROVIDER_IMMUTABLE: "The provider cannot change. Create a new data source instead.",
  TRIGGER_ACTIVE:
    "This trigger is active. Deactivate it in Manage Triggers before deleting it, and remove its URL from the systems that call it.",
  TRIGGER_NOT_BOUND:
    "This data source is not connected to any process node yet. Commit a process version that uses it first.",
  CONFIG_PARAM_IN_USE: "A provider secret references this param. Change that secret first.",
  WEBHOOK_CORRELATION_PATH_REQUIRED: "Resume triggers need a correlation key path on the data source.",
  REPLAY_NOT_CONFIGURED: "Replay is not available: the control plane has no Kafka connection configured.",
  FAILED_TRIGGER_NOT_REPLAYABLE: "The payload of this request was not kept whole, so it cannot be replayed.",
  FAILED_TRIGGER_UNVERIFIED:
    "This request was refused before its sender was verified (API key, signature or handshake), so it is never replayed.",
  FAILED_TRIGGER_ALREADY_REPLAYED: "This request was replayed before. Use Replay again to publish it once more.",
  TRIGGER_NOT_ACTIVE: "The trigger is deactivated. Activate it before replaying.",
  INVALID_JSON: "The stored payload is not valid JSON for this data source.",
  CORRELATION_KEY_UNRESOLVED: "The payload has no value at the data source's correlation key path.",
  BROKER_UNAVAILABLE: "Kafka did not acknowledge the event in time. Nothing was changed; try again.",
  DATABASE_UNAVAILABLE: "The control plane's database is unavailable. Try again shortly.",
  INTERNAL: "The control plane hit an internal error (details are in its log).",
  // Outbound actions.
  ACTION_NAME_TAKEN: "Another action in this app already has this name.",
  ACTION_INVALID: "The action's name, description or URL is not valid.",
  ACTION_URL_FORBIDDEN: "This URL is not allowed for an action server.",
  ACTION_VALIDATION_FAILED: "The action server's answer did not validate.",
  INVALID_JSON_SCHEMA: "The schema is not a valid JSON Schema.",
  HMAC_KEY_MISSING: "The app has no active HMAC key. Create one first.",
  ACTION_NOT_FOUND: "This action does not exist (or is outside your scope).",
  HMAC_KEY_NOT_FOUND: "This HMAC key does not exist.",
  WEBHOOK_RATE_LIMIT_INVALID: "The rate limit or burst is out of range (a burst needs a rate).",
  WEBHOOK_REPLAY_WINDOW_INVALID: "The replay window must be between 0 and 86400 seconds.",
  CONFIG_PARAM_NOT_SECRET:
    "Provider secrets may only use SECRET params, and a SECRET param a provider secret uses cannot become a VALUE.",
  TOKEN_REVOKED: "Your API token was revoked. Sign in with another one.",
  TOKEN_EXPIRED: "Your session expired. Sign in again.",
};

/** Sentences for the data plane's reason codes, as Failed Triggers lists them. */
export const FAILURE_REASONS: Record<string, string> = {
  API_KEY_MISSING: "No API key in the URL",
  API_KEY_INVALID: "Wrong or expired API key",
  PAYLOAD_TOO_LARGE: "Body over the size limit",
  BODY_TIMEOUT: "Body did not arrive in time",
  BODY_READ_FAILED: "Body could not be read",
  METHOD_NOT_ALLOWED: "HTTP method not allowed",
  SIGNATURE_INVALID: "Provider signature invalid",
  VERIFICATION_FAILED: "Verification handshake refused",
  INVALID_JSON: "Body is not valid JSON",
  CORRELATION_KEY_UNRESOLVED: "Correlation key not found in the body",
  BROKER_UNAVAILABLE: "Kafka did not acknowledge",
  INTERNAL: "Internal error",
};

export function failureReason(code: string): string {
  return FAILURE_REASONS[code] ?? code.toLowerCase().replace(/_/g, " ");
}

/** An error as the console shows it. */
export interface Shown {
  /** The sentence. */
  text: string;
  /** The ErrorInfo reason (for data-reason, tests and support), or a console-side label. */
  reason: string;
  /** Extra detail from the ErrorInfo metadata (`field`, `param`, …). */
  metadata: Record<string, string>;
}

/**
 * Reasons whose message says exactly why (the action server's answer, the address refused, the
 * schema keyword): the console shows that message after the sentence.
 */
const DETAILED = new Set([
  "ACTION_VALIDATION_FAILED",
  "ACTION_URL_FORBIDDEN",
  "INVALID_JSON_SCHEMA",
  "CONFIG_PARAM_NOT_SECRET",
  "WEBHOOK_RATE_LIMIT_INVALID",
  "FAILED_TRIGGER_UNVERIFIED",
]);

export function describe(err: unknown): Shown {
  const e = ConnectError.from(err);
  const info = e.findDetails(ErrorInfoSchema)[0];
  if (info) {
    const sentence = REASONS[info.reason];
    const text = !sentence
      ? e.rawMessage || "The request failed."
      : DETAILED.has(info.reason) && e.rawMessage
        ? `${sentence} ${e.rawMessage.charAt(0).toUpperCase()}${e.rawMessage.slice(1)}.`
        : sentence;
    return { text, reason: info.reason, metadata: { ...info.metadata } };
  }
  // No ErrorInfo: the call never reached the API (network, proxy, server down).
  switch (e.code) {
    case Code.Unavailable:
    case Code.Unknown:
    case Code.Internal:
      return {
        text: "The control plane cannot be reached. Check your connection and try again.",
        reason: "UNREACHABLE",
        metadata: {},
      };
    case Code.Unimplemented:
      return {
        text: "This control plane does not offer this feature yet.",
        reason: "UNIMPLEMENTED",
        metadata: {},
      };
    case Code.DeadlineExceeded:
      return { text: "The control plane did not answer in time. Try again.", reason: "TIMEOUT", metadata: {} };
    default:
      return { text: e.rawMessage || "The request failed.", reason: "UNKNOWN", metadata: {} };
  }
}

/** Whether the error means the session is over (expired or revoked JWT). */
export function isSessionOver(err: unknown): boolean {
  const e = ConnectError.from(err);
  const info = e.findDetails(ErrorInfoSchema)[0];
  return info?.reason === "AUTH_TOKEN_INVALID" || info?.reason === "AUTH_TOKEN_MISSING";
}
