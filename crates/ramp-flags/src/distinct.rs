//! Distinct targeting keys over a sliding window, with bounded memory.
//!
//! The staging report's flag log reads "phase8_encryption_enabled: 625 users (25%)": how many distinct
//! users saw each side of a rollout recently. [`DistinctCounter`] answers that for `N` sides
//! at once (a flag's off and on variants, the proxy's stable and canary cohorts), over the
//! last `window` of time, and stays within a fixed memory budget whatever the traffic:
//!
//! - **Exact** while few keys are live: a map from each key's 64-bit hash to the slot in which
//!   it was last seen on each side (16 bytes of payload per key for two sides). A key seen on
//!   both sides is stored once. The count of a side is the number of keys whose last slot on
//!   that side is in the window, so it is exact (up to 64-bit hash collisions: with 100,000
//!   keys the chance of any collision is about 3·10⁻¹⁰).
//! - **HyperLogLog** beyond `exact_cap` live keys: one small sketch per side and per time slot
//!   (a ring of `slots` sketches); the window's count merges the registers of the slots in
//!   the window. With [`SHARDS`] shards of [`HLL_REGISTERS`] registers each the relative
//!   standard error is 1.04/√(8 × 512) ≈ 1.6 % ([`HLL_STANDARD_ERROR`]). The switch keeps the
//!   window's semantics: every key of the exact map goes into the sketch of its last slot.
//! - **Back to exact** once the estimate falls below half the cap: a fresh exact map starts
//!   recording, and the sketches are dropped when that map has seen one whole window.
//!
//! The window moves in slots of `window / slots`: a count covers the current slot and the
//! `slots − 1` before it, that is between `window − window/slots` and `window` of time.
//!
//! Keys are hashed by the caller with a [`BuildHasher`] it holds ([`hash_key`]). A live
//! server passes a randomly keyed `RandomState`, so that clients cannot craft keys whose
//! hashes collide in the maps (hash flooding); tests pass a fixed one for repeatability.
//!
//! This module is pure: it reads no clock (the caller passes milliseconds from an origin of
//! its choice, the same for every call) and spawns nothing. The counter is shared between
//! threads through [`SHARDS`] mutexes chosen by the key's hash, so that concurrent requests
//! rarely wait for one another; a poisoned mutex is recovered, never a panic.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// How many independent shards a [`DistinctCounter`] splits keys into (by hash), so that
/// concurrent recorders contend on one eighth of the locks and the sketches' errors average
/// out.
pub const SHARDS: usize = 8;

/// Bits of the hash that pick a HyperLogLog register within a shard.
const HLL_PRECISION: u32 = 9;

/// Registers per HyperLogLog (one byte each), per shard, side and slot.
pub const HLL_REGISTERS: usize = 1 << HLL_PRECISION;

/// The relative standard error of a count once it is estimated: 1.04/√(shards × registers).
pub const HLL_STANDARD_ERROR: f64 = 0.01625;

/// The most slots a window may be cut into (each costs one sketch per side and shard once
/// the count is estimated).
pub const MAX_SLOTS: u32 = 120;

/// The shortest slot: slot numbers are stored in 32 bits, which at 100 ms last 13 years.
pub const MIN_SLOT: Duration = Duration::from_millis(100);

/// The longest window accepted (a day): the counts are for watching a rollout, not history.
pub const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The largest exact cap accepted: 10 million keys is about 250 MB of maps, the most a
/// process serving flags should ever spend on statistics.
pub const MAX_EXACT_CAP: usize = 10_000_000;

