//! The last five minutes of service-wide traffic, second by second: what a fault's reference
//! ("Recording baseline metrics") and a rollback's restoration window are measured on.
//!
//! The ring counts *entries*: one per simulated step that ends on a whole second (a step that
//! ends between seconds, at a tick or a fault's onset, joins the entry before it), the last
//! [`REFERENCE_SECONDS`] of them kept. The per-request sampler adds one entry per step; the
//! aggregated sampler adds a *part* covering many entries at once (a whole tick drawn in one
//! go), with the expected number of requests of each entry. Reading the last `k` entries then
//! takes whole parts, and of the oldest part only its share: each of its requests is kept
//! independently with probability (expected requests of the entries wanted) / (expected
//! requests of the part), which is exact for the Poisson arrivals of one model state (a
//! part never spans a change of weight or fault): per bucket a binomial draw, and for the
//! errors of each cohort a hypergeometric one (within a cohort and state, whether a request
//! failed is independent of its latency).

use ramp_core::summary::Metrics;
use ramp_stats::{CohortStats, Histogram};
use rand_distr::{Binomial, Distribution, Hypergeometric};
use std::collections::VecDeque;

/// Length of the ring: the reference window before a fault, in entries (seconds).
pub(crate) const REFERENCE_SECONDS: usize = 300;

/// Most emptied stats kept for reuse: a tick takes two (one per cohort) and returns two.
const SPARE: usize = 4;

/// One stretch of traffic in the ring.
#[derive(Debug, Clone)]
struct Part {
    /// Index of the entry its first step belongs to.
    first: u64,
    /// Expected requests of each entry it covers, from `first` on.
    weights: Vec<f64>,
    /// The canary's requests.
    canary: CohortStats,
    /// The stable version's requests.
    stable: CohortStats,
}

impl Part {
    /// Index of the last entry it covers.
    fn last(&self) -> u64 {
        self.first + self.weights.len().saturating_sub(1) as u64
    }
}

/// The ring of recent service-wide traffic.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ring {
    /// Parts, oldest first.
    parts: VecDeque<Part>,
    /// Entries opened so far.
    entries: u64,
    /// Stats of parts that left the ring, kept as they were with their histograms' storage:
    /// the aggregated sampler overwrites them with each tick's draw ([`Ring::recycled`])
    /// rather than allocating and zeroing new ones at every tick.
    spare: Vec<CohortStats>,
}

impl Ring {
    /// Adds traffic that covers a run of steps: `steps` holds each step's expected requests
    /// and whether it ends on a whole second (opening a new entry) or not (joining the entry
    /// before it). Traffic before the first entry has nowhere to go and is left out, as the
    /// per-second ring always did.
    pub(crate) fn push(&mut self, canary: CohortStats, stable: CohortStats, steps: &[(f64, bool)]) {
        let mut weights: Vec<f64> = Vec::with_capacity(steps.len());
        let mut first = None;
        for &(w, opens) in steps {
            if opens {
                first.get_or_insert(self.entries);
                weights.push(w);
                self.entries += 1;
            } else if let Some(last) = weights.last_mut() {
                *last += w;
            } else if self.entries > 0 {
                first.get_or_insert(self.entries - 1);
                weights.push(w);
            }
        }
        let Some(first) = first else { return };
        self.parts.push_back(Part {
            first,
            weights,
            canary,
            stable,
        });
        let keep_from = self.entries.saturating_sub(REFERENCE_SECONDS as u64);
        while self.parts.front().is_some_and(|p| p.last() < keep_from) {
            if let Some(part) = self.parts.pop_front() {
                for stats in [part.canary, part.stable] {
                    if self.spare.len() < SPARE {
                        self.spare.push(stats);
                    }
                }
            }
        }
    }

    /// Stats to overwrite for the next part: those of a part that left the ring when there
    /// is one, **still holding that part's data**, or new ones. The caller sets every field
    /// (the latency with [`Histogram::assign_counts`], which zeroes only what the new counts
    /// do not overwrite).
    pub(crate) fn recycled(&mut self) -> CohortStats {
        self.spare.pop().unwrap_or_default()
    }

