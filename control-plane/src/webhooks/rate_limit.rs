//! A webhook's rate limit as the API sets it (docs/control-plane.md, "Rate limits"): stored as a
//! rate (NULL = none) and a burst (NULL = the rate rounded up), validated here.

use gateway_shared::snapshot::RateLimit;

use crate::error::{ApiError, ApiResult};
use crate::reasons;

/// The largest burst the API accepts.
pub(crate) const MAX_BURST: u32 = 1_000_000;

/// The stored columns: `rate_limit_per_second`, `rate_limit_burst`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Stored {
    pub per_second: Option<f64>,
    pub burst: Option<i32>,
}

impl Stored {
    /// The limit data planes enforce (the burst resolved), or `None`.
    pub fn effective(&self) -> Option<RateLimit> {
        let per_second = self.per_second.filter(|r| r.is_finite() && *r > 0.0)?;
        let burst = self
            .burst
            .and_then(|b| u32::try_from(b).ok())
            .filter(|b| *b >= 1)
            .unwrap_or_else(|| RateLimit::default_burst(per_second));
        Some(RateLimit { per_second, burst })
    }

    /// The API fields: rate and effective burst, both 0 without a limit.
    pub fn to_proto(self) -> (f64, u32) {
        self.effective()
            .map_or((0.0, 0), |l| (l.per_second, l.burst))
    }
}

fn rate_invalid() -> ApiError {
    ApiError::invalid(
        reasons::WEBHOOK_RATE_LIMIT_INVALID,
        "rate_limit_per_second",
        format!(
            "rate_limit_per_second must be greater than 0 and at most {} requests per second (0 = no limit)",
            RateLimit::MAX
        ),
    )
}

fn burst_invalid(message: String) -> ApiError {
    ApiError::invalid(
        reasons::WEBHOOK_RATE_LIMIT_INVALID,
        "rate_limit_burst",
        message,
    )
}

fn check_rate(per_second: f64) -> ApiResult<Option<f64>> {
    if per_second == 0.0 {
        return Ok(None);
    }
    if !(0.0..=RateLimit::MAX).contains(&per_second) {
        return Err(rate_invalid());
    }
    Ok(Some(per_second))
}

fn check_burst(burst: u32) -> ApiResult<Option<i32>> {
    if burst == 0 {
        return Ok(None);
    }
    if burst > MAX_BURST {
        return Err(burst_invalid(format!(
            "rate_limit_burst must be 1-{MAX_BURST} (0 = the rate rounded up)"
        )));
    }
    // At most MAX_BURST, so it fits.
    Ok(i32::try_from(burst).ok())
}

fn burst_needs_rate() -> ApiError {
    burst_invalid("rate_limit_burst needs a rate_limit_per_second".to_owned())
}

/// CreateWebhook: rate 0 = none; burst 0 = default, and a burst needs a rate.
pub(crate) fn on_create(per_second: f64, burst: u32) -> ApiResult<Stored> {
    let per_second = check_rate(per_second)?;
    let burst = check_burst(burst)?;
    if per_second.is_none() && burst.is_some() {
        return Err(burst_needs_rate());
    }
    Ok(Stored { per_second, burst })
}

/// UpdateWebhook: absent fields keep their value; a rate of 0 removes the limit and its burst; a
/// burst of 0 goes back to the default. A burst with no limit left is refused.
pub(crate) fn on_update(
    current: Stored,
    per_second: Option<f64>,
    burst: Option<u32>,
) -> ApiResult<Stored> {
    let rate = match per_second {
        Some(r) => check_rate(r)?,
        None => current.per_second,
    };
    let burst = match burst {
        Some(b) => {
            let b = check_burst(b)?;
            if rate.is_none() && b.is_some() {
                return Err(burst_needs_rate());
            }
            b
        }
        None if rate.is_none() => None,
        None => current.burst,
    };
    Ok(Stored {
        per_second: rate,
        burst,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(e: ApiError) -> (&'static str, String) {
        let (_, reason) = e.code_and_reason();
        (reason, format!("{e}"))
    }

    #[test]
    fn create_validates_rate_and_burst() {
        assert_eq!(on_create(0.0, 0).expect("none"), Stored::default());
        let s = on_create(2.5, 0).expect("default burst");
        assert_eq!(
            s.effective(),
            Some(RateLimit {
                per_second: 2.5,
                burst: 3
            })
        );
        assert_eq!(s.to_proto(), (2.5, 3));
        let s = on_create(50.0, 10).expect("explicit burst");
        assert_eq!(s.to_proto(), (50.0, 10));
        assert_eq!(on_create(0.01, 0).expect("slow").to_proto(), (0.01, 1));
        assert_eq!(
            on_create(1e6, 1_000_000).expect("max").to_proto(),
            (1e6, 1_000_000)
        );
        for bad in [-1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e6 + 1.0] {
            let (r, msg) = reason(on_create(bad, 0).expect_err("bad rate"));
            assert_eq!(r, "WEBHOOK_RATE_LIMIT_INVALID", "{bad}");
            assert!(msg.contains("rate_limit_per_second"), "{msg}");
        }
        let (r, msg) = reason(on_create(5.0, 1_000_001).expect_err("burst too big"));
        assert_eq!(r, "WEBHOOK_RATE_LIMIT_INVALID");
        assert!(msg.contains("rate_limit_burst"), "{msg}");
        let (r, _) = reason(on_create(0.0, 5).expect_err("burst alone"));
        assert_eq!(r, "WEBHOOK_RATE_LIMIT_INVALID");
    }

    #[test]
    fn update_keeps_changes_and_clears() {
        let limited = on_create(50.0, 100).expect("valid");
        // Absent fields keep what is stored.
        assert_eq!(on_update(limited, None, None).expect("same"), limited);
        // A new rate keeps an explicit burst.
        assert_eq!(
            on_update(limited, Some(20.0), None)
                .expect("rate")
                .to_proto(),
            (20.0, 100)
        );
        // A burst of 0 goes back to the default.
        assert_eq!(
            on_update(limited, Some(20.0), Some(0))
                .expect("default")
                .to_proto(),
            (20.0, 20)
        );
        // A rate of 0 clears the burst too.
        assert_eq!(
            on_update(limited, Some(0.0), None).expect("cleared"),
            Stored::default()
        );
        // A burst with no limit left is refused.
        assert!(on_update(limited, Some(0.0), Some(10)).is_err());
        assert!(on_update(Stored::default(), None, Some(10)).is_err());
        // Clearing the burst of an unlimited webhook is harmless.
        assert_eq!(
            on_update(Stored::default(), None, Some(0)).expect("noop"),
            Stored::default()
        );
        assert!(on_update(limited, Some(f64::NAN), None).is_err());
    }
}
