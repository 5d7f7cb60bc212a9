//! Gate evaluation: a gate's value over one span of data, the conservative end of its
//! 99.9 % confidence interval, its status and the sentence that explains it; and the
//! metrics and confidence of a stage's record.

use super::Pair;
use crate::plan::{Bound, Gate, Metric, Scope};
use crate::summary::{
    BucketBounds, Confidence, Decision, GateResult, GateStatus, Metrics, ScopedMetrics,
};
use crate::units::Span;
use ramp_stats::poisson::{lower_rate_above, poisson_lower, poisson_upper, upper_rate_below};
use ramp_stats::{bracket, shared_bounds, CohortStats, Histogram};

/// One-sided z for the confidence with which a gate must see a breach before it fails
/// (99.9 %).
pub(super) const FAIL_Z: f64 = 3.090_232_306_167_813_5;

/// The confidence that `FAIL_Z` stands for.
pub(super) const FAIL_CONFIDENCE: f64 = 0.999;

/// The probability beyond a conservative bound, `1 − FAIL_CONFIDENCE` written exactly: the
/// tail of the Poisson bound on a throughput, the same one-sided level as `FAIL_Z`.
const FAIL_TAIL: f64 = 0.001;

/// A latency quantile or the error rate of one cohort.
pub(super) fn single_value(metric: Metric, c: &CohortStats) -> Option<f64> {
    match metric {
        Metric::P50Ms | Metric::P95Ms | Metric::P99Ms => c.latency.quantile(metric.quantile()?),
        Metric::ErrorRate => c.error_rate(),
        Metric::ThroughputRps => None,
    }
}

/// One end of the 99.9 % interval of one cohort's value `v` of `metric`: the low end for
/// `sign = −1`, the high end for `sign = +1` (order statistics for quantiles, Wilson for
/// error rates).
pub(super) fn interval_end(metric: Metric, c: &CohortStats, v: f64, sign: f64) -> Option<f64> {
    let n = c.requests as f64;
    if n == 0.0 {
        return None;
    }
    match metric {
        Metric::P50Ms | Metric::P95Ms | Metric::P99Ms => {
            c.latency
                .quantile(shifted_quantile(metric.quantile()?, n, sign))
        }
        Metric::ErrorRate => Some(wilson(v, n, sign)),
        Metric::ThroughputRps => None,
    }
}

/// The quantile whose order statistic is an end of the 99.9 % interval of the `q` quantile
/// over `n` samples: `FAIL_Z` binomial standard deviations of rank away, down for
/// `sign = −1`, up for `sign = +1`.
pub(super) fn shifted_quantile(q: f64, n: f64, sign: f64) -> f64 {
    let rank = n * q + sign * FAIL_Z * (n * q * (1.0 - q)).sqrt();
    (rank / n).clamp(0.0, 1.0)
}

