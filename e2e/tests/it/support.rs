//! A stack for one test: a control plane (on a fresh database) and data planes wired to it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use gateway_proto::v1 as pb;
use gateway_shared::Secret;
use hmac::{Hmac, Mac};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use uuid::Uuid;

pub const MASTER_KEYS: &str = "k1=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const BOOTSTRAP_TOKEN: &str = "gwt_e2e-bootstrap-token-0123456789";
pub const WAIT: Duration = Duration::from_secs(30);

/// A self-signed certificate for `localhost`, written to PEM files.
pub struct TestTls {
    pub cert_file: std::path::PathBuf,
    pub key_file: std::path::PathBuf,
    pub cert_pem: String,
}

impl TestTls {
    pub fn generate() -> Self {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("self-signed cert");
        let dir = std::env::temp_dir().join(format!("e2e-tls-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("tls dir");
        let cert_pem = certified.cert.pem();
        let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_file, &cert_pem).expect("write cert");
        std::fs::write(&key_file, certified.signing_key.serialize_pem()).expect("write key");
        Self {
            cert_file,
            key_file,
            cert_pem,
        }
    }
}

/// One control-plane replica.
pub struct ControlPlane {
    pub addr: SocketAddr,
    /// The CA (self-signed certificate) clients must trust when the replica serves TLS.
    pub tls_ca: Option<String>,
    /// The admin listener (`/metrics`).
    pub metrics: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl ControlPlane {
    /// Starts a replica on `database_url` whose bootstrap token administers `org`.
    pub async fn start(database_url: &str, org: Uuid) -> Self {
        Self::start_with(database_url, org, None).await
    }

    /// Starts a replica that serves gRPC over TLS with `tls` when given.
    pub async fn start_with(database_url: &str, org: Uuid, tls: Option<&TestTls>) -> Self {
        Self::start_full(database_url, org, tls, Default::default()).await
    }

    /// Starts a replica with failed-trigger settings (replay's broker and topic, retention).
    pub async fn start_full(
        database_url: &str,
        org: Uuid,
        tls: Option<&TestTls>,
        failed_triggers: control_plane::failed_triggers::FailedTriggerArgs,
    ) -> Self {
        Self::start_configured(database_url, org, tls, |config| {
            config.failed_triggers = failed_triggers;
        })
        .await
    }

    /// Starts a replica that accepts `http://` action URLs on 127.0.0.1 (where the tests' action
    /// servers listen), as the local stack does (docs/actions.md, "Destinations").
    pub async fn start_for_actions(database_url: &str, org: Uuid) -> Self {
        Self::start_configured(database_url, org, None, |config| {
            config.actions_allow_http = true;
            config.actions_allow_cidrs = "127.0.0.1/32".to_owned();
        })
        .await
    }

    /// Starts a replica with the tests' settings, changed by `edit`.
    pub async fn start_configured(
        database_url: &str,
        org: Uuid,
        tls: Option<&TestTls>,
        edit: impl FnOnce(&mut control_plane::Config),
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        // A free port for the admin listener (the control plane binds it itself).
        let metrics = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port");
        let mut config = control_plane::Config {
            listen: addr,
            migrate_on_start: true,
            db_pool_size: 4,
            shutdown_grace: Duration::from_secs(5),
            keys: control_plane::config::KeyringArgs {
                master_keys: Some(Secret::new(MASTER_KEYS.to_owned())),
                ..Default::default()
            },
            jwt_signing_key: Some(Secret::new(
                "e2e-jwt-signing-key-of-at-least-32-bytes".to_owned(),
            )),
            public_base_url: Some("http://127.0.0.1".to_owned()),
            bootstrap_token: Some(Secret::new(BOOTSTRAP_TOKEN.to_owned())),
            bootstrap_organization_id: Some(org),
            console_dir: None,
            distribution: control_plane::distribution::DistributionArgs {
                stream_heartbeat: Duration::from_millis(500),
                // One webhook per chunk, so every snapshot with two or more webhooks is multi-part.
                snapshot_chunk: 1,
                metrics_listen: Some(metrics),
                tls_cert_file: tls.map(|t| t.cert_file.clone()),
                tls_key_file: tls.map(|t| t.key_file.clone()),
                ..Default::default()
            },
            ..control_plane::Config::new(database_url)
        };
        edit(&mut config);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(control_plane::run(config, listener, shutdown.clone()));
        Self {
            addr,
            tls_ca: tls.map(|t| t.cert_pem.clone()),
            metrics,
            shutdown,
            task,
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls_ca.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        let mut ep = tonic::transport::Endpoint::from_shared(self.url()).expect("endpoint");
        if let Some(ca) = &self.tls_ca {
            ep = ep
                .tls_config(
                    tonic::transport::ClientTlsConfig::new()
                        .ca_certificate(tonic::transport::Certificate::from_pem(ca))
                        .domain_name("localhost"),
                )
                .expect("client tls");
        }
        gateway_testkit::eventually("control plane accepting connections", WAIT, || {
            let ep = ep.clone();
            async move { ep.connect().await.ok() }
        })
        .await
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics_text(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.metrics))
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics text")
    }
}

/// The value of the sample whose line starts with `name` (labels included) in Prometheus text.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A bearer-carrying client set for one control plane.
#[derive(Clone)]
pub struct Api {
    channel: Channel,
    bearer: String,
}

impl Api {
    pub async fn login(channel: Channel, api_token: &str) -> Self {
        let jwt = pb::auth_service_client::AuthServiceClient::new(channel.clone())
            .exchange_token(pb::ExchangeTokenRequest {
                api_token: api_token.to_owned(),
            })
            .await
            .expect("token exchange")
            .into_inner()
            .jwt_token;
        Self {
            channel,
            bearer: format!("Bearer {jwt}"),
        }
    }

