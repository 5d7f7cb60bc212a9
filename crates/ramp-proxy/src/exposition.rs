//! The Prometheus text exposition (format 0.0.4) of a latency sketch and of family headers,
//! shared by the proxy's admin `/metrics` and the demo upstream's own `/metrics`.
//!
//! A scraper knows only the classic `_bucket` series, and `histogram_quantile` interpolates
//! linearly inside the bucket that holds the quantile: its error is set by how wide the
//! buckets are where the quantile lies, not by the sketch behind them: the seventeen
//! 1-2.5-5 bounds exported before jumped from 0.504 s to 1.005 s and put a 704 ms p99 at
//! 909 ms. So the bounds here are every
//! [`EDGES_PER_BOUND`]-th edge of the sketch's own log buckets from [`LOWEST_BOUND_US`] to
//! [`HIGHEST_BOUND_US`]: each bound is a sketch edge, so every cumulative count is exact; the
//! bounds are about 7.2 % apart at every scale, so the interpolation error does not depend
//! on where a service's latency lies. `tests/exposition.rs` measures the result on the seed's
//! latency distribution and docs/prometheus.md, "Accuracy of the proxy's histogram", reports
//! it.

use crate::histogram::{self, Histogram};
use std::fmt::Write as _;

/// How many sketch buckets one exported bucket spans: bounds γ^(7k) are about 7.2 % apart,
/// which keeps `histogram_quantile` within about 1 % of the exact quantile on a smooth
/// latency distribution (docs/prometheus.md gives the measurements and the series count).
pub const EDGES_PER_BOUND: usize = 7;

/// The lowest exported bound, in microseconds (1 ms): everything faster shares the first
/// bucket.
pub const LOWEST_BOUND_US: f64 = 1_000.0;

/// The highest exported bound, in microseconds (60 s): everything slower is only in `+Inf`.
pub const HIGHEST_BOUND_US: f64 = 60_000_000.0;

/// The sketch indexes whose upper edges are the exported bounds, ascending: the multiples of
/// [`EDGES_PER_BOUND`] from the first at or above [`LOWEST_BOUND_US`] to the first at or
/// above [`HIGHEST_BOUND_US`].
pub fn bound_indexes() -> Vec<usize> {
    let first = histogram::index_of(LOWEST_BOUND_US).div_ceil(EDGES_PER_BOUND);
    let last = histogram::index_of(HIGHEST_BOUND_US).div_ceil(EDGES_PER_BOUND);
    (first..=last).map(|k| k * EDGES_PER_BOUND).collect()
}

/// The family kinds, header lines and label escaping of the text format, shared with the
/// controller's and the OFREP server's pages (ramp-flags holds the one writer of them).
pub use ramp_flags::exposition::{escape_label, write_header, Kind};

/// Writes one labelled series of histogram `name` (header written separately): a
/// `_bucket` line per bound of [`bound_indexes`], `+Inf`, `_sum` in seconds and `_count`.
///
/// `labels` is the label list without braces (`cohort="canary"`), already escaped. The
/// counters are read in one pass, so the buckets are non-decreasing and `+Inf` equals
/// `_count` even while requests are recorded; the sum is read after them and may include a
/// request or two that the buckets do not, which Prometheus tolerates.
pub fn write_histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let bounds = bound_indexes();
    let (cumulative, total) = h.cumulative_counts(&bounds);
    for (index, count) in bounds.iter().zip(cumulative) {
        let le = histogram::upper_bound_of(*index) / 1e6;
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {total}");
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum_us() as f64 / 1e6);
    let _ = writeln!(out, "{name}_count{{{labels}}} {total}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_span_one_millisecond_to_a_minute_on_sketch_edges() {
        let bounds = bound_indexes();
        let us = |i: usize| histogram::upper_bound_of(i);
        assert!((LOWEST_BOUND_US..LOWEST_BOUND_US * 1.08).contains(&us(bounds[0])));
        let top = us(*bounds.last().expect("bounds"));
        assert!((HIGHEST_BOUND_US..HIGHEST_BOUND_US * 1.08).contains(&top));
        for pair in bounds.windows(2) {
            let ratio = us(pair[1]) / us(pair[0]);
            assert!((ratio - 1.0725).abs() < 0.001, "{ratio}");
        }
    }

    #[test]
    fn a_series_is_cumulative_and_ends_with_its_count() {
        let h = Histogram::new();
        for us in [500, 2_000, 2_000, 150_000, 90_000_000] {
            h.record_us(us);
        }
        let mut out = String::new();
        write_histogram(&mut out, "x_seconds", "v=\"a\"", &h);
        let counts: Vec<u64> = out
            .lines()
            .filter(|l| l.starts_with("x_seconds_bucket"))
            .map(|l| {
                l.rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("count")
            })
            .collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{out}");
        assert_eq!(counts.first(), Some(&1), "{out}");
        assert_eq!(
            counts[counts.len() - 2],
            4,
            "90 s is above the last bound: {out}"
        );
        assert_eq!(counts.last(), Some(&5), "{out}");
        assert!(out.contains("x_seconds_count{v=\"a\"} 5\n"), "{out}");
        assert!(out.contains("x_seconds_sum{v=\"a\"} 90.1545\n"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
