//! Per-webhook rate limits (docs/data-plane.md, "Rate limits"): one token bucket per limited
//! webhook, sized to this plane's share of the fleet-wide limit. The routing table keeps a webhook's
//! bucket across config updates that leave its limit alone; a new fleet size replaces every bucket.

use std::num::NonZeroU32;
use std::time::Duration;

use arc_swap::ArcSwap;
use gateway_shared::snapshot::RateLimit;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};

/// The bucket of one share.
struct Bucket {
    planes: u32,
    limiter: DefaultDirectRateLimiter,
}

impl Bucket {
    fn new(limit: RateLimit, planes: u32) -> Self {
        let share = limit.share(planes);
        // Rates are at most 1e6 per second (checked when the config was decoded), so the period
        // is at least a microsecond; the fallbacks only keep a zero from ever reaching governor.
        let period = Duration::from_secs_f64(1.0 / share.per_second).max(Duration::from_nanos(1));
        let burst = NonZeroU32::new(share.burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Bucket {
            planes: planes.max(1),
            limiter: DefaultDirectRateLimiter::direct(quota),
        }
    }
}

/// The limiter of one webhook: its fleet-wide limit and this plane's bucket.
pub struct WebhookLimiter {
    limit: RateLimit,
    bucket: ArcSwap<Bucket>,
}

impl std::fmt::Debug for WebhookLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookLimiter")
            .field("limit", &self.limit)
            .field("planes", &self.bucket.load().planes)
            .finish()
    }
}

impl WebhookLimiter {
    /// A full bucket for `limit` shared by `planes` planes.
    pub fn new(limit: RateLimit, planes: u32) -> Self {
        Self {
            limit,
            bucket: ArcSwap::from_pointee(Bucket::new(limit, planes)),
        }
    }

    /// The fleet-wide limit.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// The number of planes the current bucket is sized for.
    pub fn planes(&self) -> u32 {
        self.bucket.load().planes
    }

    /// Sizes the bucket for `planes` planes (a new, full bucket) unless it already is.
    pub fn reshare(&self, planes: u32) {
        if self.bucket.load().planes != planes.max(1) {
            self.bucket
                .store(std::sync::Arc::new(Bucket::new(self.limit, planes)));
        }
    }

    /// Takes one request from the bucket, or says how long until one is available.
    pub fn check(&self) -> Result<(), Duration> {
        let bucket = self.bucket.load();
        bucket
            .limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// `Retry-After` for a wait: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use gateway_shared::snapshot::{
        ApiKeyHash, ConfigDelta, ConfigSnapshot, ProviderSecrets, WebhookConfig, WebhookOptions,
    };
    use gateway_shared::{AppId, OrganizationId, Provider, WebhookId, WorkspaceId};

    use super::*;
    use crate::routing::{RouteKey, Routes};

    fn limit(per_second: f64, burst: u32) -> RateLimit {
        RateLimit { per_second, burst }
    }

    fn taken(l: &WebhookLimiter, tries: u32) -> u32 {
        (0..tries).filter(|_| l.check().is_ok()).count() as u32
    }

    #[test]
    fn a_full_bucket_takes_the_plane_share_of_the_burst() {
        // A slow rate, so nothing refills while the test runs.
        let l = WebhookLimiter::new(limit(0.01, 30), 1);
        assert_eq!(taken(&l, 100), 30);
        let wait = l.check().expect_err("empty");
        assert!(wait > Duration::from_secs(60), "{wait:?}");

        let l = WebhookLimiter::new(limit(0.01, 30), 3);
        assert_eq!(
            taken(&l, 100),
            10,
            "a third of the burst on one of three planes"
        );
        let l = WebhookLimiter::new(limit(0.01, 2), 5);
        assert_eq!(taken(&l, 100), 1, "never less than one");
    }

    #[test]
    fn resharing_replaces_the_bucket_only_when_the_fleet_changes() {
        let l = WebhookLimiter::new(limit(0.01, 30), 3);
        assert_eq!(taken(&l, 100), 10);
        l.reshare(3);
        assert_eq!(
            taken(&l, 100),
            0,
            "same fleet size: the same (empty) bucket"
        );
        l.reshare(2);
        assert_eq!(l.planes(), 2);
        assert_eq!(taken(&l, 100), 15, "a new, full bucket of the larger share");
        l.reshare(0);
        assert_eq!(l.planes(), 1, "zero planes counts as one");
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(20)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(100)), 100);
    }

    fn webhook() -> WebhookConfig {
        WebhookConfig {
            webhook_id: WebhookId::new_random(),
            organization_id: OrganizationId::new_random(),
            workspace_id: WorkspaceId::new_random(),
            app_id: AppId::new_random(),
            provider: Provider::Generic,
            api_keys: vec![ApiKeyHash::of("key-1")],
            secrets: ProviderSecrets::default(),
            bindings: vec![],
            correlation_key_path: None,
            options: WebhookOptions::default(),
        }
    }

    #[test]
    fn rate_limit_buckets_survive_updates_that_keep_the_limit() {
        // A slow rate, so nothing refills while the test runs.
        let limit = RateLimit {
            per_second: 0.01,
            burst: 6,
        };
        let mut w = webhook();
        w.options.rate_limit = Some(limit);
        let key = RouteKey {
            organization_id: w.organization_id,
            workspace_id: w.workspace_id,
            app_id: w.app_id,
            webhook_id: w.webhook_id,
        };
        let routes = Routes::new();
        routes
            .apply_snapshot(ConfigSnapshot {
                version: 1,
                webhooks: vec![w.clone()],
            })
            .expect("applies");
        let limiter = |routes: &Routes| {
            routes
                .load()
                .and_then(|t| t.get(&key).and_then(|r| r.rate_limiter.clone()))
                .expect("limited")
        };
        let taken = |routes: &Routes| (0..20).filter(|_| limiter(routes).check().is_ok()).count();
        assert_eq!(taken(&routes), 6);

        // Another field changes: the (empty) bucket stays.
        let mut renamed = w.clone();
        renamed.options.include_raw_body = true;
        let delta = |from, upsert: WebhookConfig| ConfigDelta {
            from_version: from,
            to_version: from + 1,
            upserts: vec![upsert],
            removals: vec![],
        };
        routes
            .apply_delta(delta(1, renamed.clone()))
            .expect("applies");
        assert_eq!(taken(&routes), 0, "kept across a delta");
        routes
            .apply_snapshot(ConfigSnapshot {
                version: 3,
                webhooks: vec![renamed.clone()],
            })
            .expect("applies");
        assert_eq!(taken(&routes), 0, "kept across a snapshot (a reconnect)");

        // The fleet grows: a new bucket of a third of the burst.
        routes.set_fleet_planes(3);
        assert_eq!(routes.fleet_planes(), 3);
        assert_eq!(taken(&routes), 2);
        routes.set_fleet_planes(3);
        assert_eq!(taken(&routes), 0, "the same fleet size keeps the bucket");

        // The limit changes: a new bucket, sized for the current fleet.
        let mut raised = renamed;
        raised.options.rate_limit = Some(RateLimit { burst: 9, ..limit });
        routes
            .apply_delta(delta(3, raised.clone()))
            .expect("applies");
        assert_eq!(taken(&routes), 3);

        // The limit goes away: no limiter.
        raised.options.rate_limit = None;
        routes.apply_delta(delta(4, raised)).expect("applies");
        assert!(routes
            .load()
            .and_then(|t| t.get(&key).map(|r| r.rate_limiter.is_none()))
            .expect("route"));
    }
}
