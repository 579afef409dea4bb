//! Assembles the gRPC server: health, reflection (v1 and v1alpha), grpc-web, and the API services.

use std::sync::Arc;

use std::time::Duration;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

use tonic::transport::{Identity, Server, ServerTlsConfig};

use gateway_proto::v1::action_service_server::ActionServiceServer;
use gateway_proto::v1::admin_service_server::AdminServiceServer;
use gateway_proto::v1::app_service_server::AppServiceServer;
use gateway_proto::v1::auth_service_server::AuthServiceServer;
use gateway_proto::v1::config_param_service_server::ConfigParamServiceServer;
use gateway_proto::v1::trigger_service_server::TriggerServiceServer;
use gateway_proto::v1::webhook_service_server::WebhookServiceServer;

use gateway_proto::v1::config_distribution_service_server::ConfigDistributionServiceServer;

use crate::actions::service::Actions;
use crate::api::AppState;
use crate::apps::Apps;
use crate::auth::service::TokenService;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::config_params::ConfigParams;
use crate::distribution::{
    Distribution, DistributionService, PgConfigStore, PgPresenceStore, StreamSettings,
    WatcherConfig,
};
use crate::failed_triggers::{FailedTriggerMetrics, FailedTriggers, Replayer};
use crate::triggers::Triggers;
use crate::webhooks::Webhooks;

