//! The action client against real HTTP servers on loopback.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use gateway_outbound::{ActionClient, CallError, DestinationError, DestinationPolicy};
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// What the test server answers: status, headers, body, delay in milliseconds.
type Canned = (u16, Vec<(&'static str, String)>, Vec<u8>, u64);

/// Serves every connection with `answer` until the test ends.
async fn serve(answer: fn(&Request<hyper::body::Incoming>) -> Canned) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: Request<hyper::body::Incoming>| async move {
                        let (status, headers, body, delay_ms) = answer(&req);
                        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                        let mut resp = Response::builder().status(status);
                        for (k, v) in headers {
                            resp = resp.header(k, v);
                        }
                        Ok::<_, Infallible>(
                            resp.body(Full::new(Bytes::from(body))).expect("response"),
                        )
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn loopback_client() -> ActionClient {
    let allow = DestinationPolicy::parse_allowlist("127.0.0.0/8,::1").expect("cidrs");
    ActionClient::new(DestinationPolicy::new(true, allow), 1024).expect("client")
}

#[tokio::test]
async fn posts_and_reads_the_answer_without_following_redirects() {
    let ok = serve(|_| (200, vec![], br#"{"result":"ok","error":""}"#.to_vec(), 0)).await;
    let resp = loopback_client()
        .post_json(
            &format!("http://{ok}/a"),
            "{}".into(),
            &[],
            Duration::from_secs(5),
        )
        .await
        .expect("answer");
    assert_eq!(resp.status, 200);
    assert_eq!(&resp.body[..], br#"{"result":"ok","error":""}"#);

    let redirect = serve(|_| {
        (
            302,
            vec![("location", "http://127.0.0.1:1/elsewhere".into())],
            vec![],
            0,
        )
    })
    .await;
    let resp = loopback_client()
        .post_json(
            &format!("http://{redirect}/a"),
            "{}".into(),
            &[],
            Duration::from_secs(5),
        )
        .await
        .expect("answer");
    assert_eq!(resp.status, 302, "a redirect is returned, never followed");
}

#[tokio::test]
async fn refuses_loopback_names_and_literals_without_the_allowlist() {
    let ok = serve(|_| (200, vec![], vec![], 0)).await;
    let strict = ActionClient::new(DestinationPolicy::new(true, vec![]), 1024).expect("client");
    for url in [
        format!("http://{ok}/"),
        format!("http://localhost:{}/", ok.port()),
    ] {
        let err = strict
            .post_json(&url, "{}".into(), &[], Duration::from_secs(5))
            .await
            .expect_err("refused");
        assert!(
            matches!(
                err,
                CallError::Destination(DestinationError::Forbidden { .. })
            ),
            "{url}: {err}"
        );
    }
    // With the allowlist the same name is callable.
    let resp = loopback_client()
        .post_json(
            &format!("http://localhost:{}/", ok.port()),
            "{}".into(),
            &[],
            Duration::from_secs(5),
        )
        .await
        .expect("allowed");
    assert_eq!(resp.status, 200);
}

#[tokio::test]
async fn caps_the_answer_and_bounds_the_wait() {
    let big = serve(|_| (200, vec![], vec![b'x'; 1025], 0)).await;
    let err = loopback_client()
        .post_json(
            &format!("http://{big}/"),
            "{}".into(),
            &[],
            Duration::from_secs(5),
        )
        .await
        .expect_err("too large");
    assert!(matches!(err, CallError::TooLarge(1024)), "{err}");

    let slow = serve(|_| (200, vec![], vec![], 3_000)).await;
    let err = loopback_client()
        .post_json(
            &format!("http://{slow}/"),
            "{}".into(),
            &[],
            Duration::from_millis(300),
        )
        .await
        .expect_err("timeout");
    assert!(matches!(err, CallError::Timeout(_)), "{err}");
    assert_eq!(err.to_string(), "timed out after 0.3 s");
}

#[tokio::test]
async fn names_a_refused_connection_and_reads_retry_after() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr")
    };
    let err = loopback_client()
        .post_json(
            &format!("http://{closed}/"),
            "{}".into(),
            &[],
            Duration::from_secs(5),
        )
        .await
        .expect_err("refused");
    assert_eq!(err.to_string(), "connection refused");
    assert!(err.is_transient());

    let busy = serve(|_| (429, vec![("retry-after", "7".into())], vec![], 0)).await;
    let resp = loopback_client()
        .post_json(
            &format!("http://{busy}/"),
            "{}".into(),
            &[],
            Duration::from_secs(5),
        )
        .await
        .expect("answer");
    assert_eq!(resp.status, 429);
    assert_eq!(resp.retry_after(), Some(Duration::from_secs(7)));
}
