//! One cohort's latency distribution in one model state, as the probability of every
//! histogram bucket, and the draws the aggregated sampler makes from it.
//!
//! A request's latency is `scale × L + A`: `L` the stable version's spliced log-normal draw,
//! `scale` the load term's and the features' multiplier, `A` the milliseconds added by the
//! latency faults that hit it (each independently, with its `fraction`), so the distribution
//! is a finite mixture over the subsets of active faults ([`Mixture`]). Its CDF at every bucket
//! edge gives each bucket's probability ([`BucketTable`]), computed once per model state and
//! cached by the caller.
//!
//! **What is left out, and the bound:** the table covers the buckets between the points where
//! every mixture component's tail is below `P(Z > 7.4) = 6.8e-14`; the mass beyond (at most
//! 6.8e-14 on each side, recorded exactly in [`BucketTable::folded`]) is *folded* into the
//! first and last bucket of the table instead of being dropped. A request thus lands in a
//! wrong bucket with probability below 1.4e-13: about 0.001 requests of the 9 billion of the
//! production plan at 50,000 requests per second.

use crate::model::LatencyModel;
use crate::normal;
use crate::poisson::poisson;
use ramp_stats::Histogram;
use rand::RngExt;
use std::sync::OnceLock;

/// Standard normal quantile beyond which a mixture component's mass is folded into the edge
/// buckets: `P(Z > 7.4) = 6.8e-14`.
const TAIL_Z: f64 = 7.4;

/// Expected count from which a bucket's count is drawn on its own (one Poisson draw, about
/// the cost of placing eight requests with the alias table) rather than by placing the
/// sparse buckets' few requests one by one.
const DENSE_FROM: f64 = 8.0;

/// Octaves of the expected count (powers of two) for which a table keeps a sparse set:
/// from 2⁻³⁰ to 2⁵⁹, far beyond both ends of what validation allows.
const OCTAVES: usize = 90;

/// The exponent of the lowest octave.
const LOWEST_OCTAVE: i32 = -30;

/// The latency of one cohort's requests in one model state: `scale × L + A`, with `A` one of
/// `parts`' added milliseconds with its probability.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mixture {
    /// The stable version's latency model (`L`).
    model: LatencyModel,
    /// Multiplier of `L`: the load term times one plus the features' overheads.
    scale: f64,
    /// `(added ms, probability)`, added milliseconds increasing, probabilities summing to 1.
    parts: Vec<(f64, f64)>,
}

impl Mixture {
    /// The mixture of `scale × L` and every subset of `faults` (`(added ms, fraction)`, each
    /// hitting a request independently), equal additions merged.
    pub(crate) fn new(model: LatencyModel, scale: f64, faults: &[(f64, f64)]) -> Mixture {
        let mut parts = vec![(0.0, 1.0)];
        for &(ms, fraction) in faults {
            let mut next = Vec::with_capacity(parts.len() * 2);
            for &(add, p) in &parts {
                if fraction < 1.0 {
                    next.push((add, p * (1.0 - fraction)));
                }
                if fraction > 0.0 {
                    next.push((add + ms, p * fraction));
                }
            }
            parts = next;
        }
        parts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut merged: Vec<(f64, f64)> = Vec::with_capacity(parts.len());
        for (add, p) in parts {
            match merged.last_mut() {
                Some(last) if last.0 == add => last.1 += p,
                _ => merged.push((add, p)),
            }
        }
        Mixture {
            model,
            scale,
            parts: merged,
        }
    }

    /// The standard normal value at which component `add` reaches latency `x`.
    fn z(&self, add: f64, x: f64) -> f64 {
        if x == f64::INFINITY {
            return f64::INFINITY;
        }
        self.model.z_of_ms((x - add) / self.scale)
    }

    /// `P(latency > x)`.
    pub(crate) fn sf(&self, x: f64) -> f64 {
        self.parts
            .iter()
            .map(|&(add, p)| p * normal::upper_tail(self.z(add, x)))
            .sum()
    }

    /// `P(latency ≤ x)`.
    pub(crate) fn cdf(&self, x: f64) -> f64 {
        self.parts
            .iter()
            .map(|&(add, p)| p * normal::lower_tail(self.z(add, x)))
            .sum()
    }
}

