//! Who saw which side of each flag: distinct targeting keys per flag and per outcome (the
//! rollout's `on_variant`, or anything else) over a sliding window, for the staging report's
//! "phase8_encryption_enabled: 625 users (25%)".
//!
//! Counting is by [`crate::distinct::DistinctCounter`]: exact up to a cap of live keys per
//! flag, a HyperLogLog beyond (about 1.6 % standard error), memory bounded either way. Only
//! evaluations that carry a targeting key and serve a variant are counted: an anonymous
//! evaluation names no user, and a disabled flag serves no variant.
//!
//! Pure, like the rest of [`crate::flags`]: the caller passes the time (milliseconds from an
//! origin it keeps) and the hasher (a randomly keyed one in a server, see
//! [`crate::distinct`]).

use super::{Resolution, Snapshot};
use crate::distinct::{hash_key, Count, DistinctCounter, WindowConfig};
use arc_swap::ArcSwap;
use serde::Serialize;
use std::collections::hash_map::RandomState;
use std::sync::{Arc, Mutex};

/// The side a user is counted on for the off (default) outcome.
const OFF: usize = 0;
/// The side a user is counted on for the on (`on_variant`) outcome.
const ON: usize = 1;

/// One flag's counter.
#[derive(Debug)]
struct FlagCounter {
    /// The flag's key (the table is sorted by it).
    key: Box<str>,
    /// Distinct targeting keys per outcome: index 0 off, 1 on.
    users: DistinctCounter<2>,
}

/// Distinct targeting keys per flag and outcome over a sliding window. Shared by the server's
/// requests (which record) and whoever reports (the `/stats` endpoint, a live driver).
pub struct FlagStats {
    /// The window, its slots and the exact cap per flag.
    config: WindowConfig,
    /// Hashes targeting keys; randomly keyed in a server.
    hasher: RandomState,
    /// One counter per flag ever evaluated with a key, sorted by flag key; swapped whole when
    /// a flag is added or removed, so recording never takes a table lock.
    table: ArcSwap<Vec<Arc<FlagCounter>>>,
    /// Serialises changes of `table`.
    grow: Mutex<()>,
}

/// One flag's line of a statistics report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlagUsage {
    /// The flag's key.
    pub key: String,
    /// The share of users inside the flag's rollout now, in percent; `null` for a flag
    /// without a rollout, or one that follows a rollout whose weight is not published yet.
    pub weight: Option<f64>,
    /// The same share in basis points, the exact value.
    pub weight_bp: Option<u32>,
    /// Distinct targeting keys served the rollout's variant (`on_variant`) in the window.
    pub on_users: u64,
    /// Distinct targeting keys served any other variant (the default) in the window.
    pub off_users: u64,
    /// The window the counts cover, in seconds.
    pub window_s: f64,
    /// Whether both counts are exact; `false` once the flag had more live keys than the
    /// cap and they are HyperLogLog estimates.
    pub exact: bool,
}

impl std::fmt::Debug for FlagStats {
    /// A summary (the counters hold up to a hundred thousand keys per flag).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlagStats")
            .field("config", &self.config)
            .field("flags_counted", &self.table.load().len())
            .finish_non_exhaustive()
    }
}

impl FlagStats {
    /// Empty statistics with this window, hashing targeting keys with `hasher`.
    pub fn new(config: WindowConfig, hasher: RandomState) -> Self {
        Self {
            config,
            hasher,
            table: ArcSwap::from_pointee(Vec::new()),
            grow: Mutex::new(()),
        }
    }

    /// The window configuration.
    pub fn config(&self) -> WindowConfig {
        self.config
    }

    /// Hashes a targeting key once, for [`FlagStats::record`] (a bulk evaluation records the
    /// same key for every flag).
    pub fn hash_key(&self, targeting_key: &str) -> u64 {
        hash_key(&self.hasher, targeting_key.as_bytes())
    }

    /// Counts the user whose key hashed to `key_hash` for the outcome of `resolution`, at
    /// `now_ms` from the caller's origin. A resolution without a variant (a disabled flag)
    /// is not counted.
    pub fn record(&self, resolution: &Resolution<'_>, key_hash: u64, now_ms: u64) {
        let Some(variant) = resolution.variant else {
            return;
        };
        let on = resolution
            .flag
            .on_variant()
            .is_some_and(|v| v.name() == variant.name());
        let counter = self.counter(resolution.flag.key());
        counter
            .users
            .record(key_hash, if on { ON } else { OFF }, now_ms);
    }

    /// The counter of `key`, created on first use.
    fn counter(&self, key: &str) -> Arc<FlagCounter> {
        let table = self.table.load();
        if let Ok(i) = table.binary_search_by(|c| (*c.key).cmp(key)) {
            return table[i].clone();
        }
        drop(table);
        let _guard = self.grow.lock().unwrap_or_else(|e| e.into_inner());
        let table = self.table.load_full();
        match table.binary_search_by(|c| (*c.key).cmp(key)) {
            Ok(i) => table[i].clone(),
            Err(i) => {
                let counter = Arc::new(FlagCounter {
                    key: key.into(),
                    users: DistinctCounter::new(self.config),
                });
                let mut next = Vec::with_capacity(table.len() + 1);
                next.extend_from_slice(&table[..i]);
                next.push(counter.clone());
                next.extend_from_slice(&table[i..]);
                self.table.store(Arc::new(next));
                counter
            }
        }
    }