    /// Service-wide metrics over the last `secs` entries (at most the ring's length, and the
    /// entries there are), with the oldest part thinned to the entries wanted.
    pub(crate) fn recent(&self, secs: usize, rng: &mut impl rand::Rng) -> Metrics {
        let available = self.entries.min(REFERENCE_SECONDS as u64);
        let k = (secs as u64).min(available);
        let from = self.entries - k;
        let mut all = CohortStats::new();
        for part in self.parts.iter().rev() {
            if part.last() < from {
                break;
            }
            if part.first >= from {
                all.merge(&part.canary);
                all.merge(&part.stable);
                continue;
            }
            let skip = (from - part.first) as usize;
            let total: f64 = part.weights.iter().sum();
            let wanted: f64 = part.weights[skip..].iter().sum();
            let q = if total > 0.0 { wanted / total } else { 0.0 };
            all.merge(&thin(&part.canary, q, rng));
            all.merge(&thin(&part.stable, q, rng));
        }
        Metrics::of(&[&all], k * 1000)
    }
}

/// The requests of `stats` each kept with probability `q`: per bucket a binomial count, and
/// the errors among the kept a hypergeometric draw (errors are a uniform subset of the
/// requests, whatever their latency, within one cohort and model state).
fn thin(stats: &CohortStats, q: f64, rng: &mut impl rand::Rng) -> CohortStats {
    if q >= 1.0 {
        return stats.clone();
    }
    let mut out = CohortStats::new();
    if q.is_nan() || q <= 0.0 || stats.requests == 0 {
        return out;
    }
    let mut latency = Histogram::new();
    let mut kept = 0u64;
    for (i, c) in stats.latency.buckets() {
        let n = Binomial::new(c, q).map_or(0, |b| b.sample(rng));
        latency.record_n(i, n);
        kept += n;
    }
    let errors = Hypergeometric::new(stats.requests, stats.errors.min(stats.requests), kept)
        .map_or(0, |h| h.sample(rng));
    out.requests = kept;
    out.errors = errors;
    out.latency = latency;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    fn stats(n: u64, errors: u64, ms: f64) -> CohortStats {
        let mut s = CohortStats::new();
        s.requests = n;
        s.errors = errors;
        s.latency.record_n(Histogram::index_of(ms), n);
        s
    }

    #[test]
    fn whole_second_parts_are_read_as_they_were_written() {
        let mut ring = Ring::default();
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        for s in 0..400u64 {
            ring.push(stats(10, s % 2, 100.0), CohortStats::new(), &[(10.0, true)]);
        }
        // A step that ends between seconds joins the last entry.
        ring.push(stats(5, 0, 100.0), CohortStats::new(), &[(5.0, false)]);
        let m = ring.recent(10, &mut rng);
        assert_eq!(m.requests, 105);
        let all = ring.recent(1_000, &mut rng);
        assert_eq!(all.requests, 3_005);
        assert!((all.throughput_rps.unwrap() - 3_005.0 / 300.0).abs() < 1e-9);
    }

    #[test]
    fn a_part_of_many_seconds_is_thinned_to_the_seconds_asked_for() {
        let mut ring = Ring::default();
        let mut rng = Pcg64Mcg::seed_from_u64(2);
        // Ten seconds at 10,000 requests each, 1 % failing, drawn as one part.
        let steps = vec![(10_000.0, true); 10];
        ring.push(stats(100_000, 1_000, 100.0), CohortStats::new(), &steps);
        let m = ring.recent(3, &mut rng);
        // About 30,000 requests and 300 errors: binomial spreads of 145 and 17.
        assert!(
            (m.requests as f64 - 30_000.0).abs() < 600.0,
            "{}",
            m.requests
        );
        let errors = m.error_rate.unwrap() * m.requests as f64;
        assert!((errors - 300.0).abs() < 70.0, "{errors}");
        assert_eq!(ring.recent(10, &mut rng).requests, 100_000);
    }
}
