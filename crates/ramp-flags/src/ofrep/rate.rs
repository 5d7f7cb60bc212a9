//! The optional rate limit: a token bucket, kept as one atomic (the generic cell rate
//! algorithm), so that checking it takes no lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// How many requests per second the server answers, and how many may come at once. Built
/// only through its checked constructors, so a server never holds a limit it cannot apply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// The sustained rate, in requests per second (> 0, at most 1e9).
    per_second: f64,
    /// How many requests may arrive together after a quiet period (≥ 1).
    burst: u32,
}

/// Why a rate limit was refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum RateLimitError {
    /// The rate is not a positive finite number of at most a billion per second.
    #[error("the rate limit must be more than 0 and at most 1e9 requests per second, got {0}")]
    BadRate(f64),
    /// The burst is zero.
    #[error("the burst of a rate limit must be at least 1")]
    ZeroBurst,
}

impl RateLimit {
    /// A sustained rate with a burst.
    pub fn new(per_second: f64, burst: u32) -> Result<Self, RateLimitError> {
        if !(per_second.is_finite() && per_second > 0.0 && per_second <= 1e9) {
            return Err(RateLimitError::BadRate(per_second));
        }
        if burst == 0 {
            return Err(RateLimitError::ZeroBurst);
        }
        Ok(Self { per_second, burst })
    }

    /// `per_second` requests per second with a burst of one second's worth.
    pub fn per_second(per_second: u32) -> Result<Self, RateLimitError> {
        Self::new(f64::from(per_second), per_second)
    }

    /// The sustained rate, in requests per second.
    pub fn rate(&self) -> f64 {
        self.per_second
    }

    /// The burst.
    pub fn burst(&self) -> u32 {
        self.burst
    }
}

/// The live state of a [`RateLimit`].
#[derive(Debug)]
pub(crate) struct RateLimiter {
    /// Nanoseconds between two requests at the sustained rate.
    interval_ns: u64,
    /// How far ahead of now the theoretical arrival time may run (the burst).
    tolerance_ns: u64,
    /// The theoretical arrival time of the next request, in nanoseconds since `origin`.
    tat_ns: AtomicU64,
    /// The instant the nanosecond counts start from.
    origin: Instant,
}

impl RateLimiter {
    /// A limiter for a checked limit, starting full.
    pub(crate) fn new(limit: RateLimit, origin: Instant) -> Self {
        let interval_ns = (1e9 / limit.per_second).round().max(1.0) as u64;
        Self {
            interval_ns,
            tolerance_ns: interval_ns.saturating_mul(u64::from(limit.burst.max(1) - 1)),
            tat_ns: AtomicU64::new(0),
            origin,
        }
    }

    /// Admits a request arriving at `now`, or says how long until one would be admitted.
    pub(crate) fn check(&self, now: Instant) -> Result<(), Duration> {
        let t = u64::try_from(now.saturating_duration_since(self.origin).as_nanos())
            .unwrap_or(u64::MAX);
        let mut tat = self.tat_ns.load(Ordering::Relaxed);
        loop {
            let start = tat.max(t);
            let allowed_at = start.saturating_sub(self.tolerance_ns);
            if allowed_at > t {
                return Err(Duration::from_nanos(allowed_at - t));
            }
            let next = start.saturating_add(self.interval_ns);
            match self
                .tat_ns
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(actual) => tat = actual,
            }
        }
    }
}

/// The `Retry-After` value for a wait: whole seconds, rounded up, at least 1 (RFC 9110
/// §10.2.3 delay-seconds, which both the Rust and the Python OFREP providers parse).
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "the tests pick an origin on the real clock and step from it by hand"
)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let origin = Instant::now();
        let l = RateLimiter::new(RateLimit::per_second(5).unwrap(), origin);
        for _ in 0..5 {
            assert!(l.check(origin).is_ok());
        }
        let wait = l.check(origin).unwrap_err();
        assert_eq!(wait, Duration::from_millis(200));
        assert_eq!(retry_after_secs(wait), 1);
        // One interval later, exactly one more request fits.
        let later = origin + Duration::from_millis(200);
        assert!(l.check(later).is_ok());
        assert!(l.check(later).is_err());
        // After a quiet second, the whole burst is back.
        let quiet = origin + Duration::from_secs(3);
        for _ in 0..5 {
            assert!(l.check(quiet).is_ok());
        }
        assert!(l.check(quiet).is_err());
    }

    #[test]
    fn slow_rates_ask_for_long_waits() {
        let origin = Instant::now();
        let l = RateLimiter::new(RateLimit::new(0.1, 1).unwrap(), origin);
        assert!(l.check(origin).is_ok());
        let wait = l.check(origin + Duration::from_millis(500)).unwrap_err();
        assert_eq!(retry_after_secs(wait), 10);
    }

    #[test]
    fn bad_limits_are_refused() {
        assert_eq!(RateLimit::per_second(0), Err(RateLimitError::BadRate(0.0)));
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY, 2e9] {
            assert!(RateLimit::new(rate, 1).is_err(), "{rate}");
        }
        assert_eq!(RateLimit::new(1.0, 0), Err(RateLimitError::ZeroBurst));
    }
}
