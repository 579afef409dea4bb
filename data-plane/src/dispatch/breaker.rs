//! The per-action circuit breaker (docs/dispatcher.md, "Circuit breaker"): after N consecutive
//! failed attempts (no answer, a timeout or a 5xx) the action is open for a cool-down and its
//! invocations end CIRCUIT_OPEN without a call; then one probe call is let through (half-open): its
//! success closes the breaker, its failure opens it for another cool-down.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Settings of every breaker.
#[derive(Debug, Clone, Copy)]
pub struct BreakerSettings {
    /// Consecutive failed attempts that open the breaker.
    pub failures: u32,
    /// How long it stays open before a probe.
    pub cool_down: Duration,
}

/// What the breaker says about a call about to be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: call.
    Call,
    /// Half-open: this call is the probe.
    Probe,
    /// Open (or a probe is out): do not call.
    Refuse,
}

/// The breaker's state, as exported in metrics (`0` closed, `1` open, `2` half-open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused.
    Open,
    /// One probe call is out.
    HalfOpen,
}

impl BreakerState {
    /// The gauge value.
    pub fn gauge(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::Open => 1,
            Self::HalfOpen => 2,
        }
    }
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probe_started: Instant },
}

/// One action's breaker.
#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    state: Mutex<State>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a call may be made now.
    pub fn admit(&self, now: Instant) -> Admission {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Admission::Call,
            State::Open { until } if now >= until => {
                *state = State::HalfOpen { probe_started: now };
                Admission::Probe
            }
            State::Open { .. } => Admission::Refuse,
            // A probe that never reported (its invocation was abandoned at shutdown) does not keep
            // the breaker half-open forever: after another cool-down a new probe goes out.
            State::HalfOpen { probe_started } if now >= probe_started + self.settings.cool_down => {
                *state = State::HalfOpen { probe_started: now };
                Admission::Probe
            }
            State::HalfOpen { .. } => Admission::Refuse,
        }
    }

    /// Whether a call would be refused now (open, or a probe is out), without taking the probe.
    pub fn refuses(&self, now: Instant) -> bool {
        match *self.lock() {
            State::Closed { .. } => false,
            State::Open { until } => now < until,
            State::HalfOpen { probe_started } => now < probe_started + self.settings.cool_down,
        }
    }

    /// Records an attempt's outcome: `healthy` when the action server answered something other
    /// than a 5xx (a 4xx is the request's fault, not the server's).
    pub fn record(&self, healthy: bool, now: Instant) {
        let mut state = self.lock();
        let next = match (&*state, healthy) {
            (State::Closed { .. } | State::HalfOpen { .. }, true) => State::Closed { failures: 0 },
            (State::Closed { failures }, false) if failures + 1 >= self.settings.failures => {
                State::Open {
                    until: now + self.settings.cool_down,
                }
            }
            (State::Closed { failures }, false) => State::Closed {
                failures: failures + 1,
            },
            (State::HalfOpen { .. }, false) => State::Open {
                until: now + self.settings.cool_down,
            },
            // Calls that started before the breaker opened do not change the cool-down.
            (State::Open { until }, _) => State::Open { until: *until },
        };
        *state = next;
    }

    /// The state now (an open breaker past its cool-down still reads open until a probe starts).
    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerSettings {
            failures: 3,
            cool_down: Duration::from_secs(10),
        })
    }

    #[test]
    fn opens_after_n_consecutive_failures_and_a_success_resets_the_count() {
        let b = breaker();
        let t = Instant::now();
        b.record(false, t);
        b.record(false, t);
        b.record(true, t);
        b.record(false, t);
        b.record(false, t);
        assert_eq!(
            b.admit(t),
            Admission::Call,
            "two failures since the success"
        );
        b.record(false, t);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.refuses(t + Duration::from_secs(9)));
        assert_eq!(b.admit(t + Duration::from_secs(9)), Admission::Refuse);
        assert!(
            !b.refuses(t + Duration::from_secs(10)),
            "a probe may go out"
        );
    }

    #[test]
    fn after_the_cool_down_one_probe_decides() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            b.record(false, t);
        }
        let later = t + Duration::from_secs(10);
        assert_eq!(b.admit(later), Admission::Probe);
        assert_eq!(b.admit(later), Admission::Refuse, "one probe at a time");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.record(false, later);
        assert_eq!(
            b.state(),
            BreakerState::Open,
            "a failed probe opens it again"
        );
        assert_eq!(b.admit(later + Duration::from_secs(5)), Admission::Refuse);
        let again = later + Duration::from_secs(10);
        assert_eq!(b.admit(again), Admission::Probe);
        b.record(true, again);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.admit(again), Admission::Call);
    }

    #[test]
    fn a_lost_probe_is_replaced_after_a_cool_down() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            b.record(false, t);
        }
        let probe = t + Duration::from_secs(10);
        assert_eq!(b.admit(probe), Admission::Probe);
        assert_eq!(b.admit(probe + Duration::from_secs(10)), Admission::Probe);
    }
}
