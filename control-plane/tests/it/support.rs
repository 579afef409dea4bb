//! Starting a control plane for a test, and clients that carry a bearer token.

use std::net::SocketAddr;

use gateway_proto::v1 as pb;
use gateway_shared::crypto::Keyring;
use gateway_shared::Secret;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

/// The master keyring every test control plane uses (id `k1`).
pub const TEST_MASTER_KEYS: &str = "k1=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// The public base URL of test control planes.
pub const TEST_BASE_URL: &str = "https://hooks.test.example";
/// The bootstrap token of test control planes (ADMIN of [`TestControlPlane::org`]).
pub const BOOTSTRAP_TOKEN: &str = "gwt_test-bootstrap-token-0123456789";

/// A control plane serving on a loopback port with its own fresh database.
pub struct TestControlPlane {
    pub addr: SocketAddr,
    #[allow(dead_code)]
    pub database_url: String,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// The organization the bootstrap token administers.
    #[allow(dead_code)]
    pub org: Uuid,
}

/// The configuration tests use, against `database_url`.
pub fn test_config(addr: SocketAddr, database_url: &str, org: Uuid) -> control_plane::Config {
    control_plane::Config {
        listen: addr,
        migrate_on_start: true,
        db_pool_size: 4,
        shutdown_grace: std::time::Duration::from_secs(5),
        keys: control_plane::config::KeyringArgs {
            master_keys: Some(Secret::new(TEST_MASTER_KEYS.to_owned())),
            ..Default::default()
        },
        jwt_signing_key: Some(Secret::new(
            "test-jwt-signing-key-of-at-least-32-bytes".to_owned(),
        )),
        public_base_url: Some(TEST_BASE_URL.to_owned()),
        bootstrap_token: Some(Secret::new(BOOTSTRAP_TOKEN.to_owned())),
        bootstrap_organization_id: Some(org),
        ..control_plane::Config::new(database_url)
    }
}

/// The keyring of [`TEST_MASTER_KEYS`].
#[allow(dead_code)]
pub fn test_keyring() -> Keyring {
    Keyring::parse(TEST_MASTER_KEYS, None).expect("test keyring parses")
}

impl TestControlPlane {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts one with the test configuration changed by `change`.
    pub async fn start_with(change: impl FnOnce(&mut control_plane::Config)) -> Self {
        let db = gateway_testkit::fresh_database().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let org = Uuid::new_v4();
        let mut config = test_config(addr, &db.url, org);
        change(&mut config);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(control_plane::run(config, listener, shutdown.clone()));
        Self {
            addr,
            database_url: db.url,
            shutdown,
            task,
            org,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        let endpoint =
            tonic::transport::Endpoint::from_shared(self.endpoint()).expect("valid endpoint");
        gateway_testkit::eventually(
            "control plane accepting connections",
            std::time::Duration::from_secs(20),
            || {
                let endpoint = endpoint.clone();
                async move { endpoint.connect().await.ok() }
            },
        )
        .await
    }
}

/// Adds `authorization: Bearer …` to every call.
#[derive(Clone)]
pub struct Bearer(pub tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

pub type Authed = InterceptedService<Channel, Bearer>;

/// Clients of every service, authenticated with one JWT.
#[allow(dead_code)]
pub struct Clients {
    pub admin: pb::admin_service_client::AdminServiceClient<Authed>,
    pub webhooks: pb::webhook_service_client::WebhookServiceClient<Authed>,
    pub triggers: pb::trigger_service_client::TriggerServiceClient<Authed>,
    pub params: pb::config_param_service_client::ConfigParamServiceClient<Authed>,
}

/// Exchanges `api_token` for a JWT.
pub async fn exchange(channel: &Channel, api_token: &str) -> Result<String, tonic::Status> {
    let resp = pb::auth_service_client::AuthServiceClient::new(channel.clone())
        .exchange_token(pb::ExchangeTokenRequest {
            api_token: api_token.to_owned(),
        })
        .await?;
    Ok(resp.into_inner().jwt_token)
}

/// Clients carrying `jwt`.
pub fn clients_with_jwt(channel: &Channel, jwt: &str) -> Clients {
    let bearer = Bearer(format!("Bearer {jwt}").parse().expect("ascii header"));
    Clients {
        admin: pb::admin_service_client::AdminServiceClient::with_interceptor(
            channel.clone(),
            bearer.clone(),
        ),
        webhooks: pb::webhook_service_client::WebhookServiceClient::with_interceptor(
            channel.clone(),
            bearer.clone(),
        ),
        triggers: pb::trigger_service_client::TriggerServiceClient::with_interceptor(
            channel.clone(),
            bearer.clone(),
        ),
        params: pb::config_param_service_client::ConfigParamServiceClient::with_interceptor(
            channel.clone(),
            bearer,
        ),
    }
}

/// Clients authenticated with `api_token`.
pub async fn clients(channel: &Channel, api_token: &str) -> Clients {
    let jwt = exchange(channel, api_token)
        .await
        .expect("token exchange succeeds");
    clients_with_jwt(channel, &jwt)
}

/// Creates an API token with the bootstrap ADMIN and returns its text.
#[allow(dead_code)]
pub async fn create_token(
    admin: &Clients,
    org: Uuid,
    workspace: Option<Uuid>,
    role: pb::Role,
) -> String {
    admin
        .admin
        .clone()
        .create_api_token(pb::CreateApiTokenRequest {
            organization_id: org.to_string(),
            workspace_id: workspace.map(|w| w.to_string()).unwrap_or_default(),
            role: role as i32,
            name: format!("{role:?}"),
        })
        .await
        .expect("token created")
        .into_inner()
        .api_token
}

/// The reason of the ErrorInfo in a status.
#[allow(dead_code)]
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

/// Asserts `result` failed with `code` and `reason`.
#[allow(dead_code)]
#[track_caller]
pub fn assert_err<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
    expected_reason: &str,
) -> tonic::Status {
    let status = result.expect_err("the call must fail");
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(&status), expected_reason, "{status:?}");
    status
}

/// An API token of another organization `org` (made with the bootstrap-token code path, since the
/// bootstrap ADMIN cannot create tokens outside its own organization).
#[allow(dead_code)]
pub async fn foreign_token(
    cp: &TestControlPlane,
    org: Uuid,
    role: control_plane::auth::Role,
) -> String {
    control_plane::auth::tokens::issue(&cp.database_url, org.into(), None, role, "foreign")
        .await
        .expect("insert token")
        .0
        .expose()
        .clone()
}

/// A ConfigDistributionService client carrying `jwt`.
#[allow(dead_code)]
pub fn distribution_client(
    channel: &Channel,
    jwt: &str,
) -> pb::config_distribution_service_client::ConfigDistributionServiceClient<Authed> {
    let bearer = Bearer(format!("Bearer {jwt}").parse().expect("ascii header"));
    pb::config_distribution_service_client::ConfigDistributionServiceClient::with_interceptor(
        channel.clone(),
        bearer,
    )
}

/// A free loopback port for an admin (`/metrics`) listener.
#[allow(dead_code)]
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], gateway_testkit::free_port()))
}

/// The Prometheus text of the admin listener at `addr` (plain HTTP/1.0, no client library needed).
#[allow(dead_code)]
pub async fn scrape(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the admin listener");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .expect("send request");
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .await
        .expect("read response");
    text
}

/// A fresh app in `org`.
#[allow(dead_code)]
pub fn app(org: Uuid) -> pb::AppRef {
    pb::AppRef {
        organization_id: org.to_string(),
        workspace_id: Uuid::new_v4().to_string(),
        app_id: Uuid::new_v4().to_string(),
    }
}
