//! Exact Poisson draws by table lookup, for the means the aggregated sampler meets most: a
//! bucket's expected count per tick, which follows the rate from tick to tick, so that no
//! table per mean could be reused.
//!
//! A mean below [`TABLED_BELOW`] (4,096) is written in digits,
//! `μ = d₀/256 + d₁ + 16·d₂ + 256·d₃ + ε` (`d₀` from 0 to 255, the others from 0 to 15,
//! `0 ≤ ε < 1/256`), and a Poisson count of mean `μ` is the sum of independent Poisson counts
//! of means `d₀/256`, `d₁`, `16·d₂`, `256·d₃` and `ε`: a sum of independent Poisson variables
//! is Poisson with the summed mean, so the decomposition is exact. Every non-zero digit's
//! mean (300 of them) has a fixed table, Walker's alias table over its values, built once per
//! process and shared by every run and thread (about 23,000 columns, 360 KB, which stay in
//! the cache); a draw is one table lookup (one 64-bit random number) per non-zero digit, and
//! for `ε` one more random number, compared with `ε` itself and, in the rare case
//! (probability below `ε`) where it falls under it, with `P(N ≥ 1) = 1 − e^(−ε)` and the
//! probabilities of 1, 2, … by inversion. That is five random numbers at most, against PTRS's
//! two uniforms per candidate and, for a third to two thirds of its candidates at bucket
//! means of 10 to 100, two logarithms (`poisson`); measured on means from 8 to 1,900, a
//! table draw costs about 60 % of a PTRS draw's CPU time (issue 18). One level of 256ths
//! costs less in a simulation than two of 16ths (one lookup fewer: about 10 % of the run at
//! 50,000 requests per second), and levels of 64 cost more even in a loop of draws alone:
//! their tables (over a megabyte) leave the cache.
//!
//! **What is left out, and the bound:** each table holds the values whose probability is at
//! least 2⁻⁸⁰ of the mode's, and is the distribution conditioned on them; the mass beyond is
//! below 1e-22 per table (checked by a test for every table), so a draw is wrong with
//! probability below 1e-21, and an alias column's coin has a resolution of 2⁻⁶⁴ (5e-20), the
//! same as for the sparse buckets' placement. Both are far below the 1.4e-13 that the bucket
//! table folds (`buckets`).

use crate::alias::{pick, Alias, Column};
use std::sync::OnceLock;

/// Bits of each digit, lowest first: one digit of 256ths, three of base 16.
const RADIX_BITS: [u32; LEVELS] = [8, 4, 4, 4];

/// Digits of a mean.
const LEVELS: usize = 4;

/// Bits of the digit below 1.
const FRACTION_BITS: u32 = 8;

/// `μ × SCALE` counts the mean in units of the lowest digit; a power of two, so that
/// the product and the remainder `ε` are exact.
const SCALE: f64 = (1u64 << FRACTION_BITS) as f64;

/// Means from which draws use PTRS instead: one past the largest the digits can write.
pub(crate) const TABLED_BELOW: f64 =
    (1u64 << (SHIFTS[LEVELS - 1] + RADIX_BITS[LEVELS - 1])) as f64 / SCALE;

/// Where each level's tables start: the sum of the non-zero digits of the levels below.
const fn offsets() -> [usize; LEVELS] {
    let mut o = [0; LEVELS];
    let mut l = 1;
    while l < LEVELS {
        o[l] = o[l - 1] + (1usize << RADIX_BITS[l - 1]) - 1;
        l += 1;
    }
    o
}

/// Where each level's tables start.
const OFFSETS: [usize; LEVELS] = offsets();

/// Where each level's digit starts in `μ × SCALE`.
const fn shifts() -> [u32; LEVELS] {
    let mut s = [0; LEVELS];
    let mut l = 1;
    while l < LEVELS {
        s[l] = s[l - 1] + RADIX_BITS[l - 1];
        l += 1;
    }
    s
}

/// Where each level's digit starts.
const SHIFTS: [u32; LEVELS] = shifts();

/// A table stops where the probability falls below this share of the mode's: 2⁻⁸⁰.
const CUT: f64 = 8.271_806_125_530_277e-25;

/// Every digit's table, level by level from the lowest digit up, digit 1 up within a level,
/// their columns in one array (a draw reads a few of them, and one array spares it a pointer
/// per table).
struct Tables {
    /// The columns of all tables, one after the other.
    columns: Vec<Column>,
    /// Where each table's columns start in `columns`, and one past the last table's end.
    starts: Vec<usize>,
}

