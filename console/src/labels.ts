// Names people read for the API's enums.

import { Provider, TriggerState, TriggerType } from "./gen/webhook/gateway/v1/common_pb.js";

export const PROVIDERS: [Provider, string][] = [
  [Provider.GENERIC, "Generic"],
  [Provider.SLACK, "Slack"],
  [Provider.META, "Meta (WhatsApp, Messenger, Instagram)"],
  [Provider.GITHUB, "GitHub"],
  [Provider.STRIPE, "Stripe"],
  [Provider.STANDARD_WEBHOOKS, "Standard Webhooks / Svix"],
  [Provider.SHOPIFY, "Shopify"],
];

export function providerName(p: Provider): string {
  return PROVIDERS.find(([v]) => v === p)?.[1] ?? "Unknown";
}

export function stateName(s: TriggerState): string {
  return s === TriggerState.ACTIVE ? "Active" : "Deactivated";
}

export function triggerTypeName(t: TriggerType): string {
  return t === TriggerType.RESUME_PROCESS ? "Webhook (resume process)" : "Webhook (start process)";
}

/** The secret fields a provider needs (none for Generic). */
export interface SecretField {
  key: "signingSecret" | "verifyToken" | "appSecret";
  label: string;
  hint: string;
}

export function secretFields(p: Provider): SecretField[] {
  switch (p) {
    case Provider.GENERIC:
    case Provider.PROVIDER_UNSPECIFIED:
      return [];
    case Provider.META:
      return [
        { key: "verifyToken", label: "Verify token", hint: "Any string; the same value goes in the Meta App's webhook settings." },
        { key: "appSecret", label: "App secret", hint: "The Meta App secret that signs X-Hub-Signature-256." },
      ];
    case Provider.STANDARD_WEBHOOKS:
      return [{ key: "signingSecret", label: "Signing secret", hint: "The whsec_… secret of the endpoint." }];
    case Provider.STRIPE:
      return [{ key: "signingSecret", label: "Endpoint secret", hint: "The endpoint's whsec_… signing secret." }];
    case Provider.SLACK:
      return [{ key: "signingSecret", label: "Signing secret", hint: "Slack app → Basic Information → Signing Secret." }];
    default:
      return [{ key: "signingSecret", label: "Signing secret", hint: "The provider's webhook signing secret." }];
  }
}

/** The data source name rule (3–50 of ASCII letters, digits and [ ] ( ) . _ -), as a message or "". */
export function nameProblem(name: string): string {
  if (name.length < 3) return "At least 3 characters.";
  if (name.length > 50) return "At most 50 characters.";
  if (!/^[A-Za-z0-9[\]().\-_]+$/.test(name)) return "Only letters, digits and [ ] ( ) . _ - are allowed.";
  return "";
}
