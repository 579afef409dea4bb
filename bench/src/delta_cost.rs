//! The cost of one config delta and of one lookup against routing tables of 10,000 to 1,000,000
//! webhooks, in process (docs/benchmarks.md, "Delta cost"). The data plane's table
//! (`Routes::apply_delta` on its persistent map) is measured next to a reference built in the same
//! run: a std `HashMap` of the same entries cloned whole for each delta and updated — what the
//! table did before it was persistent — so the ratio says what the persistent map buys on the
//! delta path and what it costs on the lookup path.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway_shared::snapshot::{ApiKeyHash, ConfigDelta, ConfigSnapshot, WebhookConfig};
use gateway_shared::{Provider, WebhookId};
use rand::Rng;

/// Flags of `delta-cost`.
#[derive(clap::Args, Debug)]
pub struct DeltaArgs {
    /// Table sizes (webhooks), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000usize, 100_000, 1_000_000])]
    pub sizes: Vec<usize>,
    /// One-webhook deltas applied per size.
    #[arg(long, default_value_t = 50)]
    pub deltas: usize,
    /// Lookups timed per size (random existing ids).
    #[arg(long, default_value_t = 1_000_000)]
    pub lookups: usize,
}

fn webhook(i: usize) -> WebhookConfig {
    crate::http_suite::webhook(Provider::Generic, &format!("bench-key-{i}"), None)
}

fn key(w: &WebhookConfig) -> data_plane::RouteKey {
    data_plane::RouteKey {
        organization_id: w.organization_id,
        workspace_id: w.workspace_id,
        app_id: w.app_id,
        webhook_id: w.webhook_id,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `gateway-bench delta-cost`: prints one row per table size.
pub fn run(args: DeltaArgs) -> anyhow::Result<()> {
    println!(
        "| webhooks | one-webhook delta, persistent table (p50 / p99) | reference: std HashMap cloned per delta (p50 / p99) | p99 ratio | lookup, persistent | lookup, std HashMap | lookup ratio |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut rng = rand::rng();
    for &n in &args.sizes {
        let configs: Vec<WebhookConfig> = (0..n).map(webhook).collect();
        let routes = data_plane::Routes::new();
        routes
            .apply_snapshot(ConfigSnapshot {
                version: 1,
                webhooks: configs.clone(),
            })
            .map_err(|e| anyhow::anyhow!("snapshot: {e}"))?;
        let reference: HashMap<WebhookId, Arc<WebhookConfig>> = configs
            .iter()
            .map(|w| (w.webhook_id, Arc::new(w.clone())))
            .collect();

        // Deltas: the same one-webhook change to both tables, each timed alone.
        let (mut persistent, mut cloned) = (Vec::new(), Vec::new());
        let mut current = reference;
        for version in (1u64..).take(args.deltas) {
            let mut changed = configs[rng.random_range(0..n)].clone();
            changed.api_keys = vec![ApiKeyHash::of(&format!("rotated-{version}"))];
            let delta = ConfigDelta {
                from_version: version,
                to_version: version + 1,
                upserts: vec![changed.clone()],
                removals: vec![],
            };
            let t = Instant::now();
            routes
                .apply_delta(delta)
                .map_err(|e| anyhow::anyhow!("delta: {e}"))?;
            persistent.push(t.elapsed());
            let t = Instant::now();
            let mut next = current.clone();
            next.insert(changed.webhook_id, Arc::new(changed));
            cloned.push(t.elapsed());
            // The old table is dropped outside the timed part, as the served table's last reader
            // drops it.
            current = next;
        }
        persistent.sort();
        cloned.sort();

        // Lookups of random existing ids in both.
        let keys: Vec<data_plane::RouteKey> = (0..args.lookups)
            .map(|_| key(&configs[rng.random_range(0..n)]))
            .collect();
        let table = routes.load().ok_or_else(|| anyhow::anyhow!("no table"))?;
        let t = Instant::now();
        for k in &keys {
            black_box(table.get(black_box(k)));
        }
        let persistent_lookup = t.elapsed().as_secs_f64() * 1e9 / keys.len() as f64;
        let t = Instant::now();
        // The same work as the table's `get`: find by id, then check the tenancy ids of the entry.
        for k in &keys {
            let k = black_box(k);
            black_box(current.get(&k.webhook_id).filter(|w| {
                w.organization_id == k.organization_id
                    && w.workspace_id == k.workspace_id
                    && w.app_id == k.app_id
            }));
        }
        let std_lookup = t.elapsed().as_secs_f64() * 1e9 / keys.len() as f64;

        let (p50, p99) = (percentile(&persistent, 0.5), percentile(&persistent, 0.99));
        let (r50, r99) = (percentile(&cloned, 0.5), percentile(&cloned, 0.99));
        println!(
            "| {n} | {:.3} / {:.3} ms | {:.3} / {:.3} ms | {:.3} | {persistent_lookup:.0} ns | {std_lookup:.0} ns | {:.2} |",
            ms(p50),
            ms(p99),
            ms(r50),
            ms(r99),
            ms(p99) / ms(r99),
            persistent_lookup / std_lookup,
        );
    }
    Ok(())
}
