//! A mergeable, log-bucketed latency histogram with bounded relative error (DDSketch-style).
//!
//! Latency is kept in sketches, not samples, so memory does not grow
//! with traffic and a controller can merge what several proxies saw exactly. A value `x`
//! (microseconds) goes to bucket `i = ceil(ln x / ln γ)` with `γ = (1 + α) / (1 − α)`; the
//! bucket covers `(γ^(i−1), γ^i]` and is reported as `2γ^i / (γ + 1)`, which is within `α` of
//! every value in it. With `α = 0.005` every quantile is within 0.5% of a value of the right
//! rank. Buckets are dense atomics, so recording is lock-free; this type is self-contained
//! so that it can later be swapped for `ramp-stats`' histogram.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// Relative accuracy of every reported quantile (0.5%), half the 1% the product promises.
pub const ALPHA: f64 = 0.005;

/// The largest value kept apart, in microseconds (10^10 µs ≈ 2.8 hours); larger values are
/// clamped into the last bucket so that a hung request cannot index out of range.
pub const MAX_VALUE_US: f64 = 1e10;

fn gamma() -> f64 {
    (1.0 + ALPHA) / (1.0 - ALPHA)
}

fn ln_gamma() -> f64 {
    gamma().ln()
}

/// Number of buckets: index 0 holds every value ≤ 1 µs, the last index holds `MAX_VALUE_US`.
fn bucket_count() -> usize {
    (MAX_VALUE_US.ln() / ln_gamma()).ceil() as usize + 1
}

/// Maps a value in microseconds to its bucket index.
pub fn index_of(value_us: f64) -> usize {
    if value_us <= 1.0 || value_us.is_nan() {
        return 0;
    }
    let v = value_us.min(MAX_VALUE_US);
    ((v.ln() / ln_gamma()).ceil() as usize).min(bucket_count() - 1)
}

/// The value reported for a bucket: `2γ^i / (γ + 1)`, within `α` of everything in the bucket.
pub fn value_of(index: usize) -> f64 {
    if index == 0 {
        return 1.0;
    }
    let g = gamma();
    2.0 * g.powi(index as i32) / (g + 1.0)
}

/// The inclusive upper bound of a bucket, `γ^i` microseconds.
pub fn upper_bound_of(index: usize) -> f64 {
    gamma().powi(index as i32)
}

/// A live histogram that many threads record into at once.
pub struct Histogram {
    /// One counter per bucket, dense so that recording is one atomic add.
    buckets: Box<[AtomicU64]>,
    /// Sum of recorded values in microseconds, for the Prometheus `_sum` and a mean.
    sum_us: AtomicU64,
}

/// A short form (count and sum), not the thousands of counters, so that types holding a
/// histogram can derive `Debug`.
impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (_, count) = self.cumulative_counts(&[]);
        f.debug_struct("Histogram")
            .field("count", &count)
            .field("sum_us", &self.sum_us())
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// Creates an empty histogram (about 18 KiB of counters).
    pub fn new() -> Self {
        let buckets = (0..bucket_count()).map(|_| AtomicU64::new(0)).collect();
        Self {
            buckets,
            sum_us: AtomicU64::new(0),
        }
    }

    /// Records one value in microseconds.
    pub fn record_us(&self, value_us: u64) {
        let index = index_of(value_us as f64);
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(value_us, Ordering::Relaxed);
    }

    /// Copies the counters into a plain, serialisable snapshot. Concurrent recording may land
    /// on either side of the copy; the snapshot's count is the sum of its own buckets, so it
    /// is always self-consistent.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut buckets = Vec::new();
        for (index, counter) in self.buckets.iter().enumerate() {
            let count = counter.load(Ordering::Relaxed);
            if count > 0 {
                buckets.push((index as u32, count));
            }
        }
        HistogramSnapshot {
            alpha: ALPHA,
            unit: "microseconds".to_string(),
            count: buckets.iter().map(|(_, c)| c).sum(),
            sum: self.sum_us.load(Ordering::Relaxed),
            buckets,
        }
    }

    /// The cumulative counts of values ≤ `upper_bound_of(i)` for each of `indexes`
    /// (ascending), and the total count, read in one pass over the counters: the counts
    /// never decrease along `indexes` and none exceeds the total, even while other threads
    /// record.
    pub fn cumulative_counts(&self, indexes: &[usize]) -> (Vec<u64>, u64) {
        let mut out = Vec::with_capacity(indexes.len());
        let mut next = indexes.iter().peekable();
        let mut total = 0u64;
        for (index, counter) in self.buckets.iter().enumerate() {
            total += counter.load(Ordering::Relaxed);
            while next.next_if(|&&i| i <= index).is_some() {
                out.push(total);
            }
        }
        out.resize(indexes.len(), total);
        (out, total)
    }

    /// The sum of the recorded values in microseconds, the Prometheus `_sum`.
    pub fn sum_us(&self) -> u64 {
        self.sum_us.load(Ordering::Relaxed)
    }
}

