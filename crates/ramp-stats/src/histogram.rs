//! A log-bucketed latency histogram (DDSketch's mapping, dense storage).
//!
//! Bucket `i` holds values in `(MIN·γ^(i−1), MIN·γ^i]` with `γ = (1+α)/(1−α)`; reporting a
//! bucket by `2·MIN·γ^i/(γ+1)` is within relative error `α` of every value in it. Merging is
//! adding counts, so histograms from many windows, cohorts or processes combine exactly: the
//! merge of two sketches equals the sketch of the union of their samples.

use serde::{Deserialize, Serialize};

/// Largest relative error of a bucket's representative value (`Histogram::value_of`) from any
/// value in the bucket (0.5 %).
pub const RELATIVE_ERROR: f64 = 0.005;

/// Largest relative error of a quantile read from a `Histogram` (1 %): the sample of the
/// right rank lies in its bucket, and the value reported is interpolated within that bucket
/// (`Histogram::quantile`), kept within 1 % of both of its edges.
pub const QUANTILE_ERROR: f64 = 2.0 * RELATIVE_ERROR;

/// Smallest distinguishable latency in milliseconds (1 µs); smaller values share bucket 0.
const MIN_MS: f64 = 0.001;

/// Number of buckets: enough to reach an hour (3.6e6 ms) from `MIN_MS` at `γ`.
const BUCKETS: usize = 2200;

/// γ for `RELATIVE_ERROR`.
fn gamma() -> f64 {
    (1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR)
}

/// A latency histogram in milliseconds whose quantiles are within `QUANTILE_ERROR` (1 %) of the
/// exact sample quantiles.
///
/// Storage is a dense run of buckets covering only the range that was ever touched (grown
/// with some slack when a sample lands outside it), so adding, subtracting and merging are
/// plain loops, and a histogram of typical latencies (tens of ms to seconds) holds a few
/// hundred counters, not thousands: creating one per second of simulated traffic is cheap.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "Repr", into = "Repr")]
pub struct Histogram {
    /// Counts of buckets `offset..offset + counts.len()`; empty until the first sample so
    /// that unused histograms cost nothing.
    counts: Vec<u64>,
    /// Bucket index of `counts[0]`.
    offset: usize,
    /// Total samples, kept so that quantile ranks need no extra pass.
    total: u64,
    /// Lowest bucket index ever touched (`usize::MAX` when none).
    lo: usize,
    /// Highest bucket index ever touched.
    hi: usize,
}

/// The wire form of a histogram: non-empty buckets as `[index, count]` pairs. Reading goes
/// through `record_n`, so a hostile or corrupt snapshot cannot break the invariants (indexes
/// beyond the last bucket are clamped into it).
#[derive(Serialize, Deserialize)]
struct Repr {
    /// Non-empty buckets.
    buckets: Vec<(usize, u64)>,
}

impl From<Repr> for Histogram {
    fn from(r: Repr) -> Histogram {
        let mut h = Histogram::new();
        for (i, n) in r.buckets {
            h.record_n(i, n);
        }
        h
    }
}

impl From<Histogram> for Repr {
    fn from(h: Histogram) -> Repr {
        Repr {
            buckets: h.buckets(),
        }
    }
}

/// Two histograms are equal when they hold the same samples, whatever their storage.
impl PartialEq for Histogram {
    fn eq(&self, other: &Histogram) -> bool {
        self.total == other.total && self.buckets() == other.buckets()
    }
}

