//! The config stream is compressed for a data plane that offers an encoding and plain for one that
//! does not, so either side can be upgraded first (docs/control-plane.md, "Configuration").

use std::time::Duration;

use control_plane::distribution::StreamCompression;
use gateway_proto::v1 as pb;
use tonic::codec::CompressionEncoding;

use crate::support::{
    app, clients, create_token, distribution_client, exchange, TestControlPlane, BOOTSTRAP_TOKEN,
};
use crate::webhooks::create;

/// A control plane serving one active webhook, and a DATA_PLANE JWT for it.
async fn serving_one_webhook(
    compression: StreamCompression,
) -> (TestControlPlane, tonic::transport::Channel, String, String) {
    let cp =
        TestControlPlane::start_with(|c| c.distribution.stream_compression = compression).await;
    let channel = cp.channel().await;
    let admin = clients(&channel, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let wh = create(&admin, &a, "compressed", pb::Provider::Generic).await;
    crate::triggers::bind_and_activate(&admin, &a, "p", &wh.id).await;
    let token = create_token(&admin, cp.org, None, pb::Role::DataPlane).await;
    let jwt = exchange(&channel, &token).await.expect("exchange");
    (cp, channel, jwt, wh.id)
}

/// Opens a stream offering `accept` (in that order) and returns the encoding the control plane
/// answered with and the webhook ids of the first snapshot, decoded.
async fn first_snapshot(
    channel: &tonic::transport::Channel,
    jwt: &str,
    accept: &[CompressionEncoding],
) -> (Option<String>, Vec<String>) {
    let (encoding, routes) = first_routes(channel, jwt, accept, false).await;
    (encoding, routes.into_iter().map(|w| w.webhook_id).collect())
}

/// [`first_snapshot`] with the Hello's `binary_ids`, returning the routes.
async fn first_routes(
    channel: &tonic::transport::Channel,
    jwt: &str,
    accept: &[CompressionEncoding],
    binary_ids: bool,
) -> (Option<String>, Vec<pb::WebhookRoute>) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::DataPlaneMessage {
        kind: Some(pb::data_plane_message::Kind::Hello(pb::Hello {
            data_plane_id: "dp-compression".into(),
            software_version: "test".into(),
            binary_ids,
            ..Default::default()
        })),
    })
    .await
    .expect("queue hello");
    let mut client = distribution_client(channel, jwt);
    for e in accept {
        client = client.accept_compressed(*e);
    }
    let response = client
        .stream_config(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("stream opens");
    let encoding = response
        .metadata()
        .get("grpc-encoding")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut inbound = response.into_inner();
    let mut ids = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let m = inbound
                .message()
                .await
                .expect("every message decodes")
                .expect("stream open");
            if let Some(pb::control_plane_message::Kind::Snapshot(c)) = m.kind {
                ids.extend(c.webhooks);
                if c.last {
                    return;
                }
            }
        }
    })
    .await
    .expect("a whole snapshot in time");
    drop(tx);
    (encoding, ids)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_is_compressed_with_what_the_data_plane_offers_and_plain_without_an_offer() {
    let (_cp, channel, jwt, webhook) = serving_one_webhook(StreamCompression::Zstd).await;
    let both = [CompressionEncoding::Zstd, CompressionEncoding::Gzip];
    assert_eq!(
        first_snapshot(&channel, &jwt, &both).await,
        (Some("zstd".into()), vec![webhook.clone()])
    );
    assert_eq!(
        first_snapshot(&channel, &jwt, &[CompressionEncoding::Gzip]).await,
        (Some("gzip".into()), vec![webhook.clone()]),
        "a data plane offering only gzip gets gzip"
    );
    // A data plane of an earlier release offers nothing: it gets messages it can read.
    assert_eq!(
        first_snapshot(&channel, &jwt, &[]).await,
        (None, vec![webhook])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_control_plane_without_compression_answers_plain_to_a_data_plane_that_offers_it() {
    let (_cp, channel, jwt, webhook) = serving_one_webhook(StreamCompression::None).await;
    let both = [CompressionEncoding::Zstd, CompressionEncoding::Gzip];
    assert_eq!(
        first_snapshot(&channel, &jwt, &both).await,
        (None, vec![webhook.clone()])
    );
    let (_cp, channel, jwt, webhook) = serving_one_webhook(StreamCompression::Gzip).await;
    assert_eq!(
        first_snapshot(&channel, &jwt, &both).await,
        (Some("gzip".into()), vec![webhook.clone()]),
        "the configured encoding is used when offered"
    );
    assert_eq!(
        first_snapshot(&channel, &jwt, &[CompressionEncoding::Zstd]).await,
        (None, vec![webhook]),
        "no encoding in common: plain"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ids_are_sent_as_16_bytes_only_to_a_data_plane_that_reads_them() {
    let (_cp, channel, jwt, webhook) = serving_one_webhook(StreamCompression::Zstd).await;
    let uuid = uuid::Uuid::parse_str(&webhook).expect("a uuid");
    let (_, binary) = first_routes(&channel, &jwt, &[CompressionEncoding::Zstd], true).await;
    assert_eq!(binary.len(), 1);
    assert_eq!(binary[0].webhook_uuid, uuid.as_bytes().to_vec());
    assert!(binary[0].webhook_id.is_empty() && binary[0].organization_id.is_empty());
    assert_eq!(binary[0].organization_uuid.len(), 16);
    let (_, text) = first_routes(&channel, &jwt, &[], false).await;
    assert_eq!(text[0].webhook_id, webhook);
    assert!(
        text[0].webhook_uuid.is_empty(),
        "an earlier data plane gets text ids only"
    );
}
