//! The aggregated sampler: per cohort and stretch of plan time, the request count, the error
//! count and every latency bucket's count are drawn directly from the model, instead of one
//! request at a time (docs/simulation.md, "Sampling").
//!
//! It walks the same one-second steps as the per-request sampler (the same rates, the same
//! moments at which weights and faults change), but draws a whole run of *plain* steps at
//! once: steps inside which nothing changes, in one model state (router weight and active
//! faults). A run ends at the engine's tick, so a tick is one draw per cohort. Steps in which
//! something changes part-way (a weight applied by the router, a fault starting or ending) or
//! during a rollback's recovery are drawn one by one, cut where the change happens: the
//! stable version aggregated per piece, the canary request by request, because its requests'
//! arrival times decide when the last one completes (the drain).
//!
//! Why this is exact in distribution: the per-request sampler's arrivals are a Poisson
//! process, each request independently canary or stable, with a latency and a failure that
//! are independent of each other and of every other request given the model state. A Poisson
//! number of such requests, split by any categories (cohort, bucket), gives independent
//! Poisson counts per category; the errors of `n` requests are binomial given `n`, whatever
//! their latencies. The drain needs the latest completion of the canary's requests, which is
//! drawn from the bucket counts themselves (`latest_completion`), so it stays consistent with
//! the histogram the engine saw.

use super::{World, REFERENCE_SECONDS};
use crate::buckets::{BucketTable, Drawn, Mixture};
use crate::model::{draw, StepModel};
use crate::poisson::poisson;
use ramp_core::{Cohort, Fault, FaultEffect, PlanTime, Weight};
use ramp_stats::{CohortStats, Histogram, Slot};
use rand::RngExt;
use rand_distr::{Binomial, Distribution};
use std::sync::Arc;

/// Most model states whose tables are kept per world (a run has a few dozen at most: one per
/// stage weight and combination of active faults, per cohort).
const CACHED_TABLES: usize = 64;

/// One plain step of a run: `[a, b)` and its expected requests (both cohorts).
#[derive(Debug, Clone, Copy)]
struct Step {
    /// Start, ms of plan time.
    a: PlanTime,
    /// End (exclusive).
    b: PlanTime,
    /// Expected requests over the step, both cohorts.
    lambda: f64,
}

/// Consecutive plain steps in one model state, drawn together.
#[derive(Debug, Clone)]
struct Batch {
    /// The weight the router applied throughout.
    weight: Weight,
    /// Which of the world's faults were active throughout.
    active: Vec<bool>,
    /// The steps, in order.
    steps: Vec<Step>,
}

/// The bucket tables of the model states met so far, keyed by what defines the latency
/// distribution: the scale, the latency faults and whether bucket means are needed. Shared
/// between a world and its rehearsal forks (the tables never change).
#[derive(Debug, Clone, Default)]
pub(super) struct Tables {
    /// `(key, table)`, most recently added last.
    entries: Vec<(TableKey, Arc<BucketTable>)>,
    /// The tables of other runs of the same plan, when the world runs in a study.
    shared: Option<Arc<TableCache>>,
}

/// Most tables a [`TableCache`] keeps: a plan meets a few dozen model states.
const SHARED_TABLES: usize = 256;

/// Bucket tables shared by the runs of a study. A table depends only on the plan's latency
/// model and the model state, never on the seed, so the runs of a `--runs N` study can build
/// each once instead of once per run (building one computes the distribution function at
/// every bucket edge). Each run keeps its own copy of the handles it used; the cache is asked
/// only on a run's first use of a state. The draws, and so every run's bytes, are those of a
/// run with a cache of its own.
#[derive(Debug, Default)]
pub struct TableCache {
    /// `(model, key, table)`, in the order they were built.
    entries: std::sync::Mutex<Vec<(crate::model::LatencyModel, TableKey, Arc<BucketTable>)>>,
}

impl TableCache {
    /// How many tables the cache holds: a study can say whether its runs shared any.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether no table has been built into the cache yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Tables {
    /// Tables that look in `shared` for what they have not met yet.
    pub(super) fn sharing(shared: Option<Arc<TableCache>>) -> Tables {
        Tables {
            entries: Vec::new(),
            shared,
        }
    }
}

