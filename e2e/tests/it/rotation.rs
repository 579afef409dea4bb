//! Rotations through the real control plane: `SetProviderSecret` with a grace window keeps
//! the previous signing secret valid until it ends, and `ResetApiKey` with a grace period does the
//! same for the old API key; afterwards only the new value works.

use gateway_proto::v1 as pb;
use uuid::Uuid;

use crate::support::{app, sample, with_key, Api, ControlPlane, DataPlane, BOOTSTRAP_TOKEN, WAIT};

/// Grace window of both rotations: long enough that the old value is still inside it once the
/// change has reached the data plane on a busy machine, short enough to wait out.
const GRACE_SECONDS: u32 = 4;
const BODY: &str = r#"{"action":"opened"}"#;

#[tokio::test(flavor = "multi_thread")]
async fn secret_and_api_key_rotations_keep_the_old_value_for_their_grace_window() {
    let db = gateway_testkit::fresh_database().await;
    let topic = gateway_testkit::unique_topic("e2e-rotation").await;
    let org = Uuid::new_v4();
    let cp = ControlPlane::start(&db.url, org).await;
    let api = Api::login(cp.channel().await, BOOTSTRAP_TOKEN).await;
    let dp_token = api.data_plane_token(org).await;
    let dp = DataPlane::start(&cp.url(), &dp_token, &topic, &[]).await;
    gateway_testkit::eventually("data plane ready", WAIT, || async {
        dp.ready().await.then_some(())
    })
    .await;
    let (id, url) = api
        .active_webhook(
            &app(org),
            "github-rotation",
            pb::Provider::Github,
            "gh-secret-one",
        )
        .await;
    dp.eventually_github("the GitHub webhook is served", &url, "gh-secret-one", 200)
        .await;

    // Signing secret: both work inside the window, only the new one after it.
    api.webhooks()
        .set_provider_secret(api.req(pb::SetProviderSecretRequest {
            webhook_id: id.clone(),
            signing_secret: "gh-secret-two".into(),
            previous_secret_grace_seconds: GRACE_SECONDS,
            ..Default::default()
        }))
        .await
        .expect("rotate the secret");
    dp.eventually_github("the new secret accepted", &url, "gh-secret-two", 200)
        .await;
    assert_eq!(
        dp.post_github(&url, "gh-secret-one", BODY).await,
        200,
        "the previous secret still works inside its window"
    );
    dp.eventually_github(
        "the previous secret refused after its window",
        &url,
        "gh-secret-one",
        401,
    )
    .await;
    assert_eq!(dp.post_github(&url, "gh-secret-two", BODY).await, 200);
    let metrics = dp.metrics_text().await;
    for slot in ["current", "previous"] {
        let line = format!(
            r#"webhook_gateway_signature_matches_total{{provider="github",secret="{slot}"}}"#
        );
        assert!(
            sample(&metrics, &line).is_some_and(|n| n >= 1.0),
            "{line}\n{metrics}"
        );
    }

    // API key: the old one works inside the grace period, only the new one after it.
    let reset = api
        .webhooks()
        .reset_api_key(api.req(pb::ResetApiKeyRequest {
            webhook_id: id.clone(),
            grace_period_seconds: GRACE_SECONDS,
        }))
        .await
        .expect("reset the key")
        .into_inner();
    let new_url = with_key(&url, &reset.api_key);
    dp.eventually_github("the new key accepted", &new_url, "gh-secret-two", 200)
        .await;
    assert_eq!(
        dp.post_github(&url, "gh-secret-two", BODY).await,
        200,
        "the old key still works inside its grace period"
    );
    dp.eventually_github(
        "the old key refused after its grace period",
        &url,
        "gh-secret-two",
        401,
    )
    .await;
    assert_eq!(dp.post_github(&new_url, "gh-secret-two", BODY).await, 200);
    let metrics = dp.metrics_text().await;
    for slot in ["current", "previous"] {
        let line = format!(r#"webhook_gateway_api_key_matches_total{{key="{slot}"}}"#);
        assert!(
            sample(&metrics, &line).is_some_and(|n| n >= 1.0),
            "{line}\n{metrics}"
        );
    }

    dp.stop().await;
    cp.stop().await;
}
