//! The standard normal distribution's tails, to about 1e-15 relative error everywhere.
//!
//! The aggregated sampler (`buckets`) turns the spliced log-normal latency model into the
//! probability of each histogram bucket, and the buckets that matter most for rollbacks are
//! far in the upper tail (p99.99 and beyond at production rates), where `1 − Φ(z)` is 1e-9 to
//! 1e-13. Computing it as `1 − Φ(z)` would lose every digit there, so this module computes the
//! *smaller* tail directly, through `erfc`:
//!
//! - for `x < 0.8`, `erfc(x) = 1 − erf(x)` with `erf` from its everywhere-positive series
//!   `erf(x) = 2x·e^{−x²}/√π · Σ (2x²)ⁿ / (1·3·…·(2n+1))` (no cancellation; `erfc ≥ 0.25`
//!   there, so the subtraction costs at most two bits);
//! - for `x ≥ 0.8`, Legendre's continued fraction of the upper incomplete gamma function
//!   `Γ(½, x²) = √π·erfc(x)`, evaluated bottom-up from a depth that grows as `1/x²` (backward
//!   evaluation damps rounding instead of accumulating it as a forward product does);
//! - `e^{−x²}` with `x` split into a part whose square is exact and a small remainder, so that
//!   the rounding of `x²` (whose absolute error grows with `x²`) does not leak into the tail.
//!
//! The tests check both branches against values computed with 40 significant digits.

use std::f64::consts::{FRAC_1_SQRT_2, FRAC_2_SQRT_PI};

/// Below this argument `erfc` is `1 − erf` by the series; from it on, the continued fraction.
const SERIES_BELOW: f64 = 0.8;

/// `e^{−x²}` for `x ≥ 0`, without the error of rounding `x²` first: `x = h + (x − h)` with `h`
/// a multiple of 2⁻¹⁶, whose square is exact in a double for every `x` where the result is
/// not zero, and `x² = h² + (x − h)(x + h)`, the second term small and accurate.
fn exp_minus_square(x: f64) -> f64 {
    let h = (x * 65_536.0).floor() / 65_536.0;
    (-(h * h)).exp() * (-((x - h) * (x + h))).exp()
}

/// `erf(x)` for `0 ≤ x < SERIES_BELOW` by the positive series (terms shrink at least
/// geometrically by `2x²/3 < 0.43`, so 60 terms are far more than enough).
fn erf_series(x: f64) -> f64 {
    let y = 2.0 * x * x;
    let mut term = 1.0;
    let mut sum = 1.0;
    for n in 1..=60 {
        term *= y / f64::from(2 * n + 1);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    FRAC_2_SQRT_PI * x * exp_minus_square(x) * sum
}

/// `erfc(x)` for `x ≥ SERIES_BELOW` by the continued fraction
/// `Γ(½, y) = e^{−y}·√y / (y + ½ − 1·½ / (y + 5/2 − 2·3/2 / (y + 9/2 − …)))`, `y = x²`,
/// evaluated from depth `12 + 160/x²` upwards (about 260 levels at the switch, 12 far out;
/// the depth was chosen so that truncation is below rounding everywhere, which the tests
/// check).
fn erfc_fraction(x: f64) -> f64 {
    let y = x * x;
    let depth = 12 + (160.0 / y) as u32;
    let mut f = y + 2.0 * f64::from(depth) + 0.5;
    for i in (1..=depth).rev() {
        let i = f64::from(i);
        f = (y + 2.0 * (i - 1.0) + 0.5) - i * (i - 0.5) / f;
    }
    exp_minus_square(x) * x / std::f64::consts::PI.sqrt() / f
}

/// The complementary error function, `erfc(x) = 1 − erf(x)`, with a relative error of about
/// 1e-15 for every `x` where the result is a normal double (up to about 26.5; it underflows to
/// 0 beyond 27.3). NaN gives NaN.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        // erfc(−x) = 2 − erfc(x), between 1 and 2: no precision is lost.
        return 2.0 - erfc(-x);
    }
    if x < SERIES_BELOW {
        1.0 - erf_series(x)
    } else if x < 27.5 {
        erfc_fraction(x)
    } else {
        0.0
    }
}

/// `P(Z > z)` for a standard normal `Z`, accurate in relative terms however small.
pub fn upper_tail(z: f64) -> f64 {
    0.5 * erfc(z * FRAC_1_SQRT_2)
}

/// `P(Z ≤ z)` for a standard normal `Z`, accurate in relative terms however small.
pub fn lower_tail(z: f64) -> f64 {
    0.5 * erfc(-z * FRAC_1_SQRT_2)
}

