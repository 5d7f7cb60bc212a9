//! Exact Poisson draws for the aggregated sampler, which makes hundreds per cohort and tick
//! at high rates (one per histogram bucket that expects a few requests or more).
//!
//! Below a mean of [`PTRS_FROM`] a draw multiplies uniforms until their product falls below
//! `e^(−μ)` (Knuth's method, what `rand_distr` does there: about `μ + 1` uniforms). From it
//! on, it is Hörmann's transformed rejection with squeeze, PTRS (W. Hörmann, "The
//! transformed rejection method for generating Poisson random variables", Insurance:
//! Mathematics and Economics 12, 1993, 39–45; the algorithm NumPy's `poisson` uses there): two
//! uniforms give a candidate `k` through a transformation that follows the Poisson
//! distribution closely, a cheap test (the squeeze) accepts `0.86 · v_r` of the candidates
//! outright (`v_r` grows with the mean: about 35 % of them at a mean of 10, 67 % at 100, 79 %
//! at 10,000), and the rest are accepted by comparing with the Poisson probability itself, so
//! the draws have exactly the Poisson distribution (up to the rounding of the floating-point
//! arithmetic, as every sampler; `ln k!` comes from Stirling's series, accurate to about
//! 1e-16 relative). Its set-up is a square root and two divisions, against
//! `rand_distr`'s normal-based rejection whose every draw costs a normal deviate and, about
//! half the time, an exponential, a logarithm and a polynomial; that set-up and those draws
//! were most of the aggregated sampler's time at 50,000 requests per second (issue 18).

use rand::RngExt;

/// The mean from which draws use PTRS: Hörmann's constants are fitted for `μ ≥ 10`.
const PTRS_FROM: f64 = 10.0;

/// A Poisson draw of mean `mu`; 0 for a mean that is not positive (or NaN). Plan validation
/// keeps every mean far below 2⁵³.
pub(crate) fn poisson(rng: &mut impl rand::Rng, mu: f64) -> u64 {
    if mu.is_nan() || mu <= 0.0 {
        return 0;
    }
    if mu < PTRS_FROM {
        knuth(rng, mu)
    } else {
        ptrs(rng, mu)
    }
}

/// Knuth's method: the number of uniforms whose running product stays above `e^(−μ)`,
/// less one.
fn knuth(rng: &mut impl rand::Rng, mu: f64) -> u64 {
    let limit = (-mu).exp();
    let mut product = rng.random::<f64>();
    let mut k = 0;
    while product > limit {
        product *= rng.random::<f64>();
        k += 1;
    }
    k
}

/// Hörmann's PTRS for `mu ≥ 10` (the notation of the paper: `U`, `V` uniform, `us = ½ − |U|`).
fn ptrs(rng: &mut impl rand::Rng, mu: f64) -> u64 {
    let b = 0.931 + 2.53 * mu.sqrt();
    let a = -0.059 + 0.02483 * b;
    let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
    let v_r = 0.9277 - 3.6224 / (b - 2.0);
    // ln μ, needed only by the few candidates that the squeeze does not settle.
    let mut ln_mu = f64::NAN;
    loop {
        let u = rng.random::<f64>() - 0.5;
        let v = rng.random::<f64>();
        let us = 0.5 - u.abs();
        // `us = 0` (u = −½) makes the candidate −∞, which the paper rejects as negative.
        if us <= 0.0 {
            continue;
        }
        let k = floor((2.0 * a / us + b) * u + mu + 0.43);
        if us >= 0.07 && v <= v_r {
            return k as u64;
        }
        if k < 0 || (us < 0.013 && v > us) {
            continue;
        }
        if ln_mu.is_nan() {
            ln_mu = mu.ln();
        }
        let k = k as f64;
        if (v * inv_alpha / (a / (us * us) + b)).ln() <= -mu + k * ln_mu - ln_factorial(k) {
            return k as u64;
        }
    }
}

/// `⌊x⌋` as an integer, by truncation (one instruction, where `f64::floor` is a library call
/// on the baseline x86-64 target). Exact for `|x| < 2⁶³`; beyond, it saturates, and such a
/// candidate has probability 0 in double precision either way.
fn floor(x: f64) -> i64 {
    let t = x as i64;
    if (t as f64) > x {
        t - 1
    } else {
        t
    }
}

