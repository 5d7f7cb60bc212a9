//! The memory of every series' last value, and the epoch of a reading.
//!
//! Ramp subtracts two readings of summed counters. A sum hides what happened to its parts:
//! a pod that restarted (its counters began again) while another served more leaves the sum
//! higher, and its difference would be wrong. So the source remembers each series' last
//! value by its full label set and gives the reading a new epoch when one went down (a
//! reset) or when the set of series changed (a pod came or went, the bucket layout changed);
//! the driver then makes that interval a gap (`Counters::gap_since`), never a slot.
//!
//! A failure series (5xx) may appear without changing the epoch: services export one only
//! after the first failure, so it counts from zero. It may not disappear: that is a reset.

use fnv::FnvHasher;
use std::collections::{BTreeMap, HashMap};
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

/// The last value of every series, and the resets seen since the controller started.
#[derive(Debug, Default)]
pub struct Memory {
    /// Last value and role by identity.
    last: HashMap<String, (Role, u64)>,
    /// Readings in which a series went down or a failure series disappeared.
    resets: u64,
}

impl Memory {
    /// Takes in a complete reading and returns its epoch:
    /// `prometheus:<hash of the defining series set>:<resets seen>`.
    pub fn observe(&mut self, now: &[Observed]) -> String {
        let current: HashMap<&str, u64> = now.iter().map(|o| (o.key.as_str(), o.value)).collect();
        let reset = self
            .last
            .iter()
            .any(|(key, &(role, then))| match current.get(key.as_str()) {
                Some(&value) => value < then,
                None => role == Role::Failures,
            });
        if reset {
            self.resets += 1;
        }
        self.last = now
            .iter()
            .map(|o| (o.key.clone(), (o.role, o.value)))
            .collect();
        let set: BTreeMap<&str, ()> = now
            .iter()
            .filter(|o| o.role == Role::Defining)
            .map(|o| (o.key.as_str(), ()))
            .collect();
        let mut hasher = FnvHasher::default();
        for key in set.keys() {
            hasher.write(key.as_bytes());
            // A separator no key holds (keys are UTF-8), so that two sets never hash alike by
            // concatenation.
            hasher.write(&[0xff]);
        }
        format!("prometheus:{:016x}:{}", hasher.finish(), self.resets)
    }
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
    fn the_epoch_changes_on_a_reset_or_a_changed_set_only() {
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
        let back = m.observe(&[obs("a", Role::Defining, 10), obs("c", Role::Defining, 0)]);
        assert_ne!(gone, back, "a pod came");
        let first_failure = m.observe(&[
            obs("a", Role::Defining, 11),
            obs("c", Role::Defining, 1),
            obs("e", Role::Failures, 1),
        ]);
        assert_eq!(
            back, first_failure,
            "a failure series appearing counts from zero"
        );
        let failures_gone = m.observe(&[obs("a", Role::Defining, 12), obs("c", Role::Defining, 2)]);
        assert_ne!(
            first_failure, failures_gone,
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
