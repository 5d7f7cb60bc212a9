//! Walker's alias method: a category drawn with probability proportional to its weight in
//! constant time, whatever the number of categories. The aggregated sampler places the
//! sparse buckets' requests with it (`buckets`) and draws small Poisson counts from fixed
//! tables with it (`poisson_tables`).

/// One column of an alias table: keep `own` when 64 random bits fall below `keep`, else take
/// `other` (for a full column, `keep` is `u64::MAX` and `other` is `own`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    /// Threshold on 64 random bits.
    keep: u64,
    /// The column's own category.
    own: u32,
    /// Its alias category.
    other: u32,
}

/// Walker's alias method (Vose's construction): one uniform column and one coin give a
/// category with probability proportional to its weight, whatever the number of categories.
#[derive(Debug, Clone)]
pub(crate) struct Alias {
    /// The columns.
    columns: Vec<Column>,
}

impl Alias {
    /// The table for `weights` (non-negative, not all zero) of the categories `names`.
    pub(crate) fn new(weights: &[f64], names: &[u32]) -> Alias {
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

    /// The columns, for a user that keeps many tables in one array (`poisson_tables`) and
    /// picks from them with [`pick`].
    pub(crate) fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// One category, from one 64-bit random number ([`pick`]).
    pub(crate) fn sample(&self, rng: &mut impl rand::Rng) -> usize {
        pick(&self.columns, rng)
    }
}

/// One category of the alias table `columns` (not empty), from one 64-bit random number:
/// `u·m / 2⁶⁴` is a uniform real in `[0, m)`; its integer part picks the column (each with
/// probability `1/m` to within `m/2⁶⁴`) and its fraction, the low 64 bits of the product, is
/// the coin (uniform to a resolution of `m/2⁶⁴`, finer than a double's). The pick has no
/// branch.
pub(crate) fn pick(columns: &[Column], rng: &mut impl rand::Rng) -> usize {
    let x = u128::from(rng.next_u64()) * columns.len() as u128;
    let c = columns[(x >> 64) as usize];
    (if (x as u64) < c.keep { c.own } else { c.other }) as usize
}
