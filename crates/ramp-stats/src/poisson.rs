//! Exact (Garwood) confidence bounds on the mean of a Poisson count.
//!
//! A throughput gate counts requests over observed time, and a count of independent
//! arrivals is Poisson: 40 requests in 2 s is a rate anywhere from about 11 to 32 req/s at
//! 99.9 % confidence. Judging the point estimate against a floor rolled healthy canaries back
//! on noise (issue 12), so the engine judges throughput at the end of this interval nearest
//! to passing, as it judges quantiles and error rates at theirs.
//!
//! Garwood's interval is the exact one (its coverage is at least the nominal level for every
//! mean): for `n` counted events, the upper bound `U` is the mean under which seeing `n` or
//! fewer has probability `tail`, and the lower bound `L` the mean under which seeing `n` or
//! more has probability `tail`. Through the identity between the Poisson and gamma
//! distributions these are gamma quantiles, `U = Γ⁻¹(1 − tail; n + 1)` and
//! `L = Γ⁻¹(tail; n)` (half the chi-square quantiles of the usual tables), computed here from
//! the regularized incomplete gamma function by safeguarded Newton steps.

use crate::verdict::ln_gamma;

/// The regularized incomplete gamma functions `(P(a, x), Q(a, x))`, lower and upper, for
/// `a > 0` and `x ≥ 0`, each computed directly where it is small so that a tail of 0.001
/// keeps its relative precision (Numerical Recipes §6.2: the series below `a + 1`, Lentz's
/// continued fraction above). NaN for arguments outside that domain.
pub fn incomplete_gamma(a: f64, x: f64) -> (f64, f64) {
    if a.is_nan() || x.is_nan() || a <= 0.0 || x < 0.0 || a.is_infinite() {
        return (f64::NAN, f64::NAN);
    }
    if x == 0.0 {
        return (0.0, 1.0);
    }
    if x.is_infinite() {
        return (1.0, 0.0);
    }
    let log_prefactor = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        let p = (log_prefactor + series(a, x).ln()).exp().min(1.0);
        (p, 1.0 - p)
    } else {
        let q = (log_prefactor + continued_fraction(a, x).ln())
            .exp()
            .min(1.0);
        (1.0 - q, q)
    }
}

/// Iterations allowed to the series and the continued fraction. Both need a few times
/// `√a` steps near `x = a`; this covers counts far beyond any window's requests (a count of
/// 10⁹ needs about 400,000).
const MAX_ITERATIONS: usize = 2_000_000;

/// `Σₖ xᵏ / (a (a+1) … (a+k))`, so that `P(a, x) = xᵃ e⁻ˣ / Γ(a) · series`.
fn series(a: f64, x: f64) -> f64 {
    let mut term = 1.0 / a;
    let mut sum = term;
    let mut ap = a;
    for _ in 0..MAX_ITERATIONS {
        ap += 1.0;
        term *= x / ap;
        sum += term;
        if term.abs() < sum.abs() * 1e-16 {
            break;
        }
    }
    sum
}

