//! A scripted action server on 127.0.0.1 (the receiving end of the dispatcher's calls), and
//! Flowent's documented signature check run by a real python3 process.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::sync::Semaphore;

/// What an action server answers to one request.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
    /// Answer only once the test releases it.
    pub hold: bool,
}

impl Reply {
    pub fn new(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_owned(),
            headers: vec![],
            hold: false,
        }
    }

    pub fn ok(result: &str) -> Reply {
        Reply::new(
            200,
            &serde_json::json!({"result": result, "error": ""}).to_string(),
        )
    }

    pub fn held(mut self) -> Reply {
        self.hold = true;
        self
    }
}

/// A request an action server received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the call body is JSON")
    }
}

#[derive(Default)]
struct ServerState {
    script: Mutex<VecDeque<Reply>>,
    fallback: Mutex<Option<Reply>>,
    seen: Mutex<Vec<Seen>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
}

/// An action server on 127.0.0.1 answering from a script (the last reply repeats).
#[derive(Clone)]
pub struct ActionServer {
    pub addr: SocketAddr,
    state: Arc<ServerState>,
    release: Arc<Semaphore>,
}

impl ActionServer {
    pub async fn start(script: Vec<Reply>) -> ActionServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(ServerState::default());
        *state.fallback.lock().expect("lock") = script.last().cloned();
        *state.script.lock().expect("lock") = script.into();
        let server = ActionServer {
            addr,
            state,
            release: Arc::new(Semaphore::new(0)),
        };
        let s = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| s.clone().answer(req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        server
    }

    pub fn url(&self) -> String {
        format!("http://{}/action", self.addr)
    }

    async fn answer(
        self,
        req: Request<Incoming>,
    ) -> std::result::Result<Response<Full<Bytes>>, Infallible> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        self.state.seen.lock().expect("lock").push(Seen {
            headers: parts.headers,
            body,
        });
        let reply = {
            let mut script = self.state.script.lock().expect("lock");
            script
                .pop_front()
                .or_else(|| self.state.fallback.lock().expect("lock").clone())
        }
        .unwrap_or_else(|| Reply::ok("ok"));
        let now = self.state.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.state.max_running.fetch_max(now, Ordering::SeqCst);
        if reply.hold {
            if let Ok(p) = self.release.acquire().await {
                p.forget();
            }
        }
        self.state.running.fetch_sub(1, Ordering::SeqCst);
        let mut resp = Response::new(Full::new(Bytes::from(reply.body)));
        *resp.status_mut() = http::StatusCode::from_u16(reply.status).expect("status");
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            "application/json".parse().expect("value"),
        );
        for (k, v) in reply.headers {
            resp.headers_mut().insert(k, v.parse().expect("value"));
        }
        Ok(resp)
    }

    /// Lets `n` held requests answer.
    pub fn release(&self, n: usize) {
        self.release.add_permits(n);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("lock").clone()
    }

    /// Requests being answered now.
    pub fn running(&self) -> usize {
        self.state.running.load(Ordering::SeqCst)
    }

    pub fn max_running(&self) -> usize {
        self.state.max_running.load(Ordering::SeqCst)
    }

    /// Waits until the server has seen `n` requests.
    pub async fn wait_seen(&self, n: usize) -> Vec<Seen> {
        crate::eventually(
            &format!("the action server to see {n} requests"),
            Duration::from_secs(60),
            || async {
                let seen = self.seen();
                (seen.len() >= n).then_some(seen)
            },
        )
        .await
    }
}

/// A loopback URL nothing listens on.
pub fn dead_url() -> String {
    format!("http://127.0.0.1:{}/action", crate::free_port())
}

/// Flowent's documented receiver check, run by a real python3 process: remove `signature`,
/// `json.dumps(payload, separators=(",", ":"))`, HMAC-SHA256 hex, compare.
pub fn python_verifies(key: &str, body: &[u8]) -> bool {
    use std::io::Write;
    const VERIFIER: &str = r#"
import hashlib, hmac, json, sys
key = sys.argv[1].encode()
payload = json.loads(sys.stdin.read())
received = payload.pop("signature")
expected = hmac.new(key, json.dumps(payload, separators=(",", ":")).encode(), hashlib.sha256).hexdigest()
print("ok" if hmac.compare_digest(received, expected) else "bad")
"#;
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(VERIFIER)
        .arg(key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 must be installed to run this test");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body)
        .expect("write body");
    let out = child.wait_with_output().expect("python3 runs");
    assert!(out.status.success(), "python3 verifier failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim() == "ok"
}