/// Both tails of a standard normal at one point, each computed on the side where it is small
/// so that differences of neighbouring edges keep their digits.
#[derive(Debug, Clone, Copy)]
struct Tails {
    /// The point.
    z: f64,
    /// `P(Z ≤ z)`.
    low: f64,
    /// `P(Z > z)`.
    up: f64,
}

impl Tails {
    fn at(z: f64) -> Tails {
        if z >= 0.0 {
            let up = normal::upper_tail(z);
            Tails {
                z,
                low: 1.0 - up,
                up,
            }
        } else {
            let low = normal::lower_tail(z);
            Tails {
                z,
                low,
                up: 1.0 - low,
            }
        }
    }

    /// `P(self.z < Z ≤ next.z)`.
    fn to(self, next: Tails) -> f64 {
        let p = if self.z >= 0.0 {
            self.up - next.up
        } else if next.z <= 0.0 {
            next.low - self.low
        } else {
            1.0 - self.low - next.up
        };
        p.max(0.0)
    }
}

/// Every bucket's probability under one [`Mixture`], and what drawing from them needs.
#[derive(Debug, Clone)]
pub(crate) struct BucketTable {
    /// The distribution, for within-bucket draws.
    mixture: Mixture,
    /// Histogram index of `probs[0]`.
    first: usize,
    /// Probability of each bucket from `first` on; the first and last include the folded
    /// tails.
    probs: Vec<f64>,
    /// When asked for: the mean stable draw `L` (ms, before scaling) of the requests in each
    /// bucket, for the per-feature attribution. Empty otherwise.
    means: Vec<f64>,
    /// Local bucket indexes by decreasing probability (ties by index).
    order: Vec<u32>,
    /// `probs` in that order.
    sorted: Vec<f64>,
    /// `tail[r]`: the sum of `sorted[r..]`, summed from the small end.
    tail: Vec<f64>,
    /// Per octave of the expected count, where the dense buckets end and how to place a
    /// request among the others; built on first use (a run meets a few octaves per table).
    sparse: Vec<OnceLock<Sparse>>,
}

/// The buckets of a table that are too unlikely, at one octave of expected count, to be worth
/// a Poisson draw each: their total probability and an alias table to place one request among
/// them in constant time.
#[derive(Debug, Clone)]
struct Sparse {
    /// Sorted position where they start (`sorted[..cut]` are the dense buckets).
    cut: usize,
    /// Their total probability, `tail[cut]`.
    mass: f64,
    /// Walker's alias table over them, naming local buckets.
    alias: Alias,
}

/// One column of an alias table: keep `own` when 64 random bits fall below `keep`, else take
/// `other` (for a full column, `keep` is `u64::MAX` and `other` is `own`).
#[derive(Debug, Clone, Copy)]
struct Column {
    /// Threshold on 64 random bits.
    keep: u64,
    /// The column's own bucket.
    own: u32,
    /// Its alias bucket.
    other: u32,
}

/// Walker's alias method (Vose's construction): one uniform column and one coin give a
/// category with probability proportional to its weight, whatever the number of categories.
#[derive(Debug, Clone)]
struct Alias {
    /// The columns.
    columns: Vec<Column>,
}

impl Alias {
    /// The table for `weights` (non-negative, not all zero) of the categories `names`.
    fn new(weights: &[f64], names: &[u32]) -> Alias {
        let m = weights.len();
        let total: f64 = weights.iter().sum();
        let mut keep: Vec<f64> = weights.iter().map(|w| w * m as f64 / total).collect();
        let mut alias: Vec<usize> = (0..m).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..m).partition(|&i| keep[i] < 1.0);
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            alias[s] = l;
            keep[l] -= 1.0 - keep[s];
            if keep[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // What is left is 1 up to rounding.
        for i in small.into_iter().chain(large) {
            keep[i] = 1.0;
            alias[i] = i;
        }
        let columns = (0..m)
            .map(|i| Column {
                keep: if keep[i] >= 1.0 {
                    u64::MAX
                } else {
                    (keep[i] * 18_446_744_073_709_551_616.0) as u64
                },
                own: names[i],
                other: names[alias[i]],
            })
            .collect();
        Alias { columns }
    }

