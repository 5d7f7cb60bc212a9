//! flagd-compatible `fractional` bucketing.
//!
//! Ramp assigns users to variants (feature flags) and to cohorts (sticky proxy routing) with
//! one function, so that the flag a user sees and the version that serves them agree. The
//! function is the one flagd's `fractional` operator uses (flagd-testbed `@fractional-v2`):
//!
//! 1. hash the bucketing value with MurmurHash3 x86 32-bit, seed 0; for the default bucketing
//!    value that is the flag key followed by the targeting key, with no separator;
//! 2. map the hash onto `[0, W)` with `bucket = (hash as u64 * W) >> 32`, where `W` is the sum
//!    of the weights;
//! 3. walk the variants in order, adding up their weights, and pick the first variant whose
//!    cumulative weight is greater than the bucket.
//!
//! Because the bucket of a key never changes, a two-variant split `[on, p], [off, W - p]` is
//! monotonic in `p`: a user who is `on` at 5% stays `on` at 25%, 50% and 100%, and nobody is
//! `on` at 0%. The bucketing is pure: it does no I/O, reads no clock and allocates nothing on
//! the hashing path.
//!
//! On top of it:
//! - [`flags`]: feature flags whose rollout follows a live rollout's weight (or has its own),
//!   their TOML format (`[flags.NAME]`, standalone or embedded in a plan), and the lock-free
//!   [`flags::FlagState`] that a driver moves through a [`flags::WeightHandle`]. Pure too.
//! - [`ofrep`] (feature `server`, on by default): an OFREP server for those flags, so that any
//!   OpenFeature SDK with an OFREP provider reads them.
//! - [`cli`] (feature `server`): `ramp flags serve`'s options and run loop.
//! - [`distinct`]: distinct targeting keys per side (on/off, stable/canary) over a sliding
//!   window, exact up to a cap and a HyperLogLog beyond, with bounded memory; the OFREP
//!   server's `/stats` and the proxy's flag-mode snapshot both count with it. Pure too (the
//!   caller passes the time).
//! - [`exposition`]: the Prometheus text format and the lock-free counters and histogram
//!   that the OFREP server's and the live controller's `/metrics` render. Pure too.
//! - [`located`]: the one rule for locating a problem in a TOML file (`file:line:column`),
//!   shared by the plan loader, the flags file and the proxy configuration. Pure too.

#[cfg(feature = "server")]
pub mod cli;
pub mod distinct;
pub mod exposition;
pub mod flags;
#[doc(hidden)]
pub mod fuzzing;
pub mod located;
mod murmur3;
#[cfg(feature = "server")]
pub mod ofrep;

#[cfg(feature = "server")]
pub use cli::FlagsError;

pub use murmur3::{murmur3_x86_32, Murmur3x86_32};

/// The largest total weight accepted, the same limit as flagd (`math.MaxInt32`), so that a
/// distribution valid in flagd is valid here and the reverse.
pub const MAX_TOTAL_WEIGHT: u64 = i32::MAX as u64;

/// Why a distribution cannot be bucketed; returned instead of guessing a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketError {
    /// The distribution has no variants, so no user could be placed anywhere.
    Empty,
    /// All weights are zero, so the range `[0, W)` is empty (flagd returns no variant too).
    ZeroTotalWeight,
    /// The weights add up to more than [`MAX_TOTAL_WEIGHT`]; the value is the offending sum.
    TotalWeightTooLarge(u64),
}

impl std::fmt::Display for BucketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BucketError::Empty => write!(f, "a fractional distribution needs at least one variant"),
            BucketError::ZeroTotalWeight => {
                write!(f, "the weights of a fractional distribution add up to zero")
            }
            BucketError::TotalWeightTooLarge(sum) => write!(
                f,
                "the weights of a fractional distribution add up to {sum}, more than {MAX_TOTAL_WEIGHT}"
            ),
        }
    }
}

impl std::error::Error for BucketError {}

