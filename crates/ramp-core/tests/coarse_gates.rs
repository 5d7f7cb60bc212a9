//! Latency gates on coarse buckets (a Prometheus histogram's `le` bounds): a breach fails a
//! gate only when it is certain given the bounds, a pass must hold wherever in its bucket
//! the true value lies, and the sentence states the resolution.

use ramp_core::engine::{evaluate, explain};
use ramp_core::summary::GateStatus;
use ramp_core::{Bound, Gate, Metric, Scope, Span};
use ramp_stats::{CohortStats, Histogram};

/// The `le` bounds of a common classic layout, in µs: 100, 250, 500, 750 ms, 1, 2.5 s.
const BOUNDS_US: [u64; 6] = [100_000, 250_000, 500_000, 750_000, 1_000_000, 2_500_000];

/// A cohort measured with `BOUNDS_US`: `counts[i]` requests in bucket `i` (the last is the
/// open `+Inf` bucket), each recorded at its bucket's lower bound as the Prometheus source
/// records them.
fn coarse(counts: [u64; 7]) -> CohortStats {
    let mut stats = CohortStats::new();
    for (i, &n) in counts.iter().enumerate() {
        let lower_ms = if i == 0 {
            0.0
        } else {
            BOUNDS_US[i - 1] as f64 / 1000.0
        };
        if n > 0 {
            stats.latency.record_n(Histogram::index_of(lower_ms), n);
        }
        stats.requests += n;
    }
    stats.coarse_bounds_us = Some(BOUNDS_US.to_vec());
    stats
}

/// A p99 ceiling on the canary.
fn p99_under(ms: f64) -> Gate {
    Gate {
        metric: Metric::P99Ms,
        scope: Scope::Canary,
        bound: Bound::Max,
        threshold: ms,
        warn: None,
        window: Span(60_000),
        min_samples: 100,
    }
}

#[test]
fn a_p99_whose_bucket_holds_the_fail_level_warns_and_says_why() {
    // 10,000 requests, 2 % of them between 500 and 750 ms: the p99 is in (500, 750] ms.
    let canary = coarse([5_000, 4_000, 800, 200, 0, 0, 0]);
    let r = evaluate(&p99_under(720.0), &canary, &CohortStats::new(), 60_000);
    assert_eq!(r.status, GateStatus::Warn, "{r:?}");
    let b = r.bucket.expect("the bucket is reported");
    assert_eq!((b.lower_ms, b.upper_ms), (500.0, Some(750.0)));
    let sentence = explain(&r);
    assert!(
        sentence.contains("between 500 ms and 750 ms (bucket bounds)")
            && sentence
                .contains("may be over the 720 ms fail level: the bucket bounds cannot tell"),
        "{sentence}"
    );
}

#[test]
fn a_p99_certainly_over_the_fail_level_fails() {
    // 3 % of requests between 750 ms and 1 s, so even the conservative p99 is at least 750 ms.
    let canary = coarse([5_000, 4_000, 400, 300, 300, 0, 0]);
    let r = evaluate(&p99_under(720.0), &canary, &CohortStats::new(), 60_000);
    assert_eq!(r.status, GateStatus::Fail, "{r:?}");
    assert_eq!(
        r.conservative,
        Some(750.0),
        "judged on the bucket's lower bound"
    );
}

#[test]
fn a_p99_passes_only_when_its_whole_bucket_is_under_the_level() {
    let canary = coarse([5_000, 4_000, 800, 200, 0, 0, 0]);
    let pass = evaluate(&p99_under(750.0), &canary, &CohortStats::new(), 60_000);
    assert_eq!(pass.status, GateStatus::Pass, "{pass:?}");
    // The same data against a level just under the bucket's top is not a pass.
    let not = evaluate(&p99_under(749.0), &canary, &CohortStats::new(), 60_000);
    assert_eq!(not.status, GateStatus::Warn, "{not:?}");
}

#[test]
fn a_p99_in_the_open_last_bucket_never_passes() {
    let canary = coarse([5_000, 4_000, 800, 0, 0, 0, 200]);
    let r = evaluate(&p99_under(10_000.0), &canary, &CohortStats::new(), 60_000);
    assert_eq!(r.status, GateStatus::Warn, "{r:?}");
    assert!(
        explain(&r).contains("between 2500 ms and +Inf"),
        "{}",
        explain(&r)
    );
}

#[test]
fn exact_data_is_judged_as_before() {
    let mut canary = CohortStats::new();
    for _ in 0..10_000 {
        canary.latency.record(100.0);
    }
    canary.requests = 10_000;
    let r = evaluate(&p99_under(720.0), &canary, &CohortStats::new(), 60_000);
    assert_eq!(r.status, GateStatus::Pass);
    assert!(r.bucket.is_none());
}

#[test]
fn the_service_scope_uses_the_bounds_both_cohorts_share() {
    let canary = coarse([5_000, 4_000, 800, 200, 0, 0, 0]);
    let mut stable = coarse([5_000, 4_000, 800, 200, 0, 0, 0]);
    // The stable version exports one bound fewer (no 750 ms edge): over both, the bucket
    // holding the p99 is (500 ms, 1 s].
    stable.coarse_bounds_us = Some(vec![100_000, 250_000, 500_000, 1_000_000, 2_500_000]);
    let gate = Gate {
        scope: Scope::Service,
        ..p99_under(900.0)
    };
    let r = evaluate(&gate, &canary, &stable, 60_000);
    let b = r.bucket.expect("coarse");
    assert_eq!((b.lower_ms, b.upper_ms), (500.0, Some(1000.0)));
    assert_eq!(r.status, GateStatus::Warn);
}