    /// One category, from one 64-bit random number: `u·m / 2⁶⁴` is a uniform real in
    /// `[0, m)`; its integer part picks the column (each with probability `1/m` to within
    /// `m/2⁶⁴`) and its fraction, the low 64 bits of the product, is the coin (uniform to a
    /// resolution of `m/2⁶⁴`, finer than a double's). The pick has no branch.
    fn sample(&self, rng: &mut impl rand::Rng) -> usize {
        let x = u128::from(rng.next_u64()) * self.columns.len() as u128;
        let c = self.columns[(x >> 64) as usize];
        (if (x as u64) < c.keep { c.own } else { c.other }) as usize
    }
}

impl BucketTable {
    /// The table of `mixture`, with each bucket's mean stable draw when `with_means`.
    pub(crate) fn new(mixture: Mixture, with_means: bool) -> BucketTable {
        let m = &mixture;
        let low_ms = m.model.ln_ms(-TAIL_Z).exp();
        let high_ms = m.model.ln_ms(TAIL_Z).exp();
        let lowest = m
            .parts
            .iter()
            .map(|&(add, _)| m.scale * low_ms + add)
            .fold(f64::INFINITY, f64::min);
        let highest = m
            .parts
            .iter()
            .map(|&(add, _)| m.scale * high_ms + add)
            .fold(0.0, f64::max);
        let first = Histogram::index_of(lowest);
        let last = Histogram::index_of(highest).max(first);
        let n = last - first + 1;
        // Edge k is the lower edge of local bucket k: −∞ for the first (the folded lower
        // tail), +∞ after the last (the folded upper tail).
        let edge = |k: usize| -> f64 {
            if k == 0 {
                f64::NEG_INFINITY
            } else if k == n {
                f64::INFINITY
            } else {
                Histogram::upper_edge(first + k - 1)
            }
        };
        let mut probs = vec![0.0; n];
        let mut means = if with_means { vec![0.0; n] } else { Vec::new() };
        for &(add, p) in &m.parts {
            let mut below = Tails::at(m.z(add, edge(0)));
            for k in 0..n {
                let above = Tails::at(m.z(add, edge(k + 1)));
                probs[k] += p * below.to(above);
                if with_means {
                    means[k] += p * m.model.partial_mean(below.z, above.z);
                }
                below = above;
            }
        }
        if with_means {
            for (mean, &p) in means.iter_mut().zip(&probs) {
                *mean = if p > 0.0 { *mean / p } else { 0.0 };
            }
        }
        let below_first = if first == 0 {
            0.0
        } else {
            m.cdf(Histogram::upper_edge(first - 1))
        };
        let above_last = if last + 1 >= Histogram::bucket_count() {
            0.0
        } else {
            m.sf(Histogram::upper_edge(last))
        };
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by(|&a, &b| {
            probs[b as usize]
                .total_cmp(&probs[a as usize])
                .then(a.cmp(&b))
        });
        // The probability folded into the first and last bucket from beyond the table: the
        // bound on what the table moves (module documentation).
        let folded = below_first + above_last;
        debug_assert!(folded < 1.4e-13, "folded tails {folded:e}");
        let sorted: Vec<f64> = order.iter().map(|&k| probs[k as usize]).collect();
        let mut tail = vec![0.0; n];
        let mut acc = 0.0;
        for r in (0..n).rev() {
            acc += sorted[r];
            tail[r] = acc;
        }
        BucketTable {
            mixture,
            first,
            probs,
            means,
            order,
            sorted,
            tail,
            sparse: vec![OnceLock::new(); OCTAVES],
        }
    }

