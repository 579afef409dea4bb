//! The public listener's connection limits: idle connections are closed (HTTP/2 with a GOAWAY),
//! and connections beyond the cap are refused (docs/data-plane.md, "Listeners").

use std::time::Duration;

use gateway_shared::Provider;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// The HTTP/2 client preface and an empty SETTINGS frame (RFC 9113 §3.4, §6.5).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// The types of the HTTP/2 frames in `bytes` (9-byte headers, lengths followed).
fn frame_types(bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut at = 0;
    while at + 9 <= bytes.len() {
        let len = (usize::from(bytes[at]) << 16)
            | (usize::from(bytes[at + 1]) << 8)
            | usize::from(bytes[at + 2]);
        types.push(bytes[at + 3]);
        at += 9 + len;
    }
    types
}

/// Reads HTTP/2 frames until the server closes the connection, acknowledging its SETTINGS and
/// PINGs as a client does; returns every byte read.
async fn h2_until_closed(s: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut at = 0;
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&chunk[..n]),
            }
            while at + 9 <= seen.len() {
                let len = (usize::from(seen[at]) << 16)
                    | (usize::from(seen[at + 1]) << 8)
                    | usize::from(seen[at + 2]);
                if at + 9 + len > seen.len() {
                    break;
                }
                let (kind, flags) = (seen[at + 3], seen[at + 4]);
                let reply = match (kind, flags & 1) {
                    (0x4, 0) => Some(b"\x00\x00\x00\x04\x01\x00\x00\x00\x00".to_vec()),
                    (0x6, 0) => {
                        let mut ack = b"\x00\x00\x08\x06\x01\x00\x00\x00\x00".to_vec();
                        ack.extend_from_slice(&seen[at + 9..at + 17]);
                        Some(ack)
                    }
                    _ => None,
                };
                if let Some(reply) = reply {
                    let _ = s.write_all(&reply).await;
                }
                at += 9 + len;
            }
        }
    })
    .await
    .expect("the server closes the connection in time");
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_are_closed_http2_with_a_goaway() {
    let gw = Gateway::on_shared_broker(&["--connection-idle-timeout", "1s"]).await;
    let hook = Hook::new(Provider::Generic);
    gw.load(&[&hook]);

    // HTTP/2 (prior knowledge), no stream ever opened.
    let mut h2 = TcpStream::connect(gw.addr).await.expect("connect");
    h2.write_all(H2_PREFACE).await.expect("preface");
    let seen = h2_until_closed(&mut h2, Duration::from_secs(15)).await;
    assert!(
        frame_types(&seen).contains(&0x7),
        "a GOAWAY before the close: frame types {:?}",
        frame_types(&seen)
    );

    // HTTP/1.1 keep-alive, idle after one answered request.
    let body = "{}";
    let mut h1 = raw(
        gw.addr,
        format!(
            "POST {}?flowxApiKey={} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            hook.path(),
            hook.api_key,
            body.len()
        )
        .as_bytes(),
    )
    .await;
    let (status, head, _) = read_response(&mut h1).await;
    assert_eq!(status, 200, "{head}");
    read_until_closed(&mut h1, Duration::from_secs(15)).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_cap_are_closed_at_once_and_served_again_below_it() {
    let gw = Gateway::on_shared_broker(&["--max-connections", "2"]).await;
    let hook = Hook::new(Provider::Generic);
    gw.load(&[&hook]);
    let request = format!(
        "POST {}?flowxApiKey={} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}",
        hook.path(),
        hook.api_key
    );
    // Two connections, each with an answered request, held open.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = raw(gw.addr, request.as_bytes()).await;
        let (status, head, _) = read_response(&mut s).await;
        assert_eq!(status, 200, "{head}");
        held.push(s);
    }
    // The third is closed without an answer.
    let mut third = raw(gw.addr, request.as_bytes()).await;
    let answer = read_until_closed(&mut third, Duration::from_secs(10)).await;
    assert!(
        answer.is_empty(),
        "no answer beyond the cap: {}",
        String::from_utf8_lossy(&answer)
    );

    // One closes: a new connection is served again.
    drop(held.pop());
    let served = gateway_testkit::eventually(
        "a connection below the cap is served",
        Duration::from_secs(10),
        || {
            let request = request.clone();
            let addr = gw.addr;
            async move {
                let mut s = TcpStream::connect(addr).await.ok()?;
                s.write_all(request.as_bytes()).await.ok()?;
                let mut buf = [0u8; 12];
                s.read_exact(&mut buf).await.ok()?;
                (&buf == b"HTTP/1.1 200").then_some(())
            }
        },
    )
    .await;
    let () = served;
    gw.stop().await;
}
