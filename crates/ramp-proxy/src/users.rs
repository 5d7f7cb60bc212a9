//! Distinct users per cohort in flag mode: how many different keys each side of the flag's
//! rollout served over the last window, as the flags server's `/stats` counts them per
//! outcome, so that a report can say "625 users (25 %)" from the data plane's side too.
//!
//! Counting is `ramp_flags::distinct`'s: exact up to a cap of live keys, a HyperLogLog
//! beyond (about 1.6 % standard error), memory bounded either way. Keys are hashed with a
//! randomly keyed hasher, so that clients cannot craft keys that collide in the maps.

use crate::clock;
use crate::config::FlagRollout;
use crate::routing::Cohort;
use ramp_flags::distinct::{hash_key, DistinctCounter};
use serde::{Deserialize, Serialize};
use std::collections::hash_map::RandomState;
use std::time::Instant;

/// The counter's side for the stable cohort.
const STABLE: usize = 0;
/// The counter's side for the canary cohort.
const CANARY: usize = 1;

/// Distinct users per cohort over a sliding window; shared by every request.
pub struct CohortUsers {
    /// The flag's key, reported so that a reader can match the counts with the flag's own.
    key: String,
    /// The bucketing salt, reported for the same reason.
    salt: String,
    /// Distinct keys: side 0 stable, side 1 canary.
    counter: DistinctCounter<2>,
    /// Hashes keys with random keys (hash-flooding resistance).
    hasher: RandomState,
    /// The instant the counter's milliseconds count from.
    origin: Instant,
}

/// The `flag` section of `/snapshot` in flag mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagUsersSnapshot {
    /// The flag whose rollout the cohorts mirror.
    pub key: String,
    /// The bucketing salt in use (the flag's `salt`, or its key).
    pub salt: String,
    /// The window the counts cover, in seconds.
    pub window_s: f64,
    /// Distinct keys of requests tagged stable in the window.
    pub stable_users: u64,
    /// Distinct keys of requests tagged canary in the window.
    pub canary_users: u64,
    /// Whether both counts are exact (`false` once they are HyperLogLog estimates).
    pub exact: bool,
}

impl CohortUsers {
    /// Empty counts for flag mode's settings.
    pub fn new(flag: &FlagRollout) -> Self {
        Self {
            key: flag.key.clone(),
            salt: flag.salt.clone(),
            counter: DistinctCounter::new(flag.stats),
            hasher: RandomState::new(),
            origin: clock::now(),
        }
    }

    /// Milliseconds since the origin.
    fn now_ms(&self) -> u64 {
        u64::try_from(
            clock::now()
                .saturating_duration_since(self.origin)
                .as_millis(),
        )
        .unwrap_or(u64::MAX)
    }

    /// Counts the user `key` as seen in `cohort` now.
    pub fn record(&self, key: &[u8], cohort: Cohort) {
        let side = match cohort {
            Cohort::Stable => STABLE,
            Cohort::Canary => CANARY,
        };
        self.counter
            .record(hash_key(&self.hasher, key), side, self.now_ms());
    }

    /// The counts over the window ending now.
    pub fn snapshot(&self) -> FlagUsersSnapshot {
        let [stable, canary] = self.counter.counts(self.now_ms());
        FlagUsersSnapshot {
            key: self.key.clone(),
            salt: self.salt.clone(),
            window_s: self.counter.config().window().as_secs_f64(),
            stable_users: stable.value,
            canary_users: canary.value,
            exact: stable.exact && canary.exact,
        }
    }
}