    /// The sparse buckets for expected total `lambda`: those expecting fewer than
    /// [`DENSE_FROM`] requests at the geometric middle of `lambda`'s octave (so that within
    /// an octave the split is fixed and its alias table reused; a bucket on the wrong side
    /// of the exact threshold costs at most twice what it would).
    fn sparse(&self, lambda: f64) -> &Sparse {
        let octave = (lambda.log2().floor() as i32 - LOWEST_OCTAVE).clamp(0, OCTAVES as i32 - 1);
        self.sparse[octave as usize].get_or_init(|| {
            let middle = 2f64.powi(octave + LOWEST_OCTAVE) * std::f64::consts::SQRT_2;
            let cut = self.sorted.partition_point(|&p| p * middle >= DENSE_FROM);
            let rest = &self.sorted[cut..];
            let names = &self.order[cut..];
            let mass = self.tail.get(cut).copied().unwrap_or(0.0);
            Sparse {
                cut,
                mass,
                alias: if mass > 0.0 {
                    Alias::new(rest, names)
                } else {
                    Alias::new(&[1.0], &[0])
                },
            }
        })
    }

    /// The probability folded into the edge buckets from beyond the table.
    #[cfg(test)]
    fn folded(&self) -> f64 {
        let last = self.first + self.len() - 1;
        let below = if self.first == 0 {
            0.0
        } else {
            self.mixture.cdf(Histogram::upper_edge(self.first - 1))
        };
        below + self.mixture.sf(Histogram::upper_edge(last))
    }

    /// Number of buckets in the table.
    pub(crate) fn len(&self) -> usize {
        self.probs.len()
    }

    /// The upper edge of local bucket `k` in ms (+∞ for the last, which holds the folded
    /// tail).
    pub(crate) fn upper(&self, k: usize) -> f64 {
        if k + 1 >= self.len() {
            f64::INFINITY
        } else {
            Histogram::upper_edge(self.first + k)
        }
    }

    /// A local bucket below which every bucket's upper edge is at most `ms`: the bucket
    /// holding `ms`, less one for rounding at the edges (0 when that is below the table).
    /// Lets a walk down from the top stop without computing every edge on its way.
    pub(crate) fn all_at_most_below(&self, ms: f64) -> usize {
        Histogram::index_of(ms)
            .saturating_sub(1)
            .saturating_sub(self.first)
    }

    /// The lower edge of local bucket `k` in ms (0 for the first: latencies are positive).
    fn lower(&self, k: usize) -> f64 {
        if k == 0 {
            0.0
        } else {
            Histogram::upper_edge(self.first + k - 1)
        }
    }

    /// Mean stable draw of the requests in local bucket `k` (empty tables: 0).
    #[cfg(test)]
    pub(crate) fn mean(&self, k: usize) -> f64 {
        self.means.get(k).copied().unwrap_or(0.0)
    }

