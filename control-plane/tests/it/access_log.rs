//! Every gRPC call is counted by method and status code; paths no service serves are counted under
//! `unknown`, so clients cannot grow the label set.

use gateway_proto::v1 as pb;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn calls_are_counted_by_method_and_code_with_bounded_labels() {
    let metrics = free_addr();
    let cp = TestControlPlane::start_with(|c| {
        c.distribution.metrics_listen = Some(metrics);
    })
    .await;
    let channel = cp.channel().await;
    let admin = clients(&channel, BOOTSTRAP_TOKEN).await;
    admin
        .webhooks
        .clone()
        .list_webhooks(pb::ListWebhooksRequest {
            app: Some(app(cp.org)),
            ..Default::default()
        })
        .await
        .expect("list");
    let missing = admin
        .webhooks
        .clone()
        .get_webhook(pb::GetWebhookRequest {
            id: uuid::Uuid::new_v4().to_string(),
        })
        .await;
    assert_eq!(
        missing.expect_err("unknown id").code(),
        tonic::Code::NotFound
    );
    for n in 0..3 {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.expect("ready");
        let path = format!("/webhook.gateway.v1.Invented{n}/Method");
        let answer = grpc
            .unary(
                tonic::Request::new(pb::ListDataPlanesRequest {}),
                path.parse().expect("path"),
                tonic_prost::ProstCodec::<pb::ListDataPlanesRequest, pb::ListDataPlanesResponse>::default(),
            )
            .await;
        assert_eq!(
            answer.expect_err("no such method").code(),
            tonic::Code::Unimplemented
        );
    }

    let text = scrape(metrics).await;
    for line in [
        r#"gateway_grpc_calls_total{method="/webhook.gateway.v1.WebhookService/ListWebhooks",code="OK"} 1"#,
        r#"gateway_grpc_calls_total{method="/webhook.gateway.v1.WebhookService/GetWebhook",code="NOT_FOUND"} 1"#,
        r#"gateway_grpc_calls_total{method="unknown",code="UNIMPLEMENTED"} 3"#,
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    assert!(
        !text.contains("Invented"),
        "made-up paths are not labels:\n{text}"
    );
}
