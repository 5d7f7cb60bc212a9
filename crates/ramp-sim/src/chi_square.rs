//! The chi-square goodness-of-fit test the sampler's tests share (test builds only): drawn
//! counts against the counts a distribution expects.

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
