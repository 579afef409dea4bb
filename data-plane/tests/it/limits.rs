//! Size limits enforced while reading, and the timeouts that protect connections.

use std::time::Duration;

use futures::stream;
use gateway_shared::Provider;
use tokio::io::AsyncWriteExt;

use crate::support::*;

const LIMIT: usize = 64 * 1024;

async fn gateway() -> (Gateway, Hook) {
    let limit = LIMIT.to_string();
    let gw = Gateway::on_shared_broker(&[
        "--max-body-bytes",
        &limit,
        "--body-read-timeout",
        "500ms",
        "--header-read-timeout",
        "500ms",
    ])
    .await;
    let hook = Hook::new(Provider::Generic);
    gw.load(&[&hook]);
    (gw, hook)
}

fn head(hook: &Hook, extra: &str) -> String {
    format!(
        "POST {}?flowxApiKey={} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n{extra}\r\n",
        hook.path(),
        hook.api_key
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn honest_content_length_over_the_limit_is_refused_before_the_body_is_sent() {
    let (gw, hook) = gateway().await;
    // Only the head is sent: the answer comes without the server waiting for (or reading) a body.
    let mut s = raw(
        gw.addr,
        head(&hook, "Content-Length: 2000000\r\n").as_bytes(),
    )
    .await;
    let (status, head_text, body) = read_response(&mut s).await;
    assert_eq!(status, 413, "{head_text}");
    assert!(body.contains("PAYLOAD_TOO_LARGE"), "{body}");
    assert!(
        head_text.to_ascii_lowercase().contains("connection: close"),
        "{head_text}"
    );

    // Exactly at the limit is fine.
    let at_limit = format!("\"{}\"", "x".repeat(LIMIT - 2));
    let resp = reqwest::Client::new()
        .post(gw.url(&hook))
        .header("content-type", "application/json")
        .body(at_limit)
        .send()
        .await
        .expect("answers");
    assert_eq!(resp.status(), 200);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_body_is_cut_off_at_the_limit() {
    let (gw, hook) = gateway().await;
    // One chunk of exactly the limit, one more byte, and no terminating chunk: the server must stop
    // at the limit instead of waiting for the end.
    let mut req = head(&hook, "Transfer-Encoding: chunked\r\n").into_bytes();
    req.extend_from_slice(format!("{:x}\r\n", LIMIT).as_bytes());
    req.extend(std::iter::repeat_n(b'x', LIMIT));
    req.extend_from_slice(b"\r\n1\r\nx\r\n");
    let mut s = raw(gw.addr, &req).await;
    let (status, _, body) = read_response(&mut s).await;
    assert_eq!(status, 413);
    assert!(body.contains("PAYLOAD_TOO_LARGE"), "{body}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn h2_stream_without_length_is_cut_off_at_the_limit() {
    let (gw, hook) = gateway().await;
    let chunks = stream::iter((0..64).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 4096])));
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let resp = client
        .post(gw.url(&hook))
        .header("content-type", "text/plain")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("answers");
    assert_error(resp, 413, "PAYLOAD_TOO_LARGE").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lying_content_length_frames_the_body_and_the_rest_is_never_read_as_body() {
    let (gw, hook) = gateway().await;
    // Declares 16 bytes, sends far more: the body is the first 16 bytes (not valid JSON → 400), and
    // the server closes the connection on the garbage that follows instead of buffering it.
    let mut req = head(&hook, "Content-Length: 16\r\n").into_bytes();
    req.extend_from_slice(br#"{"padding":""#);
    req.extend(std::iter::repeat_n(b'x', 4 * LIMIT));
    let mut s = raw(gw.addr, &req).await;
    let (status, _, body) = read_response(&mut s).await;
    assert_eq!(status, 400);
    assert!(body.contains("INVALID_JSON"), "{body}");
    read_until_closed(&mut s, Duration::from_secs(10)).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_stalls_gets_408() {
    let (gw, hook) = gateway().await;
    let mut req = head(&hook, "Content-Length: 100\r\n").into_bytes();
    req.extend_from_slice(br#"{"a":"#);
    let mut s = raw(gw.addr, &req).await;
    let (status, _, body) = read_response(&mut s).await;
    assert_eq!(status, 408);
    assert!(body.contains("BODY_TIMEOUT"), "{body}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_or_silent_clients_are_disconnected() {
    let (gw, hook) = gateway().await;
    // Connects and sends nothing.
    let mut silent = raw(gw.addr, b"").await;
    read_until_closed(&mut silent, Duration::from_secs(10)).await;
    // Starts a request head and never finishes it (slowloris).
    let partial = format!(
        "POST {}?flowxApiKey={} HTTP/1.1\r\nHost: gw\r\nX-Slow: ",
        hook.path(),
        hook.api_key
    );
    let mut slow = raw(gw.addr, partial.as_bytes()).await;
    read_until_closed(&mut slow, Duration::from_secs(10)).await;
    // A second request on a kept-alive connection gets the same treatment.
    let mut keep = raw(gw.addr, b"").await;
    let first = format!("{}Content-Length: 2\r\n\r\n{{}}", head(&hook, ""));
    let first = first.replacen("\r\n\r\nContent-Length", "\r\nContent-Length", 1);
    keep.write_all(first.as_bytes()).await.expect("write");
    let (status, _, _) = read_response(&mut keep).await;
    assert_eq!(status, 200);
    keep.write_all(b"POST / HTTP/1.1\r\nHost: gw\r\n")
        .await
        .expect("write");
    read_until_closed(&mut keep, Duration::from_secs(10)).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_headers_are_refused() {
    let (gw, hook) = gateway().await;
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let req = format!("{}Content-Length: 2\r\n\r\n{{}}", head(&hook, &many));
    let mut s = raw(gw.addr, req.as_bytes()).await;
    let (status, _, _) = read_response(&mut s).await;
    assert_eq!(status, 431);
    gw.stop().await;
}