/// Why a window configuration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WindowConfigError {
    /// The window is longer than [`MAX_WINDOW`] or too short for one [`MIN_SLOT`].
    #[error("the statistics window must be between 100 ms and 24 h, got {0:?}")]
    Window(Duration),
    /// The slot count is 0 or above [`MAX_SLOTS`].
    #[error("the statistics window needs 1 to {MAX_SLOTS} slots, got {0}")]
    Slots(u32),
    /// The window cut into this many slots gives slots shorter than [`MIN_SLOT`].
    #[error("a {window:?} window cut into {slots} slots gives slots shorter than 100 ms")]
    SlotTooShort {
        /// The window asked for.
        window: Duration,
        /// The slots asked for.
        slots: u32,
    },
    /// The exact cap is 0 or above [`MAX_EXACT_CAP`].
    #[error("the exact-count cap must be between 1 and {MAX_EXACT_CAP} keys, got {0}")]
    ExactCap(usize),
}

/// How a [`DistinctCounter`] windows and bounds its counts. Built only through
/// [`WindowConfig::new`], so a counter never holds a window it cannot keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowConfig {
    /// The window's length in milliseconds.
    window_ms: u64,
    /// How many slots the window is cut into.
    slots: u32,
    /// Live keys counted exactly before switching to sketches, over all shards.
    exact_cap: usize,
}

impl Default for WindowConfig {
    /// Five minutes in 30 slots of 10 s, exact up to 100,000 keys.
    fn default() -> Self {
        Self {
            window_ms: 300_000,
            slots: 30,
            exact_cap: 100_000,
        }
    }
}

impl WindowConfig {
    /// A window of `window` cut into `slots` slots, counted exactly up to `exact_cap` live
    /// keys.
    pub fn new(window: Duration, slots: u32, exact_cap: usize) -> Result<Self, WindowConfigError> {
        if window > MAX_WINDOW || window < MIN_SLOT {
            return Err(WindowConfigError::Window(window));
        }
        if slots == 0 || slots > MAX_SLOTS {
            return Err(WindowConfigError::Slots(slots));
        }
        if window / slots < MIN_SLOT {
            return Err(WindowConfigError::SlotTooShort { window, slots });
        }
        if exact_cap == 0 || exact_cap > MAX_EXACT_CAP {
            return Err(WindowConfigError::ExactCap(exact_cap));
        }
        // window ≤ a day, so its milliseconds fit in u64.
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        Ok(Self {
            window_ms,
            slots,
            exact_cap,
        })
    }

    /// The window's length.
    pub fn window(&self) -> Duration {
        Duration::from_millis(self.window_ms)
    }

    /// How many slots the window is cut into.
    pub fn slots(&self) -> u32 {
        self.slots
    }

    /// Live keys counted exactly before switching to sketches.
    pub fn exact_cap(&self) -> usize {
        self.exact_cap
    }

    /// One slot's length in milliseconds (at least 100).
    fn slot_ms(&self) -> u64 {
        (self.window_ms / u64::from(self.slots)).max(1)
    }
}

/// Hashes a key to the 64 bits a [`DistinctCounter`] records, with the caller's hasher.
pub fn hash_key<S: BuildHasher>(state: &S, key: &[u8]) -> u64 {
    let mut h = state.build_hasher();
    h.write(key);
    h.finish()
}

/// One side's count over the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Count {
    /// Distinct keys seen on this side in the window (estimated when `exact` is false).
    pub value: u64,
    /// Whether `value` is exact; `false` once a shard had to switch to sketches.
    pub exact: bool,
}

/// A HyperLogLog of [`HLL_REGISTERS`] one-byte registers (Flajolet et al. 2007, with linear
/// counting for small cardinalities).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HyperLogLog {
    /// The registers: each holds the largest rank seen among the hashes it was picked for.
    registers: Box<[u8]>,
}

impl Default for HyperLogLog {
    fn default() -> Self {
        Self::new()
    }
}

impl HyperLogLog {
    /// An empty sketch.
    pub fn new() -> Self {
        Self {
            registers: vec![0u8; HLL_REGISTERS].into_boxed_slice(),
        }
    }

