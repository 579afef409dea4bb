//! Starting a control plane for a test.

use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;

/// A control plane serving on a loopback port with its own fresh database.
pub struct TestControlPlane {
    pub addr: SocketAddr,
    #[allow(dead_code)]
    pub database_url: String,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestControlPlane {
    pub async fn start() -> Self {
        let db = gateway_testkit::fresh_database().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let config = control_plane::Config {
            listen: addr,
            database_url: db.url.clone(),
            migrate_on_start: true,
            db_pool_size: 4,
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(control_plane::run(config, listener, shutdown.clone()));
        Self { addr, database_url: db.url, shutdown, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> tonic::transport::Channel {
        let endpoint = tonic::transport::Endpoint::from_shared(self.endpoint()).expect("valid endpoint");
        gateway_testkit::eventually("control plane accepting connections", std::time::Duration::from_secs(20), || {
            let endpoint = endpoint.clone();
            async move { endpoint.connect().await.ok() }
        })
        .await
    }
}