/// What a [`BucketTable`] depends on, bit for bit.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TableKey {
    /// `scale.to_bits()`.
    scale: u64,
    /// Each active latency fault's `(ms, fraction)` as bits, in fault order.
    faults: Vec<(u64, u64)>,
    /// Whether per-bucket means were computed.
    means: bool,
}

impl Tables {
    /// The table for `mixture`'s parameters, built on first use.
    fn get(
        &mut self,
        model: crate::model::LatencyModel,
        scale: f64,
        faults: &[(f64, f64)],
        means: bool,
    ) -> Arc<BucketTable> {
        let key = TableKey {
            scale: scale.to_bits(),
            faults: faults
                .iter()
                .map(|(ms, f)| (ms.to_bits(), f.to_bits()))
                .collect(),
            means,
        };
        if let Some((_, t)) = self.entries.iter().find(|(k, _)| *k == key) {
            return Arc::clone(t);
        }
        let build = || Arc::new(BucketTable::new(Mixture::new(model, scale, faults), means));
        let table = match &self.shared {
            None => build(),
            Some(cache) => {
                // A worker that panicked while holding the lock left the list whole (it is
                // only pushed to): its contents are still good.
                let mut shared = cache
                    .entries
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match shared.iter().find(|(m, k, _)| *m == model && *k == key) {
                    Some((_, _, t)) => Arc::clone(t),
                    None => {
                        let t = build();
                        if shared.len() < SHARED_TABLES {
                            shared.push((model, key.clone(), Arc::clone(&t)));
                        }
                        t
                    }
                }
            }
        };
        if self.entries.len() == CACHED_TABLES {
            self.entries.remove(0);
        }
        self.entries.push((key, Arc::clone(&table)));
        table
    }
}

/// One cohort's requests over a stretch, drawn at once.
struct Cohorts {
    /// Requests, errors and latency histogram.
    stats: CohortStats,
    /// The table it was drawn from (for the canary's latest completion).
    table: Arc<BucketTable>,
    /// Where the bucket counts (left in the world's scratch `counts`) are non-zero.
    drawn: Drawn,
}

/// Whether `f` acts on requests arriving at `t`: the per-request draw's rule.
fn active(f: &Fault, t: PlanTime) -> bool {
    t >= f.at && f.duration.is_none_or(|d| t < f.at.plus(d))
}

/// A binomial draw that treats out-of-range probabilities as their nearest bound.
fn binomial(rng: &mut impl rand::Rng, n: u64, p: f64) -> u64 {
    if n == 0 || p.is_nan() || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    Binomial::new(n, p).map_or(0, |b| b.sample(rng))
}

impl World {
    /// Simulates `[now, to)` with the aggregated sampler into `slot`.
    pub(super) fn advance_aggregated(&mut self, to: PlanTime, slot: &mut Slot) {
        let mut batch: Option<Batch> = None;
        while self.now < to {
            let a = self.now;
            let b = PlanTime((a.0 / 1000 + 1) * 1000).min(to);
            if self.restore_rule.is_none() && self.faults.iter().any(|f| f.at >= a && f.at < b) {
                // The reference is the ring up to this step: everything before goes in first.
                self.flush(&mut batch, slot);
                self.note_fault_onset(a, b);
            }
            if let Some((t, w)) = self.pending {
                if t <= a {
                    self.apply_weight(t, w);
                }
            }
            let inside = |t: PlanTime| t > a && t < b;
            let changes = self.pending.is_some_and(|(t, _)| inside(t))
                || self
                    .faults
                    .iter()
                    .any(|f| inside(f.at) || f.duration.is_some_and(|d| inside(f.at.plus(d))));
            if changes || self.recovery.is_some() {
                self.flush(&mut batch, slot);
                self.cut_step(a, b, slot);
            } else {
                let lambda = self.rate(a) * b.since(a).as_secs_f64();
                let same = batch.as_ref().is_some_and(|bt| {
                    bt.weight == self.router_weight
                        && self
                            .faults
                            .iter()
                            .zip(&bt.active)
                            .all(|(f, &on)| active(f, a) == on)
                        && bt.active.len() == self.faults.len()
                });
                if !same {
                    self.flush(&mut batch, slot);
                    batch = Some(Batch {
                        weight: self.router_weight,
                        active: self.faults.iter().map(|f| active(f, a)).collect(),
                        steps: Vec::new(),
                    });
                }
                if let Some(bt) = &mut batch {
                    bt.steps.push(Step { a, b, lambda });
                }
            }
            self.now = b;
        }
        self.flush(&mut batch, slot);
    }

