//! The service model: how long a request takes and whether it fails, per cohort.

use ramp_core::{Cohort, Fault, FaultEffect, Feature, LoadModel, PlanTime, ServiceModel};
use rand::RngExt;
use rand_distr::StandardNormal;

/// z of the standard normal at 0.95.
const Z95: f64 = 1.644_853_626_951_472_2;
/// z of the standard normal at 0.99.
const Z99: f64 = 2.326_347_874_040_841;

/// A latency distribution that reproduces three given quantiles exactly.
///
/// A plain log-normal has one shape parameter, so it can match the median and one more
/// quantile but not both p95 and p99 of a real service (the staging report's 145/385/720 ms has a
/// heavier tail than any log-normal through 145 and 385). This model is a *spliced
/// log-normal*: `ln(latency)` is a piecewise-linear, increasing function of a standard
/// normal draw `z`, with knots at z = 0, z₀.₉₅ and z₀.₉₉ passing through ln p50, ln p95 and
/// ln p99. Because the map is increasing, the u-quantile of the latency is the map of the
/// u-quantile of z, so p50, p95 and p99 hold exactly; below the median the first segment's
/// slope continues, above p99 the last segment's slope continues (the tail stays as heavy
/// as between p95 and p99).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyModel {
    /// ln p50.
    ln50: f64,
    /// ln p95.
    ln95: f64,
    /// Slope of ln latency per unit z below z₀.₉₅.
    s_body: f64,
    /// Slope of ln latency per unit z above z₀.₉₅.
    s_tail: f64,
}

impl LatencyModel {
    /// The model through the given quantiles (ms); they must increase, which plan
    /// validation guarantees.
    pub fn new(p50: f64, p95: f64, p99: f64) -> LatencyModel {
        let (ln50, ln95, ln99) = (p50.ln(), p95.ln(), p99.ln());
        LatencyModel {
            ln50,
            ln95,
            s_body: (ln95 - ln50) / Z95,
            s_tail: (ln99 - ln95) / (Z99 - Z95),
        }
    }

    /// ln(latency in ms) for a standard normal draw `z`.
    pub fn ln_ms(&self, z: f64) -> f64 {
        if z <= Z95 {
            self.ln50 + self.s_body * z
        } else {
            self.ln95 + self.s_tail * (z - Z95)
        }
    }

    /// One latency draw in ms.
    pub fn sample(&self, rng: &mut impl rand::Rng) -> f64 {
        let z: f64 = rng.sample(StandardNormal);
        self.ln_ms(z).exp()
    }

    /// The standard normal value `z` whose latency is `ms`: the inverse of [`LatencyModel::ln_ms`]
    /// after `exp`, so that `P(latency ≤ ms) = Φ(z_of_ms(ms))`. Zero and below map to −∞,
    /// infinity to +∞. The aggregated sampler computes bucket probabilities with it.
    pub fn z_of_ms(&self, ms: f64) -> f64 {
        if ms <= 0.0 {
            return f64::NEG_INFINITY;
        }
        let l = ms.ln();
        if l <= self.ln95 {
            (l - self.ln50) / self.s_body
        } else {
            Z95 + (l - self.ln95) / self.s_tail
        }
    }

    /// `E[latency · 1{z1 < Z ≤ z2}]` in ms: the part of the mean latency contributed by draws
    /// between two standard normal values. On each linear piece `ln latency = a + b·z`, and
    /// `E[e^{a+bZ}; z1 < Z ≤ z2] = e^{a + b²/2}·P(z1 − b < Z ≤ z2 − b)`. The aggregated
    /// sampler divides it by the bucket's probability to get a bucket's mean latency.
    pub fn partial_mean(&self, z1: f64, z2: f64) -> f64 {
        let piece = |a: f64, b: f64, lo: f64, hi: f64| -> f64 {
            if hi <= lo {
                return 0.0;
            }
            let v = (a + b * b / 2.0).exp() * crate::normal::between(lo - b, hi - b);
            if v.is_finite() {
                v
            } else {
                0.0
            }
        };
        let body = piece(self.ln50, self.s_body, z1, z2.min(Z95));
        let tail = piece(self.ln95 - self.s_tail * Z95, self.s_tail, z1.max(Z95), z2);
        body + tail
    }
}