    /// Adds a 64-bit hash: its top bits pick a register, the rank (position of the first 1
    /// bit) of the rest raises it.
    pub fn insert(&mut self, hash: u64) {
        let index = (hash >> (64 - HLL_PRECISION)) as usize;
        let rest = hash << HLL_PRECISION;
        // A hash whose remaining bits are all zero gets the largest rank those bits allow.
        let rank = (rest.leading_zeros().min(64 - HLL_PRECISION) + 1) as u8;
        if let Some(r) = self.registers.get_mut(index) {
            if rank > *r {
                *r = rank;
            }
        }
    }

    /// Makes this sketch count the union of itself and `other`.
    pub fn merge(&mut self, other: &HyperLogLog) {
        for (a, b) in self.registers.iter_mut().zip(other.registers.iter()) {
            *a = (*a).max(*b);
        }
    }

    /// The estimated number of distinct hashes inserted.
    pub fn estimate(&self) -> f64 {
        estimate(&self.registers)
    }

    /// Forgets everything.
    fn clear(&mut self) {
        self.registers.fill(0);
    }
}

/// The HyperLogLog estimate of a register array: the bias-corrected harmonic mean, or linear
/// counting while it is below 2.5 m and some register is still empty.
fn estimate(registers: &[u8]) -> f64 {
    let m = registers.len() as f64;
    if registers.is_empty() {
        return 0.0;
    }
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let mut sum = 0.0;
    let mut zeros = 0usize;
    for r in registers {
        sum += 2f64.powi(-i32::from(*r));
        zeros += usize::from(*r == 0);
    }
    let raw = alpha * m * m / sum;
    if raw <= 2.5 * m && zeros > 0 {
        m * (m / zeros as f64).ln()
    } else {
        raw
    }
}

/// A hasher for keys that are already 64-bit hashes: it passes them through, so the maps do
/// not hash a second time. Safe because the caller's hashes are keyed (see the module notes).
#[derive(Debug, Default, Clone, Copy)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by the maps here; this keeps the hasher total anyway.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The exact form of one shard: each live key's last slot per side.
#[derive(Debug)]
struct ExactSet<const N: usize> {
    /// Key hash → (last slot + 1) per side; 0 for a side the key was never seen on.
    last_seen: HashMap<u64, [u32; N], BuildHasherDefault<PreHashed>>,
    /// The first slot this map recorded: it knows every key of a window that starts at or
    /// after it.
    complete_from: u64,
}

impl<const N: usize> ExactSet<N> {
    /// An empty map recording from `slot` on.
    fn new(slot: u64) -> Self {
        Self {
            last_seen: HashMap::default(),
            complete_from: slot,
        }
    }

    /// Drops the keys not seen on any side since `lo`; returns how many were dropped.
    fn prune(&mut self, lo: u64) -> usize {
        let keep_from = stored(lo);
        let before = self.last_seen.len();
        self.last_seen
            .retain(|_, sides| sides.iter().any(|s| *s >= keep_from));
        let dropped = before - self.last_seen.len();
        // Give memory back after a burst, so the map does not stay at its peak size.
        if self.last_seen.capacity() > 4 * self.last_seen.len().max(1024) {
            self.last_seen.shrink_to_fit();
        }
        dropped
    }
}

/// A slot's sketches in the ring: which slot they hold, and one sketch per side.
#[derive(Debug)]
struct SketchSlot<const N: usize> {
    /// The slot these sketches count; `None` while unused.
    tag: Option<u64>,
    /// One sketch per side.
    sides: [HyperLogLog; N],
}

/// The estimated form of one shard: a ring of per-slot sketches.
#[derive(Debug)]
struct SketchRing<const N: usize> {
    /// Indexed by slot modulo the ring's length.
    ring: Vec<SketchSlot<N>>,
}

impl<const N: usize> SketchRing<N> {
    /// An empty ring of `slots` entries.
    fn new(slots: u32) -> Self {
        Self {
            ring: (0..slots)
                .map(|_| SketchSlot {
                    tag: None,
                    sides: std::array::from_fn(|_| HyperLogLog::new()),
                })
                .collect(),
        }
    }

