//! Applying what the config stream delivers: snapshot chunks are assembled and applied on the last
//! one, deltas at once; each update is answered with an ACK, or a NACK that leaves the served config
//! as it was (docs/data-plane.md, "Config stream").

use std::time::Instant;

use gateway_proto::v1::{
    data_plane_message, Ack, ActionRoute, DataPlaneRole, Delta, HmacKeyRoute, Nack, SnapshotChunk,
};
use gateway_shared::snapshot::{ConfigDelta, ConfigSnapshot, WebhookConfig};
use gateway_shared::WebhookId;

use super::client::{ConfigSink, DispatchDelta, DispatchSnapshot, SnapshotStage};

/// A snapshot being received chunk by chunk.
pub(super) struct Assembly {
    nonce: String,
    version: u64,
    next_index: u32,
    webhooks: Vec<WebhookConfig>,
    /// Where the webhooks go as they arrive, when the sink builds its table chunk by chunk.
    stage: Option<Box<dyn SnapshotStage>>,
    actions: Vec<ActionRoute>,
    hmac_keys: Vec<HmacKeyRoute>,
    error: Option<String>,
}

pub(super) fn on_chunk(
    chunk: SnapshotChunk,
    assembly: &mut Option<Assembly>,
    sink: &dyn ConfigSink,
) -> Option<data_plane_message::Kind> {
    if chunk.chunk_index == 0 {
        *assembly = Some(Assembly {
            nonce: chunk.nonce.clone(),
            version: chunk.version,
            next_index: 0,
            webhooks: Vec::new(),
            stage: sink.stage_snapshot(),
            actions: Vec::new(),
            hmac_keys: Vec::new(),
            error: None,
        });
    }
    let Some(a) = assembly
        .as_mut()
        .filter(|a| a.nonce == chunk.nonce && a.next_index == chunk.chunk_index)
    else {
        *assembly = None;
        return Some(nack(
            chunk.version,
            chunk.nonce,
            "snapshot chunk out of order".into(),
            sink,
        ));
    };
    a.next_index += 1;
    a.actions.extend(chunk.actions);
    a.hmac_keys.extend(chunk.hmac_keys);
    if a.error.is_none() {
        let converted = chunk
            .webhooks
            .into_iter()
            .map(WebhookConfig::try_from)
            .collect::<Result<Vec<_>, _>>();
        let staged = match (converted, a.stage.as_mut()) {
            (Ok(webhooks), Some(stage)) => stage.add(webhooks),
            (Ok(webhooks), None) => {
                a.webhooks.extend(webhooks);
                Ok(())
            }
            (Err(e), _) => Err(e.to_string()),
        };
        if let Err(reason) = staged {
            a.error = Some(reason);
            a.stage = None;
        }
    }
    if !chunk.last {
        return None;
    }
    let a = assembly.take()?;
    if let Some(reason) = a.error {
        return Some(nack(a.version, a.nonce, reason, sink));
    }
    let started = Instant::now();
    let applied = match sink.role() {
        DataPlaneRole::Dispatch => sink.apply_dispatch_snapshot(DispatchSnapshot {
            version: a.version,
            actions: a.actions,
            hmac_keys: a.hmac_keys,
        }),
        DataPlaneRole::Ingest => match a.stage {
            Some(stage) => stage.finish(a.version),
            None => sink.apply_snapshot(ConfigSnapshot {
                version: a.version,
                webhooks: a.webhooks,
            }),
        },
    };
    match applied {
        Ok(()) => Some(ack(a.version, a.nonce, started)),
        Err(reason) => Some(nack(a.version, a.nonce, reason, sink)),
    }
}

