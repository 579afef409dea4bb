//! The pieces are real: migrations through diesel-async, a tonic server with health and reflection.

use std::time::Duration;

use diesel::sql_types::BigInt;
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio_stream::StreamExt;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::support::TestControlPlane;

#[derive(QueryableByName)]
struct Revision {
    #[diesel(sql_type = BigInt)]
    revision: i64,
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_apply_through_diesel_async_and_are_idempotent() {
    let db = gateway_testkit::fresh_database().await;
    let applied = control_plane::db::migrate(&db.url)
        .await
        .expect("migrations apply");
    assert!(!applied.is_empty(), "a fresh database gets every migration");
    let again = control_plane::db::migrate(&db.url)
        .await
        .expect("second run succeeds");
    assert!(
        again.is_empty(),
        "nothing is pending the second time: {again:?}"
    );

    let mut conn = AsyncPgConnection::establish(&db.url)
        .await
        .expect("connect");
    let rows: Vec<Revision> = diesel::sql_query("SELECT revision FROM config_revision")
        .load(&mut conn)
        .await
        .expect("the config_revision table exists");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].revision, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn server_on_port_zero_serves_health_and_both_reflection_versions() {
    let cp = TestControlPlane::start().await;
    let channel = cp.channel().await;

    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health check answers");
    assert_eq!(health.into_inner().status, ServingStatus::Serving as i32);

    // v1 reflection: list services, as `grpcurl list` does.
    use tonic_reflection::pb::v1 as r1;
    let mut client = r1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let req = r1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(r1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::once(req))
        .await
        .expect("reflection v1 stream opens")
        .into_inner();
    let resp = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("reflection answers in time")
        .expect("one response")
        .expect("not an error");
    let names: Vec<String> = match resp.message_response {
        Some(r1::server_reflection_response::MessageResponse::ListServicesResponse(l)) => {
            l.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer: {other:?}"),
    };
    assert!(
        names.iter().any(|n| n == "grpc.health.v1.Health"),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n == "grpc.reflection.v1.ServerReflection"),
        "{names:?}"
    );

    // v1alpha reflection (older grpcurl builds use it).
    use tonic_reflection::pb::v1alpha as ra;
    let mut client = ra::server_reflection_client::ServerReflectionClient::new(channel);
    let req = ra::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(ra::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::once(req))
        .await
        .expect("reflection v1alpha stream opens")
        .into_inner();
    let resp = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("reflection answers in time")
        .expect("one response")
        .expect("not an error");
    assert!(matches!(
        resp.message_response,
        Some(ra::server_reflection_response::MessageResponse::ListServicesResponse(_))
    ));

    cp.shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(10), cp.task)
        .await
        .expect("server stops after shutdown")
        .expect("task did not panic");
    result.expect("server returned cleanly");
}