impl Eq for Histogram {}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("p50", &self.quantile(0.5))
            .field("p99", &self.quantile(0.99))
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            counts: Vec::new(),
            offset: 0,
            total: 0,
            lo: usize::MAX,
            hi: 0,
        }
    }

    /// The bucket index of a latency in milliseconds. Non-finite and non-positive values go
    /// to bucket 0 and values beyond an hour to the last bucket, so no input can panic.
    pub fn index_of(ms: f64) -> usize {
        if ms.is_nan() || ms <= MIN_MS {
            return 0;
        }
        let i = ((ms / MIN_MS).ln() / gamma().ln()).ceil();
        if i >= (BUCKETS - 1) as f64 {
            BUCKETS - 1
        } else {
            i as usize
        }
    }

    /// Number of buckets: indexes run from 0 to `bucket_count() − 1`. A sampler that draws
    /// bucket counts directly (the simulator's aggregated sampler) walks this range instead of
    /// recording values one by one.
    pub const fn bucket_count() -> usize {
        BUCKETS
    }

    /// The upper edge of bucket `i` in milliseconds: bucket `i` holds the values in
    /// `(upper_edge(i − 1), upper_edge(i)]`, exactly the values [`Histogram::index_of`] maps
    /// to `i` (up to rounding at the edges themselves). Bucket 0 holds everything up to 1 µs and
    /// the last bucket everything above the one before it, so its edge is infinite. This is the
    /// mapping's other half, for a sampler that computes each bucket's probability from a
    /// distribution's CDF rather than recording draws.
    pub fn upper_edge(i: usize) -> f64 {
        if i >= BUCKETS - 1 {
            return f64::INFINITY;
        }
        MIN_MS * (i as f64 * gamma().ln()).exp()
    }

    /// The value reported for bucket `i`: within `RELATIVE_ERROR` of anything in it.
    pub fn value_of(i: usize) -> f64 {
        let g = gamma();
        if i == 0 {
            return MIN_MS;
        }
        2.0 * MIN_MS * g.powi(i as i32) / (g + 1.0)
    }

    /// Records one latency.
    pub fn record(&mut self, ms: f64) {
        self.record_n(Self::index_of(ms), 1);
    }

    /// Adds `n` samples to bucket `i` (used by the proxy's snapshot merge and by tests).
    pub fn record_n(&mut self, i: usize, n: u64) {
        if n == 0 {
            return;
        }
        let i = i.min(BUCKETS - 1);
        self.cover(i, i);
        let c = &mut self.counts[i - self.offset];
        *c = c.saturating_add(n);
        self.total = self.total.saturating_add(n);
        self.lo = self.lo.min(i);
        self.hi = self.hi.max(i);
    }

    /// Adds `counts[k]` samples to bucket `first + k` for every `k`: what a sampler that
    /// draws bucket counts directly (the simulator's aggregated sampler) records, with one
    /// storage check for the whole run of buckets instead of one per bucket. Buckets beyond
    /// the last are clamped into it, as [`Histogram::record_n`] does.
    pub fn record_counts(&mut self, first: usize, counts: &[u64]) {
        let Some(lo) = counts.iter().position(|&c| c > 0) else {
            return;
        };
        let hi = counts.iter().rposition(|&c| c > 0).unwrap_or(lo);
        if first + hi >= BUCKETS {
            for (k, &c) in counts.iter().enumerate() {
                self.record_n(first + k, c);
            }
            return;
        }
        let (lo, hi) = (first + lo, first + hi);
        self.cover(lo, hi);
        let mut added = 0u64;
        for (slot, &c) in self.counts[lo - self.offset..=hi - self.offset]
            .iter_mut()
            .zip(&counts[lo - first..=hi - first])
        {
            *slot = slot.saturating_add(c);
            added = added.saturating_add(c);
        }
        self.total = self.total.saturating_add(added);
        self.lo = self.lo.min(lo);
        self.hi = self.hi.max(hi);
    }

    /// Makes the histogram hold exactly `counts[k]` samples in bucket `first + k`: the same
    /// as [`Histogram::clear`] then [`Histogram::record_counts`], but only the old samples
    /// outside the new run are zeroed (the run itself is overwritten). The simulator reuses
    /// one histogram per cohort for each tick's draw, whose runs overlap from tick to tick.
    pub fn assign_counts(&mut self, first: usize, counts: &[u64]) {
        let run = counts
            .iter()
            .position(|&c| c > 0)
            .zip(counts.iter().rposition(|&c| c > 0));
        let Some((l, h)) = run.filter(|&(_, h)| first + h < BUCKETS) else {
            self.clear();
            self.record_counts(first, counts);
            return;
        };
        let (lo, hi) = (first + l, first + h);
        if self.total > 0 {
            let (old_lo, old_hi, off) = (self.lo, self.hi, self.offset);
            if old_lo < lo {
                self.counts[old_lo - off..=old_hi.min(lo - 1) - off].fill(0);
            }
            if old_hi > hi {
                self.counts[old_lo.max(hi + 1) - off..=old_hi - off].fill(0);
            }
        }
        self.total = 0;
        self.lo = usize::MAX;
        self.hi = 0;
        self.cover(lo, hi);
        let mut added = 0u64;
        for (slot, &c) in self.counts[lo - self.offset..=hi - self.offset]
            .iter_mut()
            .zip(&counts[l..=h])
        {
            *slot = c;
            added = added.saturating_add(c);
        }
        self.total = added;
        self.lo = lo;
        self.hi = hi;
    }

    /// Grows the storage so that buckets `lo..=hi` exist, with slack on the side that grew.
    fn cover(&mut self, lo: usize, hi: usize) {
        const SLACK: usize = 64;
        if self.counts.is_empty() {
            self.offset = lo.saturating_sub(SLACK);
            let end = (hi + SLACK + 1).min(BUCKETS);
            self.counts = vec![0; end - self.offset];
            return;
        }
        if lo < self.offset {
            let new_offset = lo.saturating_sub(SLACK);
            let grow = self.offset - new_offset;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = new_offset;
        }
        let end = self.offset + self.counts.len();
        if hi >= end {
            let new_end = (hi + SLACK + 1).min(BUCKETS);
            self.counts.resize(new_end - self.offset, 0);
        }
    }

    /// The count of bucket `i` (zero outside the storage).
    fn at(&self, i: usize) -> u64 {
        i.checked_sub(self.offset)
            .and_then(|k| self.counts.get(k))
            .copied()
            .unwrap_or(0)
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Removes every sample, keeping the allocation.
    pub fn clear(&mut self) {
        if self.total > 0 {
            for c in &mut self.counts[self.lo - self.offset..=self.hi - self.offset] {
                *c = 0;
            }
        }
        self.total = 0;
        self.lo = usize::MAX;
        self.hi = 0;
    }

    /// Adds every sample of `other` (exact merge).
    pub fn merge(&mut self, other: &Histogram) {
        if other.total == 0 {
            return;
        }
        self.cover(other.lo, other.hi);
        // Slices of the same length, so that the loop has no bounds checks and vectorises:
        // the engine merges every tick's slot into each window.
        let (so, oo) = (self.offset, other.offset);
        let src = &other.counts[other.lo - oo..=other.hi - oo];
        let dst = &mut self.counts[other.lo - so..=other.hi - so];
        for (d, s) in dst.iter_mut().zip(src) {
            *d += s;
        }
        self.total += other.total;
        self.lo = self.lo.min(other.lo);
        self.hi = self.hi.max(other.hi);
    }

    /// Removes the samples of `other`, which must have been merged in before (a window
    /// dropping its oldest slot). Counts saturate at zero rather than panic.
    pub fn subtract(&mut self, other: &Histogram) {
        if other.total == 0 || self.counts.is_empty() {
            return;
        }
        self.cover(other.lo, other.hi);
        let (so, oo) = (self.offset, other.offset);
        let src = &other.counts[other.lo - oo..=other.hi - oo];
        let dst = &mut self.counts[other.lo - so..=other.hi - so];
        for (d, s) in dst.iter_mut().zip(src) {
            *d = d.saturating_sub(*s);
        }
        self.total = self.total.saturating_sub(other.total);
        if self.total == 0 {
            self.lo = usize::MAX;
            self.hi = 0;
        }
    }

    /// The `q` quantile (nearest rank), `None` when empty, interpolated within its bucket.
    ///
    /// The sample of rank `r` lies in some bucket; the bucket's `c` samples are taken as
    /// spread evenly over it in log space, and the `k`-th of them is reported. A bucket's
    /// single representative would make a quantile step from bucket to bucket (about 1 %
    /// apart, so a report's P99 reads 810, 818, 827 and never between); interpolated, it
    /// moves with the data, and it stays within `QUANTILE_ERROR` of the true sample.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = Histogram::rank(q, self.total);
        let run = &self.counts[self.lo - self.offset..=self.hi - self.offset];
        let mut below = self.total;
        if rank * 2 > self.total {
            // High quantiles (p95, p99) are found fastest from the top: `below` counts the
            // samples under the bucket in hand.
            for (k, &c) in run.iter().enumerate().rev() {
                below -= c;
                if below < rank {
                    return Some(Histogram::within(self.lo + k, rank - below, c));
                }
            }
        } else {
            below = 0;
            for (k, &c) in run.iter().enumerate() {
                if below + c >= rank {
                    return Some(Histogram::within(self.lo + k, rank - below, c));
                }
                below += c;
            }
        }
        Some(Histogram::value_of(self.hi))
    }

    /// The `a` and `b` quantiles, each exactly as [`Histogram::quantile`] gives it, found in
    /// one walk when both lie on the same side of the median: the engine reads every latency
    /// gate's point estimate and the end of its confidence interval at every tick, two
    /// ranks a few buckets apart.
    pub fn quantile_pair(&self, a: f64, b: f64) -> Option<(f64, f64)> {
        if self.total == 0 {
            return None;
        }
        let (ra, rb) = (
            Histogram::rank(a, self.total),
            Histogram::rank(b, self.total),
        );
        let high = |r: u64| r * 2 > self.total;
        if high(ra) != high(rb) {
            return Some((self.quantile(a)?, self.quantile(b)?));
        }
        // One walk, from the end nearer to both ranks, finds the nearer rank and goes on from
        // that bucket to the other. It only finds where each rank lies, `(bucket, rank
        // within it, its count)`; the values are computed after it (inside the loop the
        // compiler evaluated the bucket's value speculatively at every step).
        let run = &self.counts[self.lo - self.offset..=self.hi - self.offset];
        let (at_a, at_b) = if high(ra) {
            // `below` counts the samples under bucket `k`; `k == run.len()` is above the top.
            let (mut k, mut below) = (run.len(), self.total);
            let mut find = |r: u64| loop {
                if k < run.len() && below < r {
                    return Some((k, r - below, run[k]));
                }
                if k == 0 {
                    return None;
                }
                k -= 1;
                below -= run[k];
            };
            if ra >= rb {
                let a = find(ra);
                (a, find(rb))
            } else {
                let b = find(rb);
                (find(ra), b)
            }
        } else {
            // `below` counts the samples under bucket `k`.
            let (mut k, mut below) = (0, 0u64);
            let mut find = |r: u64| {
                while k < run.len() {
                    if below + run[k] >= r {
                        return Some((k, r - below, run[k]));
                    }
                    below += run[k];
                    k += 1;
                }
                None
            };
            if ra <= rb {
                let a = find(ra);
                (a, find(rb))
            } else {
                let b = find(rb);
                (find(ra), b)
            }
        };
        // A walk that ran off the end reports the last bucket, as `quantile` does.
        let value = |at: Option<(usize, u64, u64)>| match at {
            Some((k, r, c)) => Histogram::within(self.lo + k, r, c),
            None => Histogram::value_of(self.hi),
        };
        Some((value(at_a), value(at_b)))
    }

    /// The value of the `k`-th (1-based) of the `c` samples in bucket `i`, the samples spread
    /// evenly in log space over the bucket: `lower · γ^f` with `f = (k − ½)/c`. `f` is held
    /// where the value stays within `QUANTILE_ERROR` of both edges, so of any value of the
    /// bucket. Bucket 0 and the last bucket, which have no finite lower or upper edge, report
    /// their representative.
    fn within(i: usize, k: u64, c: u64) -> f64 {
        if i == 0 || i >= BUCKETS - 1 || c == 0 {
            return Histogram::value_of(i);
        }
        let g = gamma().ln();
        // The largest fraction of the bucket at which the value is still within the error
        // of its lower edge; at the smallest it is within the error of the upper edge,
        // since (1 − 1/γ) < QUANTILE_ERROR.
        let most = (1.0 + QUANTILE_ERROR).ln() / g;
        let f = ((k as f64 - 0.5) / c as f64).clamp(1e-6, most);
        MIN_MS * ((i as f64 - 1.0 + f) * g).exp()
    }

    /// The nearest rank (1-based) of quantile `q` among `total` samples.
    fn rank(q: f64, total: u64) -> u64 {
        let q = if q.is_nan() { 0.5 } else { q.clamp(0.0, 1.0) };
        ((q * total as f64).ceil() as u64).clamp(1, total)
    }

    /// The `q` quantile of the union of several histograms, without building the union
    /// (the service scope is canary ∪ stable), interpolated as `quantile` is.
    pub fn quantile_of(parts: &[&Histogram], q: f64) -> Option<f64> {
        let total: u64 = parts.iter().map(|h| h.total).sum();
        if total == 0 {
            return None;
        }
        // One histogram with data: its own walk over its dense run, which needs no lookup per
        // bucket (the engine asks this of every canary gate at every tick). Its buckets sum
        // to the total, so the result is the general walk's.
        let mut live = parts.iter().filter(|h| h.total > 0);
        if let (Some(only), None) = (live.next(), live.next()) {
            return only.quantile(q);
        }
        let rank = Histogram::rank(q, total);
        let lo = parts.iter().filter(|h| h.total > 0).map(|h| h.lo).min()?;
        let hi = parts.iter().filter(|h| h.total > 0).map(|h| h.hi).max()?;
        let count = |i: usize| -> u64 { parts.iter().map(|h| h.at(i)).sum() };
        if rank * 2 > total {
            // High quantiles (p95, p99) are found fastest from the top.
            let mut below = total;
            for i in (lo..=hi).rev() {
                let c = count(i);
                below -= c;
                if below < rank {
                    return Some(Histogram::within(i, rank - below, c));
                }
            }
            return Some(Histogram::value_of(lo));
        }
        let mut below = 0u64;
        for i in lo..=hi {
            let c = count(i);
            if below + c >= rank {
                return Some(Histogram::within(i, rank - below, c));
            }
            below += c;
        }
        Some(Histogram::value_of(hi))
    }

    /// Share of samples strictly above `ms` (at bucket resolution), `None` when empty.
    pub fn fraction_above(&self, ms: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let b = Histogram::index_of(ms);
        let above: u64 = (b + 1..=self.hi.max(b)).map(|i| self.at(i)).sum();
        Some(above as f64 / self.total as f64)
    }

    /// Non-empty buckets as `(index, count)` pairs, for snapshots and exact merges elsewhere.
    pub fn buckets(&self) -> Vec<(usize, u64)> {
        if self.total == 0 {
            return Vec::new();
        }
        (self.lo..=self.hi)
            .filter(|&i| self.at(i) > 0)
            .map(|i| (i, self.at(i)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bucket_value_is_within_the_relative_error() {
        for &x in &[
            0.002, 0.5, 1.0, 3.3, 145.0, 385.0, 720.0, 999.9, 12_345.0, 3.0e6,
        ] {
            let v = Histogram::value_of(Histogram::index_of(x));
            assert!(((v - x) / x).abs() <= RELATIVE_ERROR + 1e-12, "{x} -> {v}");
        }
    }

    #[test]
    fn upper_edges_bound_exactly_the_values_of_each_bucket() {
        for i in [1, 2, 100, 1234, BUCKETS - 3, BUCKETS - 2] {
            let edge = Histogram::upper_edge(i);
            assert_eq!(Histogram::index_of(edge * (1.0 - 1e-12)), i, "{i}");
            assert_eq!(Histogram::index_of(edge * (1.0 + 1e-12)), i + 1, "{i}");
        }
        assert_eq!(Histogram::upper_edge(0), MIN_MS);
        assert_eq!(Histogram::upper_edge(BUCKETS - 1), f64::INFINITY);
        assert_eq!(Histogram::index_of(f64::MAX), Histogram::bucket_count() - 1);
    }

    /// The pair walk must give each quantile bit for bit as its own walk does, on either side
    /// of the median, across it, at the ends, and for one sample.
    #[test]
    fn a_pair_of_quantiles_equals_two_walks() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(7);
        let qs = [
            0.0, 0.001, 0.3, 0.4999, 0.5, 0.5001, 0.6, 0.95, 0.97, 0.99, 0.999, 1.0,
        ];
        for n in [1usize, 2, 3, 10, 200, 5_000] {
            let mut h = Histogram::new();
            for _ in 0..n {
                h.record(rng.random_range(1.0..2_000.0f64).powf(1.3));
            }
            for &a in &qs {
                for &b in &qs {
                    let pair = h.quantile_pair(a, b).expect("samples");
                    let two = (h.quantile(a).unwrap(), h.quantile(b).unwrap());
                    assert_eq!(
                        (pair.0.to_bits(), pair.1.to_bits()),
                        (two.0.to_bits(), two.1.to_bits()),
                        "n {n}, q {a} and {b}"
                    );
                }
            }
        }
        assert_eq!(Histogram::new().quantile_pair(0.5, 0.9), None);
    }

    /// Assigning a run of counts must leave exactly what clearing and recording it leaves,
    /// storage included, whatever the old run was: below, above, overlapping or inside.
    #[test]
    fn assigning_counts_equals_clearing_then_recording() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(11);
        let (mut assigned, mut cleared) = (Histogram::new(), Histogram::new());
        for round in 0..400 {
            let first = rng.random_range(0..BUCKETS + 20);
            let len = rng.random_range(0..300usize);
            let counts: Vec<u64> = (0..len)
                .map(|_| {
                    if rng.random_bool(0.3) {
                        0
                    } else {
                        rng.random_range(1..50)
                    }
                })
                .collect();
            assigned.assign_counts(first, &counts);
            cleared.clear();
            cleared.record_counts(first, &counts);
            assert_eq!(
                assigned, cleared,
                "round {round}: first {first}, {len} counts"
            );
            assert_eq!(assigned.buckets(), cleared.buckets(), "round {round}");
            // Nothing of an older run is left outside the new one.
            assert_eq!(
                assigned.counts.iter().sum::<u64>(),
                assigned.total,
                "round {round}"
            );
        }
    }

    #[test]
    fn recording_a_run_of_counts_equals_recording_each() {
        let counts = [0, 3, 0, 7, 1, 0];
        for first in [0, 500, BUCKETS - 4] {
            let mut bulk = Histogram::new();
            bulk.record(145.0);
            bulk.record_counts(first, &counts);
            let mut each = Histogram::new();
            each.record(145.0);
            for (k, &c) in counts.iter().enumerate() {
                each.record_n(first + k, c);
            }
            assert_eq!(bulk, each, "{first}");
            assert_eq!(bulk.count(), 12);
        }
        let mut empty = Histogram::new();
        empty.record_counts(10, &[0, 0]);
        assert!(empty.is_empty());
    }

    #[test]
    fn quantiles_of_a_known_set_are_within_the_error() {
        let mut h = Histogram::new();
        for i in 1..=1000 {
            h.record(i as f64);
        }
        for (q, want) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0), (1.0, 1000.0)] {
            let got = h.quantile(q).unwrap();
            assert!(
                ((got - want) / want).abs() <= QUANTILE_ERROR + 1e-9,
                "q{q}: {got}"
            );
        }
        assert_eq!(h.count(), 1000);
    }

    #[test]
    fn merge_then_subtract_restores_the_original() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        for i in 1..500 {
            a.record(i as f64 * 1.7);
            b.record(i as f64 * 0.3 + 900.0);
        }
        let before = a.clone();
        a.merge(&b);
        assert_eq!(a.count(), before.count() + b.count());
        a.subtract(&b);
        assert_eq!(a.buckets(), before.buckets());
        assert_eq!(a.quantile(0.9), before.quantile(0.9));
    }

    #[test]
    fn union_quantile_equals_quantile_of_merged() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        for i in 0..3000 {
            a.record(100.0 + (i % 97) as f64);
            b.record(400.0 + (i % 13) as f64 * 10.0);
        }
        let mut m = a.clone();
        m.merge(&b);
        for q in [0.1, 0.5, 0.95, 0.99] {
            assert_eq!(Histogram::quantile_of(&[&a, &b], q), m.quantile(q));
        }
    }

    #[test]
    fn hostile_values_do_not_panic() {
        let mut h = Histogram::new();
        for x in [
            f64::NAN,
            f64::INFINITY,
            -1.0,
            0.0,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            h.record(x);
        }
        assert_eq!(h.count(), 6);
        assert!(h.quantile(0.5).is_some());
        assert_eq!(Histogram::new().quantile(0.5), None);
    }

    #[test]
    fn serde_round_trips_and_survives_hostile_indexes() {
        let mut h = Histogram::new();
        for x in [1.0, 2.0, 2.0, 500.0] {
            h.record(x);
        }
        let json = serde_json_like(&h);
        let back: Histogram = Histogram::from(Repr { buckets: json });
        assert_eq!(back, h);
        let hostile = Histogram::from(Repr {
            buckets: vec![(usize::MAX, 3), (0, 1)],
        });
        assert_eq!(hostile.count(), 4);
        assert!(hostile.quantile(0.99).is_some());
    }

    fn serde_json_like(h: &Histogram) -> Vec<(usize, u64)> {
        Repr::from(h.clone()).buckets
    }

    proptest::proptest! {
        #[test]
        fn quantiles_stay_within_the_error_of_the_exact_ones(
            mut xs in proptest::collection::vec(0.01f64..100_000.0, 1..400),
            q in 0.0f64..=1.0,
        ) {
            let mut h = Histogram::new();
            for &x in &xs { h.record(x); }
            xs.sort_by(f64::total_cmp);
            let rank = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len());
            let exact = xs[rank - 1];
            let got = h.quantile(q).unwrap();
            proptest::prop_assert!(((got - exact) / exact).abs() <= QUANTILE_ERROR + 1e-9, "{got} vs {exact}");
        }

        #[test]
        fn merging_equals_recording_everything(
            a in proptest::collection::vec(0.01f64..100_000.0, 0..200),
            b in proptest::collection::vec(0.01f64..100_000.0, 0..200),
        ) {
            let (mut ha, mut hb, mut all) = (Histogram::new(), Histogram::new(), Histogram::new());
            for &x in &a { ha.record(x); all.record(x); }
            for &x in &b { hb.record(x); all.record(x); }
            let mut m = ha.clone();
            m.merge(&hb);
            proptest::prop_assert_eq!(&m, &all);
            m.subtract(&hb);
            proptest::prop_assert_eq!(&m, &ha);
        }
    }

    #[test]
    fn quantiles_move_with_the_data_inside_one_bucket() {
        // A thousand latencies spread across the one bucket holding 165 ms: the bucket's
        // representative would report every quantile as the same value.
        let i = Histogram::index_of(165.0);
        let (lo, hi) = (Histogram::upper_edge(i - 1), Histogram::upper_edge(i));
        let mut xs: Vec<f64> = (0..1000)
            .map(|j| lo * (hi / lo).powf((f64::from(j) + 0.5) / 1000.0))
            .collect();
        let mut h = Histogram::new();
        for &x in &xs {
            h.record(x);
        }
        xs.sort_by(f64::total_cmp);
        let (p10, p50, p90) = (
            h.quantile(0.1).unwrap(),
            h.quantile(0.5).unwrap(),
            h.quantile(0.9).unwrap(),
        );
        assert!(p10 < p50 && p50 < p90, "{p10} {p50} {p90}");
        for (q, got) in [(0.1, p10), (0.5, p50), (0.9, p90)] {
            let exact = xs[(q * 1000.0) as usize - 1];
            // Spread evenly, the samples are placed almost exactly where they were.
            assert!(
                ((got - exact) / exact).abs() < 1e-4,
                "q{q}: {got} vs {exact}"
            );
        }
    }

    #[test]
    fn interpolated_quantiles_of_smooth_data_are_closer_than_the_representatives() {
        use rand::SeedableRng;
        use rand_distr::Distribution;
        let mut rng = rand_pcg::Pcg64::seed_from_u64(7);
        let model = rand_distr::LogNormal::new(165f64.ln(), 0.5).unwrap();
        let mut xs: Vec<f64> = (0..100_000).map(|_| model.sample(&mut rng)).collect();
        let mut h = Histogram::new();
        for &x in &xs {
            h.record(x);
        }
        xs.sort_by(f64::total_cmp);
        // Summed over these quantiles at this seed: 0.26 % interpolated, 2.2 % for the
        // buckets' representatives (each up to 0.5 % off, 0.41 % at the median here).
        let (mut interpolated, mut representative) = (0f64, 0f64);
        for q in [0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999] {
            let exact = xs[(q * xs.len() as f64).ceil() as usize - 1];
            let err = ((h.quantile(q).unwrap() - exact) / exact).abs();
            assert!(err <= QUANTILE_ERROR, "q{q}: {err}");
            interpolated += err;
            representative +=
                ((Histogram::value_of(Histogram::index_of(exact)) - exact) / exact).abs();
        }
        assert!(
            interpolated * 5.0 < representative,
            "interpolated {interpolated}, representative {representative}"
        );
    }

    #[test]
    fn clear_empties() {
        let mut h = Histogram::new();
        h.record(5.0);
        h.clear();
        assert!(h.is_empty());
        assert_eq!(h.quantile(0.5), None);
        h.record(7.0);
        assert_eq!(h.count(), 1);
    }
}