pub(super) fn on_delta(delta: Delta, sink: &dyn ConfigSink) -> data_plane_message::Kind {
    if sink.role() == DataPlaneRole::Dispatch {
        let started = Instant::now();
        let applied = sink.apply_dispatch_delta(DispatchDelta {
            from_version: delta.from_version,
            to_version: delta.version,
            action_upserts: delta.action_upserts,
            action_removals: delta.action_removals,
            hmac_key_upserts: delta.hmac_key_upserts,
            hmac_key_removals: delta.hmac_key_removals,
        });
        return match applied {
            Ok(()) => ack(delta.version, delta.nonce, started),
            Err(reason) => nack(delta.version, delta.nonce, reason, sink),
        };
    }
    let mut upserts = Vec::with_capacity(delta.upserts.len());
    for route in delta.upserts {
        match WebhookConfig::try_from(route) {
            Ok(w) => upserts.push(w),
            Err(e) => return nack(delta.version, delta.nonce, e.to_string(), sink),
        }
    }
    let mut removals = Vec::with_capacity(delta.removals.len());
    for id in &delta.removals {
        match id.parse::<WebhookId>() {
            Ok(id) => removals.push(id),
            Err(_) => {
                return nack(
                    delta.version,
                    delta.nonce,
                    "removal names an invalid webhook id".into(),
                    sink,
                )
            }
        }
    }
    let started = Instant::now();
    match sink.apply_delta(ConfigDelta {
        from_version: delta.from_version,
        to_version: delta.version,
        upserts,
        removals,
    }) {
        Ok(()) => ack(delta.version, delta.nonce, started),
        Err(reason) => nack(delta.version, delta.nonce, reason, sink),
    }
}

fn ack(version: u64, nonce: String, started: Instant) -> data_plane_message::Kind {
    data_plane_message::Kind::Ack(Ack {
        version,
        nonce,
        apply_micros: started.elapsed().as_micros() as u64,
    })
}

fn nack(
    version: u64,
    nonce: String,
    reason: String,
    sink: &dyn ConfigSink,
) -> data_plane_message::Kind {
    data_plane_message::Kind::Nack(Nack {
        version,
        nonce,
        reason,
        serving_version: sink.version(),
    })
}

#[cfg(test)]
mod tests {
    use gateway_proto::v1::WebhookRoute;
    use gateway_shared::snapshot::{ApiKeyHash, ProviderSecrets, WebhookOptions};
    use gateway_shared::{AppId, OrganizationId, Provider, WorkspaceId};

    use super::*;
    use crate::distribution::RoutesSink;
    use crate::routing::Routes;

    fn route() -> WebhookRoute {
        WebhookRoute::from(&WebhookConfig {
            webhook_id: WebhookId::new_random(),
            organization_id: OrganizationId::new_random(),
            workspace_id: WorkspaceId::new_random(),
            app_id: AppId::new_random(),
            provider: Provider::Generic,
            api_keys: vec![ApiKeyHash::of("k")],
            secrets: ProviderSecrets::default(),
            bindings: vec![],
            correlation_key_path: None,
            options: WebhookOptions::default(),
        })
    }

    fn chunk(
        version: u64,
        nonce: &str,
        index: u32,
        last: bool,
        webhooks: Vec<WebhookRoute>,
    ) -> SnapshotChunk {
        SnapshotChunk {
            version,
            nonce: nonce.into(),
            chunk_index: index,
            last,
            webhooks,
            committed_at_unix_ms: 0,
            ..Default::default()
        }
    }

    fn delta(from: u64, to: u64, upserts: Vec<WebhookRoute>) -> Delta {
        Delta {
            version: to,
            nonce: format!("d{to}"),
            from_version: from,
            upserts,
            removals: vec![],
            committed_at_unix_ms: 0,
            ..Default::default()
        }
    }

    #[test]
    fn chunked_snapshot_applies_on_its_last_chunk_and_is_acked() {
        let sink = RoutesSink::new(Routes::new(), true);
        let mut assembly = None;
        assert!(on_chunk(chunk(5, "n", 0, false, vec![route()]), &mut assembly, &sink).is_none());
        assert_eq!(
            sink.version(),
            0,
            "nothing is applied before the last chunk"
        );
        let answer = on_chunk(chunk(5, "n", 1, true, vec![route()]), &mut assembly, &sink);
        assert!(
            matches!(answer, Some(data_plane_message::Kind::Ack(Ack { version: 5, ref nonce, .. })) if nonce == "n")
        );
        assert_eq!(sink.version(), 5);
        assert_eq!(sink.snapshot().webhooks.len(), 2);
    }

