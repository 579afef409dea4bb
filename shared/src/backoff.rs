//! The one retry delay of both planes: exponential with jitter, capped, and reset after success.
//! Used by every loop that reconnects or resends (the control plane's config watcher, the data
//! plane's config-stream client and failed-trigger sender).

use std::time::Duration;

/// Delays between attempts: each step doubles up to `max`, and each wait is a random time between
/// half the step and the whole step, so many clients that lost the same server do not retry in step.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    /// Starts at `initial`, doubles per failure, never above `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.min(max);
        Self {
            initial,
            max,
            step: initial,
        }
    }

    /// How long to wait before the next attempt; the following one waits about twice as long.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.step.mul_f64(rand::random_range(0.5..=1.0));
        self.step = (self.step * 2).min(self.max);
        delay
    }

    /// After a success: the next failure waits the initial delay again.
    pub fn reset(&mut self) {
        self.step = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_and_reset() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(1000));
        let steps = [100, 200, 400, 800, 1000, 1000];
        for step in steps {
            let d = b.next_delay();
            assert!(
                d >= ms(step / 2) && d <= ms(step),
                "{d:?} outside {step} ms / 2..=1"
            );
        }
        b.reset();
        assert!(b.next_delay() <= ms(100), "a reset starts over");
    }
}