/// `ln k!` for a whole `k ≥ 0`: from a table below 6, else Stirling's series in `x = k + 1`
/// to the term in `x⁻¹⁹`, which at `x ≥ 7` is below 2e-16 (the form NumPy's PTRS uses): one
/// logarithm, where the Lanczos `ln_gamma` takes two and eight divisions.
fn ln_factorial(k: f64) -> f64 {
    /// `ln k!` for `k = 0..6`.
    const SMALL: [f64; 6] = [
        0.0,
        0.0,
        std::f64::consts::LN_2,
        1.791_759_469_228_055,
        3.178_053_830_347_945_8,
        4.787_491_742_782_046,
    ];
    /// The coefficients of Stirling's series, `B₂ₙ / (2n (2n − 1))` for `n = 1..10`.
    const STIRLING: [f64; 10] = [
        8.333_333_333_333_333e-2,
        -2.777_777_777_777_778e-3,
        7.936_507_936_507_937e-4,
        -5.952_380_952_380_952e-4,
        8.417_508_417_508_418e-4,
        -1.917_526_917_526_918e-3,
        6.410_256_410_256_41e-3,
        -2.955_065_359_477_124e-2,
        1.796_443_723_688_307e-1,
        -1.392_432_216_905_9,
    ];
    if k < 6.0 {
        return SMALL[k as usize];
    }
    let x = k + 1.0;
    let x2 = 1.0 / (x * x);
    let series = STIRLING.iter().rev().fold(0.0, |acc, &c| acc * x2 + c);
    series / x + 0.5 * (2.0 * std::f64::consts::PI).ln() + (x - 0.5) * x.ln() - x
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramp_stats::verdict::ln_gamma;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    /// The Poisson probabilities of `0..len` for mean `mu`, from their logarithms.
    fn pmf(mu: f64, len: usize) -> Vec<f64> {
        (0..len)
            .map(|k| (k as f64 * mu.ln() - mu - ln_gamma(k as f64 + 1.0)).exp())
            .collect()
    }

    /// The chi-square statistic of `draws` against the Poisson probabilities of mean `mu`,
    /// cells pooled until each expects at least 10 (both tails in the end cells), and its
    /// degrees of freedom.
    fn chi_square(mu: f64, draws: &[u64]) -> (f64, usize) {
        let n = draws.len() as f64;
        let len = (mu + 12.0 * mu.sqrt() + 20.0) as usize;
        let mut observed = vec![0u64; len];
        for &d in draws {
            observed[(d as usize).min(len - 1)] += 1;
        }
        let mut expected: Vec<f64> = pmf(mu, len).iter().map(|p| p * n).collect();
        // The last cell holds the whole upper tail.
        let below: f64 = expected[..len - 1].iter().sum();
        expected[len - 1] = n - below;
        crate::chi_square::statistic(&observed, &expected)
    }

    use crate::chi_square::critical;

    #[test]
    fn draws_follow_the_poisson_distribution_on_both_sides_of_the_switch() {
        let mut rng = Pcg64Mcg::seed_from_u64(11);
        // Means on both sides of the switch to PTRS, where its constants are least tight, and
        // up to the bucket means of the production plan at 50,000 requests per second.
        for mu in [0.3, 5.7, 9.99, 10.0, 10.5, 17.0, 63.2, 400.0, 12_500.0] {
            let draws: Vec<u64> = (0..200_000).map(|_| poisson(&mut rng, mu)).collect();
            let (stat, df) = chi_square(mu, &draws);
            assert!(
                stat < critical(df),
                "μ {mu}: chi-square {stat:.1} on {df} df"
            );
            let mean = draws.iter().sum::<u64>() as f64 / draws.len() as f64;
            assert!(
                (mean - mu).abs() < 4.0 * (mu / draws.len() as f64).sqrt(),
                "μ {mu}: mean {mean}"
            );
        }
    }

    #[test]
    fn the_test_catches_a_mean_off_by_half_a_percent() {
        // The same test against the wrong mean: what the sampler would look like if its
        // constants were off.
        let mut rng = Pcg64Mcg::seed_from_u64(12);
        let draws: Vec<u64> = (0..200_000).map(|_| poisson(&mut rng, 400.0)).collect();
        let (stat, df) = chi_square(402.0, &draws);
        assert!(stat > critical(df), "chi-square {stat:.1} on {df} df");
    }

    #[test]
    fn log_factorials_match_the_lanczos_log_gamma() {
        for k in (0..200u64).chain([1_000, 12_345, 1_000_000, 1 << 40]) {
            let k = k as f64;
            let (got, want) = (ln_factorial(k), ln_gamma(k + 1.0));
            assert!(
                (got - want).abs() <= 1e-13 * want.abs().max(1.0),
                "ln {k}! = {got}, Lanczos {want}"
            );
        }
    }

    #[test]
    fn floor_by_truncation_is_floor() {
        for x in [
            -3.5,
            -1.0,
            -0.5,
            -0.0,
            0.0,
            0.3,
            1.0,
            2.999_999,
            1e15 + 0.5,
            -1e15 - 0.5,
        ] {
            assert_eq!(floor(x), x.floor() as i64, "{x}");
        }
    }

    #[test]
    fn huge_means_are_drawn_and_degenerate_ones_give_nothing() {
        let mut rng = Pcg64Mcg::seed_from_u64(13);
        let mu = 1e15;
        let d = poisson(&mut rng, mu) as f64;
        assert!((d - mu).abs() < 6.0 * mu.sqrt(), "{d}");
        for mu in [0.0, -1.0, f64::NAN] {
            assert_eq!(poisson(&mut rng, mu), 0);
        }
    }
}