    /// The sum of the stable draws (ms, before scaling) of the requests counted in `counts`,
    /// local buckets `from..`, by their buckets' means: the features' attribution adds this
    /// up at every tick. Summed in four lanes (a dependency chain of additions was most of
    /// its cost); 0 for a table without means.
    pub(crate) fn drawn_sum(&self, counts: &[u64], from: usize) -> f64 {
        let Some(means) = self.means.get(from..from + counts.len()) else {
            return 0.0;
        };
        let mut lanes = [0.0f64; 4];
        let (c4, m4) = (counts.chunks_exact(4), means.chunks_exact(4));
        let (c_rest, m_rest) = (c4.remainder(), m4.remainder());
        for (c, m) in c4.zip(m4) {
            for i in 0..4 {
                lanes[i] += c[i] as f64 * m[i];
            }
        }
        for (i, (&c, &m)) in c_rest.iter().zip(m_rest).enumerate() {
            lanes[i] += c as f64 * m;
        }
        (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
    }

    /// Draws how many of a Poisson number (mean `lambda`) of requests land in each bucket:
    /// independent Poisson counts of mean `lambda × p` (a Poisson number of independent
    /// requests split by category is exactly that). Buckets expecting about [`DENSE_FROM`] or
    /// more get a Poisson draw each; the others share one Poisson draw of their total, whose
    /// requests are placed one by one by their probabilities (an alias table). Writes
    /// `counts` (local indexes) and returns the total and the local buckets touched.
    pub(crate) fn draw(
        &self,
        rng: &mut impl rand::Rng,
        lambda: f64,
        scratch: &mut Counts,
    ) -> Drawn {
        let counts = scratch.fresh(self.len());
        let mut out = Drawn {
            total: 0,
            lo: self.len(),
            hi: 0,
        };
        if lambda.is_nan() || lambda <= 0.0 {
            scratch.touched(&out);
            return out;
        }
        let sparse = self.sparse(lambda);
        for (&k, &p) in self.order[..sparse.cut]
            .iter()
            .zip(&self.sorted[..sparse.cut])
        {
            let c = poisson(rng, lambda * p);
            if c > 0 {
                let k = k as usize;
                counts[k] = c;
                out.total += c;
                out.lo = out.lo.min(k);
                out.hi = out.hi.max(k + 1);
            }
        }
        if sparse.mass > 0.0 {
            let n = poisson(rng, lambda * sparse.mass);
            for _ in 0..n {
                let k = sparse.alias.sample(rng);
                counts[k] += 1;
                out.lo = out.lo.min(k);
                out.hi = out.hi.max(k + 1);
            }
            out.total += n;
        }
        scratch.touched(&out);
        out
    }

    /// Makes `h` hold exactly the drawn `counts` (local indexes, as [`BucketTable::draw`]
    /// wrote them), whatever it held before.
    pub(crate) fn assign(&self, counts: &[u64], drawn: &Drawn, h: &mut Histogram) {
        if drawn.total > 0 {
            h.assign_counts(self.first + drawn.lo, &counts[drawn.lo..drawn.hi]);
        } else {
            h.clear();
        }
    }

    /// The largest of `m` latencies (ms) drawn from the distribution restricted to local
    /// bucket `k`: the inverse of the restricted CDF at `U^{1/m}` (the CDF of a maximum of `m`
    /// independent draws is the `m`-th power), solved on the tail that is small there so that
    /// far-out buckets keep their precision, to 1e-10 relative (a tenth of a microsecond at a
    /// second).
    pub(crate) fn max_in_bucket(&self, rng: &mut impl rand::Rng, k: usize, m: u64) -> f64 {
        let (lo, hi) = (self.lower(k), self.upper(k));
        let v = (rng.random::<f64>().ln() / m.max(1) as f64).exp();
        let mix = &self.mixture;
        let s_lo = mix.sf(lo);
        if s_lo <= 0.5 {
            let s_hi = mix.sf(hi);
            let target = s_lo - v * (s_lo - s_hi);
            if target <= 0.0 {
                return hi.min(f64::MAX);
            }
            // Across a bucket `ln P(latency > x)` is nearly straight, so the secant steps of
            // the solver land within rounding in two or three evaluations.
            solve_increasing(|x| -mix.sf(x).ln(), -target.ln(), lo, hi)
        } else {
            let (f_lo, f_hi) = (mix.cdf(lo), mix.cdf(hi));
            let target = f_lo + v * (f_hi - f_lo);
            solve_increasing(|x| mix.cdf(x), target, lo, hi)
        }
    }
}

/// Bucket counts reused from draw to draw: only the buckets the last draw touched are zeroed
/// again, not the whole table (a tick at a low rate touches a few hundred of its buckets).
#[derive(Debug, Clone, Default)]
pub(crate) struct Counts {
    /// The counts, local bucket indexes; zero outside `dirty`.
    values: Vec<u64>,
    /// The range the last draw may have written.
    dirty: (usize, usize),
}

impl Counts {
    /// `len` zeroed counts for a draw.
    fn fresh(&mut self, len: usize) -> &mut [u64] {
        let (lo, hi) = self.dirty;
        let hi = hi.min(self.values.len());
        if lo < hi {
            self.values[lo..hi].fill(0);
        }
        if self.values.len() < len {
            self.values.resize(len, 0);
        }
        self.dirty = (0, len);
        &mut self.values[..len]
    }

    /// Narrows the range to zero before the next draw to what this one wrote.
    fn touched(&mut self, drawn: &Drawn) {
        self.dirty = (drawn.lo, drawn.hi.max(drawn.lo));
    }

