//! Per-cohort counters and sliding windows over them.

use crate::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// What one cohort (canary or stable) did over some span: requests, failures, latency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CohortStats {
    /// Requests completed.
    pub requests: u64,
    /// Requests that failed (5xx, connect failure, timeout, reset).
    pub errors: u64,
    /// Latency of every request, failed ones included.
    pub latency: Histogram,
    /// The bucket bounds the latency was measured with, when it came from coarse buckets (a
    /// Prometheus histogram's `le` bounds, in microseconds, ascending, `+Inf` left out);
    /// `None` for exact data (a Ramp proxy's snapshot, the simulator). Each coarse bucket's
    /// count is recorded at the histogram index of the bucket's lower bound (index 0 for the
    /// first bucket), so a quantile read from `latency` is a lower bound of the true one and
    /// the next bound is an upper bound: [`CohortStats::quantile_bounds`] gives both, and a
    /// gate fails only on a breach that is certain given the bounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coarse_bounds_us: Option<Vec<u64>>,
}

impl CohortStats {
    /// Empty stats.
    pub fn new() -> CohortStats {
        CohortStats::default()
    }

    /// Adds another span's stats (exact).
    pub fn merge(&mut self, other: &CohortStats) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.latency.merge(&other.latency);
        if self.coarse_bounds_us.as_deref() != other.coarse_bounds_us.as_deref() {
            self.coarse_bounds_us = shared_bounds(
                self.coarse_bounds_us.as_deref(),
                other.coarse_bounds_us.as_deref(),
            );
        }
    }

    /// Removes stats that were merged in before.
    pub fn subtract(&mut self, other: &CohortStats) {
        self.requests = self.requests.saturating_sub(other.requests);
        self.errors = self.errors.saturating_sub(other.errors);
        self.latency.subtract(&other.latency);
    }

    /// Empties the stats, keeping allocations.
    pub fn clear(&mut self) {
        self.requests = 0;
        self.errors = 0;
        self.latency.clear();
        self.coarse_bounds_us = None;
    }

    /// The `q` quantile of the latency in ms as `(lower, upper)`: both the value itself for
    /// exact data; for coarse data ([`CohortStats::coarse_bounds_us`]) the bounds of the
    /// bucket that holds it (`upper` is infinite in the last, open bucket). `None` without
    /// samples.
    pub fn quantile_bounds(&self, q: f64) -> Option<(f64, f64)> {
        let v = self.latency.quantile(q)?;
        Some(match &self.coarse_bounds_us {
            None => (v, v),
            Some(bounds) => bracket(bounds, v),
        })
    }

    /// Failed / all requests, `None` without requests.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }
}

/// The bucket bounds valid for the union of two spans' data: a bound is a true bucket edge of
/// the merged data only if it is one in both (exact data, `None`, has every edge).
pub fn shared_bounds(a: Option<&[u64]>, b: Option<&[u64]>) -> Option<Vec<u64>> {
    match (a, b) {
        (None, None) => None,
        (Some(x), None) | (None, Some(x)) => Some(x.to_vec()),
        (Some(x), Some(y)) => Some(
            x.iter()
                .copied()
                .filter(|v| y.binary_search(v).is_ok())
                .collect(),
        ),
    }
}

/// The coarse bucket holding `v` ms, read from a histogram whose counts sit at their
/// buckets' lower bounds: the largest bound whose histogram index is at or under `v`'s, and
/// the next bound, in ms (infinite past the last bound).
pub fn bracket(bounds_us: &[u64], v: f64) -> (f64, f64) {
    // Counts sit at the histogram index of their bucket's lower bound, and `v` is the value
    // of such an index: the lower bound is the largest bound of an index at or under `v`'s.
    let ms = |us: u64| us as f64 / 1000.0;
    let at = Histogram::index_of(v);
    let below = bounds_us.partition_point(|&b| Histogram::index_of(ms(b)) <= at);
    let lower = below.checked_sub(1).map_or(0.0, |i| ms(bounds_us[i]));
    let upper = bounds_us.get(below).map_or(f64::INFINITY, |&b| ms(b));
    (lower, upper)
}

