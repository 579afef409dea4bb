//! A data plane on port 0 with a routing table built in code, and webhooks to register in it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use data_plane::{Config, DataPlane, Listeners, Routes};
use gateway_shared::snapshot::{
    ApiKeyHash, ConfigSnapshot, ProviderSecrets, SigningSecret, TriggerBinding, WebhookConfig,
    WebhookOptions,
};
use gateway_shared::{
    AppId, OrganizationId, Provider, Secret, TriggerType, WebhookId, WorkspaceId,
};
use hmac::{Hmac, Mac};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running data plane.
pub struct Gateway {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub routes: Routes,
    pub shutdown: CancellationToken,
    pub task: Option<JoinHandle<anyhow::Result<()>>>,
    pub topic: String,
    pub bootstrap: String,
    pub publisher: std::sync::Arc<data_plane::Publisher>,
}

impl Gateway {
    /// Starts a data plane publishing to `topic` on `bootstrap`, with extra flags.
    pub async fn start(bootstrap: &str, topic: &str, extra: &[&str]) -> Gateway {
        // Logs go to the test's captured output (shown when it fails); RUST_LOG picks the level.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "data_plane=info,warn".into()),
            )
            .with_test_writer()
            .try_init();
        let public = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind public");
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind admin");
        let (addr, admin_addr) = (
            public.local_addr().expect("addr"),
            admin.local_addr().expect("addr"),
        );
        let mut args = vec!["--kafka-bootstrap", bootstrap, "--kafka-topic", topic];
        args.extend_from_slice(extra);
        let config = Config::from_args(args).expect("valid flags");
        let dp = DataPlane::new(config).expect("data plane builds");
        let routes = dp.routes().clone();
        let publisher = dp.publisher();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(dp.serve(Listeners { public, admin }, shutdown.clone()));
        Gateway {
            addr,
            admin: admin_addr,
            routes,
            shutdown,
            task: Some(task),
            topic: topic.to_owned(),
            bootstrap: bootstrap.to_owned(),
            publisher,
        }
    }

    /// Starts one on the shared broker with a fresh topic.
    pub async fn on_shared_broker(extra: &[&str]) -> Gateway {
        let topic = gateway_testkit::unique_topic("dp").await;
        Gateway::start(gateway_testkit::kafka_bootstrap(), &topic, extra).await
    }

    /// Loads these webhooks as a snapshot.
    pub fn load(&self, hooks: &[&Hook]) {
        self.routes
            .apply_snapshot(ConfigSnapshot {
                version: 1,
                webhooks: hooks.iter().map(|h| h.config.clone()).collect(),
            })
            .expect("snapshot applies");
    }

    pub fn url(&self, hook: &Hook) -> String {
        format!(
            "http://{}{}?flowxApiKey={}",
            self.addr,
            hook.path(),
            hook.api_key
        )
    }

    pub fn url_without_key(&self, hook: &Hook) -> String {
        format!("http://{}{}", self.addr, hook.path())
    }

    /// Stops it and waits for a clean exit.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("stops within 30s")
                .expect("no panic")
                .expect("clean exit");
        }
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.admin))
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics body")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A webhook and its plain API key.
#[derive(Clone)]
pub struct Hook {
    pub config: WebhookConfig,
    pub api_key: String,
}

impl Hook {
    pub fn new(provider: Provider) -> Hook {
        let api_key = format!("key-{}", uuid::Uuid::new_v4().simple());
        Hook {
            config: WebhookConfig {
                webhook_id: WebhookId::new_random(),
                organization_id: OrganizationId::new_random(),
                workspace_id: WorkspaceId::new_random(),
                app_id: AppId::new_random(),
                provider,
                api_keys: vec![ApiKeyHash::of(&api_key)],
                secrets: ProviderSecrets::default(),
                bindings: vec![start_binding()],
                correlation_key_path: None,
                options: WebhookOptions::default(),
            },
            api_key,
        }
    }

    pub fn with_signing_secret(mut self, secret: &str) -> Hook {
        self.config.secrets.signing = vec![SigningSecret {
            value: Secret::new(secret.to_owned()),
            not_after: None,
        }];
        self
    }

    /// Signing secrets as a rotation leaves them: `current` without end, then `previous` valid
    /// until `previous_not_after` (unix seconds).
    pub fn with_rotated_secrets(
        mut self,
        current: &str,
        previous: &str,
        previous_not_after: i64,
    ) -> Hook {
        self.config.secrets.signing = vec![
            SigningSecret {
                value: Secret::new(current.to_owned()),
                not_after: None,
            },
            SigningSecret {
                value: Secret::new(previous.to_owned()),
                not_after: Some(previous_not_after),
            },
        ];
        self
    }

    pub fn with_verify_token(mut self, token: &str) -> Hook {
        self.config.secrets.verify_token = Some(Secret::new(token.to_owned()));
        self
    }

    pub fn with_resume(mut self, path: &str) -> Hook {
        self.config.correlation_key_path = Some(path.to_owned());
        self.config.bindings.push(TriggerBinding {
            trigger_type: TriggerType::ResumeProcess,
            process_definition_id: "proc-resume".into(),
            node_id: "catch-1".into(),
            process_correlation_key: Some("applicationId".into()),
            process_key: Some("scan".into()),
        });
        self
    }