/// Serves the control plane on `listener` until `shutdown` is cancelled.
pub async fn run(
    mut config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    for warning in config.apply_renamed() {
        tracing::warn!("{warning}");
    }
    let loaded = config.load()?;
    if config.migrate_on_start {
        let applied = crate::db::migrate(&config.database_url).await?;
        tracing::info!(count = applied.len(), "migrations applied");
    }
    let pool = crate::db::pool(&config.database_url, config.db_pool_size)?;
    if let Some((token, org)) = &loaded.bootstrap {
        let mut conn = pool.get().await?;
        if crate::auth::tokens::ensure_bootstrap(&mut conn, token, *org).await? {
            tracing::info!(organization_id = %org, "bootstrap token registered");
        }
    }
    let keyring = Arc::new(loaded.keyring);
    let oidc = crate::auth::oidc::Oidc::load(&config.oidc)
        .await?
        .map(Arc::new);
    if let Some(oidc) = &oidc {
        tracing::info!(?oidc, "accepting OIDC tokens");
    }
    let state = AppState {
        auth: Authenticator::new(loaded.jwt_key, pool.clone(), config.jwt_ttl).with_oidc(oidc),
        pool: pool.clone(),
        keyring: keyring.clone(),
        public_base_url: loaded.public_base_url,
        actions: gateway_outbound::ActionClient::new(loaded.action_policy, 1 << 20)
            .map_err(|e| anyhow::anyhow!(e))?,
    };

    let args = &config.distribution;
    let mut registry = prometheus_client::registry::Registry::default();
    let failed_metrics = FailedTriggerMetrics::register(&mut registry);
    let access_log = crate::access_log::AccessLog::register(&mut registry);
    // rdkafka client creation is synchronous: done here, once, never on a request.
    let replayer = Replayer::new(&config.failed_triggers)?;
    let failed = Arc::new(FailedTriggers::new(
        pool.clone(),
        keyring.clone(),
        &config.failed_triggers,
        failed_metrics.clone(),
        replayer,
    ));
    tokio::spawn(crate::failed_triggers::retention::run(
        pool.clone(),
        (&config.failed_triggers).into(),
        failed_metrics,
        shutdown.clone(),
    ));
    let presence_store = Arc::new(PgPresenceStore::new(pool.clone()));
    let distribution = Distribution::start(
        Arc::new(PgConfigStore::new(pool, keyring)),
        WatcherConfig {
            database_url: config.database_url.clone(),
            poll_interval: args.config_poll_interval.max(Duration::from_millis(10)),
            max_history: crate::distribution::state::DEFAULT_HISTORY,
        },
        &mut registry,
        shutdown.clone(),
    );
    let heartbeat = args.stream_heartbeat.max(Duration::from_millis(100));
    // The fleet count behind rate-limit shares is refreshed every heartbeat interval.
    tokio::spawn(
        distribution
            .presence()
            .run(presence_store, heartbeat, shutdown.clone()),
    );
    let distribution_service = distribution.service(
        StreamSettings {
            heartbeat,
            chunk_size: args.snapshot_chunk.max(1),
            compression: args.stream_compression,
        },
        state.auth.clone(),
        failed.clone(),
    );
    if let Some(addr) = args.metrics_listen {
        let admin = TcpListener::bind(addr).await?;
        tracing::info!(addr = %admin.local_addr()?, "admin listener (/metrics, /healthz)");
        tokio::spawn(crate::metrics::serve(
            admin,
            Arc::new(registry),
            shutdown.clone(),
        ));
    }

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<AuthServiceServer<TokenService>>()
        .await;
    health_reporter
        .set_serving::<AdminServiceServer<TokenService>>()
        .await;
    health_reporter
        .set_serving::<WebhookServiceServer<Webhooks>>()
        .await;
    health_reporter
        .set_serving::<ActionServiceServer<Actions>>()
        .await;
    health_reporter
        .set_serving::<TriggerServiceServer<Triggers>>()
        .await;
    health_reporter
        .set_serving::<ConfigParamServiceServer<ConfigParams>>()
        .await;
    health_reporter
        .set_serving::<AppServiceServer<Apps>>()
        .await;
    health_reporter
        .set_serving::<ConfigDistributionServiceServer<DistributionService>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(gateway_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // google.rpc.ErrorInfo, so grpcurl can print the reason of an error.
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(gateway_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let tokens = TokenService::new(state.clone());
    let local = listener.local_addr()?;
    let mut builder = Server::builder();
    match (&args.tls_cert_file, &args.tls_key_file) {
        (Some(cert), Some(key)) => {
            let identity = Identity::from_pem(std::fs::read(cert)?, std::fs::read(key)?);
            builder = builder.tls_config(ServerTlsConfig::new().identity(identity))?;
            tracing::info!(addr = %local, "control plane listening (TLS)");
        }
        _ if local.ip().is_loopback() => {
            tracing::info!(addr = %local, "control plane listening (plaintext, loopback)")
        }
        _ => {
            tracing::warn!(addr = %local, "control plane listening in PLAINTEXT on a non-loopback address: the config stream carries secrets; set CP_TLS_CERT_FILE and CP_TLS_KEY_FILE unless a mesh encrypts this hop")
        }
    }
    if let Some(dir) = &config.console_dir {
        tracing::info!(dir = %dir.display(), "serving the console on the gRPC listener");
    }
    let server = builder
        .accept_http1(true)
        // Plain GETs for the console's files; gRPC and grpc-web calls go on (docs/console.md).
        .layer(crate::console::ConsoleLayer::new(
            config.console_dir.clone(),
        ))
        .layer(tonic_web::GrpcWebLayer::new())
        // Inside grpc-web's translation, so it sees every call's status in gRPC form.
        .layer(access_log)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(AuthServiceServer::new(tokens.clone()))
        .add_service(AdminServiceServer::new(tokens))
        .add_service(WebhookServiceServer::new(Webhooks::new(state.clone())))
        .add_service(TriggerServiceServer::new(Triggers::new(
            state.clone(),
            failed,
        )))
        .add_service(AppServiceServer::new(Apps::new(state.clone())))
        .add_service(ActionServiceServer::new(Actions::new(state.clone())))
        .add_service(ConfigParamServiceServer::new(ConfigParams::new(state)))
        .add_service(distribution_service)
        .serve_with_incoming_shutdown(
            TcpListenerStream::new(listener),
            shutdown.clone().cancelled_owned(),
        );
    // After SIGTERM the server stops accepting and waits for in-flight calls (config streams end
    // on the same signal); whatever still runs after the grace period is cut.
    let grace = config.shutdown_grace;
    tokio::select! {
        served = server => served?,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_secs = grace.as_secs(), "calls still running after the shutdown grace period; closing them");
        }
    }
    tracing::info!("control plane stopped");
    Ok(())
}