/// `P(a < Z ≤ b)` for a standard normal `Z` and `a ≤ b`, computed from the tails on the side
/// where both are small, so that a bucket 8 standard deviations out keeps its digits.
pub fn between(a: f64, b: f64) -> f64 {
    if b <= a {
        return 0.0;
    }
    if a >= 0.0 {
        upper_tail(a) - upper_tail(b)
    } else if b <= 0.0 {
        lower_tail(b) - lower_tail(a)
    } else {
        (1.0 - lower_tail(a) - upper_tail(b)).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erfc at these points, to 22 significant digits (mpmath with 40 digits of working
    /// precision).
    #[allow(
        clippy::excessive_precision,
        reason = "the reference values are quoted as computed, beyond a double's digits"
    )]
    const KNOWN: [(f64, f64); 21] = [
        (0.0, 1.0),
        (0.1, 0.887_537_083_981_715_101_6),
        (0.5, 0.479_500_122_186_953_462_3),
        (1.0, 0.157_299_207_050_285_130_7),
        (1.2, 0.089_686_021_770_364_631_63),
        (1.3, 0.065_992_055_059_347_554_15),
        (2.0, 0.004_677_734_981_047_265_838),
        (3.0, 2.209_049_699_858_544_137e-5),
        (4.0, 1.541_725_790_028_001_885e-8),
        (5.0, 1.537_459_794_428_034_850e-12),
        (6.0, 2.151_973_671_249_891_312e-17),
        (8.0, 1.122_429_717_298_292_708e-29),
        (10.0, 2.088_487_583_762_544_757e-45),
        (15.0, 7.212_994_172_451_206_667e-100),
        (20.0, 5.395_865_611_607_900_929e-176),
        (26.0, 5.663_192_408_856_142_846e-296),
        (-0.5, 1.520_499_877_813_046_538),
        (-1.0, 1.842_700_792_949_714_869),
        (-2.0, 1.995_322_265_018_952_734),
        (-5.0, 1.999_999_999_998_462_540),
        (0.79, 0.263_896_546_179_308_888_1),
    ];

    #[test]
    fn erfc_matches_forty_digit_values_to_two_units_in_1e15() {
        for (x, want) in KNOWN {
            let got = erfc(x);
            let rel = ((got - want) / want).abs();
            assert!(
                rel < 2e-15,
                "erfc({x}) = {got:e}, want {want:e} (relative {rel:e})"
            );
        }
    }

    #[test]
    fn the_two_branches_agree_where_they_meet() {
        // At the switch both methods apply: they must agree to rounding.
        let below = 1.0 - erf_series(SERIES_BELOW);
        let above = erfc_fraction(SERIES_BELOW);
        assert!(((below - above) / above).abs() < 2e-15, "{below} {above}");
    }

    #[test]
    fn tails_are_symmetric_and_complementary() {
        for z in [
            -9.0,
            -3.5,
            -1.0,
            -0.1,
            0.0,
            0.3,
            1.644_853_626_951_472_2,
            4.0,
            8.5,
        ] {
            assert!((upper_tail(z) - lower_tail(-z)).abs() <= 1e-300 + 1e-16 * upper_tail(z));
            assert!((upper_tail(z) + lower_tail(z) - 1.0).abs() < 1e-15);
        }
        // z₀.₉₅ and z₀.₉₉ of the latency model.
        assert!((upper_tail(1.644_853_626_951_472_2) - 0.05).abs() < 1e-16);
        assert!((upper_tail(2.326_347_874_040_841) - 0.01).abs() < 1e-16);
        // P(Z > 8) = 6.220960574271784e-16 (mpmath). Rounding z/√2 moves the result by up to
        // z²·1.1e-16 relative (the tail's own sensitivity), hence the wider tolerance.
        assert!((upper_tail(8.0) / 6.220_960_574_271_784e-16 - 1.0).abs() < 1e-14);
    }

    #[test]
    fn intervals_keep_their_digits_in_both_tails() {
        let far = between(7.0, 7.01);
        let mirrored = between(-7.01, -7.0);
        assert!(far > 0.0 && ((far - mirrored) / far).abs() < 1e-12);
        assert!((between(-1.0, 1.0) - 0.682_689_492_137_085_9).abs() < 1e-15);
        assert_eq!(between(1.0, 1.0), 0.0);
        assert_eq!(between(2.0, 1.0), 0.0);
        assert!(erfc(f64::NAN).is_nan());
        assert_eq!(erfc(40.0), 0.0);
        assert_eq!(erfc(-40.0), 2.0);
    }
}