    /// Draws a batch of plain steps: both cohorts at once, into the slot and the ring, and
    /// the canary's latest completion when it can matter.
    fn flush(&mut self, batch: &mut Option<Batch>, slot: &mut Slot) {
        let Some(bt) = batch.take() else { return };
        let (Some(first), Some(last)) = (bt.steps.first(), bt.steps.last()) else {
            return;
        };
        let share = bt.weight.share() * self.sim().canary_traffic;
        let lambda: f64 = bt.steps.iter().map(|s| s.lambda).sum();
        let stable = self.draw_cohort(Cohort::Stable, share, first.a, lambda * (1.0 - share));
        let canary = self.draw_cohort(Cohort::Canary, share, first.a, lambda * share);
        if canary.stats.requests > 0 {
            // A completion matters only past the earliest moment a rollback could take
            // effect: the next tick (no sooner than the batch's end) plus the router delay.
            let cutoff = last.b.plus(self.sim().router_delay).0 as f64;
            let floor = self.canary_done_ms.max(cutoff);
            let starts: Vec<(f64, f64)> =
                bt.steps.iter().map(|s| (s.a.0 as f64, s.lambda)).collect();
            let counts = &self.counts.get()[..canary.drawn.hi];
            if let Some(done) =
                latest_completion(&mut self.rng, &canary.table, counts, &starts, floor)
            {
                self.canary_done_ms = self.canary_done_ms.max(done);
            }
        }
        slot.canary.merge(&canary.stats);
        slot.stable.merge(&stable.stats);
        let steps: Vec<(f64, bool)> = bt
            .steps
            .iter()
            .map(|s| (s.lambda, s.b.0.is_multiple_of(1000)))
            .collect();
        self.ring.push(canary.stats, stable.stats, &steps);
    }

    /// A step in which something changes part-way, or during a recovery: cut at every
    /// change, the stable version drawn aggregated per piece and the canary request by
    /// request with its arrival time (which the drain after a rollback depends on).
    fn cut_step(&mut self, a: PlanTime, b: PlanTime, slot: &mut Slot) {
        let plan = Arc::clone(&self.plan);
        let sim = plan.simulation.as_ref().expect("checked in World::new");
        let pending_here = self.pending.filter(|(t, _)| *t > a && *t < b);
        let mut cuts = vec![a, b];
        cuts.extend(pending_here.map(|(t, _)| t));
        for f in &self.faults {
            for t in [Some(f.at), f.duration.map(|d| f.at.plus(d))]
                .into_iter()
                .flatten()
            {
                if t > a && t < b {
                    cuts.push(t);
                }
            }
        }
        cuts.sort();
        cuts.dedup();
        let rate = self.rate(a);
        let mut canary = CohortStats::new();
        let mut stable = CohortStats::new();
        for piece in cuts.windows(2) {
            let (p, q) = (piece[0], piece[1]);
            let weight = match pending_here {
                Some((t, w)) if p >= t => w,
                _ => self.router_weight,
            };
            let share = weight.share() * sim.canary_traffic;
            let lambda = rate * q.since(p).as_secs_f64();
            stable.merge(
                &self
                    .draw_cohort(Cohort::Stable, share, p, lambda * (1.0 - share))
                    .stats,
            );
            let step = StepModel::at_share(&sim.features, &sim.load, share);
            let n = poisson(&mut self.rng, lambda * share);
            let width = q.since(p).0 as f64;
            for _ in 0..n {
                let t_ms = p.0 as f64 + self.rng.random::<f64>() * width;
                let r = draw(
                    &mut self.rng,
                    &sim.stable,
                    &self.latency,
                    &step,
                    &self.faults,
                    Cohort::Canary,
                    PlanTime(t_ms as u64),
                    &mut self.tally,
                );
                self.canary_done_ms = self.canary_done_ms.max(t_ms + r.latency_ms);
                canary.requests += 1;
                canary.errors += u64::from(r.error);
                canary
                    .latency
                    .record_n(Histogram::index_of(r.latency_ms), 1);
            }
        }
        if let Some((t, w)) = pending_here {
            self.apply_weight(t, w);
        }
        slot.canary.merge(&canary);
        slot.stable.merge(&stable);
        let whole = b.0.is_multiple_of(1000);
        let lambda = rate * b.since(a).as_secs_f64();
        self.ring.push(canary, stable, &[(lambda, whole)]);
        if whole {
            self.check_restored(b);
        }
    }