/// Hashes the default flagd bucketing value, `flag_key` immediately followed by
/// `targeting_key`, without building the concatenated string.
///
/// The proxy calls this on every sticky request, so it must not allocate.
pub fn hash_flag_key(flag_key: &[u8], targeting_key: &[u8]) -> u32 {
    let mut hasher = Murmur3x86_32::new(0);
    hasher.update(flag_key);
    hasher.update(targeting_key);
    hasher.finish()
}

/// Maps a 32-bit hash onto `[0, total_weight)` exactly as flagd does:
/// `(hash as u64 * total_weight) >> 32`.
///
/// The result is below `total_weight` for every hash when `total_weight > 0`.
pub fn bucket_of(hash: u32, total_weight: u64) -> u64 {
    // total_weight ≤ MAX_TOTAL_WEIGHT < 2^31 in every caller that validated it; the u128
    // product keeps this function total for any u64 anyway.
    ((u128::from(hash) * u128::from(total_weight)) >> 32) as u64
}

/// Picks the index of the variant a hash falls into, walking cumulative `weights` in order.
///
/// This is the core of flagd's `fractional`; [`fractional`] wraps it for named variants.
pub fn fractional_index(hash: u32, weights: &[u32]) -> Result<usize, BucketError> {
    walk(hash, weights.iter().copied())
}

/// The walk shared by [`fractional_index`] and [`fractional_by_hash`]: checks the weights,
/// buckets the hash over their total and returns the index of the range that holds it.
fn walk(hash: u32, weights: impl Iterator<Item = u32> + Clone) -> Result<usize, BucketError> {
    let mut n = 0usize;
    let mut total = 0u64;
    for w in weights.clone() {
        n += 1;
        total += u64::from(w);
    }
    if n == 0 {
        return Err(BucketError::Empty);
    }
    if total == 0 {
        return Err(BucketError::ZeroTotalWeight);
    }
    if total > MAX_TOTAL_WEIGHT {
        return Err(BucketError::TotalWeightTooLarge(total));
    }
    let bucket = bucket_of(hash, total);
    let mut range_end = 0u64;
    for (index, weight) in weights.enumerate() {
        range_end += u64::from(weight);
        if bucket < range_end {
            return Ok(index);
        }
    }
    // bucket < total == final range_end, so the loop always returns; keep the function total.
    Ok(n - 1)
}

/// Evaluates a flagd `fractional` distribution for a bucketing value: returns the variant
/// whose weighted range holds the MurmurHash3 of `bucket_by`.
///
/// `bucket_by` is what flagd hashes: by default flag key + targeting key (see
/// [`hash_flag_key`]), or the string produced by the rule's first argument.
pub fn fractional<'a, V>(bucket_by: &[u8], variants: &'a [(V, u32)]) -> Result<&'a V, BucketError> {
    let hash = murmur3_x86_32(bucket_by, 0);
    fractional_by_hash(hash, variants)
}

/// Same as [`fractional`], for a hash the caller already computed (for example with
/// [`hash_flag_key`], which avoids concatenating the flag key and the targeting key).
pub fn fractional_by_hash<V>(hash: u32, variants: &[(V, u32)]) -> Result<&V, BucketError> {
    walk(hash, variants.iter().map(|(_, w)| *w)).map(|i| &variants[i].0)
}

/// The resolution of percentages in [`in_rollout`]: weights are in basis points (1/100 of a
/// percent), so a rollout can be as fine as 0.01% while integer percentages bucket exactly as
/// a flagd distribution `[on, p], [off, 100 - p]` does.
pub const BASIS_POINTS: u32 = 10_000;

/// Says whether a user is inside a rollout of `weight_bp` basis points (0..=10 000), for the
/// rollout keyed by `salt` (a flag key or a deployment id).
///
/// It equals flagd's `fractional` with `[[in, weight_bp], [out, 10000 - weight_bp]]` and the
/// bucketing value `salt + user_key`. Membership is monotonic in the weight: the set of users
/// inside at a weight is a subset of the set inside at any larger weight, so a user never
/// flips out as a rollout grows, everyone is out at 0 and everyone is in at 10 000. Weights
/// above 10 000 are treated as 10 000.
pub fn in_rollout(salt: &[u8], user_key: &[u8], weight_bp: u32) -> bool {
    let weight_bp = weight_bp.min(BASIS_POINTS);
    let hash = hash_flag_key(salt, user_key);
    bucket_of(hash, u64::from(BASIS_POINTS)) < u64::from(weight_bp)
}

