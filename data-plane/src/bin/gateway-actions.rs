//! `gateway-actions`: produce an invocation record and read result records, for trying the
//! dispatcher by hand and for smoke tests (docs/dispatcher.md, "Trying it").
//!
//!   gateway-actions invoke --app-id … --action send_email --parameters '{"to":"a@b.c"}'
//!   gateway-actions results --request-id …

use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::Message;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(
    name = "gateway-actions",
    version,
    about = "Produce action invocations and read their results"
)]
struct Cli {
    /// Kafka bootstrap servers.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    bootstrap: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Produce one invocation record; prints its requestId.
    Invoke {
        /// Invocation topic.
        #[arg(
            long,
            env = "ACTION_INVOCATIONS_TOPIC",
            default_value = "webhook-gateway.action-invocations"
        )]
        topic: String,
        /// `Fx-Organization-Id`.
        #[arg(long, env = "ORGANIZATION_ID")]
        organization_id: String,
        /// `Fx-Workspace-Id`.
        #[arg(long, env = "WORKSPACE_ID")]
        workspace_id: String,
        /// `Fx-App-Id`.
        #[arg(long, env = "APP_ID")]
        app_id: String,
        /// The action's name.
        #[arg(long)]
        action: String,
        /// The parameters, a JSON object.
        #[arg(long, default_value = "{}")]
        parameters: String,
        /// The requestId (default: a new UUID).
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Print result records as JSON lines (headers included): with `--request-id` only that
    /// request's, once it arrives; without it every record that arrives within `--wait`.
    Results {
        /// Result topic.
        #[arg(
            long,
            env = "ACTION_RESULTS_TOPIC",
            default_value = "webhook-gateway.action-results"
        )]
        topic: String,
        /// Stop after the result of this requestId.
        #[arg(long)]
        request_id: Option<String>,
        /// Longest wait.
        #[arg(long, default_value = "30s", value_parser = gateway_shared::settings::parse_duration)]
        wait: Duration,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Invoke {
            topic,
            organization_id,
            workspace_id,
            app_id,
            action,
            parameters,
            request_id,
        } => {
            let parameters: Value = serde_json::from_str(&parameters)
                .map_err(|e| anyhow::anyhow!("--parameters is not JSON: {e}"))?;
            let request_id = request_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let value =
                json!({"requestId": request_id, "actionName": action, "parameters": parameters});
            let producer: FutureProducer = ClientConfig::new()
                .set("bootstrap.servers", &cli.bootstrap)
                .set("acks", "all")
                .create()?;
            let mut headers = OwnedHeaders::new();
            for (key, v) in [
                ("Fx-Organization-Id", &organization_id),
                ("Fx-Workspace-Id", &workspace_id),
                ("Fx-App-Id", &app_id),
            ] {
                headers = headers.insert(Header {
                    key,
                    value: Some(v.as_bytes()),
                });
            }
            let payload = value.to_string();
            producer
                .send(
                    FutureRecord::to(&topic)
                        .key(&request_id)
                        .payload(&payload)
                        .headers(headers),
                    Timeout::After(Duration::from_secs(10)),
                )
                .await
                .map_err(|(e, _)| anyhow::anyhow!("producing to {topic}: {e}"))?;
            println!("{request_id}");
        }
        Command::Results {
            topic,
            request_id,
            wait,
        } => {
            let consumer: StreamConsumer = ClientConfig::new()
                .set("bootstrap.servers", &cli.bootstrap)
                .set(
                    "group.id",
                    format!("gateway-actions-{}", uuid::Uuid::new_v4().simple()),
                )
                .set("auto.offset.reset", "earliest")
                .set("enable.auto.commit", "false")
                .create()?;
            consumer.subscribe(&[&topic])?;
            let deadline = Instant::now() + wait;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let Ok(message) = tokio::time::timeout(left, consumer.recv()).await else {
                    if request_id.is_some() {
                        anyhow::bail!("no result for that requestId on {topic} within {wait:?}");
                    }
                    return Ok(());
                };
                let message = message?;
                let value: Value = serde_json::from_slice(message.payload().unwrap_or_default())
                    .unwrap_or(Value::Null);
                let headers: serde_json::Map<String, Value> = message
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_owned(),
                                    Value::String(
                                        String::from_utf8_lossy(h.value.unwrap_or_default())
                                            .into_owned(),
                                    ),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                match request_id.as_deref() {
                    None => println!("{}", json!({"headers": headers, "value": value})),
                    Some(id) if value["requestId"] == id => {
                        println!("{}", json!({"headers": headers, "value": value}));
                        return Ok(());
                    }
                    Some(_) => {}
                }
            }
        }
    }
    Ok(())
}