    /// Adds a key seen on `side` in `slot`.
    fn insert(&mut self, hash: u64, side: usize, slot: u64) {
        let len = self.ring.len() as u64;
        if len == 0 {
            return;
        }
        let Some(entry) = self.ring.get_mut((slot % len) as usize) else {
            return;
        };
        match entry.tag {
            Some(t) if t == slot => {}
            // A newer slot already took this place: the key's slot has left the window.
            Some(t) if t > slot => return,
            _ => {
                for s in &mut entry.sides {
                    s.clear();
                }
                entry.tag = Some(slot);
            }
        }
        if let Some(s) = entry.sides.get_mut(side) {
            s.insert(hash);
        }
    }

    /// The estimate of one side over the slots `lo..=hi`.
    fn estimate(&self, side: usize, lo: u64, hi: u64) -> f64 {
        let mut merged = vec![0u8; HLL_REGISTERS];
        for entry in &self.ring {
            let in_window = entry.tag.is_some_and(|t| t >= lo && t <= hi);
            if let (true, Some(s)) = (in_window, entry.sides.get(side)) {
                for (m, r) in merged.iter_mut().zip(s.registers.iter()) {
                    *m = (*m).max(*r);
                }
            }
        }
        estimate(&merged)
    }
}

/// Converts a slot to what the exact map stores (slot + 1, so 0 means "never").
fn stored(slot: u64) -> u32 {
    u32::try_from(slot.saturating_add(1)).unwrap_or(u32::MAX)
}

/// One shard of a [`DistinctCounter`]; not shared between threads by itself. The exact cap
/// is the whole counter's, kept with the live-key total the shards share.
#[derive(Debug)]
struct Shard<const N: usize> {
    /// The window and the counter's cap.
    config: WindowConfig,
    /// The latest slot seen; time never moves back (an older `now` counts as this slot).
    current: u64,
    /// The exact map, while (or again) the shard has few enough live keys.
    exact: Option<ExactSet<N>>,
    /// The sketches, once the exact map overflowed, until an exact map is complete again.
    sketch: Option<SketchRing<N>>,
}

impl<const N: usize> Shard<N> {
    /// An empty shard, exact from the start.
    fn new(config: WindowConfig) -> Self {
        Self {
            config,
            current: 0,
            exact: Some(ExactSet::new(0)),
            sketch: None,
        }
    }

    /// The first slot of the window that ends at `slot`.
    fn lo(&self, slot: u64) -> u64 {
        slot.saturating_sub(u64::from(self.config.slots) - 1)
    }

    /// Moves the clock to `now_ms` and returns the current slot; at a new slot, drops the
    /// keys that left the window (and from the shared `live` total) and changes form if the
    /// population allows.
    fn advance(&mut self, now_ms: u64, live: &AtomicUsize) -> u64 {
        let slot = now_ms / self.config.slot_ms();
        if slot <= self.current {
            return self.current;
        }
        self.current = slot;
        let lo = self.lo(slot);
        if let Some(exact) = &mut self.exact {
            let dropped = exact.prune(lo);
            live.fetch_sub(dropped, Ordering::Relaxed);
        }
        match (&self.exact, &self.sketch) {
            (Some(exact), Some(_)) if exact.complete_from <= lo => {
                // The new map has seen a whole window: exact again, sketches freed.
                self.sketch = None;
            }
            (None, Some(sketch)) => {
                let total: f64 = (0..N).map(|side| sketch.estimate(side, lo, slot)).sum();
                // This shard's share of half the cap: room to grow before overflowing again.
                if total < self.config.exact_cap as f64 / (2 * SHARDS) as f64 {
                    self.exact = Some(ExactSet::new(slot));
                }
            }
            _ => {}
        }
        slot
    }