/// The tables, built on first use.
fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut columns = Vec::new();
        let mut starts = vec![0];
        for (level, &bits) in RADIX_BITS.iter().enumerate() {
            for d in 1..1usize << bits {
                columns.extend_from_slice(table(digit_mean(level, d), CUT).columns());
                starts.push(columns.len());
            }
        }
        Tables { columns, starts }
    })
}

/// Walker's alias table of the Poisson distribution of mean `m` over the values whose
/// probability is at least `cut` of the mode's.
fn table(m: f64, cut: f64) -> Alias {
    let (first, weights) = weights(m, cut);
    let names: Vec<u32> = (0..weights.len())
        .map(|i| u32::try_from(first + i as u64).expect("values below 16⁴"))
        .collect();
    Alias::new(&weights, &names)
}

/// The digit at `level` of a mean counted in units of the lowest digit.
fn digit(units: u64, level: usize) -> usize {
    ((units >> SHIFTS[level]) & ((1 << RADIX_BITS[level]) - 1)) as usize
}

/// The mean of digit `d` at `level` (0 for 256ths), exact.
fn digit_mean(level: usize, d: usize) -> f64 {
    d as f64 * ((1u64 << SHIFTS[level]) as f64 / SCALE)
}

/// The Poisson probabilities of mean `m` relative to the mode's, over the values where they
/// are at least `cut`: the first value and the weights. Built outwards from the mode by the
/// ratios of neighbouring probabilities (`m / (k + 1)` up, `k / m` down), which need no
/// factorial; the alias table normalises them.
fn weights(m: f64, cut: f64) -> (u64, Vec<f64>) {
    let mode = m.floor() as u64;
    let mut up = vec![1.0];
    let (mut w, mut k) = (1.0, mode);
    loop {
        k += 1;
        w *= m / k as f64;
        if w < cut {
            break;
        }
        up.push(w);
    }
    let mut down = Vec::new();
    let (mut w, mut k) = (1.0, mode);
    while k > 0 {
        w *= k as f64 / m;
        k -= 1;
        if w < cut {
            break;
        }
        down.push(w);
    }
    let first = mode - down.len() as u64;
    down.reverse();
    down.extend(up);
    (first, down)
}

/// A Poisson draw of mean `mu`, for `0 < mu < TABLED_BELOW`: one table lookup per non-zero
/// digit, and the remainder below the lowest digit.
pub(crate) fn draw(rng: &mut impl rand::Rng, mu: f64) -> u64 {
    debug_assert!(mu > 0.0 && mu < TABLED_BELOW, "{mu}");
    let tables = tables();
    let units = (mu * SCALE) as u64;
    let eps = mu - units as f64 / SCALE;
    let mut n = 0;
    for (level, offset) in OFFSETS.iter().enumerate() {
        let d = digit(units, level);
        if d > 0 {
            let t = offset + d - 1;
            n += pick(&tables.columns[tables.starts[t]..tables.starts[t + 1]], rng) as u64;
        }
    }
    n + remainder(rng, eps)
}