    /// Draws `cohort`'s requests over a stretch in one model state: Poisson bucket counts of
    /// total mean `lambda`, then the errors among them (the stable version's, each feature's
    /// for the canary, then the active error faults' among the rest), and the canary's
    /// per-feature attribution. Leaves the bucket counts in `self.counts`.
    fn draw_cohort(&mut self, cohort: Cohort, share: f64, at: PlanTime, lambda: f64) -> Cohorts {
        let plan = Arc::clone(&self.plan);
        let sim = plan.simulation.as_ref().expect("checked in World::new");
        // `StepModel::at_share` without its two vectors: this runs twice per tick.
        let g = (1.0 - sim.load.contention) + sim.load.contention * share;
        let stable_mult = 1.0 + sim.load.stable_latency * share;
        let canary = cohort == Cohort::Canary;
        let scale = if canary {
            stable_mult * (1.0 + sim.features.iter().map(|f| f.latency * g).sum::<f64>())
        } else {
            stable_mult
        };
        let mut latency_faults = Vec::new();
        let mut fault_ok = 1.0;
        for f in self
            .faults
            .iter()
            .filter(|f| f.cohort == cohort && active(f, at))
        {
            match f.effect {
                FaultEffect::AddLatency { ms, fraction } => latency_faults.push((ms, fraction)),
                FaultEffect::ErrorRate { rate } => fault_ok *= 1.0 - rate,
            }
        }
        let means = canary && !sim.features.is_empty();
        let table = self.tables.get(self.latency, scale, &latency_faults, means);
        let drawn = table.draw(&mut self.rng, lambda, &mut self.counts);
        let n = drawn.total;
        // The stats go to the ring with the tick (`flush`), which hands back emptied ones.
        // Recycled stats still hold an old part's data: every field is set here.
        let mut stats = self.ring.recycled();
        table.assign(self.counts.get(), &drawn, &mut stats.latency);
        stats.requests = n;
        stats.coarse_bounds_us = None;
        // Errors: the stable version's band, then (canary) each feature's band, as the
        // per-request draw lays them out on one uniform; then the error faults among the rest.
        let base = sim.stable.error_rate.min(1.0);
        let mut clean = n - binomial(&mut self.rng, n, base);
        let mut left = 1.0 - base;
        if canary {
            let mut edge = base;
            for (i, f) in sim.features.iter().enumerate() {
                let e = f.error_rate * g;
                let band = ((edge + e).min(1.0) - edge.min(1.0)).max(0.0);
                edge += e;
                let hit = if left > 0.0 {
                    binomial(&mut self.rng, clean, band / left)
                } else {
                    0
                };
                self.tally.errors[i] += hit;
                clean -= hit;
                left -= band;
            }
            self.tally.requests += n;
            if means && n > 0 {
                let draws = table.drawn_sum(&self.counts.get()[drawn.lo..drawn.hi], drawn.lo);
                let base_ms = draws * stable_mult;
                self.tally.base_ms += base_ms;
                for (added, f) in self.tally.added_ms.iter_mut().zip(&sim.features) {
                    *added += base_ms * f.latency * g;
                }
            }
        }
        let fault_errors = binomial(&mut self.rng, clean, 1.0 - fault_ok);
        stats.errors = n - clean + fault_errors;
        Cohorts {
            stats,
            table,
            drawn,
        }
    }

    /// Records the reference ("Recording baseline metrics") when a fault begins in `[a, b)`
    /// and no restoration rule is set yet: the ring's last five minutes before the step.
    pub(super) fn note_fault_onset(&mut self, a: PlanTime, b: PlanTime) {
        if self.restore_rule.is_some() {
            return;
        }
        let Some(at) = self
            .faults
            .iter()
            .find(|f| f.at >= a && f.at < b)
            .map(|f| f.at)
        else {
            return;
        };
        self.fault_onset = Some(at);
        let reference = self.recent(REFERENCE_SECONDS);
        self.restore_rule = Some((
            reference,
            super::DEFAULT_RESTORE_WINDOW,
            super::DEFAULT_RESTORE_TOLERANCE,
        ));
    }
}