    /// Records `hash` seen on `side` at `now_ms`; `live` is the number of keys in every
    /// shard's exact map, which the cap bounds.
    fn record(&mut self, hash: u64, side: usize, now_ms: u64, live: &AtomicUsize) {
        if side >= N {
            return;
        }
        let slot = self.advance(now_ms, live);
        let mut overflow = false;
        if let Some(exact) = &mut self.exact {
            let cap = self.config.exact_cap;
            let sides = exact.last_seen.entry(hash).or_insert_with(|| {
                overflow = live.fetch_add(1, Ordering::Relaxed) >= cap;
                [0; N]
            });
            sides[side] = stored(slot);
        }
        if overflow {
            self.overflow(slot, live);
        }
        if let Some(sketch) = &mut self.sketch {
            sketch.insert(hash, side, slot);
        }
    }

    /// The exact maps grew past the cap: moves this shard's keys into sketches (unless a
    /// ring is already running) and drops its map, whose keys leave the `live` total.
    fn overflow(&mut self, slot: u64, live: &AtomicUsize) {
        let Some(exact) = self.exact.take() else {
            return;
        };
        live.fetch_sub(exact.last_seen.len(), Ordering::Relaxed);
        if self.sketch.is_some() {
            return;
        }
        let lo = self.lo(slot);
        let mut sketch = SketchRing::new(self.config.slots);
        for (hash, sides) in &exact.last_seen {
            for (side, s) in sides.iter().enumerate() {
                if *s == 0 {
                    continue;
                }
                let seen = u64::from(*s) - 1;
                if seen >= lo {
                    sketch.insert(*hash, side, seen);
                }
            }
        }
        self.sketch = Some(sketch);
    }

    /// The counts of every side over the window ending at `now_ms`.
    fn counts(&mut self, now_ms: u64, live: &AtomicUsize) -> [Count; N] {
        let slot = self.advance(now_ms, live);
        let lo = self.lo(slot);
        if let Some(exact) = self.exact.as_ref().filter(|e| e.complete_from <= lo) {
            let from = stored(lo);
            let mut out = [Count {
                value: 0,
                exact: true,
            }; N];
            for sides in exact.last_seen.values() {
                for (o, s) in out.iter_mut().zip(sides.iter()) {
                    o.value += u64::from(*s >= from);
                }
            }
            return out;
        }
        let mut out = [Count::default(); N];
        if let Some(sketch) = &self.sketch {
            for (side, o) in out.iter_mut().enumerate() {
                o.value = sketch.estimate(side, lo, slot).round() as u64;
            }
        }
        out
    }
}

/// Distinct keys per side over a sliding window, shared between threads (see the module
/// documentation for the guarantees).
pub struct DistinctCounter<const N: usize> {
    /// The configuration the counter was built with.
    config: WindowConfig,
    /// Keys in every shard's exact map: when a new key would take it past the cap, the
    /// shard that received it switches to sketches, so the maps never hold more than the
    /// cap between them.
    live: AtomicUsize,
    /// The shards, picked by bits 32 to 34 of the key's hash (bits the maps and the sketches
    /// do not otherwise depend on).
    shards: Box<[Mutex<Shard<N>>]>,
}