/// Where one user stands in a two-variant rollout, as a flag evaluation places them; the
/// single decision that both the OFREP server ([`flags::Flag::evaluate`]) and the proxy's
/// cohort tagging in flag mode make, so that the two cannot disagree about anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// The weight is 0: nobody is inside, and no targeting key is needed to say so.
    Nobody,
    /// The weight is 100 % (or more): everybody is inside, with or without a targeting key.
    Everybody,
    /// The fractional bucketing put this targeting key inside the rollout.
    Inside,
    /// The fractional bucketing put this targeting key outside the rollout.
    Outside,
    /// The rollout is fractional and there is no (non-empty) targeting key to bucket by, so
    /// the user cannot be placed; a flag answers `TARGETING_KEY_MISSING`.
    KeyMissing,
}

impl Membership {
    /// Whether the user gets the rollout's variant (the canary cohort); `None` when the user
    /// cannot be placed.
    pub fn is_inside(self) -> Option<bool> {
        match self {
            Membership::Everybody | Membership::Inside => Some(true),
            Membership::Nobody | Membership::Outside => Some(false),
            Membership::KeyMissing => None,
        }
    }
}

/// Places a user in a rollout of `weight_bp` basis points salted by `salt`: 0 and 100 % need
/// no key, anything between buckets `salt + targeting_key` with [`in_rollout`]. An empty key
/// counts as missing, because it would put every anonymous user in the same bucket.
///
/// This is exactly the decision [`flags::Flag::evaluate`] makes for a flag with a rollout
/// (it calls this function), byte for byte.
pub fn rollout_membership(salt: &[u8], weight_bp: u32, targeting_key: Option<&[u8]>) -> Membership {
    let weight_bp = weight_bp.min(BASIS_POINTS);
    if weight_bp == 0 {
        return Membership::Nobody;
    }
    if weight_bp == BASIS_POINTS {
        return Membership::Everybody;
    }
    match targeting_key {
        Some(key) if !key.is_empty() => {
            if in_rollout(salt, key, weight_bp) {
                Membership::Inside
            } else {
                Membership::Outside
            }
        }
        _ => Membership::KeyMissing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_needs_a_key_only_for_a_fractional_rollout() {
        assert_eq!(rollout_membership(b"s", 0, None), Membership::Nobody);
        assert_eq!(
            rollout_membership(b"s", 10_000, None),
            Membership::Everybody
        );
        assert_eq!(
            rollout_membership(b"s", 20_000, Some(b"")),
            Membership::Everybody
        );
        assert_eq!(
            rollout_membership(b"s", 5_000, None),
            Membership::KeyMissing
        );
        assert_eq!(
            rollout_membership(b"s", 5_000, Some(b"")),
            Membership::KeyMissing
        );
        for user in 0..1_000u32 {
            let key = format!("u{user}");
            let m = rollout_membership(b"s", 2_500, Some(key.as_bytes()));
            assert_eq!(m.is_inside(), Some(in_rollout(b"s", key.as_bytes(), 2_500)));
        }
    }

    #[test]
    fn bucket_stays_below_total_weight_at_the_extremes() {
        assert_eq!(bucket_of(0, 100), 0);
        assert_eq!(bucket_of(u32::MAX, 100), 99);
        assert_eq!(bucket_of(u32::MAX, MAX_TOTAL_WEIGHT), MAX_TOTAL_WEIGHT - 1);
        assert_eq!(bucket_of(1 << 31, 2), 1);
        assert_eq!(bucket_of((1 << 31) - 1, 2), 0);
    }

    #[test]
    fn fractional_index_walks_cumulative_weights() {
        // W = 4: hash 0 → bucket 0; 2^30 → 1; 2^31 → 2; 3·2^30 → 3.
        let weights = [1, 2, 1];
        assert_eq!(fractional_index(0, &weights), Ok(0));
        assert_eq!(fractional_index(1 << 30, &weights), Ok(1));
        assert_eq!(fractional_index(1 << 31, &weights), Ok(1));
        assert_eq!(fractional_index(3 << 30, &weights), Ok(2));
        assert_eq!(fractional_index(u32::MAX, &weights), Ok(2));
    }

    #[test]
    fn zero_weight_variants_are_never_chosen() {
        let variants = [("never", 0u32), ("always", 7u32)];
        for hash in [0u32, 1, 12345, 1 << 31, u32::MAX] {
            assert_eq!(fractional_by_hash(hash, &variants), Ok(&"always"));
        }
    }

    #[test]
    fn invalid_distributions_are_errors() {
        let empty: [(&str, u32); 0] = [];
        assert_eq!(fractional(b"x", &empty), Err(BucketError::Empty));
        assert_eq!(
            fractional(b"x", &[("a", 0u32), ("b", 0u32)]),
            Err(BucketError::ZeroTotalWeight)
        );
        let too_big = [("a", u32::MAX), ("b", 1)];
        assert_eq!(
            fractional(b"x", &too_big),
            Err(BucketError::TotalWeightTooLarge(u64::from(u32::MAX) + 1))
        );
        assert_eq!(fractional_index(5, &[]), Err(BucketError::Empty));
    }

    #[test]
    fn rollout_is_monotonic_in_weight_for_many_users() {
        let weights = [0u32, 1, 500, 2_500, 5_000, 9_999, 10_000];
        for user in 0..5_000u32 {
            let key = format!("user-{user}");
            let mut was_in = false;
            for (i, w) in weights.iter().enumerate() {
                let now_in = in_rollout(b"deploy-42", key.as_bytes(), *w);
                if i == 0 {
                    assert!(!now_in, "nobody is in at weight 0");
                }
                assert!(
                    !was_in || now_in,
                    "{key} left the rollout when it grew to {w}"
                );
                was_in = now_in;
            }
            assert!(was_in, "everybody is in at weight 10000");
        }
    }

    #[test]
    fn rollout_share_is_close_to_the_weight() {
        let n = 20_000u32;
        let inside = (0..n)
            .filter(|u| in_rollout(b"salt", format!("u{u}").as_bytes(), 500))
            .count() as f64;
        let p = 0.05;
        let sd = (f64::from(n) * p * (1.0 - p)).sqrt();
        // Five standard deviations: a deterministic check that the hash spreads users evenly.
        assert!(
            (inside - f64::from(n) * p).abs() < 5.0 * sd,
            "{inside} of {n} inside at 5%"
        );
    }

    #[test]
    fn integer_percent_in_basis_points_matches_a_flagd_percent_split() {
        // flagd with [[in, p], [out, 100 - p]] and the same bucketing value.
        for user in 0..2_000u32 {
            let key = format!("k{user}");
            for p in [1u32, 5, 25, 50, 99] {
                let flagd = fractional_by_hash(
                    hash_flag_key(b"deploy", key.as_bytes()),
                    &[(true, p), (false, 100 - p)],
                )
                .copied()
                .unwrap_or(false);
                assert_eq!(
                    in_rollout(b"deploy", key.as_bytes(), p * 100),
                    flagd,
                    "{key} at {p}%"
                );
            }
        }
    }

    #[test]
    fn hash_flag_key_equals_hash_of_concatenation() {
        for (a, b) in [
            ("", ""),
            ("a", ""),
            ("", "abcd"),
            ("headerColor", "rachel@faas.com"),
            ("abc", "defgh"),
        ] {
            let joined = format!("{a}{b}");
            assert_eq!(
                hash_flag_key(a.as_bytes(), b.as_bytes()),
                murmur3_x86_32(joined.as_bytes(), 0)
            );
        }
    }
}
