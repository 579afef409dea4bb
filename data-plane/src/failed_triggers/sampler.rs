//! Sampling of unauthenticated rejections (`API_KEY_MISSING`, `API_KEY_INVALID`): anyone who knows
//! a webhook's URL can send them, so they are never reported one by one (docs/data-plane.md,
//! "Failed-trigger reports"). The first of an interval is reported; the rest of that interval are
//! counted on it: the same report (same id) is sent again with the grown `suppressed_count`, at
//! most once a second and when the counts are flushed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gateway_proto::v1::FailedTriggerReport;
use gateway_shared::WebhookId;

/// Default interval: one stored unauthenticated rejection per webhook and minute.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// Most webhooks sampled at once; beyond it (expired windows pruned first) new ones are dropped.
const MAX_WEBHOOKS: usize = 10_000;

/// Least time between two count updates of one sample.
const UPDATE_EVERY: Duration = Duration::from_secs(1);

/// Whether `code` is an unauthenticated rejection.
pub fn is_unauthenticated(code: &str) -> bool {
    code.starts_with("API_KEY_")
}

struct Sample {
    started: Instant,
    report: FailedTriggerReport,
    weight: usize,
    suppressed: u64,
    sent: u64,
    last_sent: Instant,
}

impl Sample {
    /// The report again with the current count, if it grew since it was last sent.
    fn update(&mut self, now: Instant) -> Option<(FailedTriggerReport, usize)> {
        if self.suppressed <= self.sent {
            return None;
        }
        self.sent = self.suppressed;
        self.last_sent = now;
        let mut report = self.report.clone();
        report.suppressed_count = self.suppressed;
        Some((report, self.weight))
    }
}

/// What to do with one unauthenticated rejection.
pub enum Admit {
    /// Queue these reports (a new sample, and the final count of the previous one).
    Queue(Vec<(FailedTriggerReport, usize)>),
    /// Counted on the current sample; queue these count updates (if any).
    Counted(Option<Box<(FailedTriggerReport, usize)>>),
    /// Too many webhooks are being sampled: dropped (queue the count updates of the expired
    /// samples that were forgotten to make room).
    Full(Vec<(FailedTriggerReport, usize)>),
}

/// Per-webhook samples, bounded to [`MAX_WEBHOOKS`] entries.
pub struct Sampler {
    interval_ms: AtomicU64,
    samples: Mutex<HashMap<WebhookId, Sample>>,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler {
            interval_ms: AtomicU64::new(DEFAULT_INTERVAL.as_millis() as u64),
            samples: Mutex::default(),
        }
    }
}

impl Sampler {
    /// Sets the sampling interval.
    pub fn set_interval(&self, interval: Duration) {
        self.interval_ms.store(
            u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms.load(Ordering::Relaxed))
    }

    /// Admits one rejection of `webhook` at `now`; `build` makes its report when it starts a
    /// sample.
    pub fn admit(
        &self,
        webhook: WebhookId,
        now: Instant,
        build: impl FnOnce() -> (FailedTriggerReport, usize),
    ) -> Admit {
        let interval = self.interval();
        let Ok(mut samples) = self.samples.lock() else {
            return Admit::Full(Vec::new());
        };
        let mut queue = Vec::new();
        if let Some(s) = samples.get_mut(&webhook) {
            if now.saturating_duration_since(s.started) < interval {
                s.suppressed += 1;
                let due = now.saturating_duration_since(s.last_sent) >= UPDATE_EVERY;
                return Admit::Counted(if due {
                    s.update(now).map(Box::new)
                } else {
                    None
                });
            }
            if let Some(mut old) = samples.remove(&webhook) {
                queue.extend(old.update(now));
            }
        }
        if samples.len() >= MAX_WEBHOOKS {
            samples.retain(|_, s| {
                let live = now.saturating_duration_since(s.started) < interval;
                if !live {
                    queue.extend(s.update(now));
                }
                live
            });
            if samples.len() >= MAX_WEBHOOKS {
                return Admit::Full(queue);
            }
        }
        let (report, weight) = build();
        queue.push((report.clone(), weight));
        samples.insert(
            webhook,
            Sample {
                started: now,
                report,
                weight,
                suppressed: 0,
                sent: 0,
                last_sent: now,
            },
        );
        Admit::Queue(queue)
    }

    /// The count updates not sent yet (periodically and at shutdown); forgets expired samples.
    pub fn flush(&self, now: Instant) -> Vec<(FailedTriggerReport, usize)> {
        let interval = self.interval();
        let Ok(mut samples) = self.samples.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        samples.retain(|_, s| {
            out.extend(s.update(now));
            now.saturating_duration_since(s.started) < interval
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(id: &str) -> (FailedTriggerReport, usize) {
        (
            FailedTriggerReport {
                report_id: id.into(),
                reason_code: "API_KEY_INVALID".into(),
                ..Default::default()
            },
            600,
        )
    }

    #[test]
    fn one_report_per_interval_and_the_rest_counted_on_it() {
        let s = Sampler::default();
        s.set_interval(Duration::from_secs(60));
        let w = WebhookId::new_random();
        let t0 = Instant::now();
        let Admit::Queue(first) = s.admit(w, t0, || report("a")) else {
            panic!("the first one starts a sample")
        };
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].0.suppressed_count, 0);
        for i in 1..=99u64 {
            let at = t0 + Duration::from_millis(i);
            match s.admit(w, at, || panic!("no new report within the interval")) {
                Admit::Counted(None) => {}
                Admit::Counted(Some(_)) => panic!("no update within a second"),
                _ => panic!("counted"),
            }
        }
        let flushed = s.flush(t0 + Duration::from_millis(200));
        assert_eq!(flushed.len(), 1);
        assert_eq!(flushed[0].0.report_id, "a", "the same report, again");
        assert_eq!(flushed[0].0.suppressed_count, 99);
        assert!(
            s.flush(t0 + Duration::from_millis(300)).is_empty(),
            "nothing new"
        );
        // A second later a count update rides along with the flood itself.
        let Admit::Counted(Some(update)) = s.admit(w, t0 + Duration::from_millis(1300), || {
            panic!("still the same interval")
        }) else {
            panic!("an update is due")
        };
        assert_eq!(update.0.suppressed_count, 100);
        // The next interval starts a new sample.
        let Admit::Queue(next) = s.admit(w, t0 + Duration::from_secs(61), || report("b")) else {
            panic!("a new sample")
        };
        assert_eq!(next.len(), 1, "the old one has no unsent count");
        assert_eq!(next[0].0.report_id, "b");
    }
}
