//! The memory of every series' last value, and the epoch of a reading.
//!
//! Ramp subtracts two readings of summed counters. A sum hides what happened to its parts:
//! a pod that restarted (its counters began again) while another served more leaves the sum
//! higher, and its difference would be wrong. So the source remembers each series' last
//! value by its full label set and gives the reading a new epoch when one went down (a
//! reset), disappeared (a pod went, or a scrape failed and its series went stale), or came
//! back after it had disappeared (its value then holds counts of the time it was away); the
//! driver then makes that interval a gap (`Counters::gap_since`), never a slot.
//!
//! A series seen for the first time does not change the epoch: it counts from zero, as a new
//! pod's counters, a canary's first request or a first 5xx do (most client libraries create
//! a labelled series at its first observation, and a histogram labelled by status code gets
//! new series at the first failure: treating those as gaps would hide the very interval in
//! which a canary starts failing). Prometheus' own `increase()` treats a new series the same
//! way.
//!
//! The epoch is `prometheus:<hash of the series set when this stream began>:<resets seen>`.
//! A controller that restarts begins with no memory: its first reading's epoch is the hash
//! of the set it sees, which differs from the journaled one whenever the set changed in
//! between, so a restart across any change of the set is a gap (conservative), and a restart
//! across none continues the journaled stream.

use fnv::FnvHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hasher;

/// What a series is read for, which decides whether it belongs to the set that defines the
/// epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Completed requests or latency buckets: always exported, so a change of the set is a
    /// pod coming or going.
    Defining,
    /// Failures: exported from the first failure on.
    Failures,
}

/// One series of one reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Which query and cohort it came from, and its full label set: its identity.
    pub key: String,
    /// Its role.
    pub role: Role,
    /// Its value, rounded.
    pub value: u64,
}

/// The most disappeared series remembered; past it the oldest knowledge is dropped (a series
/// gone that long ago coming back would then count from zero).
const MAX_GONE: usize = 100_000;

/// The last value of every series, the series that disappeared, and the resets seen since the
/// controller started.
#[derive(Debug, Default)]
pub struct Memory {
    /// Last value and role by identity, of the series in the last reading.
    last: HashMap<String, (Role, u64)>,
    /// Series seen before and absent from the last reading.
    gone: HashSet<String>,
    /// Readings in which a series went down, disappeared or came back.
    resets: u64,
    /// The hash of the series set when the current stream began.
    base: Option<u64>,
}

impl Memory {
    /// Takes in a complete reading and returns its epoch (see the module's documentation).
    pub fn observe(&mut self, now: &[Observed]) -> String {
        let current: HashMap<&str, u64> = now.iter().map(|o| (o.key.as_str(), o.value)).collect();
        let went_down_or_away = self
            .last
            .iter()
            .any(|(key, &(_, then))| current.get(key.as_str()).is_none_or(|&v| v < then));
        let came_back = now.iter().any(|o| self.gone.contains(&o.key));
        let reset = went_down_or_away || came_back;
        if reset {
            self.resets += 1;
        }
        for key in self.last.keys() {
            if !current.contains_key(key.as_str()) {
                self.gone.insert(key.clone());
            }
        }
        for o in now {
            self.gone.remove(&o.key);
        }
        if self.gone.len() > MAX_GONE {
            self.gone.clear();
        }
        self.last = now
            .iter()
            .map(|o| (o.key.clone(), (o.role, o.value)))
            .collect();
        if reset || self.base.is_none() {
            self.base = Some(set_hash(now));
        }
        format!(
            "prometheus:{:016x}:{}",
            self.base.unwrap_or_default(),
            self.resets
        )
    }
}

/// The hash of a reading's series set (its identities, in order).
fn set_hash(now: &[Observed]) -> u64 {
    let set: BTreeMap<&str, ()> = now.iter().map(|o| (o.key.as_str(), ())).collect();
    let mut hasher = FnvHasher::default();
    for key in set.keys() {
        hasher.write(key.as_bytes());
        // A separator no key holds (keys are UTF-8), so that two sets never hash alike by
        // concatenation.
        hasher.write(&[0xff]);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(key: &str, role: Role, value: u64) -> Observed {
        Observed {
            key: key.to_string(),
            role,
            value,
        }
    }

    #[test]
    fn the_epoch_changes_when_a_series_goes_down_goes_away_or_comes_back() {
        let mut m = Memory::default();
        let a = m.observe(&[obs("a", Role::Defining, 5), obs("b", Role::Defining, 5)]);
        let same = m.observe(&[obs("a", Role::Defining, 7), obs("b", Role::Defining, 5)]);
        assert_eq!(a, same, "counters going up: one stream");
        let reset = m.observe(&[obs("a", Role::Defining, 9), obs("b", Role::Defining, 1)]);
        assert_ne!(same, reset, "b went down though the sum went up");
        let after = m.observe(&[obs("a", Role::Defining, 9), obs("b", Role::Defining, 2)]);
        assert_eq!(reset, after, "after the reset, one stream again");
        let gone = m.observe(&[obs("a", Role::Defining, 10)]);
        assert_ne!(after, gone, "a pod left");
        let new_pod = m.observe(&[obs("a", Role::Defining, 10), obs("c", Role::Defining, 1)]);
        assert_eq!(gone, new_pod, "a series never seen before counts from zero");
        let first_failure = m.observe(&[
            obs("a", Role::Defining, 11),
            obs("c", Role::Defining, 1),
            obs("e", Role::Failures, 1),
        ]);
        assert_eq!(new_pod, first_failure, "so does a first 5xx series");
        let back = m.observe(&[
            obs("a", Role::Defining, 12),
            obs("b", Role::Defining, 40),
            obs("c", Role::Defining, 2),
            obs("e", Role::Failures, 1),
        ]);
        assert_ne!(
            first_failure, back,
            "a series that comes back holds counts of the time it was away"
        );
        let failures_gone = m.observe(&[
            obs("a", Role::Defining, 13),
            obs("b", Role::Defining, 41),
            obs("c", Role::Defining, 3),
        ]);
        assert_ne!(
            back, failures_gone,
            "a failure series disappearing is a reset"
        );
    }

    #[test]
    fn a_fresh_memory_gives_the_same_epoch_for_the_same_set() {
        let reading = [obs("x", Role::Defining, 3), obs("y", Role::Failures, 1)];
        assert_eq!(
            Memory::default().observe(&reading),
            Memory::default().observe(&reading),
            "a restarted controller reading an unchanged set continues the journaled stream"
        );
    }
}