/// The latest completion time (ms) among a batch's canary requests, when it is later than
/// `floor`; `None` when no request completes after `floor`.
///
/// In the per-request sampler a plain step's requests all arrive at the step's start, so a
/// request of step `j` in bucket `k` completes at `start_j + latency`, with its latency in
/// bucket `k`. Given the bucket counts (already drawn, and seen by the engine), each request's
/// step is independent with probability proportional to the step's expected requests, and its
/// latency is a draw restricted to its bucket. The search goes from the highest bucket down
/// and, within a bucket, from the last step back, allocating the bucket's requests to steps by
/// successive binomials and drawing the largest latency of each non-empty (bucket, step) by
/// inversion; it stops as soon as no request left can complete after the best found so far
/// (a bucket's upper edge bounds its latencies). Nothing is drawn for what cannot matter.
fn latest_completion(
    rng: &mut impl rand::Rng,
    table: &BucketTable,
    counts: &[u64],
    steps: &[(f64, f64)],
    floor: f64,
) -> Option<f64> {
    let last_start = steps.last()?.0;
    let total: f64 = steps.iter().map(|s| s.1).sum();
    let mut best = floor;
    let mut found = None;
    // Below `stop` no request can complete after the floor: the walk ends there at the
    // latest, and skips the empty buckets above without computing their edges (the table
    // reaches far past the latencies a tick draws).
    let stop = table.all_at_most_below(floor - last_start);
    for k in (stop..counts.len()).rev() {
        let c = counts[k];
        if c == 0 {
            continue;
        }
        let upper = table.upper(k);
        if last_start + upper <= best {
            break;
        }
        let mut remaining = c;
        let mut weight_left = total;
        for (j, &(start, weight)) in steps.iter().enumerate().rev() {
            if remaining == 0 || start + upper <= best {
                break;
            }
            let m = if j == 0 {
                remaining
            } else {
                binomial(rng, remaining, weight / weight_left)
            };
            remaining -= m;
            weight_left -= weight;
            if m > 0 {
                let done = start + table.max_in_bucket(rng, k, m);
                if done > best {
                    best = done;
                    found = Some(done);
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buckets::Counts;
    use crate::model::LatencyModel;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    #[test]
    fn the_latest_completion_matches_the_one_of_requests_drawn_one_by_one() {
        // Five one-second steps at 2,000 requests each, latencies 2 s at the median: the
        // latest completion is found among the top buckets of the last seconds.
        let model = LatencyModel::new(2_000.0, 4_000.0, 6_000.0);
        let table = BucketTable::new(Mixture::new(model, 1.0, &[]), false);
        let steps: Vec<(f64, f64)> = (0..5).map(|j| (j as f64 * 1000.0, 2_000.0)).collect();
        let mut rng = Pcg64Mcg::seed_from_u64(4);
        let mut counts = Counts::default();
        let runs = 400;
        let draw =
            |rng: &mut Pcg64Mcg, counts: &mut Counts| table.draw(rng, 10_000.0, counts).total;
        let mut aggregated = Vec::new();
        let mut direct = Vec::new();
        for _ in 0..runs {
            let n = draw(&mut rng, &mut counts);
            assert!(n > 0);
            aggregated.push(
                latest_completion(&mut rng, &table, &counts.get()[..table.len()], &steps, 0.0)
                    .unwrap(),
            );
            let mut best: f64 = 0.0;
            for &(start, _) in &steps {
                for _ in 0..poisson(&mut rng, 2_000.0) {
                    best = best.max(start + model.sample(&mut rng));
                }
            }
            direct.push(best);
        }
        aggregated.sort_by(f64::total_cmp);
        direct.sort_by(f64::total_cmp);
        // Two-sample Kolmogorov–Smirnov at α = 0.001: D ≤ 1.949·√(2/n).
        let mut d: f64 = 0.0;
        for x in aggregated.iter().chain(&direct) {
            let fa = aggregated.partition_point(|v| v <= x) as f64 / runs as f64;
            let fd = direct.partition_point(|v| v <= x) as f64 / runs as f64;
            d = d.max((fa - fd).abs());
        }
        assert!(d < 1.949 * (2.0 / runs as f64).sqrt(), "KS D = {d}");
        // A floor above every completion finds nothing.
        let n = draw(&mut rng, &mut counts);
        assert!(n > 0);
        let c = &counts.get()[..table.len()];
        assert_eq!(latest_completion(&mut rng, &table, c, &steps, 1e12), None);
    }
}