    /// The counts of the last draw.
    pub(crate) fn get(&self) -> &[u64] {
        &self.values
    }
}

/// What one [`BucketTable::draw`] drew: the total, and the local buckets that may be
/// non-empty (`lo..hi`, empty when nothing was drawn), so that reading the counts skips the
/// rest of the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Drawn {
    /// Requests drawn.
    pub(crate) total: u64,
    /// First local bucket touched.
    pub(crate) lo: usize,
    /// One past the last local bucket touched.
    pub(crate) hi: usize,
}

/// The `x` in `[lo, hi]` where the increasing `f` reaches `target` (the nearest end when it
/// does not), by regula falsi with the Illinois correction, which converges superlinearly on
/// the smooth CDFs here; an infinite `hi` is first brought in by doubling.
fn solve_increasing(f: impl Fn(f64) -> f64, target: f64, lo: f64, hi: f64) -> f64 {
    let mut b = hi;
    if b == f64::INFINITY {
        b = lo.max(1.0) * 2.0;
        let mut doublings = 0;
        while f(b) < target && doublings < 2_000 {
            b *= 2.0;
            doublings += 1;
        }
    }
    let mut a = lo;
    let mut fa = f(a) - target;
    let mut fb = f(b) - target;
    if fa >= 0.0 {
        return a;
    }
    if fb <= 0.0 {
        return b;
    }
    let mut last_side = 0i8;
    for i in 0..200 {
        let secant = (a * fb - b * fa) / (fb - fa);
        // Every fourth step bisects, so that a stubborn end cannot stall the bracket.
        let x = if i % 4 == 3 || !(secant > a && secant < b) {
            0.5 * (a + b)
        } else {
            secant
        };
        let fx = f(x) - target;
        if fx.abs() <= 1e-14 * (1.0 + target.abs()) {
            return x;
        }
        if fx < 0.0 {
            a = x;
            fa = fx;
            if last_side == -1 {
                fb *= 0.5;
            }
            last_side = -1;
        } else {
            b = x;
            fb = fx;
            if last_side == 1 {
                fa *= 0.5;
            }
            last_side = 1;
        }
        if b - a <= 1e-10 * b.abs() {
            break;
        }
    }
    0.5 * (a + b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    fn staging() -> LatencyModel {
        LatencyModel::new(145.0, 385.0, 720.0)
    }

    use crate::chi_square::{critical, statistic as chi_square};

    #[test]
    fn probabilities_sum_to_one_and_the_folded_tails_are_below_the_bound() {
        for faults in [
            vec![],
            vec![(800.0, 0.5)],
            vec![(800.0, 0.5), (2_000.0, 0.1)],
        ] {
            let t = BucketTable::new(Mixture::new(staging(), 1.136, &faults), true);
            let sum: f64 = t.probs.iter().sum();
            assert!((sum - 1.0).abs() < 1e-12, "{faults:?}: {sum}");
            assert!(t.folded() < 1.4e-13, "{}", t.folded());
            assert!(t.probs.iter().all(|p| *p >= 0.0));
            assert!(t.tail[0] > 1.0 - 1e-12);
        }
    }

    #[test]
    fn bucket_probabilities_match_a_million_requests_drawn_one_by_one() {
        // The per-request model: scale × L, plus 800 ms on half the requests.
        let scale = 1.05;
        let t = BucketTable::new(Mixture::new(staging(), scale, &[(800.0, 0.5)]), false);
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        let n = 1_000_000;
        let mut observed = vec![0u64; t.len()];
        for _ in 0..n {
            let mut ms = staging().sample(&mut rng) * scale;
            if rng.random::<f64>() < 0.5 {
                ms += 800.0;
            }
            let i = Histogram::index_of(ms).clamp(t.first, t.first + t.len() - 1);
            observed[i - t.first] += 1;
        }
        let expected: Vec<f64> = t.probs.iter().map(|p| p * n as f64).collect();
        let (stat, df) = chi_square(&observed, &expected);
        assert!(stat < critical(df), "chi-square {stat:.1} on {df} df");
    }

    #[test]
    fn drawn_counts_are_poisson_with_the_bucket_probabilities() {
        let t = BucketTable::new(Mixture::new(staging(), 1.0, &[]), false);
        let mut rng = Pcg64Mcg::seed_from_u64(5);
        let mut scratch = Counts::default();
        // Small and large means exercise the sparse placement and the dense draws.
        for lambda in [30.0, 200_000.0] {
            let mut sum = vec![0u64; t.len()];
            let mut totals = 0u64;
            let draws = 200;
            for _ in 0..draws {
                let drawn = t.draw(&mut rng, lambda, &mut scratch);
                let counts = &scratch.get()[..t.len()];
                assert!(counts[..drawn.lo]
                    .iter()
                    .chain(&counts[drawn.hi..])
                    .all(|&c| c == 0));
                totals += drawn.total;
                for (s, c) in sum.iter_mut().zip(counts) {
                    *s += c;
                }
            }
            assert_eq!(totals, sum.iter().sum::<u64>());
            let expected: Vec<f64> = t.probs.iter().map(|p| p * lambda * draws as f64).collect();
            let (stat, df) = chi_square(&sum, &expected);
            assert!(
                stat < critical(df),
                "λ {lambda}: chi-square {stat:.1} on {df} df"
            );
            // The total is Poisson(λ × draws): within 4 standard deviations.
            let mean = lambda * draws as f64;
            assert!((totals as f64 - mean).abs() < 4.0 * mean.sqrt(), "{totals}");
        }
    }

    #[test]
    fn the_maximum_in_a_bucket_stays_in_it_and_follows_the_restricted_law() {
        let t = BucketTable::new(Mixture::new(staging(), 1.0, &[(800.0, 0.5)]), false);
        let mut rng = Pcg64Mcg::seed_from_u64(9);
        let k = t.len() - 5;
        let (lo, hi) = (t.lower(k), t.upper(k));
        for m in [1, 3, 1_000] {
            let x = t.max_in_bucket(&mut rng, k, m);
            assert!(x >= lo && x <= hi, "{m}: {x} outside ({lo}, {hi}]");
        }
        // For one draw, the share below the bucket's middle (in probability) is a half.
        let mix = &t.mixture;
        let (s_lo, s_hi) = (mix.sf(lo), mix.sf(hi));
        let middle = solve_increasing(|x| -mix.sf(x), -(s_lo + s_hi) / 2.0, lo, hi);
        let below = (0..4_000)
            .filter(|_| t.max_in_bucket(&mut rng, k, 1) <= middle)
            .count();
        assert!((1_800..=2_200).contains(&below), "{below}");
        // The last bucket is open above: its draws come from the folded tail.
        let top = t.max_in_bucket(&mut rng, t.len() - 1, 1);
        assert!(top > t.lower(t.len() - 1) && top.is_finite());
    }

    #[test]
    fn bucket_means_lie_inside_their_buckets() {
        let t = BucketTable::new(Mixture::new(staging(), 1.0, &[]), true);
        for k in 1..t.len() - 1 {
            if t.probs[k] > 1e-300 {
                let m = t.mean(k);
                assert!(
                    m >= t.lower(k) * (1.0 - 1e-9) && m <= t.upper(k) * (1.0 + 1e-9),
                    "{k}: {m} not in ({}, {}]",
                    t.lower(k),
                    t.upper(k)
                );
            }
        }
    }

    /// The four-lane sum is the bucket-by-bucket sum up to rounding, for every start and
    /// length (remainders of one to three buckets included).
    #[test]
    fn drawn_sums_add_each_bucket_by_its_mean() {
        let t = BucketTable::new(Mixture::new(staging(), 1.0, &[]), true);
        let counts: Vec<u64> = (0..t.len() as u64).map(|k| (k * 7919) % 13).collect();
        for from in [0, 1, 2, 3, 57] {
            for len in [0, 1, 2, 3, 4, 5, 7, 64, t.len() - 57] {
                let c = &counts[from..from + len];
                let plain: f64 = c
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| n as f64 * t.mean(from + i))
                    .sum();
                let lanes = t.drawn_sum(c, from);
                assert!(
                    (lanes - plain).abs() <= 1e-12 * plain.abs(),
                    "from {from}, {len} buckets: {lanes} against {plain}"
                );
            }
        }
        let without = BucketTable::new(Mixture::new(staging(), 1.0, &[]), false);
        assert_eq!(without.drawn_sum(&counts[..10], 0), 0.0);
    }
}