/// One observation interval: stats of both cohorts over `[start_ms, end_ms)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// Start of the interval, ms of plan time.
    pub start_ms: u64,
    /// End of the interval (exclusive), ms of plan time.
    pub end_ms: u64,
    /// The canary's stats.
    pub canary: CohortStats,
    /// The stable version's stats.
    pub stable: CohortStats,
}

/// Running totals of one window length. Serializable (with the windows) because a live
/// driver snapshots the engine's whole state into its journal, so that a resume replays only
/// the inputs after the snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Totals {
    /// Window length, ms.
    span_ms: u64,
    /// Sequence number of the oldest slot counted in the totals.
    first_seq: u64,
    /// Sum of the counted slots.
    canary: CohortStats,
    /// Sum of the counted slots.
    stable: CohortStats,
    /// Sum of the counted slots' spans, ms: the observed time they describe.
    covered_ms: u64,
}

/// Sliding windows of several lengths over one stream of slots.
///
/// Each slot is stored once; each window length keeps running totals that gain a slot when
/// it arrives and lose it when it slides out, so reading a window costs nothing beyond the
/// quantile walk, however long the window. A slot counts in a window of length `W` at time
/// `now` while `slot.end_ms > now − W`. Time between slots (a driver's gap: nothing was
/// observed) is in no slot, so it counts in no window: a window's covered time is the sum
/// of its slots' spans, and a rate over it is a rate over what was seen.
///
/// Serializable, slots and running totals as they are (not recomputed), so that a window
/// restored from an engine snapshot answers exactly as the one that was snapshotted;
/// [`SlidingWindow::fits`] checks a restored one before it is used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlidingWindow {
    /// Slots still inside the longest window, oldest first.
    slots: VecDeque<Slot>,
    /// Sequence number of `slots[0]`.
    base_seq: u64,
    /// One set of totals per distinct window length.
    windows: Vec<Totals>,
}

/// A read-out of one window: both cohorts' totals and the time they cover.
#[derive(Debug, Clone, Copy)]
pub struct WindowView<'a> {
    /// The canary's totals over the window.
    pub canary: &'a CohortStats,
    /// The stable version's totals over the window.
    pub stable: &'a CohortStats,
    /// Milliseconds of observed plan time the counted slots cover (the sum of their spans):
    /// less than the window's length early on or when the window holds a gap, and a little
    /// more when the oldest counted slot starts before the window.
    pub covered_ms: u64,
}

impl SlidingWindow {
    /// Windows of the given lengths (ms); duplicates are merged.
    pub fn new(spans_ms: &[u64]) -> SlidingWindow {
        let mut spans: Vec<u64> = spans_ms.to_vec();
        spans.sort_unstable();
        spans.dedup();
        SlidingWindow {
            slots: VecDeque::new(),
            base_seq: 0,
            windows: spans
                .into_iter()
                .map(|span_ms| Totals {
                    span_ms,
                    first_seq: 0,
                    canary: CohortStats::new(),
                    stable: CohortStats::new(),
                    covered_ms: 0,
                })
                .collect(),
        }
    }

    /// Adds the next slot (slots must arrive in time order) and slides every window to its
    /// end.
    pub fn push(&mut self, slot: Slot) {
        let now = slot.end_ms;
        let span = slot.end_ms.saturating_sub(slot.start_ms);
        for w in &mut self.windows {
            w.canary.merge(&slot.canary);
            w.stable.merge(&slot.stable);
            w.covered_ms += span;
        }
        self.slots.push_back(slot);
        let last_seq = self.base_seq + self.slots.len() as u64;
        for w in &mut self.windows {
            while w.first_seq < last_seq {
                let s = &self.slots[(w.first_seq - self.base_seq) as usize];
                if s.end_ms + w.span_ms > now {
                    break;
                }
                w.canary.subtract(&s.canary);
                w.stable.subtract(&s.stable);
                w.covered_ms = w
                    .covered_ms
                    .saturating_sub(s.end_ms.saturating_sub(s.start_ms));
                w.first_seq += 1;
            }
        }
        let keep_from = self
            .windows
            .iter()
            .map(|w| w.first_seq)
            .min()
            .unwrap_or(last_seq);
        while self.base_seq < keep_from {
            self.slots.pop_front();
            self.base_seq += 1;
        }
    }