impl<const N: usize> std::fmt::Debug for DistinctCounter<N> {
    /// A summary: the maps can hold a hundred thousand keys, which no log wants.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistinctCounter")
            .field("config", &self.config)
            .field("exact_keys", &self.live.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<const N: usize> DistinctCounter<N> {
    /// An empty counter.
    pub fn new(config: WindowConfig) -> Self {
        Self {
            config,
            live: AtomicUsize::new(0),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(Shard::new(config)))
                .collect(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> WindowConfig {
        self.config
    }

    /// Locks the shard of `hash`, recovering from a poisoned lock (the shard's state is
    /// always consistent between two statements that could panic, and none does).
    fn shard(&self, hash: u64) -> Option<MutexGuard<'_, Shard<N>>> {
        let index = ((hash >> 32) as usize) % SHARDS;
        self.shards
            .get(index)
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Records the key of hash `hash` as seen on `side` (ignored when `side >= N`) at
    /// `now_ms` milliseconds from the caller's origin.
    pub fn record(&self, hash: u64, side: usize, now_ms: u64) {
        if let Some(mut shard) = self.shard(hash) {
            shard.record(hash, side, now_ms, &self.live);
        }
    }

    /// The counts of every side over the window ending at `now_ms`.
    pub fn counts(&self, now_ms: u64) -> [Count; N] {
        let mut out = [Count {
            value: 0,
            exact: true,
        }; N];
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (o, c) in out.iter_mut().zip(shard.counts(now_ms, &self.live)) {
                o.value += c.value;
                o.exact &= c.exact;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    /// A fixed hasher, so that the tests are repeatable.
    fn hasher() -> BuildHasherDefault<DefaultHasher> {
        BuildHasherDefault::default()
    }

    fn config(window_s: u64, slots: u32, cap: usize) -> WindowConfig {
        WindowConfig::new(Duration::from_secs(window_s), slots, cap).expect("valid config")
    }

    fn h(key: &str) -> u64 {
        hash_key(&hasher(), key.as_bytes())
    }

    /// 625 users on and 1875 off, each seen three times, and 10 of the "on" users also seen
    /// off later: the staging report's "625 users (25%)".
    fn seed_population(c: &DistinctCounter<2>) {
        for round in 0..3u64 {
            for u in 0..2_500 {
                let side = usize::from(u < 625);
                c.record(h(&format!("user-{u}")), side, round * 1_000);
            }
        }
        for u in 0..10 {
            c.record(h(&format!("user-{u}")), 0, 5_000);
        }
    }

    #[test]
    fn small_populations_are_counted_exactly_per_side() {
        let c = DistinctCounter::<2>::new(config(300, 30, 100_000));
        seed_population(&c);
        assert_eq!(
            c.counts(6_000),
            [
                Count {
                    value: 1_885,
                    exact: true
                },
                Count {
                    value: 625,
                    exact: true
                }
            ]
        );
        // Above the cap (2,500 live keys for 1,000), the same population is estimated.
        let c = DistinctCounter::<2>::new(config(300, 30, 1_000));
        seed_population(&c);
        let [off, on] = c.counts(6_000);
        assert!(!off.exact && !on.exact);
        for (count, truth) in [(off, 1_885.0), (on, 625.0)] {
            assert!(
                (count.value as f64 - truth).abs() < truth * 0.15,
                "{count:?} for {truth}"
            );
        }
    }

    #[test]
    fn the_cap_is_the_number_of_keys_counted_exactly() {
        let c = DistinctCounter::<1>::new(config(300, 30, 2_500));
        for u in 0..2_500 {
            c.record(h(&format!("k{u}")), 0, 0);
        }
        assert_eq!(
            c.counts(0)[0],
            Count {
                value: 2_500,
                exact: true
            }
        );
        c.record(h("one-more"), 0, 0);
        let over = c.counts(0)[0];
        assert!(!over.exact);
        assert!(
            (over.value as f64 - 2_501.0).abs() < 2_501.0 * 0.1,
            "{over:?}"
        );
    }

    #[test]
    fn keys_leave_the_window_slot_by_slot() {
        // 10 s window in 10 slots of 1 s.
        let c = DistinctCounter::<1>::new(config(10, 10, 1_000));
        for u in 0..5 {
            c.record(h(&format!("a{u}")), 0, 0);
        }
        for u in 0..3 {
            c.record(h(&format!("b{u}")), 0, 4_500);
        }
        assert_eq!(c.counts(9_999)[0].value, 8, "slots 0..=9 are in the window");
        assert_eq!(c.counts(10_000)[0].value, 3, "slot 0 left the window");
        // Seen again: back in.
        c.record(h("a0"), 0, 12_000);
        assert_eq!(c.counts(12_000)[0].value, 4);
        assert_eq!(c.counts(14_999)[0].value, 1, "slot 4 left at 14 s");
        assert_eq!(
            c.counts(30_000)[0],
            Count {
                value: 0,
                exact: true
            }
        );
        // An older time than the latest is read as the latest slot, never as going back.
        c.record(h("late"), 0, 1_000);
        assert_eq!(c.counts(30_000)[0].value, 1);
    }

    #[test]
    fn large_populations_are_estimated_within_the_stated_error_and_memory_stays_bounded() {
        let c = DistinctCounter::<2>::new(config(300, 30, 10_000));
        let n = 200_000u64;
        for u in 0..n {
            // A quarter on, the rest off, spread over two minutes.
            let side = usize::from(u % 4 == 0);
            c.record(h(&format!("user-{u}")), side, u * 120_000 / n);
        }
        let [off, on] = c.counts(120_000);
        assert!(!on.exact && !off.exact);
        for (count, truth) in [(on, n / 4), (off, 3 * n / 4)] {
            let err = (count.value as f64 - truth as f64).abs() / truth as f64;
            // Four standard errors: a false failure is below 1e-4, and the hasher is fixed.
            assert!(
                err < 4.0 * HLL_STANDARD_ERROR,
                "{} estimated for {truth} ({:.2} %)",
                count.value,
                err * 100.0
            );
        }
        let held: usize = c
            .shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap()
                    .exact
                    .as_ref()
                    .map_or(0, |e| e.last_seen.len())
            })
            .sum();
        assert!(held <= 10_000, "{held} keys held exactly");
        assert_eq!(held, c.live.load(Ordering::Relaxed));
    }

    #[test]
    fn counts_become_exact_again_one_window_after_the_crowd_leaves() {
        let c = DistinctCounter::<1>::new(config(10, 10, 800));
        for u in 0..5_000 {
            c.record(h(&format!("crowd-{u}")), 0, 0);
        }
        assert!(!c.counts(0)[0].exact);
        // The crowd leaves the window at 10 s; a few users stay active every second.
        for t in 10..40u64 {
            for u in 0..20 {
                c.record(h(&format!("few-{u}")), 0, t * 1_000);
            }
        }
        assert_eq!(
            c.counts(39_000)[0],
            Count {
                value: 20,
                exact: true
            }
        );
    }

    #[test]
    fn the_sketch_alone_is_accurate_from_tens_to_millions() {
        for n in [0u64, 10, 1_000, 30_000, 1_000_000] {
            let mut s = HyperLogLog::new();
            for u in 0..n {
                s.insert(h(&format!("k{u}")));
            }
            let e = s.estimate();
            // One sketch of 512 registers: 4.6 % standard error; allow four of them.
            let tolerance = (n as f64 * 4.0 * 0.046).max(1.0);
            assert!((e - n as f64).abs() <= tolerance, "{e} for {n}");
        }
        let mut a = HyperLogLog::new();
        let mut b = HyperLogLog::new();
        for u in 0..1_000 {
            a.insert(h(&format!("k{u}")));
            b.insert(h(&format!("k{}", u + 500)));
        }
        a.merge(&b);
        assert!((a.estimate() - 1_500.0).abs() < 1_500.0 * 0.2);
    }

    #[test]
    fn bad_configurations_and_sides_are_refused_without_panicking() {
        assert!(WindowConfig::new(Duration::from_secs(0), 1, 1).is_err());
        assert!(WindowConfig::new(Duration::from_secs(90_000), 1, 1).is_err());
        assert!(WindowConfig::new(Duration::from_secs(10), 0, 1).is_err());
        assert!(WindowConfig::new(Duration::from_secs(10), 121, 1).is_err());
        assert!(WindowConfig::new(Duration::from_secs(1), 20, 1).is_err());
        assert!(WindowConfig::new(Duration::from_secs(10), 10, 0).is_err());
        let c = DistinctCounter::<2>::new(config(10, 10, 10));
        c.record(h("x"), 7, 0);
        assert_eq!(
            c.counts(0),
            [Count {
                value: 0,
                exact: true
            }; 2]
        );
    }
}