/// A point-in-time copy of a [`Histogram`], the form the admin `/snapshot` endpoint serves so
/// that a controller can add bucket counts of several proxies or intervals exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramSnapshot {
    /// The relative accuracy the buckets were built for; merging requires equal values.
    pub alpha: f64,
    /// The unit of the recorded values and of `sum`, always "microseconds" here.
    pub unit: String,
    /// Total number of recorded values (the sum of the bucket counts).
    pub count: u64,
    /// Sum of recorded values, in `unit`.
    pub sum: u64,
    /// Non-empty buckets as `(index, count)`, ascending by index.
    pub buckets: Vec<(u32, u64)>,
}

impl HistogramSnapshot {
    /// Returns the estimated value at quantile `q` (0..=1) in microseconds: the reported value
    /// of the bucket holding the value of rank `floor(q · (count − 1))` in ascending order, or
    /// `None` when empty.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * (self.count - 1) as f64).floor() as u64;
        let mut seen = 0u64;
        for (index, count) in &self.buckets {
            seen += count;
            if seen > rank {
                return Some(value_of(*index as usize));
            }
        }
        self.buckets.last().map(|(i, _)| value_of(*i as usize))
    }

    /// What was recorded between `earlier` and this snapshot of the same histogram: the
    /// bucket-by-bucket difference (exact, as the counts only grow; a bucket that shrank,
    /// which only a restart can cause, counts 0).
    pub fn since(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        let before: std::collections::HashMap<u32, u64> = earlier.buckets.iter().copied().collect();
        let buckets: Vec<(u32, u64)> = self
            .buckets
            .iter()
            .map(|&(i, c)| (i, c.saturating_sub(before.get(&i).copied().unwrap_or(0))))
            .filter(|&(_, c)| c > 0)
            .collect();
        HistogramSnapshot {
            alpha: self.alpha,
            unit: self.unit.clone(),
            count: buckets.iter().map(|(_, c)| c).sum(),
            sum: self.sum.saturating_sub(earlier.sum),
            buckets,
        }
    }

    /// Adds another snapshot's counts into this one (exact: same buckets, counts add).
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        let mut merged: Vec<(u32, u64)> =
            Vec::with_capacity(self.buckets.len() + other.buckets.len());
        let (mut a, mut b) = (
            self.buckets.iter().peekable(),
            other.buckets.iter().peekable(),
        );
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    merged.push((x.0, x.1 + y.1));
                    a.next();
                    b.next();
                }
                (Some(x), Some(y)) if x.0 < y.0 => {
                    merged.push(**x);
                    a.next();
                }
                (Some(_), Some(y)) => {
                    merged.push(**y);
                    b.next();
                }
                (Some(x), None) => {
                    merged.push(**x);
                    a.next();
                }
                (None, Some(y)) => {
                    merged.push(**y);
                    b.next();
                }
                (None, None) => break,
            }
        }
        self.buckets = merged;
        self.count += other.count;
        self.sum += other.sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact_quantile(sorted: &[u64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize] as f64
    }

    #[test]
    fn every_value_is_within_alpha_of_its_bucket_value() {
        let mut v = 1.0f64;
        while v < MAX_VALUE_US {
            let reported = value_of(index_of(v));
            assert!(
                ((reported - v) / v).abs() <= ALPHA + 1e-12,
                "{v} reported as {reported}"
            );
            v *= 1.37;
        }
    }

    #[test]
    fn quantiles_are_within_one_percent_of_exact() {
        // A deterministic, skewed set: 20 000 values between 50 µs and ~2 s.
        let mut values: Vec<u64> = (0..20_000u64)
            .map(|i| {
                let x = ((i * 7919) % 20_000) as f64 / 20_000.0;
                (50.0 * (x * 10.6).exp()) as u64
            })
            .collect();
        let h = Histogram::new();
        for v in &values {
            h.record_us(*v);
        }
        values.sort_unstable();
        let snap = h.snapshot();
        assert_eq!(snap.count, 20_000);
        assert_eq!(snap.sum, values.iter().sum::<u64>());
        for q in [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let exact = exact_quantile(&values, q);
            let est = snap.quantile_us(q).unwrap();
            assert!(
                ((est - exact) / exact).abs() <= 0.01,
                "q{q}: {est} vs {exact}"
            );
        }
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let (a, b, all) = (Histogram::new(), Histogram::new(), Histogram::new());
        for i in 1..5_000u64 {
            let v = i * 37 % 100_003;
            if i % 3 == 0 {
                a.record_us(v)
            } else {
                b.record_us(v)
            }
            all.record_us(v);
        }
        let mut merged = a.snapshot();
        merged.merge(&b.snapshot());
        assert_eq!(merged, all.snapshot());
        assert_eq!(all.snapshot().since(&a.snapshot()), b.snapshot());
    }

    #[test]
    fn extreme_values_are_clamped_not_lost() {
        let h = Histogram::new();
        h.record_us(0);
        h.record_us(u64::MAX / 4);
        let snap = h.snapshot();
        assert_eq!(snap.count, 2);
        assert_eq!(snap.buckets.first().map(|b| b.0), Some(0));
        assert_eq!(
            snap.buckets.last().map(|b| b.0 as usize),
            Some(bucket_count() - 1)
        );
        assert_eq!(
            HistogramSnapshot {
                buckets: vec![],
                count: 0,
                sum: 0,
                alpha: ALPHA,
                unit: String::new()
            }
            .quantile_us(0.5),
            None
        );
    }
}