    /// Whether this window (read back from a snapshot) has the same window lengths as `fresh`
    /// (the one a plan builds) and running totals that point inside its stored slots, so that
    /// sliding it can never index outside them: a snapshot that fails this is not used.
    pub fn fits(&self, fresh: &SlidingWindow) -> bool {
        let end = self.base_seq.saturating_add(self.slots.len() as u64);
        self.windows.len() == fresh.windows.len()
            && self.windows.iter().zip(&fresh.windows).all(|(w, f)| {
                w.span_ms == f.span_ms && (self.base_seq..=end).contains(&w.first_seq)
            })
    }

    /// The window of length `span_ms` (which must be one given to `new`) as of the last
    /// slot; `None` for an unknown length.
    pub fn view(&self, span_ms: u64) -> Option<WindowView<'_>> {
        let w = self.windows.iter().find(|w| w.span_ms == span_ms)?;
        // The counted slots' own spans are the time the totals describe: the whole of the
        // oldest one even when it starts before the window's edge, and none of a gap.
        Some(WindowView {
            canary: &w.canary,
            stable: &w.stable,
            covered_ms: w.covered_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(start: u64, end: u64, canary_req: u64, lat: f64) -> Slot {
        let mut canary = CohortStats::new();
        for _ in 0..canary_req {
            canary.latency.record(lat);
        }
        canary.requests = canary_req;
        Slot {
            start_ms: start,
            end_ms: end,
            canary,
            stable: CohortStats::new(),
        }
    }

    #[test]
    fn windows_slide_and_forget() {
        let mut w = SlidingWindow::new(&[10_000, 30_000, 10_000]);
        for i in 0..10u64 {
            w.push(slot(
                i * 5000,
                (i + 1) * 5000,
                i + 1,
                100.0 * (i + 1) as f64,
            ));
        }
        // At t = 50 s the 10 s window holds the slots ending at 45 s and 50 s.
        let v = w.view(10_000).unwrap();
        assert_eq!(v.canary.requests, 9 + 10);
        assert_eq!(v.covered_ms, 10_000);
        let v = w.view(30_000).unwrap();
        assert_eq!(v.canary.requests, (5..=10).sum::<u64>());
        assert!(w.view(1234).is_none());
    }

    #[test]
    fn a_young_window_covers_only_elapsed_time() {
        let mut w = SlidingWindow::new(&[60_000]);
        w.push(slot(0, 5000, 3, 10.0));
        assert_eq!(w.view(60_000).unwrap().covered_ms, 5000);
    }

    /// Fails on 63809fb: the window covered `now − start of its oldest slot`, 30 s here, so
    /// the 11 s nobody observed diluted the rate to 33 req/s.
    #[test]
    fn a_window_straddling_a_gap_covers_only_the_observed_time() {
        let mut w = SlidingWindow::new(&[30_000]);
        for i in 0..10u64 {
            w.push(slot(i * 1000, (i + 1) * 1000, 50, 10.0));
        }
        // Nothing was observed over [10 s, 21 s); observations resume at 21 s.
        for i in 21..30u64 {
            w.push(slot(i * 1000, (i + 1) * 1000, 50, 10.0));
        }
        let v = w.view(30_000).unwrap();
        assert_eq!((v.canary.requests, v.covered_ms), (950, 19_000));
        // Once the slots before the gap slide out, the window covers what is left.
        for i in 30..45u64 {
            w.push(slot(i * 1000, (i + 1) * 1000, 50, 10.0));
        }
        let v = w.view(30_000).unwrap();
        assert_eq!((v.canary.requests, v.covered_ms), (1200, 24_000));
    }

    #[test]
    fn window_quantiles_follow_the_recent_data() {
        let mut w = SlidingWindow::new(&[10_000]);
        for i in 0..4u64 {
            w.push(slot(
                i * 5000,
                (i + 1) * 5000,
                100,
                if i < 2 { 100.0 } else { 900.0 },
            ));
        }
        let p50 = w
            .view(10_000)
            .unwrap()
            .canary
            .latency
            .quantile(0.5)
            .unwrap();
        assert!((p50 - 900.0).abs() < 9.0);
    }
}
