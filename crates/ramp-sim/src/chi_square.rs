//! The chi-square goodness-of-fit test the sampler's tests share (test builds only): drawn
//! counts against the counts a distribution expects.

use ramp_stats::verdict::ln_gamma;

/// The chi-square statistic of observed against expected counts, pooling consecutive cells
/// until each pooled cell expects at least 10, and its degrees of freedom.
pub(crate) fn statistic(observed: &[u64], expected: &[f64]) -> (f64, usize) {
    let (mut stat, mut cells) = (0.0, 0usize);
    let (mut o, mut e) = (0.0, 0.0);
    for (&ob, &ex) in observed.iter().zip(expected) {
        o += ob as f64;
        e += ex;
        if e >= 10.0 {
            stat += (o - e) * (o - e) / e;
            cells += 1;
            o = 0.0;
            e = 0.0;
        }
    }
    if e > 0.0 {
        stat += (o - e) * (o - e) / e;
        cells += 1;
    }
    (stat, cells.saturating_sub(1))
}

/// The chi-square quantile at 1 − 0.001 (Wilson–Hilferty, within 1 % at these degrees of
/// freedom).
pub(crate) fn critical(df: usize) -> f64 {
    let k = df as f64;
    let z = 3.090_232_306;
    k * (1.0 - 2.0 / (9.0 * k) + z * (2.0 / (9.0 * k)).sqrt()).powi(3)
}

/// The Poisson probability of `k` at mean `mu`, from its logarithm.
pub(crate) fn poisson_pmf(mu: f64, k: u64) -> f64 {
    (k as f64 * mu.ln() - mu - ln_gamma(k as f64 + 1.0)).exp()
}

/// The chi-square statistic of `draws` against the Poisson probabilities of mean `mu`, cells
/// pooled until each expects at least 10 (both tails in the end cells), and its degrees of
/// freedom.
pub(crate) fn poisson_statistic(mu: f64, draws: &[u64]) -> (f64, usize) {
    let n = draws.len() as f64;
    let len = (mu + 12.0 * mu.sqrt() + 20.0) as usize;
    let mut observed = vec![0u64; len];
    for &d in draws {
        observed[(d as usize).min(len - 1)] += 1;
    }
    let mut expected: Vec<f64> = (0..len as u64).map(|k| poisson_pmf(mu, k) * n).collect();
    // The last cell holds the whole upper tail.
    let below: f64 = expected[..len - 1].iter().sum();
    expected[len - 1] = n - below;
    statistic(&observed, &expected)
}