/// A Poisson draw of mean `eps < 1/256` from one 64-bit random number `r`, read as the
/// uniform `u = r / 2⁶⁴`: 0 when `u ≥ 1 − e^(−ε)`, which holds whenever `u ≥ ε` (the cheap
/// test that settles all but a share `ε` of the draws); else the `k ≥ 1` where the running
/// sum of the probabilities of `1..=k` first exceeds `u`.
fn remainder(rng: &mut impl rand::Rng, eps: f64) -> u64 {
    /// 2⁶⁴.
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    if eps <= 0.0 {
        return 0;
    }
    let r = rng.next_u64();
    if r as f64 >= eps * TWO_64 {
        return 0;
    }
    // 1 − e^(−ε) = ε(1 − ε/2·(1 − ε/3·(1 − …))), to the term in ε⁸: its relative error is
    // below ε⁷/8! < 3.5e-22.
    let mut at_least_one = 1.0;
    for j in (2..=8).rev() {
        at_least_one = 1.0 - eps / f64::from(j) * at_least_one;
    }
    at_least_one *= eps;
    let mut u = r as f64 / TWO_64;
    if u >= at_least_one {
        return 0;
    }
    let mut k = 1;
    let mut p = eps * (1.0 - at_least_one);
    while u >= p && p > 0.0 {
        u -= p;
        k += 1;
        p *= eps / k as f64;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chi_square::{
        critical, poisson_pmf as pmf, poisson_statistic as chi_square, statistic,
    };
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    #[test]
    fn every_table_leaves_out_less_than_1e_22() {
        for (level, &bits) in RADIX_BITS.iter().enumerate() {
            for d in 1..1usize << bits {
                let m = digit_mean(level, d);
                let (first, w) = weights(m, CUT);
                let last = first + w.len() as u64 - 1;
                // Both tails summed term by term, far beyond where they vanish.
                let below: f64 = (0..first).map(|k| pmf(m, k)).sum();
                let above: f64 = (last + 1..last + 200 + 40 * m.sqrt() as u64)
                    .map(|k| pmf(m, k))
                    .sum();
                assert!(below + above < 1e-22, "mean {m}: {:e}", below + above);
                assert!(first as f64 <= m && last as f64 >= m, "mean {m}");
            }
        }
        let columns = tables().columns.len();
        assert!(columns < 25_000, "{columns} columns");
    }

    #[test]
    fn digits_and_remainder_add_up_to_the_mean() {
        for mu in [
            1e-9, 0.003, 0.7, 1.0, 15.999, 16.0, 255.5, 1_000.25, 4_095.99,
        ] {
            let units = (mu * SCALE) as u64;
            let mut sum = mu - units as f64 / SCALE;
            assert!((0.0..1.0 / SCALE).contains(&sum), "{mu}");
            for level in 0..LEVELS {
                let d = digit(units, level);
                if d > 0 {
                    sum += digit_mean(level, d);
                }
            }
            assert_eq!(
                units >> (SHIFTS[LEVELS - 1] + RADIX_BITS[LEVELS - 1]),
                0,
                "{mu}"
            );
            assert!((sum - mu).abs() <= 1e-15 * mu, "{mu}: {sum}");
        }
    }

    #[test]
    fn draws_follow_the_poisson_distribution() {
        let mut rng = Pcg64Mcg::seed_from_u64(21);
        // Means with few and many digits, a remainder alone, and the largest tabled.
        for mu in [0.002, 0.3, 1.0, 5.7, 17.0, 63.2, 400.0, 1_234.567, 4_095.9] {
            let draws: Vec<u64> = (0..200_000).map(|_| draw(&mut rng, mu)).collect();
            let (stat, df) = chi_square(mu, &draws);
            assert!(
                stat < critical(df),
                "μ {mu}: chi-square {stat:.1} on {df} df"
            );
        }
    }

    #[test]
    fn the_remainder_alone_is_poisson() {
        // At ε = 0.0039 one draw in 256 is not 0: 2 million draws see about 7,800 ones and
        // 15 twos.
        let mut rng = Pcg64Mcg::seed_from_u64(22);
        let eps = 0.0039;
        let n = 2_000_000;
        let mut observed = [0u64; 3];
        for _ in 0..n {
            observed[(remainder(&mut rng, eps) as usize).min(2)] += 1;
        }
        let p0 = pmf(eps, 0);
        let p1 = pmf(eps, 1);
        let expected = [p0 * n as f64, p1 * n as f64, (1.0 - p0 - p1) * n as f64];
        let (stat, df) = statistic(&observed, &expected);
        assert!(stat < critical(df), "chi-square {stat:.1} on {df} df");
    }

    #[test]
    fn the_test_catches_a_mean_off_by_half_a_percent_and_a_table_cut_short() {
        // The draws of mean 400 against 402: what a digit misread would look like.
        let mut rng = Pcg64Mcg::seed_from_u64(23);
        let draws: Vec<u64> = (0..200_000).map(|_| draw(&mut rng, 400.0)).collect();
        let (stat, df) = chi_square(402.0, &draws);
        assert!(stat > critical(df), "chi-square {stat:.1} on {df} df");
        // A table of mean 400 that stops at 1 % of the mode's probability (about three
        // standard deviations out): its missing tails are seen.
        let short = table(400.0, 0.01);
        let draws: Vec<u64> = (0..200_000)
            .map(|_| short.sample(&mut rng) as u64)
            .collect();
        let (stat, df) = chi_square(400.0, &draws);
        assert!(stat > critical(df), "chi-square {stat:.1} on {df} df");
    }
}
