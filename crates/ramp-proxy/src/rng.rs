//! A fast per-thread random number generator for the per-request split and fault fractions.
//!
//! The split needs a uniform draw on every request and must not take a lock, so each worker
//! thread keeps a wyrand state seeded once from a process seed and the thread's identity.
//! This is not cryptographic and does not need to be: it only decides which pool serves a
//! request that has no sticky key.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    // RandomState is seeded by the standard library from the OS once per process and varies
    // per instance, which is exactly what a per-thread seed needs.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x9e37_79b9_7f4a_7c15);
    hasher.finish() | 1
}

/// Returns the next 64 random bits of this thread's generator (wyrand).
pub fn next_u64() -> u64 {
    STATE.with(|state| {
        let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    })
}

/// Returns a uniform draw in `[0, n)` for `n > 0` (Lemire's multiply-shift, bias below 2^-32
/// for the small `n` used here).
pub fn below(n: u32) -> u32 {
    ((u64::from(next_u64() as u32) * u64::from(n)) >> 32) as u32
}

/// Returns a uniform draw in `[0, 1)`.
pub fn unit_f64() -> f64 {
    (next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            let v = below(10);
            counts[v as usize] += 1;
        }
        for c in counts {
            // Expected 10 000 each; sd ≈ 95, so ±1 000 is more than ten sigma.
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn unit_is_in_half_open_interval() {
        for _ in 0..10_000 {
            let v = unit_f64();
            assert!((0.0..1.0).contains(&v));
        }
    }
}
