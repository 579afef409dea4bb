//! Event ids (docs/data-plane.md, "Event ids"): derived from the provider's delivery id where there is one, so every retry
//! of one delivery carries one event id and consumers can de-duplicate; otherwise a fresh UUIDv7.
//!
//! The derived id is the UUIDv5 of `"{PROVIDER}:{delivery id}"` in the namespace of the webhook's
//! id: a UUID like the others, stable across data planes and restarts, and two webhooks never share
//! one. Delivery ids by provider:
//! - GITHUB `X-GitHub-Delivery`; SHOPIFY `X-Shopify-Webhook-Id`; STANDARD_WEBHOOKS `webhook-id`
//!   (`svix-id` for Svix senders); STRIPE the event's top-level `id` (`evt_…`); SLACK the Events API
//!   `event_id` (slash commands and interactivity carry none).
//! - META sends no delivery id, and an entry's `id` names the page or business account, not the
//!   delivery: keying on it would merge distinct events. Only a WhatsApp delivery of exactly one
//!   entry, one change and one message (and no statuses) has one: the message's `wamid`.
//! - GENERIC: the sender's `Idempotency-Key` header, if it sends one.
//!
//! A delivery id is used only if it is 1–255 visible ASCII characters; anything else is ignored.

use std::borrow::Cow;

use gateway_shared::envelope::Payload;
use gateway_shared::Provider;
use http::HeaderMap;
use serde_json::Value;
use uuid::Uuid;

use super::{github, shopify, standard_webhooks};
use crate::routing::Route;

/// Header a GENERIC sender may set to make its retries one event.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// Longest delivery id taken.
const MAX_LEN: usize = 255;

/// The event id of an accepted request (`payload` is the decoded body).
pub fn event_id(route: &Route, headers: &HeaderMap, payload: &Payload<'_>) -> Uuid {
    match delivery_id(route.provider, headers, payload) {
        Some(id) => {
            let name = format!("{}:{id}", route.provider.as_str());
            Uuid::new_v5(&route.key.webhook_id.0, name.as_bytes())
        }
        None => Uuid::now_v7(),
    }
}

/// The provider's id of this delivery, if it has a usable one.
/// Ids inside the payload are read without building a tree, except Meta's nested one.
pub fn delivery_id<'a>(
    provider: Provider,
    headers: &'a HeaderMap,
    payload: &Payload<'_>,
) -> Option<Cow<'a, str>> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(Cow::Borrowed)
    };
    let id = match provider {
        Provider::Generic => header(IDEMPOTENCY_KEY_HEADER),
        Provider::Slack => payload.top_level_str("event_id").map(Cow::Owned),
        Provider::Meta => {
            whatsapp_message_id(&payload.to_value()).map(|id| Cow::Owned(id.to_owned()))
        }
        Provider::Github => header(github::DELIVERY_HEADER),
        Provider::Stripe => payload.top_level_str("id").map(Cow::Owned),
        Provider::StandardWebhooks => standard_webhooks::message_id(headers).map(Cow::Borrowed),
        Provider::Shopify => header(shopify::WEBHOOK_ID_HEADER),
    }?;
    let plain = !id.is_empty() && id.len() <= MAX_LEN && id.bytes().all(|b| b.is_ascii_graphic());
    plain.then_some(id)
}