    /// The report for every flag of `snapshot`, sorted by key, over the window ending at
    /// `now_ms`. Counters of flags no longer in the snapshot are dropped, so that memory
    /// follows the configuration.
    pub fn report(&self, snapshot: &Snapshot, now_ms: u64) -> Vec<FlagUsage> {
        self.forget_removed(snapshot);
        let table = self.table.load();
        let window_s = self.config.window().as_secs_f64();
        snapshot
            .flags()
            .flags()
            .iter()
            .map(|flag| {
                let weight_bp = flag.weight_bp(snapshot.live());
                // A flag never counted has exact zeros.
                let [off, on] = match table.binary_search_by(|c| (*c.key).cmp(flag.key())) {
                    Ok(i) => table[i].users.counts(now_ms),
                    Err(_) => {
                        [Count {
                            value: 0,
                            exact: true,
                        }; 2]
                    }
                };
                FlagUsage {
                    key: flag.key().to_string(),
                    weight: weight_bp.map(|bp| f64::from(bp) / 100.0),
                    weight_bp,
                    on_users: on.value,
                    off_users: off.value,
                    window_s,
                    exact: on.exact && off.exact,
                }
            })
            .collect()
    }

    /// Drops the counters of flags that are not in `snapshot`.
    fn forget_removed(&self, snapshot: &Snapshot) {
        let table = self.table.load();
        let stale = table.iter().any(|c| snapshot.flags().get(&c.key).is_none());
        if !stale {
            return;
        }
        drop(table);
        let _guard = self.grow.lock().unwrap_or_else(|e| e.into_inner());
        let table = self.table.load_full();
        let kept: Vec<Arc<FlagCounter>> = table
            .iter()
            .filter(|c| snapshot.flags().get(&c.key).is_some())
            .cloned()
            .collect();
        self.table.store(Arc::new(kept));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::{parse_flags_file, FlagState};
    use std::time::Duration;

    const FLAGS: &str = r#"
[flags.phase8_encryption_enabled]
variants = { on = true, off = false }
default_variant = "off"
on_variant = "on"
follow = "rollout"

[flags.banner]
variants = { red = "r", blue = "b" }
default_variant = "red"

[flags.old]
variants = { on = true, off = false }
default_variant = "on"
enabled = false
"#;

    fn stats(window_s: u64, cap: usize) -> FlagStats {
        let config = WindowConfig::new(Duration::from_secs(window_s), 10, cap).unwrap();
        FlagStats::new(config, RandomState::new())
    }

    /// Evaluates every flag for `user` and records the outcomes, as the server does.
    fn evaluate_all(stats: &FlagStats, state: &FlagState, user: &str, now_ms: u64) {
        let snapshot = state.snapshot();
        let hash = stats.hash_key(user);
        for flag in snapshot.flags().flags() {
            if let Ok(r) = flag.evaluate(snapshot.live(), Some(user)) {
                stats.record(&r, hash, now_ms);
            }
        }
    }

    #[test]
    fn users_are_counted_per_flag_and_outcome_exactly() {
        let state = FlagState::new(parse_flags_file(FLAGS, "f.toml").unwrap());
        state.set_rollout_weight_percent(25.0).unwrap();
        let stats = stats(300, 100_000);
        let users: Vec<String> = (0..2_500).map(|u| format!("user-{u}")).collect();
        for _ in 0..2 {
            for u in &users {
                evaluate_all(&stats, &state, u, 1_000);
            }
        }
        let inside = users
            .iter()
            .filter(|u| crate::in_rollout(b"phase8_encryption_enabled", u.as_bytes(), 2_500))
            .count() as u64;
        let report = stats.report(&state.snapshot(), 2_000);
        let keys: Vec<&str> = report.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(keys, ["banner", "old", "phase8_encryption_enabled"]);
        let phase8 = &report[2];
        assert_eq!(phase8.weight, Some(25.0));
        assert_eq!(phase8.weight_bp, Some(2_500));
        assert_eq!(phase8.on_users, inside);
        assert_eq!(phase8.off_users, 2_500 - inside);
        assert!(phase8.exact);
        assert_eq!(phase8.window_s, 300.0);
        // A static flag: everybody on the default side; a disabled flag: nobody counted.
        assert_eq!((report[0].on_users, report[0].off_users), (0, 2_500));
        assert_eq!(report[0].weight, None);
        assert_eq!((report[1].on_users, report[1].off_users), (0, 0));

        // Ramping to 50 %: users who moved in are now counted on as well as off (they were
        // served both within the window).
        state.set_rollout_weight_percent(50.0).unwrap();
        for u in &users {
            evaluate_all(&stats, &state, u, 3_000);
        }
        let inside_50 = users
            .iter()
            .filter(|u| crate::in_rollout(b"phase8_encryption_enabled", u.as_bytes(), 5_000))
            .count() as u64;
        let phase8 = &stats.report(&state.snapshot(), 3_000)[2];
        assert_eq!(phase8.on_users, inside_50);
        assert_eq!(phase8.off_users, 2_500 - inside);
        // Once the 25 % evaluations leave the window, only the current split remains.
        for u in &users {
            evaluate_all(&stats, &state, u, 301_000);
        }
        let phase8 = &stats.report(&state.snapshot(), 301_000)[2];
        assert_eq!(
            (phase8.on_users, phase8.off_users),
            (inside_50, 2_500 - inside_50)
        );
    }

    #[test]
    fn removed_flags_are_forgotten() {
        let state = FlagState::new(parse_flags_file(FLAGS, "f.toml").unwrap());
        let stats = stats(60, 1_000);
        evaluate_all(&stats, &state, "u1", 0);
        assert_eq!(stats.table.load().len(), 2);
        state.replace_flags(
            parse_flags_file(
                "[flags.banner]\nvariants = { red = \"r\" }\ndefault_variant = \"red\"\n",
                "f.toml",
            )
            .unwrap(),
        );
        let report = stats.report(&state.snapshot(), 0);
        assert_eq!(report.len(), 1);
        assert_eq!(report[0].off_users, 1);
        assert_eq!(stats.table.load().len(), 1);
    }
}
