//! The per-webhook replay window (docs/data-plane.md, "Replay window"). GitHub, Shopify and Meta
//! sign only the body, and their delivery ids travel in unsigned headers, so whoever captured a
//! signed request can send it again under a new id. With a window set, the data plane remembers a
//! digest of every delivery it published for that long, and answers a delivery with the same
//! digest with the original event id instead of publishing it again.
//!
//! Memory is bounded: at most [`MAX_ENTRIES`] digests are kept for the whole process (about
//! 100 bytes each); when full, the oldest is forgotten first, expired ones before that.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gateway_shared::Provider;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::routing::Route;

/// Most deliveries remembered at once, over all webhooks.
pub const MAX_ENTRIES: usize = 100_000;

/// What a publish of a remembered delivery came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Not acknowledged yet.
    Pending,
    /// Acknowledged: duplicates get this event id.
    Acked,
}

struct Entry {
    event_id: String,
    expires: Instant,
    state: watch::Receiver<State>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<[u8; 32], Entry>,
    /// Insertion order, for eviction.
    order: VecDeque<([u8; 32], Instant)>,
}

/// The process's remembered deliveries.
#[derive(Default)]
pub struct ReplayGuard {
    inner: Mutex<Inner>,
}

/// What to do with a delivery.
pub enum Check {
    /// Not seen within the window: publish it, then call [`Ticket::finish`].
    Fresh(Ticket),
    /// Seen and published: answer 200 with this event id, publish nothing.
    Duplicate(String),
    /// Seen, and its publish has not been answered yet: wait on it.
    InFlight(watch::Receiver<State>, String),
}

/// A fresh delivery's place in the guard.
pub struct Ticket {
    digest: [u8; 32],
    done: watch::Sender<State>,
}

/// Why a duplicate could not be answered.
pub enum Wait {
    /// The original was acknowledged: answer with its event id.
    Acked(String),
    /// The original failed or took too long: answer 503, the sender retries.
    Unavailable,
}

impl Check {
    /// For `InFlight`, waits up to `within` for the original's outcome.
    pub async fn wait(rx: &mut watch::Receiver<State>, event_id: String, within: Duration) -> Wait {
        let acked = tokio::time::timeout(within, rx.wait_for(|s| *s != State::Pending)).await;
        match acked {
            Ok(Ok(_)) => Wait::Acked(event_id),
            _ => Wait::Unavailable,
        }
    }
}

/// The digest that identifies a delivery of `route`: its webhook, the body, and what else the
/// provider signs (the timestamp and, for Standard Webhooks, the message id), so an exact replay
/// matches and a fresh delivery of the same body by a timestamped provider does not.
pub fn digest(route: &Route, headers: &HeaderMap, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(route.key.webhook_id.to_string().as_bytes());
    let signed: &[&str] = match route.provider {
        Provider::Slack => &["x-slack-request-timestamp"],
        Provider::Stripe => &["stripe-signature"],
        Provider::StandardWebhooks => &[
            "webhook-id",
            "webhook-timestamp",
            "svix-id",
            "svix-timestamp",
        ],
        // The body is all they sign.
        Provider::Github | Provider::Shopify | Provider::Meta | Provider::Generic => &[],
    };
    for name in signed {
        let value = headers.get(*name).map(|v| v.as_bytes()).unwrap_or_default();
        let value = if *name == "stripe-signature" {
            stripe_timestamp(value)
        } else {
            value
        };
        h.update((value.len() as u64).to_be_bytes());
        h.update(value);
    }
    h.update(b"\0body\0");
    h.update(body);
    h.finalize().into()
}

/// The `t=` element of a `Stripe-Signature` (the signed part of the header).
fn stripe_timestamp(header: &[u8]) -> &[u8] {
    header
        .split(|b| *b == b',')
        .find_map(|part| part.trim_ascii().strip_prefix(b"t="))
        .unwrap_or_default()
}