/// `entry[0].changes[0].value.messages[0].id` when that is the only thing the delivery carries.
fn whatsapp_message_id(payload: &Value) -> Option<&str> {
    let [entry] = payload.get("entry")?.as_array()?.as_slice() else {
        return None;
    };
    let [change] = entry.get("changes")?.as_array()?.as_slice() else {
        return None;
    };
    let value = change.get("value")?;
    if value.get("statuses").is_some() {
        return None;
    }
    let [message] = value.get("messages")?.as_array()?.as_slice() else {
        return None;
    };
    message.get("id")?.as_str()
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use serde_json::json;

    use super::*;

    fn tree(v: Value) -> Payload<'static> {
        Payload::Tree(v)
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn each_provider_names_its_delivery_id() {
        let none = tree(json!({}));
        let gh = headers(&[("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")]);
        assert_eq!(
            delivery_id(Provider::Github, &gh, &none).as_deref(),
            Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
        );
        let sw = headers(&[("webhook-id", "msg_1"), ("svix-id", "msg_2")]);
        assert_eq!(
            delivery_id(Provider::StandardWebhooks, &sw, &none).as_deref(),
            Some("msg_1")
        );
        let svix = headers(&[("svix-id", "msg_2")]);
        assert_eq!(
            delivery_id(Provider::StandardWebhooks, &svix, &none).as_deref(),
            Some("msg_2")
        );
        let shop = headers(&[(
            "x-shopify-webhook-id",
            "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        )]);
        assert_eq!(
            delivery_id(Provider::Shopify, &shop, &none).as_deref(),
            Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
        );
        let stripe = tree(json!({"id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "object": "event"}));
        assert_eq!(
            delivery_id(Provider::Stripe, &HeaderMap::new(), &stripe).as_deref(),
            Some("evt_1NG8Du2eZvKYlo2CUI79vXWy")
        );
        let slack = tree(json!({"type": "event_callback", "event_id": "Ev08MFMKH6"}));
        assert_eq!(
            delivery_id(Provider::Slack, &HeaderMap::new(), &slack).as_deref(),
            Some("Ev08MFMKH6")
        );
        let generic = headers(&[("idempotency-key", "order-17-paid")]);
        assert_eq!(
            delivery_id(Provider::Generic, &generic, &none).as_deref(),
            Some("order-17-paid")
        );
        for p in [
            Provider::Generic,
            Provider::Github,
            Provider::Stripe,
            Provider::Slack,
        ] {
            assert_eq!(
                delivery_id(p, &HeaderMap::new(), &none).as_deref(),
                None,
                "{p:?}"
            );
        }
    }

    #[test]
    fn meta_has_one_only_for_a_single_whatsapp_message() {
        let msg = |id: &str| json!({"from": "40712345678", "id": id, "text": {"body": "hi"}});
        let one = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [
            {"field": "messages", "value": {"messages": [msg("wamid.HBgL")]}}]}]});
        assert_eq!(
            delivery_id(Provider::Meta, &HeaderMap::new(), &tree(one)).as_deref(),
            Some("wamid.HBgL")
        );
        let two = json!({"entry": [{"id": "WABA", "changes": [
            {"value": {"messages": [msg("wamid.A"), msg("wamid.B")]}}]}]});
        let statuses = json!({"entry": [{"id": "WABA", "changes": [
            {"value": {"messages": [msg("wamid.A")], "statuses": [{"id": "wamid.A", "status": "read"}]}}]}]});
        let entries = json!({"entry": [{"id": "P1", "changes": []}, {"id": "P2", "changes": []}]});
        let page = json!({"object": "page", "entry": [{"id": "P1", "time": 1, "messaging": []}]});
        for p in [two, statuses, entries, page] {
            assert_eq!(
                delivery_id(Provider::Meta, &HeaderMap::new(), &tree(p.clone())).as_deref(),
                None,
                "{p}"
            );
        }
    }

    #[test]
    fn odd_ids_are_ignored() {
        let long = "x".repeat(MAX_LEN + 1);
        for bad in [
            json!({"id": ""}),
            json!({"id": long}),
            json!({"id": "a b"}),
            json!({"id": 7}),
        ] {
            assert_eq!(
                delivery_id(Provider::Stripe, &HeaderMap::new(), &tree(bad.clone())).as_deref(),
                None,
                "{bad}"
            );
        }
        assert_eq!(
            delivery_id(
                Provider::Stripe,
                &HeaderMap::new(),
                &tree(json!({"id": "x".repeat(MAX_LEN)}))
            )
            .as_deref(),
            Some("x".repeat(MAX_LEN).as_str())
        );
    }
}