    #[test]
    fn bad_updates_are_nacked_and_the_last_good_config_stays() {
        let sink = RoutesSink::new(Routes::new(), true);
        let mut assembly = None;
        on_chunk(chunk(5, "n", 0, true, vec![route()]), &mut assembly, &sink);
        assert_eq!(sink.version(), 5);

        // a delta that does not start at the served version
        match on_delta(delta(4, 6, vec![route()]), &sink) {
            data_plane_message::Kind::Nack(n) => {
                assert_eq!((n.version, n.serving_version), (6, 5));
                assert!(!n.reason.is_empty());
            }
            other => panic!("expected a nack, got {other:?}"),
        }
        // a route naming a provider this build does not know (fail closed)
        let mut unknown = route();
        unknown.provider = 99;
        assert!(matches!(
            on_delta(delta(5, 6, vec![unknown.clone()]), &sink),
            data_plane_message::Kind::Nack(_)
        ));
        // a snapshot chunk out of order, and a snapshot with a bad route
        assert!(matches!(
            on_chunk(chunk(7, "m", 1, true, vec![route()]), &mut assembly, &sink),
            Some(data_plane_message::Kind::Nack(_))
        ));
        assert!(matches!(
            on_chunk(
                chunk(7, "m", 0, true, vec![route(), unknown]),
                &mut assembly,
                &sink
            ),
            Some(data_plane_message::Kind::Nack(Nack {
                serving_version: 5,
                ..
            }))
        ));
        assert_eq!(
            sink.version(),
            5,
            "every rejected update left the config as it was"
        );
        assert_eq!(sink.snapshot().webhooks.len(), 1);

        // a good delta still applies afterwards
        assert!(matches!(
            on_delta(delta(5, 6, vec![route()]), &sink),
            data_plane_message::Kind::Ack(_)
        ));
        assert_eq!(sink.snapshot().webhooks.len(), 2);
    }

    mod props {
        use proptest::prelude::*;
        use prost::Message;

        use super::*;

        /// A sink serving version 5 with one webhook, and the encoding of a good delta from it.
        fn served() -> (RoutesSink, Vec<u8>, Vec<u8>) {
            let sink = RoutesSink::new(Routes::new(), true);
            let mut assembly = None;
            on_chunk(chunk(5, "n", 0, true, vec![route()]), &mut assembly, &sink);
            let mut upsert = route();
            upsert.correlation_key_path = Some("data.order.id".into());
            let delta = delta(5, 6, vec![upsert, route()]).encode_to_vec();
            let chunk = chunk(9, "s", 0, true, vec![route(), route()]).encode_to_vec();
            (sink, delta, chunk)
        }

        /// Flips, drops and inserts bytes of a valid encoding.
        fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
            for &(at, op, byte) in edits {
                if bytes.is_empty() {
                    bytes.push(byte);
                    continue;
                }
                let at = at % bytes.len();
                match op % 3 {
                    0 => bytes[at] ^= byte | 1,
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, byte),
                }
            }
            bytes
        }

        fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
            proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1024))]

            /// Whatever arrives on the stream, the data plane answers ACK or NACK without
            /// panicking, and a NACK leaves the served config exactly as it was.
            #[test]
            fn damaged_deltas_and_chunks_never_panic_and_a_nack_changes_nothing(
                delta_edits in edits(),
                chunk_edits in edits(),
            ) {
                let (sink, delta, chunk) = served();
                let before = sink.snapshot().webhooks.len();
                if let Ok(d) = Delta::decode(mutate(delta, &delta_edits).as_slice()) {
                    if let data_plane_message::Kind::Nack(n) = on_delta(d, &sink) {
                        prop_assert_eq!(n.serving_version, 5);
                        prop_assert_eq!(sink.version(), 5);
                        prop_assert_eq!(sink.snapshot().webhooks.len(), before);
                    }
                }
                let served_now = sink.version();
                let count_now = sink.snapshot().webhooks.len();
                if let Ok(c) = SnapshotChunk::decode(mutate(chunk, &chunk_edits).as_slice()) {
                    let mut assembly = None;
                    if let Some(data_plane_message::Kind::Nack(_)) = on_chunk(c, &mut assembly, &sink) {
                        prop_assert_eq!(sink.version(), served_now);
                        prop_assert_eq!(sink.snapshot().webhooks.len(), count_now);
                    }
                }
            }

            #[test]
            fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                let (sink, _, _) = served();
                if let Ok(d) = Delta::decode(bytes.as_slice()) {
                    let _ = on_delta(d, &sink);
                }
                if let Ok(c) = SnapshotChunk::decode(bytes.as_slice()) {
                    let _ = on_chunk(c, &mut None, &sink);
                }
            }
        }
    }
}