/// An end of the Wilson score interval of a proportion `v` over `n` trials at `FAIL_Z`.
pub(super) fn wilson(v: f64, n: f64, sign: f64) -> f64 {
    let z2 = FAIL_Z * FAIL_Z;
    let centre = (v + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = FAIL_Z * (v * (1.0 - v) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    (centre + sign * half).clamp(0.0, 1.0)
}

/// Evaluates one gate on the data observed over `span_ms` of plan time (observed time
/// only: a window's or a stage's gaps are not in it, so a throughput is a rate over what was
/// seen).
///
/// `pass`, `warn` and `no_data` read the point estimate; `fail` needs the conservative end of
/// the 99.9 % confidence interval beyond the fail level: for a quantile, the order statistic
/// `FAIL_Z` binomial standard deviations of rank nearer to passing; for an error rate, the
/// Wilson score bound; for a throughput, the exact (Garwood) Poisson bound on the request
/// count over the observed time. A point estimate beyond the fail level that is not yet
/// conclusive is a `warn`.
pub fn evaluate(
    gate: &Gate,
    canary: &CohortStats,
    stable: &CohortStats,
    span_ms: u64,
) -> GateResult {
    evaluate_with(gate, canary, stable, span_ms, false)
}

/// Evaluates one gate as [`evaluate`] does, with the same status, but leaves a throughput
/// gate's conservative bound out (`None`) for [`complete`] to fill in: the engine judges every
/// window gate at every tick and reads the bound only when it reports the result, and solving
/// for the exact Poisson bound costs several evaluations of the incomplete gamma function
/// where deciding against the level costs one.
pub(super) fn evaluate_deferred(
    gate: &Gate,
    canary: &CohortStats,
    stable: &CohortStats,
    span_ms: u64,
) -> GateResult {
    evaluate_with(gate, canary, stable, span_ms, true)
}

/// Fills in the conservative bound that [`evaluate_deferred`] left out of `r`, the result of
/// `gate`, so that it equals what [`evaluate`] gives; other results are left as they are.
pub(super) fn complete(gate: &Gate, r: &mut GateResult) {
    r.conservative = Conservative::of(gate, r).value();
}

/// The end nearest to passing of a kept result's interval, known or still to be solved: the
/// engine keeps each gate's worst window of the stage, which for a throughput floor gets
/// worse at every tick while traffic falls, but reads it once (the stage's closest call), and
/// solving for a Garwood bound costs several evaluations of the incomplete gamma function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Conservative {
    /// Known: what `GateResult::conservative` holds.
    Known(Option<f64>),
    /// A throughput bound, solved by [`Conservative::value`].
    Throughput {
        /// The window's request count.
        samples: u64,
        /// The observed time it covers, in seconds (`GateResult::span_s`).
        span_s: f64,
        /// The gate's bound: a floor's upper end, a ceiling's lower end.
        bound: Bound,
    },
}

impl Conservative {
    /// The end of `r`'s interval, `r` a result of `gate` from [`evaluate_deferred`], without
    /// solving for it yet.
    pub(super) fn of(gate: &Gate, r: &GateResult) -> Conservative {
        if gate.metric == Metric::ThroughputRps && r.observed.is_some() && r.conservative.is_none()
        {
            Conservative::Throughput {
                samples: r.samples,
                // `Span(span_ms).as_secs_f64()`, the divisor `conservative` uses.
                span_s: r.span_s,
                bound: gate.bound,
            }
        } else {
            Conservative::Known(r.conservative)
        }
    }

    /// The end itself, solved if it was left to solve: what [`complete`] puts in the result.
    pub(super) fn value(self) -> Option<f64> {
        match self {
            Conservative::Known(c) => c,
            Conservative::Throughput {
                samples,
                span_s,
                bound,
            } => Some(count_bound(bound, samples) / span_s),
        }
    }
}

/// The body of [`evaluate`] and [`evaluate_deferred`]: `defer` leaves a throughput gate's
/// bound out and decides its failure against the level directly.
fn evaluate_with(
    gate: &Gate,
    canary: &CohortStats,
    stable: &CohortStats,
    span_ms: u64,
    defer: bool,
) -> GateResult {
    let coarse = coarse_bounds(gate, canary, stable);
    let deferred = defer && gate.metric == Metric::ThroughputRps;
    let (observed, samples, mut conservative) = match latency_with_end(gate, canary, stable) {
        Some(read) => read,
        None => {
            let (observed, samples) = value_of(gate.metric, gate.scope, canary, stable, span_ms);
            let end = if deferred {
                None
            } else {
                observed.and_then(|v| conservative(gate, canary, stable, samples, span_ms, v))
            };
            (observed, samples, end)
        }
    };
    let bucket = coarse.as_ref().zip(observed).map(|(b, v)| bucket_of(b, v));
    if let (Some(bounds), Some(c)) = (&coarse, conservative) {
        // A breach must be certain given the bucket bounds: a ceiling is judged on the
        // lower bound of the bucket its conservative quantile lies in, a floor on the upper.
        let b = bucket_of(bounds, c);
        conservative = match gate.bound {
            Bound::Max => Some(b.lower_ms),
            Bound::Min => b.upper_ms,
        };
    }
    let beyond = |v: f64, level: f64| match gate.bound {
        Bound::Max => v > level,
        Bound::Min => v < level,
    };
    // The value nearest to failing that the data allows: the point estimate, or for coarse
    // buckets the end of its bucket on the failing side (a pass must hold wherever in the
    // bucket the true value lies).
    let pessimistic = |v: f64| match (bucket, gate.bound) {
        (None, _) => v,
        (Some(b), Bound::Max) => b.upper_ms.unwrap_or(f64::INFINITY),
        (Some(b), Bound::Min) => b.lower_ms,
    };
    let status = match observed {
        _ if samples < gate.min_samples => GateStatus::NoData,
        None => GateStatus::NoData,
        Some(v) => {
            let p = pessimistic(v);
            // Exact data without an interval is judged on its value; coarse data without a
            // bound on the failing side (the open last bucket of a floor) never fails.
            let judged = match (conservative, &coarse) {
                (Some(c), _) => Some(c),
                (None, None) => Some(v),
                (None, Some(_)) => None,
            };
            // A deferred throughput gate has a value only over observed time (`span_ms > 0`).
            let fails = if deferred {
                throughput_breached(gate, samples, span_ms)
            } else {
                judged.is_some_and(|c| beyond(c, gate.threshold))
            };
            if fails {
                GateStatus::Fail
            } else if beyond(p, gate.threshold) || gate.warn.is_some_and(|w| beyond(p, w)) {
                GateStatus::Warn
            } else {
                GateStatus::Pass
            }
        }
    };
    let (max, min) = match gate.bound {
        Bound::Max => (Some(gate.threshold), None),
        Bound::Min => (None, Some(gate.threshold)),
    };
    GateResult {
        metric: gate.metric,
        scope: gate.scope,
        observed,
        max,
        min,
        warn: gate.warn,
        conservative,
        status,
        samples,
        span_s: Span(span_ms).as_secs_f64(),
        bucket,
    }
}

/// A latency gate's point estimate, its samples and the end of its confidence interval
/// nearest to passing, as [`value_of`] and [`conservative`] give them, read in one walk of
/// the histogram; `None` for other metrics and for the service scope (two histograms, read
/// by those two).
fn latency_with_end(
    gate: &Gate,
    canary: &CohortStats,
    stable: &CohortStats,
) -> Option<(Option<f64>, u64, Option<f64>)> {
    let q = gate.metric.quantile()?;
    let c = match gate.scope {
        Scope::Canary => canary,
        Scope::Stable => stable,
        Scope::Service => return None,
    };
    let samples = c.requests;
    if samples == 0 {
        return Some((c.latency.quantile(q), samples, None));
    }
    let q2 = shifted_quantile(q, samples as f64, toward_passing(gate.bound));
    Some(match c.latency.quantile_pair(q, q2) {
        Some((v, end)) => (Some(v), samples, Some(end)),
        None => (None, samples, None),
    })
}

/// The direction of passing in value: down for a ceiling, up for a floor.
fn toward_passing(bound: Bound) -> f64 {
    match bound {
        Bound::Max => -1.0,
        Bound::Min => 1.0,
    }
}

/// The coarse bucket bounds (µs) a latency gate's data was measured with, when it was: the
/// scope's cohort's, or for the whole service the bounds both cohorts share. `None` for
/// exact data and for gates that are not on latency.
fn coarse_bounds(gate: &Gate, canary: &CohortStats, stable: &CohortStats) -> Option<Vec<u64>> {
    gate.metric.quantile()?;
    match gate.scope {
        Scope::Canary => canary.coarse_bounds_us.clone(),
        Scope::Stable => stable.coarse_bounds_us.clone(),
        Scope::Service => shared_bounds(
            canary.coarse_bounds_us.as_deref(),
            stable.coarse_bounds_us.as_deref(),
        ),
    }
}

/// A latency value `v` read from `c` moved to the edge of its coarse bucket: the lower edge
/// for `sign = −1`, the upper (infinite in the open last bucket) for `sign = +1`; `v` itself
/// for exact data and for metrics that are not latencies.
pub(super) fn coarse_edge(metric: Metric, c: &CohortStats, v: f64, sign: f64) -> f64 {
    match (&c.coarse_bounds_us, metric.quantile()) {
        (Some(bounds), Some(_)) => {
            let (lower, upper) = bracket(bounds, v);
            if sign < 0.0 {
                lower
            } else {
                upper
            }
        }
        _ => v,
    }
}

/// The coarse bucket holding `v` ms (a value read from a histogram whose counts sit at their
/// buckets' lower bounds).
fn bucket_of(bounds_us: &[u64], v: f64) -> BucketBounds {
    let (lower_ms, upper_ms) = bracket(bounds_us, v);
    BucketBounds {
        lower_ms,
        upper_ms: upper_ms.is_finite().then_some(upper_ms),
    }
}

/// The end of the 99.9 % confidence interval of a gate's value nearest to passing.
///
/// A throughput is a count of arrivals over `span_ms`, Poisson however steady the service:
/// 39 requests in 2 s is anywhere from about 11 to 31 req/s at this confidence, so a floor
/// is judged at the upper end of the exact interval of the rate and a ceiling at the lower
/// end (issue 12: 19.9 req/s against a 20 req/s floor over 2 s rolled a healthy canary back).
pub(super) fn conservative(
    gate: &Gate,
    canary: &CohortStats,
    stable: &CohortStats,
    samples: u64,
    span_ms: u64,
    v: f64,
) -> Option<f64> {
    if gate.metric == Metric::ThroughputRps {
        if span_ms == 0 {
            return None;
        }
        return throughput_count_bound(gate, samples)
            .map(|count| count / Span(span_ms).as_secs_f64());
    }
    let n = samples as f64;
    if n == 0.0 {
        return None;
    }
    let sign = toward_passing(gate.bound);
    match gate.metric {
        Metric::P50Ms | Metric::P95Ms | Metric::P99Ms => {
            let q2 = shifted_quantile(gate.metric.quantile()?, n, sign);
            match gate.scope {
                Scope::Canary => canary.latency.quantile(q2),
                Scope::Stable => stable.latency.quantile(q2),
                Scope::Service => Histogram::quantile_of(&[&canary.latency, &stable.latency], q2),
            }
        }
        Metric::ErrorRate => Some(wilson(v, n, sign)),
        // Judged above, on its count.
        Metric::ThroughputRps => None,
    }
}

/// The end of the exact (Garwood) 99.9 % interval of the mean of a throughput gate's request
/// count nearest to passing: the upper end for a floor, the lower for a ceiling; `None` for
/// other metrics.
fn throughput_count_bound(gate: &Gate, samples: u64) -> Option<f64> {
    (gate.metric == Metric::ThroughputRps).then(|| count_bound(gate.bound, samples))
}

/// The end of the exact (Garwood) 99.9 % interval of the mean of `samples` arrivals nearest
/// to passing a `bound`: the upper end for a floor, the lower for a ceiling.
fn count_bound(bound: Bound, samples: u64) -> f64 {
    match bound {
        Bound::Min => poisson_upper(samples, FAIL_TAIL),
        Bound::Max => poisson_lower(samples, FAIL_TAIL),
    }
}

/// Whether a throughput gate fails on `samples` requests over `span_ms` (> 0) of observed
/// time: its conservative bound ([`conservative`]) beyond its level, decided without solving
/// for the bound and with the same answer in every case ([`upper_rate_below`]).
fn throughput_breached(gate: &Gate, samples: u64, span_ms: u64) -> bool {
    let span_s = Span(span_ms).as_secs_f64();
    match gate.bound {
        Bound::Min => upper_rate_below(samples, FAIL_TAIL, span_s, gate.threshold),
        Bound::Max => lower_rate_above(samples, FAIL_TAIL, span_s, gate.threshold),
    }
}

/// Whether a gate's value, measured with coarse buckets, lies in a bucket that holds its
/// fail level, so that the data cannot say on which side the truth is (a stage end halts on
/// it rather than promoting).
pub fn undecided(r: &GateResult) -> bool {
    let Some(b) = r.bucket else {
        return false;
    };
    if r.status != GateStatus::Warn {
        return false;
    }
    r.max.is_some_and(|level| b.holds(level))
        || r.min
            .is_some_and(|level| b.lower_ms < level && b.upper_ms.is_none_or(|u| u >= level))
}

/// One gate's result as a sentence without the data it rests on: the metric, its value and
/// where it stands against its levels.
fn verdict(r: &GateResult) -> String {
    let level = |v: f64| r.metric.format(v);
    let observed = match (r.observed, r.bucket) {
        (Some(_), Some(b)) => format!(
            "between {} and {} (bucket bounds)",
            level(b.lower_ms),
            b.upper_ms.map_or_else(|| "+Inf".to_string(), level)
        ),
        (Some(v), None) => level(v),
        (None, _) => "no value".into(),
    };
    // A coarse bucket that holds the fail level: the data cannot say on which side it lies.
    let straddles = |level: f64| r.bucket.is_some_and(|b| b.holds(level));
    let over = match r.status {
        GateStatus::Fail => {
            let side = if r.max.is_some() {
                "at least"
            } else {
                "at most"
            };
            let bound = r
                .conservative
                .map(|c| format!(" (at 99.9% confidence {side} {})", level(c)))
                .unwrap_or_default();
            match (r.max, r.min) {
                (Some(max), _) => format!("is over the {} fail level{bound}", level(max)),
                (_, Some(min)) => format!("is under the {} floor{bound}", level(min)),
                _ => String::new(),
            }
        }
        GateStatus::Warn if r.max.is_some_and(straddles) => format!(
            "may be over the {} fail level: the bucket bounds cannot tell",
            level(r.max.unwrap_or_default())
        ),
        GateStatus::Warn if r.min.is_some_and(straddles) => format!(
            "may be under the {} floor: the bucket bounds cannot tell",
            level(r.min.unwrap_or_default())
        ),
        GateStatus::Warn if r.max.is_some_and(|m| r.observed.is_some_and(|v| v > m)) => format!(
            "is over the {} fail level but not yet conclusively (99.9% bound {})",
            level(r.max.unwrap_or_default()),
            r.conservative
                .map(level)
                .unwrap_or_else(|| "unknown".into())
        ),
        GateStatus::Warn if r.min.is_some_and(|m| r.observed.is_some_and(|v| v < m)) => format!(
            "is under the {} floor but not yet conclusively (99.9% bound {})",
            level(r.min.unwrap_or_default()),
            r.conservative
                .map(level)
                .unwrap_or_else(|| "unknown".into())
        ),
        GateStatus::Warn => match (r.max, r.min, r.warn) {
            (Some(max), _, Some(w)) => format!(
                "is over the {} warn level (fail level {})",
                level(w),
                level(max)
            ),
            (_, Some(min), Some(w)) => format!(
                "is under the {} warn level (floor {})",
                level(w),
                level(min)
            ),
            _ => String::new(),
        },
        GateStatus::Pass => "is within its levels".into(),
        GateStatus::NoData => "has too few samples to judge".into(),
    };
    format!("{} {} {} {}", r.scope.key(), r.metric, observed, over)
}

/// One gate's result as a sentence with the data it rests on: "canary p95_ms 850 ms is over
/// the 500 ms fail level (at 99.9% confidence at least 812 ms) over 5 min (38,603 requests)".
pub fn explain(r: &GateResult) -> String {
    format!(
        "{} over {} ({} requests)",
        verdict(r),
        Span((r.span_s * 1000.0) as u64),
        group(r.samples)
    )
}

/// A stage-end gate result as a sentence: the data first, so that "over the whole stage"
/// does not follow "over 60 min" ("On the whole stage's data (60 min, 22,554 requests),
/// canary p99_ms 818 ms is over the 800 ms warn level (fail level 900 ms).").
pub fn explain_stage(r: &GateResult) -> String {
    format!(
        "On the whole stage's data ({}, {} requests), {}.",
        Span((r.span_s * 1000.0) as u64),
        group(r.samples),
        verdict(r)
    )
}

/// One metric of one scope over `span_ms` of data, and the requests it rests on. Gates are
/// evaluated every few seconds, so this computes only the metric asked for.
pub(super) fn value_of(
    metric: Metric,
    scope: Scope,
    canary: &CohortStats,
    stable: &CohortStats,
    span_ms: u64,
) -> (Option<f64>, u64) {
    let (requests, errors) = match scope {
        Scope::Canary => (canary.requests, canary.errors),
        Scope::Stable => (stable.requests, stable.errors),
        Scope::Service => (
            canary.requests + stable.requests,
            canary.errors + stable.errors,
        ),
    };
    let v = match metric {
        Metric::P50Ms | Metric::P95Ms | Metric::P99Ms => {
            let q = metric.quantile().unwrap_or(0.5);
            match scope {
                Scope::Canary => canary.latency.quantile(q),
                Scope::Stable => stable.latency.quantile(q),
                Scope::Service => Histogram::quantile_of(&[&canary.latency, &stable.latency], q),
            }
        }
        Metric::ErrorRate => (requests > 0).then(|| errors as f64 / requests as f64),
        Metric::ThroughputRps => (span_ms > 0).then(|| requests as f64 / (span_ms as f64 / 1000.0)),
    };
    (v, requests)
}

/// Metrics of one scope over `span_ms` of data (the service scope is both cohorts merged,
/// through the same [`Metrics::of`] that the drivers use for service-wide numbers).
pub(super) fn metrics_of(
    canary: &CohortStats,
    stable: &CohortStats,
    scope: Scope,
    span_ms: u64,
) -> Metrics {
    match scope {
        Scope::Canary => Metrics::of(&[canary], span_ms),
        Scope::Stable => Metrics::of(&[stable], span_ms),
        Scope::Service => Metrics::of(&[canary, stable], span_ms),
    }
}

pub(super) fn scoped(p: &Pair, span_ms: u64) -> ScopedMetrics {
    ScopedMetrics {
        canary: metrics_of(&p.canary, &p.stable, Scope::Canary, span_ms),
        stable: metrics_of(&p.canary, &p.stable, Scope::Stable, span_ms),
        service: metrics_of(&p.canary, &p.stable, Scope::Service, span_ms),
    }
}

/// Mean of each metric over the rows that have it.
pub(super) fn average<'a>(rows: impl Iterator<Item = &'a Metrics>) -> Metrics {
    let rows: Vec<&Metrics> = rows.collect();
    let mean = |m: Metric| {
        let v: Vec<f64> = rows.iter().filter_map(|r| r.get(m)).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    Metrics {
        p50_ms: mean(Metric::P50Ms),
        p95_ms: mean(Metric::P95Ms),
        p99_ms: mean(Metric::P99Ms),
        error_rate: mean(Metric::ErrorRate),
        throughput_rps: mean(Metric::ThroughputRps),
        requests: rows.iter().map(|r| r.requests).sum(),
    }
}

pub(super) fn confidence(results: &[GateResult], decision: Decision, gates: &[Gate]) -> Confidence {
    if matches!(decision, Decision::Halt | Decision::Rollback)
        || results
            .iter()
            .any(|r| matches!(r.status, GateStatus::NoData | GateStatus::Fail))
    {
        return Confidence::Low;
    }
    let thin = results
        .iter()
        .zip(gates)
        .any(|(r, g)| r.samples < g.min_samples.saturating_mul(10));
    if results.iter().any(|r| r.status == GateStatus::Warn) || thin {
        Confidence::Medium
    } else {
        Confidence::High
    }
}

/// 12345 → "12,345".
pub fn group(n: u64) -> String {
    ramp_stats::thousands(n)
}

/// The stage-end sentence on the window that came closest to failing gate `g`, with its
/// worst value `v` and that window's conservative bound. Three cases, each said as it is: a
/// point estimate beyond the fail level that was not beyond it at 99.9 % confidence; a
/// ceiling approached ("85% of the 500 ms fail level"); a floor kept ("79% above the 50 req/s
/// floor": a fraction "of the way" means nothing for a floor).
pub(super) fn closest_sentence(g: &Gate, v: f64, conservative: Option<f64>) -> String {
    let level = |x: f64| g.metric.format(x);
    let what = format!("{} {}", g.scope.key(), g.metric);
    let beyond = match g.bound {
        Bound::Max => v > g.threshold,
        Bound::Min => v < g.threshold,
    };
    if beyond {
        let (side, word) = match g.bound {
            Bound::Max => ("over", "at least"),
            Bound::Min => ("under", "at most"),
        };
        let bound = conservative
            .map(|c| format!(" ({word} {} at 99.9% confidence)", level(c)))
            .unwrap_or_default();
        return format!(
            "No {} window failed a gate; the closest was {what} at {}: {side} the {} fail level as a point estimate, but not at 99.9% confidence{bound}, so within sampling noise.",
            g.window,
            level(v),
            level(g.threshold),
        );
    }
    match g.bound {
        Bound::Max => format!(
            "No {} window breached a fail level; the closest was {what} at {}, {:.0}% of the {} fail level.",
            g.window,
            level(v),
            v / g.threshold * 100.0,
            level(g.threshold),
        ),
        Bound::Min if g.threshold > 0.0 => format!(
            "No {} window breached a fail level; the closest was {what} at {}, {:.0}% above the {} floor.",
            g.window,
            level(v),
            (v / g.threshold - 1.0) * 100.0,
            level(g.threshold),
        ),
        Bound::Min => format!(
            "No {} window breached a fail level; the closest was {what} at {}, above the {} floor.",
            g.window,
            level(v),
            level(g.threshold),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A five-minute gate on `metric` with fail level `threshold`.
    fn gate(metric: Metric, scope: Scope, bound: Bound, threshold: f64) -> Gate {
        Gate {
            metric,
            scope,
            bound,
            threshold,
            warn: None,
            window: Span(300_000),
            min_samples: 200,
        }
    }

    /// A deferred throughput result, once completed, is the full one, status included, for
    /// floors and ceilings at and around their bound, counts from none to a billion and
    /// observed spans from a millisecond to a day.
    #[test]
    fn deferred_throughput_results_complete_to_the_full_ones() {
        let mut cases = 0;
        for n in [
            0u64,
            1,
            2,
            7,
            40,
            199,
            200,
            37_500,
            15_000_000,
            1_000_000_000,
        ] {
            let mut canary = CohortStats::new();
            canary.requests = n / 3;
            let mut stable = CohortStats::new();
            stable.requests = n - n / 3;
            for span_ms in [0u64, 1, 4_999, 5_000, 300_000, 86_400_000] {
                let span_s = Span(span_ms).as_secs_f64();
                for bound in [Bound::Min, Bound::Max] {
                    let at = match bound {
                        Bound::Min => poisson_upper(n, FAIL_TAIL),
                        Bound::Max => poisson_lower(n, FAIL_TAIL),
                    } / span_s;
                    let mut levels = vec![0.0, 1.0, 50.0, at, at * 0.5, at * 2.0];
                    for rel in [1e-3, 1e-9, 1e-13] {
                        levels.push(at * (1.0 - rel));
                        levels.push(at * (1.0 + rel));
                    }
                    if at.is_finite() && at > 0.0 {
                        levels.push(f64::from_bits(at.to_bits() + 1));
                        levels.push(f64::from_bits(at.to_bits() - 1));
                    }
                    // A plan's levels are finite (the bound is not without observed time).
                    for threshold in levels.into_iter().filter(|l| l.is_finite()) {
                        let mut g = gate(Metric::ThroughputRps, Scope::Service, bound, threshold);
                        g.min_samples = 0;
                        let full = evaluate(&g, &canary, &stable, span_ms);
                        let mut deferred = evaluate_deferred(&g, &canary, &stable, span_ms);
                        assert_eq!(
                            deferred.status, full.status,
                            "{n} in {span_ms} ms, {bound:?} {threshold:e}"
                        );
                        // Kept unsolved as the stage's worst, then read: the same end.
                        let kept = Conservative::of(&g, &deferred);
                        assert_eq!(
                            kept.value().map(f64::to_bits),
                            full.conservative.map(f64::to_bits),
                            "kept: {n} in {span_ms} ms, {bound:?} {threshold:e}"
                        );
                        complete(&g, &mut deferred);
                        assert_eq!(
                            deferred, full,
                            "{n} in {span_ms} ms, {bound:?} {threshold:e}"
                        );
                        cases += 1;
                    }
                }
            }
        }
        assert!(cases > 1_000, "{cases}");
    }

    /// Other gates are not deferred: their results are the full ones as they come.
    #[test]
    fn deferring_leaves_other_gates_alone() {
        let mut canary = CohortStats::new();
        canary.requests = 1_000;
        canary.errors = 30;
        for v in 1..=1_000 {
            canary.latency.record(f64::from(v));
        }
        let stable = canary.clone();
        for (metric, threshold) in [(Metric::P95Ms, 900.0), (Metric::ErrorRate, 0.02)] {
            let g = gate(metric, Scope::Service, Bound::Max, threshold);
            let mut deferred = evaluate_deferred(&g, &canary, &stable, 60_000);
            assert_eq!(deferred, evaluate(&g, &canary, &stable, 60_000));
            assert!(deferred.conservative.is_some(), "{metric:?}");
            complete(&g, &mut deferred);
            assert_eq!(deferred, evaluate(&g, &canary, &stable, 60_000));
        }
    }

    #[test]
    fn a_point_estimate_over_the_level_is_said_to_be_over_it_with_its_bound() {
        let g = gate(Metric::P95Ms, Scope::Canary, Bound::Max, 500.0);
        let s = closest_sentence(&g, 501.0, Some(497.0));
        assert_eq!(
            s,
            "No 5 min window failed a gate; the closest was canary p95_ms at 501 ms: over the 500 ms fail level as a point estimate, but not at 99.9% confidence (at least 497 ms at 99.9% confidence), so within sampling noise."
        );
        assert!(!s.contains("of the way"));
    }

    #[test]
    fn a_ceiling_approached_is_a_share_of_the_level() {
        let g = gate(Metric::P95Ms, Scope::Canary, Bound::Max, 500.0);
        let s = closest_sentence(&g, 423.0, Some(410.0));
        assert!(
            s.ends_with("canary p95_ms at 423 ms, 85% of the 500 ms fail level."),
            "{s}"
        );
    }

    #[test]
    fn a_floor_kept_is_how_far_above_it() {
        let g = gate(Metric::ThroughputRps, Scope::Service, Bound::Min, 50.0);
        let s = closest_sentence(&g, 89.7, Some(88.0));
        assert!(
            s.contains("service throughput_rps at 89.7 req/s, 79% above the 50.0 req/s floor."),
            "{s}"
        );
        assert!(!s.contains("of the way"), "{s}");
    }
}