    pub fn req<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.metadata_mut()
            .insert("authorization", self.bearer.parse().expect("ascii"));
        r
    }

    pub fn webhooks(&self) -> pb::webhook_service_client::WebhookServiceClient<Channel> {
        pb::webhook_service_client::WebhookServiceClient::new(self.channel.clone())
    }
    pub fn triggers(&self) -> pb::trigger_service_client::TriggerServiceClient<Channel> {
        pb::trigger_service_client::TriggerServiceClient::new(self.channel.clone())
    }
    pub fn params(&self) -> pb::config_param_service_client::ConfigParamServiceClient<Channel> {
        pb::config_param_service_client::ConfigParamServiceClient::new(self.channel.clone())
    }
    pub fn admin(&self) -> pb::admin_service_client::AdminServiceClient<Channel> {
        pb::admin_service_client::AdminServiceClient::new(self.channel.clone())
    }
    pub fn actions(&self) -> pb::action_service_client::ActionServiceClient<Channel> {
        pb::action_service_client::ActionServiceClient::new(self.channel.clone())
    }
    pub fn distribution(
        &self,
    ) -> pb::config_distribution_service_client::ConfigDistributionServiceClient<Channel> {
        pb::config_distribution_service_client::ConfigDistributionServiceClient::new(
            self.channel.clone(),
        )
    }

    /// A DATA_PLANE token for `org`.
    pub async fn data_plane_token(&self, org: Uuid) -> String {
        self.admin()
            .create_api_token(self.req(pb::CreateApiTokenRequest {
                organization_id: org.to_string(),
                workspace_id: String::new(),
                role: pb::Role::DataPlane as i32,
                name: "e2e data plane".into(),
            }))
            .await
            .expect("create DATA_PLANE token")
            .into_inner()
            .api_token
    }

    /// Creates a SLACK webhook with `secret`, binds it to a start event, activates it; returns (id, url).
    pub async fn slack_webhook(
        &self,
        app: &pb::AppRef,
        name: &str,
        secret: &str,
    ) -> (String, String) {
        self.active_webhook(app, name, pb::Provider::Slack, secret)
            .await
    }