/// The continued fraction `1 / (x + 1 − a − 1·(1 − a) / (x + 3 − a − …))` by the modified
/// Lentz method, so that `Q(a, x) = xᵃ e⁻ˣ / Γ(a) · fraction`.
fn continued_fraction(a: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / TINY;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..MAX_ITERATIONS {
        let an = -(i as f64) * (i as f64 - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < TINY {
            d = TINY;
        }
        c = b + an / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// Which tail of the gamma distribution a quantile is asked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// `P(a, x) = tail`: the point with `tail` of the mass below it.
    Lower,
    /// `Q(a, x) = tail`: the point with `tail` of the mass above it.
    Upper,
}

/// The point `x` of the gamma distribution of shape `a` (scale 1) with probability `tail`
/// in the given tail, for `0 < tail < 1`.
///
/// Newton steps on the logarithm of the tail probability (well scaled however small the
/// tail), started from the Wilson–Hilferty approximation and kept inside a bracket that
/// shrinks at every step, with bisection whenever a step would leave it; so it converges for
/// every shape, typically in three or four steps.
fn gamma_quantile(a: f64, tail: f64, side: Tail) -> f64 {
    let target = tail.ln();
    // ln of the tail probability at x minus ln(tail), with the tail probabilities: decreasing
    // in x for the upper tail, increasing for the lower one.
    let excess = |x: f64| {
        let (p, q) = incomplete_gamma(a, x);
        let e = match side {
            Tail::Lower => p.ln() - target,
            Tail::Upper => q.ln() - target,
        };
        (e, p, q)
    };
    // Whether x lies below the root (on the side of small x).
    let below = |e: f64| match side {
        Tail::Lower => e < 0.0,
        Tail::Upper => e > 0.0,
    };
    // A bracket [lo, hi] with the root inside: every tail probability is 0 or 1 at x = 0,
    // and doubling hi from beyond the bulk of the distribution soon passes the root.
    let mut lo = 0.0;
    let mut hi = 2.0 * a + 10.0 * a.sqrt() + 10.0;
    while below(excess(hi).0) && hi < f64::MAX / 4.0 {
        lo = hi;
        hi *= 2.0;
    }
    let mut x = wilson_hilferty(a, tail, side);
    if !(x > lo && x < hi) {
        x = 0.5 * (lo + hi);
    }
    let ln_gamma_a = ln_gamma(a);
    for _ in 0..200 {
        let (e, p, q) = excess(x);
        if e == 0.0 {
            return x;
        }
        if below(e) {
            lo = x;
        } else {
            hi = x;
        }
        // d/dx ln(tail probability) = ± density / tail probability.
        let ln_density = (a - 1.0) * x.ln() - x - ln_gamma_a;
        let slope = match side {
            Tail::Lower => (ln_density - p.ln()).exp(),
            Tail::Upper => -(ln_density - q.ln()).exp(),
        };
        let mut next = x - e / slope;
        if !(next > lo && next < hi) {
            next = 0.5 * (lo + hi);
        }
        if (next - x).abs() <= 1e-14 * x || hi - lo <= 1e-15 * hi {
            return next;
        }
        x = next;
    }
    x
}

/// The Wilson–Hilferty approximation of a gamma quantile, the starting point of the Newton
/// steps: `a (1 − 1/(9a) ± z / (3√a))³` with `z` the normal quantile of the tail.
fn wilson_hilferty(a: f64, tail: f64, side: Tail) -> f64 {
    let z = normal_quantile_upper(tail);
    let sign = match side {
        Tail::Lower => -1.0,
        Tail::Upper => 1.0,
    };
    let c = 1.0 - 1.0 / (9.0 * a) + sign * z / (3.0 * a.sqrt());
    a * c.max(0.0).powi(3)
}

/// The `z` with `1 − Φ(z) = tail`, for `0 < tail < 1` (Acklam's rational approximation,
/// relative error under 1.2e-9: only a starting point here).
fn normal_quantile_upper(tail: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    // The lower-tail quantile of p = 1 − tail, negated by symmetry where that is exact.
    let p = tail.min(1.0 - tail);
    let z = if p < 0.024_25 {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    // `z` is the lower-tail quantile of `p` (negative); the upper-tail one of `tail` is −z
    // when tail ≤ ½ and z when it is above.
    if tail <= 0.5 {
        -z
    } else {
        z
    }
}

/// The upper end of the exact (Garwood) one-sided confidence bound on a Poisson mean after
/// counting `n` events: the mean `U` under which `n` or fewer events have probability `tail`
/// (`tail = 0.001` for a 99.9 % bound). NaN unless `0 < tail < 1`.
pub fn poisson_upper(n: u64, tail: f64) -> f64 {
    if tail.is_nan() || tail <= 0.0 || tail >= 1.0 {
        return f64::NAN;
    }
    if n == 0 {
        // P(X = 0) = e^(−U) = tail.
        return -tail.ln();
    }
    gamma_quantile(n as f64 + 1.0, tail, Tail::Upper)
}

/// The lower end of the exact (Garwood) one-sided confidence bound on a Poisson mean after
/// counting `n` events: the mean `L` under which `n` or more events have probability `tail`;
/// 0 when nothing was counted. NaN unless `0 < tail < 1`.
pub fn poisson_lower(n: u64, tail: f64) -> f64 {
    if tail.is_nan() || tail <= 0.0 || tail >= 1.0 {
        return f64::NAN;
    }
    if n == 0 {
        return 0.0;
    }
    if n == 1 {
        // P(X ≥ 1) = 1 − e^(−L) = tail.
        return -(-tail).ln_1p();
    }
    gamma_quantile(n as f64, tail, Tail::Lower)
}

/// Whether `poisson_upper(n, tail) / span_s < rate`, decided exactly as that expression
/// decides it, usually by one evaluation of the incomplete gamma function instead of the
/// several that solving for the bound takes.
///
/// It exists for throughput floors, which are judged at every engine tick but whose bound is
/// read only when it is reported. `P(X ≤ n | μ) = Q(n + 1, μ)` decreases in `μ` and equals
/// `tail` at the bound, so the bound is below `μ = rate × span_s` exactly when `Q(n + 1, μ)`
/// is below `tail`. Where the two are too close for the rounding of either computation to
/// be ruled out ([`settled`]), the bound is solved for and compared as before, so the answer
/// is the expression's in every case.
pub fn upper_rate_below(n: u64, tail: f64, span_s: f64, rate: f64) -> bool {
    let solved = || poisson_upper(n, tail) / span_s < rate;
    let mean = rate * span_s;
    if n == 0 || !in_domain(tail, span_s, mean) {
        return solved();
    }
    // A count at or above the level's: the bound lies above the count itself (for a tail of
    // at most ½, since a Poisson mean `n` has median `n`), so it is not below. The common
    // case of a healthy floor, decided without the gamma function.
    if tail <= 0.5 && n as f64 >= mean * (1.0 + MARGIN) {
        return false;
    }
    let a = n as f64 + 1.0;
    let (_, q) = incomplete_gamma(a, mean);
    match settled(a, mean, q.ln() - tail.ln()) {
        // The probability of `n` or fewer is below the tail at `mean`: the bound is lower.
        Some(excess) => excess < 0.0,
        None => solved(),
    }
}

/// Whether `poisson_lower(n, tail) / span_s > rate`, decided exactly as that expression
/// decides it, usually by one evaluation of the incomplete gamma function: the counterpart of
/// [`upper_rate_below`] for throughput ceilings. `P(X ≥ n | μ) = P(n, μ)` increases in `μ` and
/// equals `tail` at the bound, so the bound is above `μ` exactly when `P(n, μ)` is below
/// `tail`.
pub fn lower_rate_above(n: u64, tail: f64, span_s: f64, rate: f64) -> bool {
    let solved = || poisson_lower(n, tail) / span_s > rate;
    let mean = rate * span_s;
    // Counts of 0 and 1 have closed forms: nothing to save.
    if n < 2 || !in_domain(tail, span_s, mean) {
        return solved();
    }
    // A count at or below the level's: the bound lies below the count (tail at most ½), so
    // it is not above.
    if tail <= 0.5 && n as f64 <= mean * (1.0 - MARGIN) {
        return false;
    }
    let a = n as f64;
    let (p, _) = incomplete_gamma(a, mean);
    match settled(a, mean, p.ln() - tail.ln()) {
        // The probability of `n` or more is below the tail at `mean`: the bound is higher.
        Some(excess) => excess < 0.0,
        None => solved(),
    }
}

/// The relative room left between a count and the level's mean before a decision is taken
/// from their order alone: far beyond the rounding of the mean and of the solved bound.
const MARGIN: f64 = 1e-9;

/// Whether a tail, an observed span and a mean are ones the one-evaluation decisions take
/// (anything else, NaN included, goes to the solver and gets whatever it gives).
fn in_domain(tail: f64, span_s: f64, mean: f64) -> bool {
    tail > 0.0 && tail < 1.0 && span_s > 0.0 && mean > 0.0 && mean.is_finite()
}

/// `excess`, the log of a tail probability of the gamma distribution of shape `a` at `x`
/// minus the log of the target tail, when it is far enough from 0 that its sign is certain
/// despite rounding; `None` when it is not (the caller then solves for the bound).
///
/// The log of the tail probability is computed from `a ln x − x − ln Γ(a)`, each term
/// rounded to about 1e-16 of its size, plus the series or continued fraction to about 1e-15
/// relative; the bound solved for by [`gamma_quantile`] is a root of that same computed
/// function to within the same rounding. A margin of 1e-12 of the terms' size plus 1e-9 is
/// thousands of times that rounding, so a sign outside it is the sign the solved bound gives;
/// in rate terms it sends to the solver only rates within about 1e-9 (relative) of the bound.
fn settled(a: f64, x: f64, excess: f64) -> Option<f64> {
    let size = (a * x.ln()).abs() + x + ln_gamma(a).abs();
    let margin = 1e-9 + 1e-12 * size;
    (excess.abs() > margin).then_some(excess)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative closeness.
    fn close(got: f64, want: f64, rel: f64) -> bool {
        (got - want).abs() <= rel * want.abs().max(1e-300)
    }

    /// Reference values at `tail = 0.001` (one-sided 99.9 %): `(n, upper, lower)`, computed
    /// with mpmath 1.3.0 at 40 digits by bisection on its regularized `gammainc`
    /// (`gammainc(n + 1, 0, U, regularized=True) = 0.999`, `gammainc(n, 0, L,
    /// regularized=True) = 0.001`); in chi-square terms `U(n) = χ²₀.₉₉₉(2n + 2) / 2` and
    /// `L(n) = χ²₀.₀₀₁(2n) / 2`. `U(0) = ln 1000` and `L(1) = −ln 0.999` agree with their
    /// closed forms.
    const REFERENCE: [(u64, f64, f64); 10] = [
        (0, 6.907_755_278_982_14, 0.0),
        (1, 9.233_413_476_451_58, 0.001_000_500_333_583_53),
        (2, 11.228_872_242_412_7, 0.045_402_017_769_489_6),
        (5, 16.454_745_203_680_1, 0.739_371_731_917_833),
        (10, 24.133_971_145_417_6, 2.960_520_372_743_76),
        (39, 62.419_612_007_882_4, 22.505_053_728_928_2),
        (40, 63.662_198_296_659, 23.259_937_964_583_8),
        (100, 134.924_319_061_264, 71.921_397_495_000_4),
        (1000, 1_101.626_943_879_03, 905.120_790_934_977),
        (100_000, 100_981.072_678_03, 99_025.631_890_500_9),
    ];

    #[test]
    fn garwood_bounds_match_reference_values() {
        for (n, upper, lower) in REFERENCE {
            let u = poisson_upper(n, 0.001);
            assert!(close(u, upper, 1e-10), "upper({n}) = {u}, want {upper}");
            let l = poisson_lower(n, 0.001);
            assert!(close(l, lower, 1e-10), "lower({n}) = {l}, want {lower}");
        }
    }

    #[test]
    fn the_upper_bound_is_the_mean_under_which_the_count_is_that_unlikely() {
        // Summing the Poisson probabilities directly, independently of the gamma function:
        // under the mean U(40), 40 or fewer events have probability 0.001.
        let u = poisson_upper(40, 0.001);
        let mut term = (-u).exp();
        let mut cdf = term;
        for k in 1..=40 {
            term *= u / k as f64;
            cdf += term;
        }
        assert!(close(cdf, 0.001, 1e-10), "P(X ≤ 40 | {u}) = {cdf}");
    }

    #[test]
    fn other_tails_match_the_closed_forms() {
        for tail in [0.5, 0.1, 0.025, 1e-6] {
            assert!(close(poisson_upper(0, tail), -f64::ln(tail), 1e-14));
            assert!(close(poisson_lower(1, tail), -(-tail).ln_1p(), 1e-14));
            // Shape 2: P(X ≤ 1 | U) = e^(−U)(1 + U) = tail.
            let u = poisson_upper(1, tail);
            assert!(close((-u).exp() * (1.0 + u), tail, 1e-10), "{tail}: {u}");
        }
    }

    #[test]
    fn huge_counts_are_computed_and_sit_near_the_normal_approximation() {
        for n in [10_000_000u64, 1_000_000_000] {
            let u = poisson_upper(n, 0.001);
            let l = poisson_lower(n, 0.001);
            let sd = (n as f64).sqrt();
            assert!(
                u > n as f64 + 3.0 * sd && u < n as f64 + 3.2 * sd,
                "{n}: {u}"
            );
            assert!(
                l < n as f64 - 3.0 * sd && l > n as f64 - 3.2 * sd,
                "{n}: {l}"
            );
        }
    }

    /// Rates on both sides of `bound`: far, near (relative steps from 1e-3 down to one unit
    /// in the last place) and on it, plus the edge values a plan can hold.
    fn rates_around(bound: f64) -> Vec<f64> {
        let mut rates = vec![
            0.0,
            -1.0,
            1e-300,
            f64::MIN_POSITIVE,
            1e300,
            f64::INFINITY,
            f64::NAN,
        ];
        for rel in [0.5, 1e-3, 1e-6, 1e-9, 1e-10, 1e-12, 1e-14] {
            rates.push(bound * (1.0 - rel));
            rates.push(bound * (1.0 + rel));
        }
        let mut up = bound;
        let mut down = bound;
        for _ in 0..4 {
            up = f64::from_bits(up.to_bits() + 1);
            down = f64::from_bits(down.to_bits() - 1);
            rates.push(up);
            rates.push(down);
        }
        rates.push(bound);
        rates
    }

    /// The one-evaluation decisions against the bound-based ones they replace, over counts
    /// from 0 to 10⁹, observed spans from 1 ms to a day, three tails and rates on and around
    /// each bound: they must agree everywhere, the edge cases included.
    #[test]
    fn one_evaluation_decisions_equal_the_bound_based_ones() {
        let counts = [
            0u64,
            1,
            2,
            3,
            5,
            10,
            39,
            40,
            100,
            199,
            1_000,
            12_345,
            37_500,
            100_000,
            1_000_000,
            15_000_000,
            1_000_000_000,
        ];
        let spans_s = [0.001, 0.999, 1.0, 5.0, 300.0, 3_600.0, 86_400.0];
        let (mut checked, mut solved) = (0usize, 0usize);
        for tail in [0.001, 0.025, 0.5] {
            for n in counts {
                for span_s in spans_s {
                    // Rates around the count's own rate too: the decisions taken from the
                    // order of the count and the level alone meet the others there.
                    let own = rates_around(n as f64 / span_s);
                    let upper = poisson_upper(n, tail) / span_s;
                    for rate in rates_around(upper).into_iter().chain(own.clone()) {
                        let old = poisson_upper(n, tail) / span_s < rate;
                        assert_eq!(
                            upper_rate_below(n, tail, span_s, rate),
                            old,
                            "upper: n {n}, tail {tail}, span {span_s} s, rate {rate:e} (bound {upper:e})"
                        );
                        checked += 1;
                    }
                    let lower = poisson_lower(n, tail) / span_s;
                    for rate in rates_around(lower).into_iter().chain(own) {
                        let old = poisson_lower(n, tail) / span_s > rate;
                        assert_eq!(
                            lower_rate_above(n, tail, span_s, rate),
                            old,
                            "lower: n {n}, tail {tail}, span {span_s} s, rate {rate:e} (bound {lower:e})"
                        );
                        checked += 1;
                    }
                    // How many of the near-bound rates fall to the solver: those within its
                    // margin, never the far ones.
                    let a = n as f64 + 1.0;
                    let far = upper * 0.999 * span_s;
                    if n > 0 {
                        let (_, q) = incomplete_gamma(a, far);
                        assert!(settled(a, far, q.ln() - tail.ln()).is_some(), "n {n}");
                        let near = upper * (1.0 + 1e-14) * span_s;
                        let (_, q) = incomplete_gamma(a, near);
                        solved += usize::from(settled(a, near, q.ln() - tail.ln()).is_none());
                    }
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
        // Rates a hundred-billionth from the bound cannot be told apart by one evaluation.
        assert!(solved > 0, "no case went to the solver");
    }

    #[test]
    fn bad_tails_give_nan_not_a_panic() {
        for tail in [0.0, 1.0, -0.5, 2.0, f64::NAN] {
            assert!(poisson_upper(10, tail).is_nan());
            assert!(poisson_lower(10, tail).is_nan());
        }
        assert!(incomplete_gamma(-1.0, 1.0).0.is_nan());
        assert!(incomplete_gamma(1.0, -1.0).1.is_nan());
    }

    #[test]
    fn the_incomplete_gamma_matches_closed_forms() {
        // Shape 1 is the exponential distribution: P(1, x) = 1 − e^(−x).
        for x in [0.001, 0.5, 1.9, 2.1, 30.0] {
            let (p, q) = incomplete_gamma(1.0, x);
            assert!(close(q, (-x).exp(), 1e-13), "{x}: {q}");
            assert!(close(p, -(-x).exp_m1(), 1e-12), "{x}: {p}");
        }
    }
}
