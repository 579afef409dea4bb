//! Turns planned updates into config-stream messages: snapshot chunks and deltas.

use gateway_proto::v1::{ActionRoute, Delta, HmacKeyRoute, SnapshotChunk, WebhookRoute};
use gateway_shared::snapshot::WebhookConfig;

use super::state::{DeltaPlan, SnapshotPlan};

/// The chunks of a snapshot, each holding at most `chunk_size` objects (webhooks, actions and keys
/// together, in that order), with `chunk_index` and `last` set; version, nonce and commit time are
/// left to the caller. An empty config is still one (empty, last) chunk. Chunks are built as they
/// are taken, so a session holds one chunk at a time and the first is on the wire while the others
/// are still to be encoded.
pub(crate) fn snapshot_chunks(
    plan: &SnapshotPlan,
    chunk_size: usize,
    binary_ids: bool,
) -> impl Iterator<Item = SnapshotChunk> + '_ {
    let size = chunk_size.max(1);
    let objects = plan.webhooks.len() + plan.actions.len() + plan.hmac_keys.len();
    let total = objects.div_ceil(size).max(1);
    (0..total).map(move |index| {
        let start = index * size;
        let end = (start + size).min(objects);
        // The part of `start..end` that falls in a list placed at `offset..offset + len`.
        let part = |offset: usize, len: usize| {
            start.clamp(offset, offset + len) - offset..end.clamp(offset, offset + len) - offset
        };
        let w = plan.webhooks.len();
        let a = plan.actions.len();
        SnapshotChunk {
            chunk_index: u32::try_from(index).unwrap_or(u32::MAX),
            last: index + 1 == total,
            webhooks: plan.webhooks[part(0, w)]
                .iter()
                .map(|w| route(w, binary_ids))
                .collect(),
            actions: plan.actions[part(w, a)]
                .iter()
                .map(|a| ActionRoute::from(a.as_ref()))
                .collect(),
            hmac_keys: plan.hmac_keys[part(w + a, plan.hmac_keys.len())]
                .iter()
                .map(|k| HmacKeyRoute::from(k.as_ref()))
                .collect(),
            ..Default::default()
        }
    })
}

/// A webhook's route, with 16-byte ids for a data plane that reads them (Hello `binary_ids`).
fn route(w: &WebhookConfig, binary_ids: bool) -> WebhookRoute {
    if binary_ids {
        gateway_proto::convert::binary_id_route(w)
    } else {
        WebhookRoute::from(w)
    }
}

/// The delta message of `plan`; version, nonce, base version and commit time are left to the caller.
pub(crate) fn delta(plan: &DeltaPlan, binary_ids: bool) -> Delta {
    Delta {
        upserts: plan.upserts.iter().map(|w| route(w, binary_ids)).collect(),
        removals: plan.removals.iter().map(|id| id.to_string()).collect(),
        action_upserts: plan
            .action_upserts
            .iter()
            .map(|a| ActionRoute::from(a.as_ref()))
            .collect(),
        action_removals: plan
            .action_removals
            .iter()
            .map(|id| id.to_string())
            .collect(),
        hmac_key_upserts: plan
            .hmac_key_upserts
            .iter()
            .map(|k| HmacKeyRoute::from(k.as_ref()))
            .collect(),
        hmac_key_removals: plan
            .hmac_key_removals
            .iter()
            .map(|id| id.to_string())
            .collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use gateway_shared::Secret;
    use uuid::Uuid;

    use super::*;
    use crate::actions::routes::{ActionConfig, HmacKeyConfig};
    use crate::scope::AppScope;

    fn app() -> AppScope {
        AppScope::from_uuids(Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4())
    }

    #[test]
    fn chunks_hold_at_most_chunk_size_objects_of_every_kind() {
        let plan = SnapshotPlan {
            webhooks: vec![],
            actions: (0..3)
                .map(|i| {
                    Arc::new(ActionConfig {
                        action_id: Uuid::new_v4(),
                        scope: app(),
                        name: format!("a{i}"),
                        webhook_url: "https://x.example/".into(),
                        json_schema: "{}".into(),
                    })
                })
                .collect(),
            hmac_keys: (0..2)
                .map(|_| {
                    Arc::new(HmacKeyConfig {
                        key_id: Uuid::new_v4(),
                        scope: app(),
                        value: Secret::new("v".into()),
                        created_at_ms: 5,
                    })
                })
                .collect(),
        };
        let chunks: Vec<SnapshotChunk> = snapshot_chunks(&plan, 2, false).collect();
        let sizes: Vec<(usize, usize)> = chunks
            .iter()
            .map(|c| (c.actions.len(), c.hmac_keys.len()))
            .collect();
        assert_eq!(sizes, vec![(2, 0), (1, 1), (0, 1)]);
        assert_eq!(
            chunks.iter().map(|c| c.last).collect::<Vec<_>>(),
            vec![false, false, true]
        );
        assert_eq!(chunks[2].chunk_index, 2);
        assert_eq!(chunks[1].hmac_keys[0].value, "v");
        assert_eq!(chunks[1].hmac_keys[0].created_at_unix_ms, 5);

        let empty: Vec<SnapshotChunk> =
            snapshot_chunks(&SnapshotPlan::default(), 2, true).collect();
        assert_eq!(empty.len(), 1);
        assert!(empty[0].last);
    }
}