    /// Creates a webhook of `provider` with signing secret `secret`, binds it to a start event,
    /// activates it; returns (id, url).
    pub async fn active_webhook(
        &self,
        app: &pb::AppRef,
        name: &str,
        provider: pb::Provider,
        secret: &str,
    ) -> (String, String) {
        let wh = self
            .webhooks()
            .create_webhook(self.req(pb::CreateWebhookRequest {
                app: Some(app.clone()),
                name: name.into(),
                provider: provider as i32,
                provider_secret: Some(pb::SetProviderSecretRequest {
                    signing_secret: secret.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }))
            .await
            .expect("create webhook")
            .into_inner();
        let url = self.bind_and_activate(app, name, &wh.id).await;
        (wh.id, url)
    }

    /// Binds webhook `id` to the start event of process `process-{name}`, activates it and returns
    /// its URL.
    pub async fn bind_and_activate(&self, app: &pb::AppRef, name: &str, id: &str) -> String {
        self.triggers()
            .commit_trigger_bindings(self.req(pb::CommitTriggerBindingsRequest {
                app: Some(app.clone()),
                process_definition_id: format!("process-{name}"),
                project_id: "project".into(),
                branch: "main".into(),
                process_version: "1".into(),
                bindings: vec![pb::BindingInput {
                    node_id: "start".into(),
                    node_kind: pb::NodeKind::MessageStartEvent as i32,
                    webhook_id: id.into(),
                    ..Default::default()
                }],
            }))
            .await
            .expect("commit bindings");
        self.triggers()
            .activate_trigger(self.req(pb::ActivateTriggerRequest {
                webhook_id: id.into(),
            }))
            .await
            .expect("activate");
        self.url_of(id).await
    }

    pub async fn url_of(&self, id: &str) -> String {
        self.webhooks()
            .get_webhook_url(self.req(pb::GetWebhookUrlRequest {
                webhook_id: id.into(),
            }))
            .await
            .expect("get url")
            .into_inner()
            .url
    }
}

/// A data plane wired to the control plane(s).
pub struct DataPlane {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl DataPlane {
    pub async fn start(control_plane_url: &str, token: &str, topic: &str, extra: &[&str]) -> Self {
        Self::start_on(
            gateway_testkit::kafka_bootstrap(),
            control_plane_url,
            token,
            topic,
            extra,
        )
        .await
    }

    /// Starts one that publishes to the broker at `bootstrap`.
    pub async fn start_on(
        bootstrap: &str,
        control_plane_url: &str,
        token: &str,
        topic: &str,
        extra: &[&str],
    ) -> Self {
        let public = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let (addr, admin_addr) = (
            public.local_addr().expect("addr"),
            admin.local_addr().expect("addr"),
        );
        let mut args = vec![
            "--kafka-bootstrap",
            bootstrap,
            "--kafka-topic",
            topic,
            "--control-plane-url",
            control_plane_url,
            "--control-plane-token",
            token,
            "--stream-heartbeat-ms",
            "500",
        ];
        args.extend_from_slice(extra);
        let config = data_plane::Config::from_args(args).expect("valid flags");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(data_plane::run(
            config,
            data_plane::Listeners { public, admin },
            shutdown.clone(),
        ));
        Self {
            addr,
            admin: admin_addr,
            shutdown,
            task,
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
    }

    pub async fn ready(&self) -> bool {
        matches!(reqwest::get(format!("http://{}/readyz", self.admin)).await, Ok(r) if r.status() == 200)
    }

    /// The public URL of `url` (as GetWebhookUrl returns it) on this data plane.
    pub fn local(&self, url: &str) -> String {
        let path = url
            .split_once("/webhooks/")
            .map(|(_, p)| p)
            .expect("webhook url");
        format!("http://{}/webhooks/{path}", self.addr)
    }

    /// POSTs a JSON body with `headers`; returns the status (0 when there is no answer).
    pub async fn post_signed(&self, url: &str, headers: &[(&str, String)], body: &str) -> u16 {
        let mut req = reqwest::Client::new()
            .post(self.local(url))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        req.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
    }

    /// POSTs a Slack-signed JSON body; returns the status.
    pub async fn post_slack(&self, url: &str, secret: &str, body: &str) -> u16 {
        let ts = chrono::Utc::now().timestamp().to_string();
        let sig = format!(
            "v0={}",
            hmac_hex(secret, format!("v0:{ts}:{body}").as_bytes())
        );
        let headers = [
            ("x-slack-request-timestamp", ts),
            ("x-slack-signature", sig),
        ];
        self.post_signed(url, &headers, body).await
    }

    /// POSTs a GitHub-signed JSON body (a fresh `X-GitHub-Delivery`); returns the status.
    pub async fn post_github(&self, url: &str, secret: &str, body: &str) -> u16 {
        let headers = [
            ("x-github-delivery", Uuid::new_v4().to_string()),
            (
                "x-hub-signature-256",
                format!("sha256={}", hmac_hex(secret, body.as_bytes())),
            ),
        ];
        self.post_signed(url, &headers, body).await
    }

    /// Polls until a GitHub-signed POST gets `status`.
    pub async fn eventually_github(&self, what: &str, url: &str, secret: &str, status: u16) {
        gateway_testkit::eventually(what, WAIT, || async move {
            (self
                .post_github(url, secret, r#"{"action":"opened"}"#)
                .await
                == status)
                .then_some(())
        })
        .await
    }

    /// The Prometheus text of the admin listener's `/metrics`.
    pub async fn metrics_text(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.admin))
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics text")
    }

    /// Polls until a Slack-signed POST gets `status`.
    pub async fn eventually_slack(&self, what: &str, url: &str, secret: &str, status: u16) {
        gateway_testkit::eventually(what, WAIT, || async move {
            (self
                .post_slack(url, secret, r#"{"type":"event_callback","n":1}"#)
                .await
                == status)
                .then_some(())
        })
        .await
    }
}

/// Hex HMAC-SHA256 of `message` with `secret`.
pub fn hmac_hex(secret: &str, message: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("hmac");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// With the API key in `url` replaced by `key`.
pub fn with_key(url: &str, key: &str) -> String {
    let base = url
        .split_once("?flowxApiKey=")
        .map(|(b, _)| b)
        .expect("url has a key");
    format!("{base}?flowxApiKey={key}")
}

pub fn app(org: Uuid) -> pb::AppRef {
    pb::AppRef {
        organization_id: org.to_string(),
        workspace_id: Uuid::new_v4().to_string(),
        app_id: Uuid::new_v4().to_string(),
    }
}