/// The per-request outcome of the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestOutcome {
    /// Total latency, ms.
    pub latency_ms: f64,
    /// Whether it failed.
    pub error: bool,
}

/// Constants of the service model for one canary share, computed once per time step so the
/// per-request path is a few multiplications.
#[derive(Debug, Clone, PartialEq)]
pub struct StepModel {
    /// Multiplier of the stable version's latency (shared-load slowdown).
    pub stable_mult: f64,
    /// Per feature, its added share of the base latency at this canary share.
    pub feature_latency: Vec<f64>,
    /// Per feature, its added error probability at this canary share.
    pub feature_errors: Vec<f64>,
}

impl StepModel {
    /// The model's constants at canary share `share` (0–1).
    pub fn at_share(features: &[Feature], load: &LoadModel, share: f64) -> StepModel {
        let g = (1.0 - load.contention) + load.contention * share;
        StepModel {
            stable_mult: 1.0 + load.stable_latency * share,
            feature_latency: features.iter().map(|f| f.latency * g).collect(),
            feature_errors: features.iter().map(|f| f.error_rate * g).collect(),
        }
    }
}

/// Accumulated attribution of the canary's overhead to each feature.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureTally {
    /// Canary requests seen.
    pub requests: u64,
    /// Sum of the canary's latency without features, ms.
    pub base_ms: f64,
    /// Per feature: sum of ms it added.
    pub added_ms: Vec<f64>,
    /// Per feature: errors it caused.
    pub errors: Vec<u64>,
}

