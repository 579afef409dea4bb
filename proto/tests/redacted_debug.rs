//! Every generated message that carries a secret prints it as `[redacted]` in `{:?}`, also when it
//! is nested in another message; the fields that identify it stay visible.

use gateway_proto::v1 as pb;

const SECRET: &str = "s3cr3t-text-never-printed";

#[track_caller]
fn redacted(what: &str, debug: String, visible: &[&str]) {
    assert!(!debug.contains(SECRET), "{what} prints its secret: {debug}");
    assert!(debug.contains("[redacted]"), "{what}: {debug}");
    for v in visible {
        assert!(debug.contains(v), "{what} hides {v}: {debug}");
    }
}

fn route() -> pb::WebhookRoute {
    pb::WebhookRoute {
        webhook_id: "wh-1".into(),
        signing_secrets: vec![pb::SigningSecret {
            value: SECRET.into(),
            not_after_unix: Some(17),
        }],
        verify_token: Some(SECRET.into()),
        ..Default::default()
    }
}

fn hmac_route() -> pb::HmacKeyRoute {
    pb::HmacKeyRoute {
        key_id: "key-1".into(),
        value: SECRET.into(),
        ..Default::default()
    }
}

fn provider_secret() -> pb::SetProviderSecretRequest {
    pb::SetProviderSecretRequest {
        webhook_id: "wh-2".into(),
        signing_secret: SECRET.into(),
        verify_token: SECRET.into(),
        app_secret: SECRET.into(),
        previous_secret_grace_seconds: 60,
    }
}

#[test]
fn messages_with_secrets_print_them_redacted() {
    redacted(
        "SetProviderSecretRequest",
        format!("{:?}", provider_secret()),
        &["wh-2", "60"],
    );
    redacted(
        "CreateWebhookRequest",
        format!(
            "{:?}",
            pb::CreateWebhookRequest {
                name: "orders".into(),
                provider_secret: Some(provider_secret()),
                ..Default::default()
            }
        ),
        &["orders"],
    );
    redacted(
        "GetWebhookUrlResponse",
        format!(
            "{:?}",
            pb::GetWebhookUrlResponse {
                url: format!("https://hooks.example/webhooks/incoming/x?flowxApiKey={SECRET}"),
                api_key: SECRET.into(),
                previous_key_not_after: None,
            }
        ),
        &[],
    );
    redacted(
        "ExchangeTokenRequest",
        format!(
            "{:?}",
            pb::ExchangeTokenRequest {
                api_token: SECRET.into()
            }
        ),
        &[],
    );
    redacted(
        "ExchangeTokenResponse",
        format!(
            "{:?}",
            pb::ExchangeTokenResponse {
                jwt_token: SECRET.into(),
                token_type: "Bearer".into(),
                expires_in: 86_400,
            }
        ),
        &["Bearer", "86400"],
    );
    redacted(
        "CreateApiTokenResponse",
        format!(
            "{:?}",
            pb::CreateApiTokenResponse {
                token: Some(pb::ApiToken {
                    id: "tok-1".into(),
                    ..Default::default()
                }),
                api_token: SECRET.into(),
            }
        ),
        &["tok-1"],
    );
    redacted(
        "CreateHmacKeyResponse",
        format!(
            "{:?}",
            pb::CreateHmacKeyResponse {
                key: Some(pb::HmacKey {
                    id: "key-2".into(),
                    ..Default::default()
                }),
                value: SECRET.into(),
            }
        ),
        &["key-2"],
    );
    redacted("HmacKeyRoute", format!("{:?}", hmac_route()), &["key-1"]);
    redacted(
        "SigningSecret",
        format!("{:?}", route().signing_secrets[0]),
        &["17"],
    );
    redacted("WebhookRoute", format!("{:?}", route()), &["wh-1"]);
    redacted(
        "SnapshotChunk",
        format!(
            "{:?}",
            pb::SnapshotChunk {
                webhooks: vec![route()],
                hmac_keys: vec![hmac_route()],
                ..Default::default()
            }
        ),
        &["wh-1", "key-1"],
    );
    redacted(
        "Delta",
        format!(
            "{:?}",
            pb::Delta {
                upserts: vec![route()],
                hmac_key_upserts: vec![hmac_route()],
                ..Default::default()
            }
        ),
        &["wh-1", "key-1"],
    );
    redacted(
        "SetConfigParamRequest (SECRET)",
        format!(
            "{:?}",
            pb::SetConfigParamRequest {
                name: "slackSigning".into(),
                kind: pb::ConfigParamKind::Secret as i32,
                value: SECRET.into(),
                ..Default::default()
            }
        ),
        &["slackSigning"],
    );
}

#[test]
fn plain_values_and_empty_secrets_stay_readable() {
    let plain = format!(
        "{:?}",
        pb::SetConfigParamRequest {
            name: "region".into(),
            kind: pb::ConfigParamKind::Value as i32,
            value: "eu-west-1".into(),
            ..Default::default()
        }
    );
    assert!(
        plain.contains("eu-west-1"),
        "a VALUE param is not secret: {plain}"
    );
    let empty = format!("{:?}", pb::ExchangeTokenRequest::default());
    assert!(
        !empty.contains("[redacted]"),
        "an empty field shows as empty: {empty}"
    );
}