    pub fn path(&self) -> String {
        let c = &self.config;
        let ids = format!(
            "{}/{}/{}/{}",
            c.organization_id, c.workspace_id, c.app_id, c.webhook_id
        );
        match c.provider.url_segment() {
            Some(seg) => format!("/webhooks/incoming/{seg}/{ids}"),
            None => format!("/webhooks/incoming/{ids}"),
        }
    }
}

pub fn start_binding() -> TriggerBinding {
    TriggerBinding {
        trigger_type: TriggerType::StartProcess,
        process_definition_id: "proc-start".into(),
        node_id: "start-1".into(),
        process_correlation_key: None,
        process_key: None,
    }
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Hex HMAC-SHA256, computed here with the `hmac` crate (independently of the data plane's code).
pub fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// Raw HMAC-SHA256 with key bytes `key`.
pub fn hmac_bytes(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The headers a provider sends with `body`, signed with `secret` at `ts`, naming `delivery` as the
/// delivery id where the provider carries it in a header (STRIPE carries it in the body instead).
/// Written from the providers' documentation, independently of the data plane's code.
pub fn provider_headers(
    provider: Provider,
    secret: &str,
    ts: i64,
    delivery: &str,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let ts = ts.to_string();
    match provider {
        Provider::Github => vec![
            ("X-GitHub-Delivery", delivery.to_owned()),
            ("X-GitHub-Event", "issues".to_owned()),
            (
                "X-Hub-Signature-256",
                format!("sha256={}", hmac_hex(secret, &[body])),
            ),
        ],
        Provider::Stripe => {
            let v1 = hmac_hex(secret, &[ts.as_bytes(), b".", body]);
            vec![(
                "Stripe-Signature",
                format!("t={ts},v1={v1},v0={}", "0".repeat(64)),
            )]
        }
        Provider::StandardWebhooks => {
            use base64::Engine as _;
            let key = base64::engine::general_purpose::STANDARD
                .decode(secret.trim_start_matches("whsec_"))
                .expect("whsec_<base64>");
            let sig = hmac_bytes(
                &key,
                &[delivery.as_bytes(), b".", ts.as_bytes(), b".", body],
            );
            vec![
                ("webhook-id", delivery.to_owned()),
                ("webhook-timestamp", ts),
                ("webhook-signature", format!("v1,{}", b64(&sig))),
            ]
        }
        Provider::Shopify => vec![
            ("X-Shopify-Webhook-Id", delivery.to_owned()),
            ("X-Shopify-Topic", "orders/create".to_owned()),
            (
                "X-Shopify-Hmac-Sha256",
                b64(&hmac_bytes(secret.as_bytes(), &[body])),
            ),
        ],
        Provider::Slack => slack_headers(secret, ts.parse().unwrap_or_default(), body),
        Provider::Meta => vec![(
            "X-Hub-Signature-256",
            format!("sha256={}", hmac_hex(secret, &[body])),
        )],
        Provider::Generic => vec![],
    }
}

/// The value of the Prometheus sample `line` (name and labels, exactly), 0 when absent.
pub fn sample(metrics: &str, line: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Slack's headers for `body` signed at `ts`.
pub fn slack_headers(secret: &str, ts: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    let ts = ts.to_string();
    let sig = format!(
        "v0={}",
        hmac_hex(secret, &[b"v0:", ts.as_bytes(), b":", body])
    );
    vec![
        ("X-Slack-Request-Timestamp", ts),
        ("X-Slack-Signature", sig),
    ]
}

/// Asserts an error response: status and `error.code`.
pub async fn assert_error(resp: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(resp.status().as_u16(), status, "status for {code}");
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{code}"
    );
    let body: serde_json::Value = resp.json().await.expect("json error body");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

/// Writes raw bytes on a new connection and returns the stream.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    s
}

/// Reads one HTTP/1.1 response head and its Content-Length body (or until EOF) within 10 s.
pub async fn read_response(s: &mut TcpStream) -> (u16, String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                    return (head, body);
                }
            }
            let n = s.read(&mut chunk).await.expect("read response");
            assert!(
                n > 0,
                "connection closed before a full response: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    let (head, body) = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("response within 10s");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    (status, head, body)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Waits until the peer closes the connection (EOF or reset) within `within`; returns what was read.
pub async fn read_until_closed(s: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("the server closes the connection in time");
    out
}

/// The JSON value of a consumed record.
pub fn envelope(m: &rdkafka::message::OwnedMessage) -> serde_json::Value {
    use rdkafka::Message;
    serde_json::from_slice(m.payload().expect("record has a value")).expect("value is JSON")
}

/// A record's headers as (name, value) pairs.
pub fn record_headers(m: &rdkafka::message::OwnedMessage) -> Vec<(String, String)> {
    use rdkafka::message::Headers;
    use rdkafka::Message;
    m.headers()
        .map(|hs| {
            hs.iter()
                .map(|h| {
                    (
                        h.key.to_owned(),
                        String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn header<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