/// Draws one request of `cohort` at time `t`.
///
/// The canary pays each feature's overhead on top of the stable version's latency; faults
/// active at `t` for the cohort add latency to a fraction of requests or fail a share of
/// them. Feature attribution is recorded in `tally` for canary requests.
#[allow(clippy::too_many_arguments)]
pub fn draw(
    rng: &mut impl rand::Rng,
    stable: &ServiceModel,
    latency: &LatencyModel,
    step: &StepModel,
    faults: &[Fault],
    cohort: Cohort,
    t: PlanTime,
    tally: &mut FeatureTally,
) -> RequestOutcome {
    let base = latency.sample(rng) * step.stable_mult;
    let mut ms = base;
    let u: f64 = rng.random();
    let mut error = u < stable.error_rate;
    if cohort == Cohort::Canary {
        tally.requests += 1;
        tally.base_ms += base;
        let mut edge = stable.error_rate;
        for (i, (&l, &e)) in step
            .feature_latency
            .iter()
            .zip(&step.feature_errors)
            .enumerate()
        {
            let add = base * l;
            ms += add;
            tally.added_ms[i] += add;
            if !error && u >= edge && u < edge + e {
                error = true;
                tally.errors[i] += 1;
            }
            edge += e;
        }
    }
    for f in faults {
        if f.cohort != cohort || t < f.at || f.duration.is_some_and(|d| t >= f.at.plus(d)) {
            continue;
        }
        match f.effect {
            FaultEffect::AddLatency { ms: add, fraction } => {
                if rng.random::<f64>() < fraction {
                    ms += add;
                }
            }
            FaultEffect::ErrorRate { rate } => {
                if rng.random::<f64>() < rate {
                    error = true;
                }
            }
        }
    }
    RequestOutcome {
        latency_ms: ms,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    /// Sample quantile by sorting (the test checks the model, not the sketch).
    fn quantile(sorted: &[f64], q: f64) -> f64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    #[test]
    fn the_seed_quantiles_are_reproduced_within_two_percent_over_a_million_samples() {
        let m = LatencyModel::new(145.0, 385.0, 720.0);
        let mut rng = Pcg64Mcg::seed_from_u64(7);
        let mut v: Vec<f64> = (0..1_000_000).map(|_| m.sample(&mut rng)).collect();
        v.sort_by(f64::total_cmp);
        for (q, want) in [(0.50, 145.0), (0.95, 385.0), (0.99, 720.0)] {
            let got = quantile(&v, q);
            assert!(
                ((got - want) / want).abs() < 0.02,
                "p{}: {got} vs {want}",
                q * 100.0
            );
        }
    }

    #[test]
    fn other_shapes_fit_too() {
        for (p50, p95, p99) in [(10.0, 20.0, 80.0), (200.0, 260.0, 300.0), (1.0, 50.0, 51.0)] {
            let m = LatencyModel::new(p50, p95, p99);
            let mut rng = Pcg64Mcg::seed_from_u64(11);
            let mut v: Vec<f64> = (0..1_000_000).map(|_| m.sample(&mut rng)).collect();
            v.sort_by(f64::total_cmp);
            for (q, want) in [(0.50, p50), (0.95, p95), (0.99, p99)] {
                let got = quantile(&v, q);
                assert!(
                    ((got - want) / want).abs() < 0.02,
                    "{p50}/{p95}/{p99} q{q}: {got}"
                );
            }
        }
    }

    #[test]
    fn the_map_is_exact_at_the_knots() {
        let m = LatencyModel::new(145.0, 385.0, 720.0);
        assert!((m.ln_ms(0.0).exp() - 145.0).abs() < 1e-9);
        assert!((m.ln_ms(Z95).exp() - 385.0).abs() < 1e-9);
        assert!((m.ln_ms(Z99).exp() - 720.0).abs() < 1e-9);
    }

    #[test]
    fn the_inverse_map_and_the_partial_means_are_consistent() {
        let m = LatencyModel::new(145.0, 385.0, 720.0);
        for z in [-6.0, -1.0, 0.0, 1.0, Z95, 2.0, Z99, 5.0] {
            assert!((m.z_of_ms(m.ln_ms(z).exp()) - z).abs() < 1e-12, "{z}");
        }
        assert_eq!(m.z_of_ms(0.0), f64::NEG_INFINITY);
        assert_eq!(m.z_of_ms(f64::INFINITY), f64::INFINITY);
        // The whole mean by quadrature of exp(ln_ms(z))·φ(z) against the closed form.
        let step = 1e-4;
        let mut numeric = 0.0;
        let mut z = -12.0;
        while z < 12.0 {
            let mid = z + step / 2.0;
            numeric += m.ln_ms(mid).exp() * (-mid * mid / 2.0).exp() * step;
            z += step;
        }
        numeric /= (2.0 * std::f64::consts::PI).sqrt();
        let closed = m.partial_mean(f64::NEG_INFINITY, f64::INFINITY);
        assert!(
            ((closed - numeric) / numeric).abs() < 1e-7,
            "{closed} {numeric}"
        );
        let split = m.partial_mean(f64::NEG_INFINITY, 0.3) + m.partial_mean(0.3, f64::INFINITY);
        assert!(((split - closed) / closed).abs() < 1e-13);
    }

    #[test]
    fn contention_scales_the_overhead_with_the_share() {
        let f = vec![Feature {
            name: "x".into(),
            latency: 0.10,
            error_rate: 0.001,
        }];
        let load = LoadModel {
            contention: 0.8,
            stable_latency: 0.02,
        };
        let low = StepModel::at_share(&f, &load, 0.0);
        let full = StepModel::at_share(&f, &load, 1.0);
        assert!((low.feature_latency[0] - 0.02).abs() < 1e-12);
        assert!((full.feature_latency[0] - 0.10).abs() < 1e-12);
        assert!((full.stable_mult - 1.02).abs() < 1e-12);
    }
}