impl ReplayGuard {
    /// Looks `digest` up; a fresh delivery is remembered (pending) for `window` under `event_id`.
    pub fn check(&self, digest: [u8; 32], event_id: &str, window: Duration, now: Instant) -> Check {
        let Ok(mut inner) = self.inner.lock() else {
            // A poisoned lock: behave as without a window.
            let (done, _) = watch::channel(State::Pending);
            return Check::Fresh(Ticket { digest, done });
        };
        if let Some(e) = inner.entries.get(&digest) {
            if e.expires > now {
                let state = e.state.borrow().clone();
                return match state {
                    State::Acked => Check::Duplicate(e.event_id.clone()),
                    State::Pending => Check::InFlight(e.state.clone(), e.event_id.clone()),
                };
            }
        }
        inner.evict(now);
        let (done, state) = watch::channel(State::Pending);
        let expires = now + window;
        inner.entries.insert(
            digest,
            Entry {
                event_id: event_id.to_owned(),
                expires,
                state,
            },
        );
        inner.order.push_back((digest, expires));
        Check::Fresh(Ticket { digest, done })
    }

    /// Records the outcome of a fresh delivery's publish: acknowledged, it is remembered; failed,
    /// it is forgotten, so the sender's retry is published.
    pub fn finish(&self, ticket: Ticket, acked: bool) {
        if acked {
            let _ = ticket.done.send(State::Acked);
            return;
        }
        if let Ok(mut inner) = self.inner.lock() {
            inner.entries.remove(&ticket.digest);
        }
        // Waiting duplicates see the sender dropped and answer 503.
        drop(ticket);
    }
}

impl Inner {
    /// Drops expired entries at the front, then the oldest while full.
    fn evict(&mut self, now: Instant) {
        while let Some((digest, expires)) = self.order.front().copied() {
            let full = self.entries.len() >= MAX_ENTRIES || self.order.len() >= 2 * MAX_ENTRIES;
            if expires > now && !full {
                break;
            }
            self.order.pop_front();
            // Only the entry this position was pushed for (a digest seen again has a newer one).
            if self
                .entries
                .get(&digest)
                .is_some_and(|e| e.expires == expires)
            {
                self.entries.remove(&digest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_is_a_duplicate_only_after_its_ack_and_within_its_window() {
        let g = ReplayGuard::default();
        let t0 = Instant::now();
        let w = Duration::from_secs(10);
        let d = [7u8; 32];
        let Check::Fresh(ticket) = g.check(d, "e1", w, t0) else {
            panic!("fresh")
        };
        assert!(matches!(g.check(d, "e2", w, t0), Check::InFlight(_, ref id) if id == "e1"));
        g.finish(ticket, true);
        assert!(
            matches!(g.check(d, "e2", w, t0 + Duration::from_secs(9)), Check::Duplicate(ref id) if id == "e1")
        );
        let Check::Fresh(again) = g.check(d, "e3", w, t0 + Duration::from_secs(10)) else {
            panic!("fresh after the window")
        };
        // A failed publish is forgotten: the retry is fresh.
        g.finish(again, false);
        assert!(matches!(
            g.check(d, "e4", w, t0 + Duration::from_secs(11)),
            Check::Fresh(_)
        ));
    }

    #[test]
    fn memory_is_bounded_by_the_global_cap() {
        let g = ReplayGuard::default();
        let t0 = Instant::now();
        for i in 0..(MAX_ENTRIES + 10) {
            let mut d = [0u8; 32];
            d[..8].copy_from_slice(&(i as u64).to_be_bytes());
            if let Check::Fresh(t) = g.check(d, "e", Duration::from_secs(3600), t0) {
                g.finish(t, true);
            }
        }
        let inner = g.inner.lock().expect("lock");
        assert!(inner.entries.len() <= MAX_ENTRIES);
        assert!(inner.order.len() <= MAX_ENTRIES + 1);
    }
}
