//! The console's files served on the gRPC listener (docs/console.md): plain GETs get the files with
//! a strict Content-Security-Policy; gRPC and grpc-web calls on the same port are untouched.

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::support::{exchange, TestControlPlane, BOOTSTRAP_TOKEN};

/// A directory holding a tiny built console.
fn console_dir(with_index: bool) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("console-{}", Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("assets")).expect("create dir");
    if with_index {
        std::fs::write(
            dir.join("index.html"),
            "<!doctype html><script type=module src=/assets/app-1a2b.js></script>",
        )
        .expect("write index");
    }
    std::fs::write(dir.join("assets/app-1a2b.js"), "console.log('hi')").expect("write asset");
    dir
}

struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// One HTTP/1.1 request over a fresh connection (no client library: the bytes are the point).
async fn http(addr: SocketAddr, request: &[u8]) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    Reply {
        status,
        head,
        body: raw[split + 4..].to_vec(),
    }
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    http(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_the_files_with_a_strict_policy_beside_grpc_and_grpc_web() {
    let dir = console_dir(true);
    let cp = TestControlPlane::start_with(|c| c.console_dir = Some(dir.clone())).await;
    let channel = cp.channel().await;

    let index = get(cp.addr, "/").await;
    assert_eq!(index.status, 200, "{}", index.head);
    assert!(String::from_utf8_lossy(&index.body).contains("/assets/app-1a2b.js"));
    assert_eq!(
        index.header("content-security-policy").as_deref(),
        Some(control_plane::CONTENT_SECURITY_POLICY)
    );
    let csp = control_plane::CONTENT_SECURITY_POLICY;
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(
        index.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(index.header("cache-control").as_deref(), Some("no-cache"));
    assert!(index
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html")));

    let asset = get(cp.addr, "/assets/app-1a2b.js").await;
    assert_eq!(asset.status, 200);
    assert_eq!(asset.body, b"console.log('hi')");
    assert!(asset
        .header("content-type")
        .is_some_and(|t| t.contains("javascript")));
    assert_eq!(
        asset.header("cache-control").as_deref(),
        Some("public, max-age=31536000, immutable")
    );

    let missing = get(cp.addr, "/assets/nope.js").await;
    assert_eq!(missing.status, 404);
    assert!(missing.header("content-security-policy").is_some());
    // Nothing outside the directory.
    let escape = get(cp.addr, "/../Cargo.toml").await;
    assert_ne!(escape.status, 200);

    // gRPC (HTTP/2) on the same listener still works.
    exchange(&channel, BOOTSTRAP_TOKEN)
        .await
        .expect("gRPC exchange");
    // grpc-web (HTTP/1.1 POST) reaches the service: a wrong token is refused by AuthService itself.
    let message = [0x0a, 0x03, b'b', b'a', b'd']; // ExchangeTokenRequest { api_token: "bad" }
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    let mut request = format!(
        "POST /webhook.gateway.v1.AuthService/ExchangeToken HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        frame.len()
    )
    .into_bytes();
    request.extend_from_slice(&frame);
    let web = http(cp.addr, &request).await;
    assert_eq!(web.status, 200, "{}", web.head);
    let text = format!("{}{}", web.head, String::from_utf8_lossy(&web.body));
    assert!(
        text.contains("grpc-status: 16") || text.contains("grpc-status:16"),
        "{text}"
    );
    assert!(web.header("content-security-policy").is_none());
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_directory_nothing_is_served() {
    let cp = TestControlPlane::start().await;
    let channel = cp.channel().await;
    exchange(&channel, BOOTSTRAP_TOKEN)
        .await
        .expect("gRPC works");
    let index = get(cp.addr, "/").await;
    assert_ne!(index.status, 200, "{}", index.head);
    assert!(index.header("content-security-policy").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_without_index_html_is_a_start_up_error() {
    let dir = console_dir(false);
    let cp = TestControlPlane::start_with(|c| c.console_dir = Some(dir.clone())).await;
    let result = cp.task.await.expect("the server task ends");
    let err = result.expect_err("start-up must fail");
    assert!(format!("{err:#}").contains("index.html"), "{err:#}");
    std::fs::remove_dir_all(dir).ok();
}
