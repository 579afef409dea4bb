//! ReplayFailedTrigger: publishes a stored payload again as a new event, with the webhook's current
//! bindings, through the control plane's own producer (acks=all, idempotent, a delivery deadline).

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::FailedTriggerArgs;

/// The replay producer.
pub struct Replayer {
    producer: FutureProducer,
    topic: String,
    deadline: Duration,
}

impl Replayer {
    /// Creates the producer when Kafka is configured (no network I/O yet: librdkafka connects in
    /// the background). Called at start-up, never on a request.
    pub fn new(args: &FailedTriggerArgs) -> anyhow::Result<Option<Replayer>> {
        let Some(bootstrap) = &args.kafka_bootstrap else {
            return Ok(None);
        };
        let mut cc = ClientConfig::new();
        for (k, v) in &args.kafka_properties {
            cc.set(k, v);
        }
        cc.set("bootstrap.servers", bootstrap)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            // librdkafka gives up at the same deadline the RPC waits, so a replay answered
            // UNAVAILABLE is not written later.
            .set(
                "message.timeout.ms",
                args.kafka_produce_timeout.as_millis().to_string(),
            );
        if !args.kafka_properties.iter().any(|(k, _)| k == "client.id") {
            cc.set("client.id", "webhook-gateway-control-plane");
        }
        Ok(Some(Replayer {
            producer: cc.create()?,
            topic: args.kafka_topic.clone(),
            deadline: args.kafka_produce_timeout,
        }))
    }

    /// Publishes one record and waits for the broker's acknowledgement or the deadline.
    pub async fn publish(
        &self,
        key: &str,
        value: &[u8],
        headers: &[(&str, String)],
    ) -> Result<(), String> {
        let mut h = OwnedHeaders::new_with_capacity(headers.len());
        for (name, value) in headers {
            h = h.insert(Header {
                key: name,
                value: Some(value.as_bytes()),
            });
        }
        let record = FutureRecord::to(&self.topic)
            .key(key.as_bytes())
            .payload(value)
            .headers(h);
        let outer = self.deadline + Duration::from_millis(500);
        match tokio::time::timeout(outer, self.producer.send(record, self.deadline)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no broker acknowledgement within {:?}",
                self.deadline
            )),
        }
    }
}

impl super::FailedTriggers {
    /// Replays a failed trigger (placeholder until the shared envelope lands).
    pub async fn replay(
        &self,
        caller: &crate::auth::Caller,
        _req: gateway_proto::v1::ReplayFailedTriggerRequest,
    ) -> crate::error::ApiResult<gateway_proto::v1::ReplayFailedTriggerResponse> {
        caller.require(crate::auth::Permission::Write)?;
        let _ = (&self.keyring, &self.replayer);
        Err(crate::error::ApiError::precondition(
            "REPLAY_NOT_CONFIGURED",
            "replay is not available",
        ))
    }
}
