//! When a service counts as restored after a rollback: the one rule that the simulator and
//! the live driver both time rehearsals and rollbacks with.
//!
//! After the rollback has drained, the service is restored at the first moment at which the
//! service-wide metrics of a short trailing window (the plan's `restore_window`) are back
//! within `restore_tolerance` of a reference taken before the fault:
//!
//! - p95 and p99 latency: at most the reference × (1 + tolerance);
//! - the error rate: at most the reference × (1 + tolerance) plus three standard errors of a
//!   binomial proportion at the reference rate over the window's requests,
//!   `3 × √(r (1 − r) / n)`. A window of a few seconds holds few requests, so its error rate
//!   is noisy; a fixed allowance would be too strict for a small window and too loose for a
//!   large one, while three standard errors keep the chance of calling a healthy service
//!   unrestored near 0.1 % whatever the traffic. The reference rate is taken as at least one
//!   error over the reference's requests: a reference window that happened to see no error
//!   (a few seconds of a live service at 0.2 % errors often does) does not show that the
//!   service never fails, and without the floor its allowance would be zero, so a single
//!   error in the trailing window would keep a healthy service "unrestored". With the
//!   simulator's five-minute reference the floor is far below the measured rate and changes
//!   nothing.
//!
//! A metric the window lacks (no requests) is not restored; a metric the reference lacks
//! cannot be compared and passes.

use crate::summary::Metrics;

/// How many standard errors of the window's error rate are allowed on top of the
/// reference's, for the noise of a short window.
pub const ERROR_RATE_STANDARD_ERRORS: f64 = 3.0;

/// Whether `now` (service-wide, over the trailing restore window) is back within
/// `tolerance` (a fraction: 0.1 is 10 %) of `reference` on p95, p99 and the error rate, by
/// the rule in the module documentation.
pub fn restored(now: &Metrics, reference: &Metrics, tolerance: f64) -> bool {
    let within = |v: Option<f64>, r: Option<f64>| match (v, r) {
        (Some(v), Some(r)) => v <= r * (1.0 + tolerance),
        (None, _) => false,
        (Some(_), None) => true,
    };
    let errors_within = match (now.error_rate, reference.error_rate) {
        (Some(e), Some(r)) => {
            let floor = 1.0 / reference.requests.max(1) as f64;
            e <= error_rate_limit(r.max(floor), now.requests, tolerance)
        }
        (None, _) => false,
        (Some(_), None) => true,
    };
    within(now.p95_ms, reference.p95_ms) && within(now.p99_ms, reference.p99_ms) && errors_within
}

/// The highest error rate over `requests` requests that still counts as restored to a
/// reference rate `reference`: the tolerance plus [`ERROR_RATE_STANDARD_ERRORS`] standard
/// errors (a window without requests is taken as one request, the widest allowance).
pub fn error_rate_limit(reference: f64, requests: u64, tolerance: f64) -> f64 {
    let n = requests.max(1) as f64;
    reference * (1.0 + tolerance)
        + ERROR_RATE_STANDARD_ERRORS * (reference * (1.0 - reference) / n).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> Metrics {
        Metrics {
            p50_ms: Some(100.0),
            p95_ms: Some(300.0),
            p99_ms: Some(500.0),
            error_rate: Some(0.001),
            throughput_rps: Some(100.0),
            requests: 1000,
        }
    }

    #[test]
    fn latency_must_be_back_within_the_tolerance() {
        let reference = reference();
        let mut m = reference;
        assert!(restored(&m, &reference, 0.1));
        m.p95_ms = Some(330.0);
        assert!(restored(&m, &reference, 0.1));
        m.p95_ms = Some(331.0);
        assert!(!restored(&m, &reference, 0.1));
        m.p95_ms = Some(300.0);
        m.p99_ms = Some(560.0);
        assert!(!restored(&m, &reference, 0.1));
    }

    #[test]
    fn the_error_rate_gets_three_standard_errors_for_the_short_window() {
        let reference = reference();
        // 0.001 × 1.1 + 3 × √(0.001 × 0.999 / 1000) ≈ 0.0041 over 1,000 requests.
        let limit = error_rate_limit(0.001, 1000, 0.1);
        assert!((limit - 0.004_098).abs() < 1e-6, "{limit}");
        let mut m = reference;
        m.error_rate = Some(0.004);
        assert!(restored(&m, &reference, 0.1));
        m.error_rate = Some(0.005);
        assert!(!restored(&m, &reference, 0.1));
        // The same rate over a window of 100 requests is noise, not a lasting fault.
        m.requests = 100;
        assert!(restored(&m, &reference, 0.1));
        // A fault's error rate is far beyond any allowance.
        m.error_rate = Some(0.05);
        assert!(!restored(&m, &reference, 0.1));
    }

    /// A reference window that saw no error allowed no error at all after the rollback, so
    /// one 5xx in ten seconds kept a healthy service "unrestored" (this failed before the
    /// floor of one error over the reference's requests).
    #[test]
    fn a_reference_without_errors_still_allows_the_noise_of_one() {
        let mut reference = reference();
        reference.error_rate = Some(0.0);
        reference.requests = 1250;
        let mut m = reference;
        m.requests = 1250;
        m.error_rate = Some(1.0 / 1250.0);
        assert!(restored(&m, &reference, 0.1));
        m.error_rate = Some(3.0 / 1250.0);
        assert!(restored(&m, &reference, 0.1));
        // A fault is still a fault.
        m.error_rate = Some(0.02);
        assert!(!restored(&m, &reference, 0.1));
    }

    #[test]
    fn a_window_without_data_is_not_restored_and_a_reference_without_it_passes() {
        let reference = reference();
        assert!(!restored(&Metrics::default(), &reference, 0.1));
        let mut m = reference;
        m.error_rate = None;
        assert!(!restored(&m, &reference, 0.1));
        let bare = Metrics {
            p95_ms: Some(300.0),
            ..Metrics::default()
        };
        assert!(restored(&reference, &bare, 0.1));
    }
}
