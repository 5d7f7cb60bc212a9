//! The simulated user population of a plan with feature flags.
//!
//! A live rollout that carries flags places *users*, not requests: the OFREP server buckets a
//! user's targeting key with flagd's `fractional` function, and the proxy in flag mode tags a
//! request with the side of the flag its user is on. A per-request coin flip cannot reproduce
//! that: it would give every user both versions, and no flag could be counted in users. So
//! when a plan has flags, every simulated request belongs to one of the plan's
//! `[simulation] users` ([`DEFAULT_POPULATION`] unless set), drawn uniformly with the run's
//! seeded RNG, whose targeting key is `user-<n>` ([`targeting_key`]).
//!
//! Bucketing is monotonic in the weight (a user inside at 5 % is inside at 25 %), so each
//! user's bucket position (`(murmur3(salt + key) × 10,000) >> 32`, a number below 10,000) is
//! computed once, and "inside at weight `w`" is one comparison `bucket < w` per request. This
//! is exactly [`ramp_flags::rollout_membership`]: 0 is nobody, 10,000 is everybody.
//!
//! Distinct users per flag are exact: the users seen since a stage began are kept as one
//! bitset per router weight and schedule step applied during the stage (rarely more than
//! two: the previous weight until the router applies the new one), and folded into every
//! flag's on and off sets at the stage's end. A request thus costs one draw, one bit and one
//! comparison, however many flags the plan has.
//!
//! A flag with its own schedule is on below the weight its schedule gives at the simulated
//! time since the rollout started ([`ScheduleClock`], quantized as the OFREP server
//! quantizes it); the driver splits its steps at schedule change points, so every request of
//! a step sees one clock. A rollback turns scheduled flags off at once (the live driver
//! publishes that before the proxy moves), while followed flags follow the router.

use ramp_core::summary::FlagUsageSummary;
use ramp_core::{Plan, PlanTime, Weight};
use ramp_flags::flags::{Flag, Rollout, Schedule, ScheduleClock};
use std::sync::Arc;

/// Users in the simulated population of a plan with flags that does not set `[simulation]
/// users`. The staging report's log counts "Canary cohort: 2,500 active users" and
/// "phase8_encryption_enabled: 625 users (25%)", so this is its population. The number does
/// not depend on `rps`, because the staging report's population stays the same at every rate, and at
/// the staging report's 125 requests per second every user sends a request within the first minutes of
/// a stage, so the counts are of the population, not of a sample of it.
pub const DEFAULT_POPULATION: u32 = ramp_core::DEFAULT_SIMULATED_USERS;

/// The targeting key of user `n` (0-based): `user-0`, `user-1`… The same form a test or an
/// operator would use against the OFREP server, so that a simulated user can be evaluated
/// there and land on the same side.
pub fn targeting_key(n: u32) -> String {
    format!("user-{n}")
}

/// A user's position in a rollout salted by `salt`: inside at weight `w` basis points
/// exactly when the position is below `w`. Computed as [`ramp_flags::in_rollout`] does.
fn bucket(salt: &str, key: &str) -> u16 {
    let hash = ramp_flags::hash_flag_key(salt.as_bytes(), key.as_bytes());
    // bucket_of(…, 10,000) is below 10,000, so it fits in a u16.
    ramp_flags::bucket_of(hash, u64::from(ramp_flags::BASIS_POINTS)) as u16
}

/// How one flag's side is decided for a simulated user, reduced from the flag's rollout and
/// state to what the simulation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// The flag follows the rollout: on below the router's current weight.
    Follow,
    /// The flag has its own weight in basis points.
    Fixed(u32),
    /// The flag has its own schedule (kept in its [`FlagColumn`]).
    Schedule,
    /// No rollout or no on variant: everybody gets the default variant (off).
    Never,
    /// The flag is disabled: it serves no variant, so nobody is counted on either side (the
    /// OFREP server's statistics skip such evaluations too).
    Disabled,
}

impl Rule {
    /// The rule of a validated flag.
    fn of(flag: &Flag) -> Rule {
        if !flag.enabled() {
            return Rule::Disabled;
        }
        if flag.on_variant().is_none() {
            return Rule::Never;
        }
        match flag.rollout() {
            Rollout::FollowRollout => Rule::Follow,
            Rollout::Fixed(bp) => Rule::Fixed((*bp).min(ramp_flags::BASIS_POINTS)),
            Rollout::Schedule(_) => Rule::Schedule,
            Rollout::Static => Rule::Never,
        }
    }
}

/// One flag as the population sees it.
#[derive(Debug)]
struct FlagColumn {
    /// The flag's key, for the summary.
    key: String,
    /// How its side is decided.
    rule: Rule,
    /// The flag's schedule, when `rule` is [`Rule::Schedule`].
    schedule: Option<Schedule>,
    /// Every user's bucket position for the flag's salt.
    buckets: Vec<u16>,
}

impl FlagColumn {
    /// The weight in basis points the flag is evaluated at while the router applies
    /// `router_bp` and the schedules stand at `clock`; `None` when the flag serves no
    /// variant.
    fn weight_bp(&self, router_bp: u32, clock: ScheduleClock) -> Option<u32> {
        match self.rule {
            Rule::Follow => Some(router_bp),
            Rule::Fixed(bp) => Some(bp),
            Rule::Schedule => Some(match (clock, &self.schedule) {
                (ScheduleClock::At(ms), Some(s)) => s.weight_at(ms),
                // Before the rollout starts (no stage is counted then) and after a rollback.
                _ => 0,
            }),
            Rule::Never => Some(0),
            Rule::Disabled => None,
        }
    }
}

/// The users of a plan with flags and their bucket positions: computed once per run and
/// shared (not copied) by rehearsal forks, since nothing in it changes.
#[derive(Debug)]
pub struct Users {
    /// The salt that decides the cohort: the first flag that follows the rollout (by key), or
    /// the deployment id (the proxy's sticky routing) when no flag follows it.
    cohort_salt: String,
    /// Every user's bucket position for `cohort_salt`.
    cohort: Vec<u16>,
    /// The plan's flags, in key order.
    flags: Vec<FlagColumn>,
}

impl Users {
    /// The population of `plan` (`[simulation] users`, [`DEFAULT_POPULATION`] without a
    /// simulation section), or `None` when the plan has no flags (its requests keep the
    /// per-request split, so that flag-less runs are exactly what they were).
    pub fn for_plan(plan: &Plan) -> Option<Users> {
        let size = plan
            .simulation
            .as_ref()
            .map_or(DEFAULT_POPULATION, |s| s.users);
        Self::with_size(plan, size)
    }

    /// The population of `plan` with `size` users (at least one), or `None` when the plan has
    /// no flags: for tests that need another size than the plan's.
    pub fn with_size(plan: &Plan, size: u32) -> Option<Users> {
        let flags = plan.flags.flags();
        if flags.is_empty() {
            return None;
        }
        let size = size.max(1);
        // Keys are rebuilt per salt rather than kept: at the largest population a list of
        // them would outweigh everything else.
        let positions = |salt: &str| -> Vec<u16> {
            (0..size).map(|n| bucket(salt, &targeting_key(n))).collect()
        };
        let cohort_salt = flags
            .iter()
            .find(|f| *f.rollout() == Rollout::FollowRollout)
            .map_or(plan.deployment.id.as_str(), Flag::salt)
            .to_string();
        let columns: Vec<FlagColumn> = flags
            .iter()
            .map(|f| FlagColumn {
                key: f.key().to_string(),
                rule: Rule::of(f),
                schedule: match f.rollout() {
                    Rollout::Schedule(s) => Some(s.clone()),
                    _ => None,
                },
                buckets: positions(f.salt()),
            })
            .collect();
        Some(Users {
            cohort: positions(&cohort_salt),
            cohort_salt,
            flags: columns,
        })
    }

    /// Number of users.
    pub fn size(&self) -> u32 {
        self.cohort.len() as u32
    }

    /// The salt that decides each user's cohort.
    pub fn cohort_salt(&self) -> &str {
        &self.cohort_salt
    }

    /// Whether user `n` is in the canary while the router applies `weight` (before
    /// `canary_traffic` scales it): the side the first followed flag puts them on.
    pub fn is_canary(&self, n: u32, weight: Weight) -> bool {
        u32::from(self.cohort[n as usize]) < u32::from(weight.basis_points())
    }

    /// The flags' keys, in the order [`Users::is_on`] indexes them (the plan's key order).
    pub fn flag_keys(&self) -> impl Iterator<Item = &str> {
        self.flags.iter().map(|f| f.key.as_str())
    }

    /// Whether flag `i` serves its on variant to user `n` while the router applies `weight`;
    /// `None` when the flag serves no variant (disabled).
    pub fn is_on(&self, i: usize, n: u32, weight: Weight) -> Option<bool> {
        self.is_on_at(i, n, weight, ScheduleClock::NotStarted)
    }

    /// Whether flag `i` serves its on variant to user `n` while the router applies `weight`
    /// and the schedules stand at `clock`; `None` when the flag serves no variant.
    pub fn is_on_at(&self, i: usize, n: u32, weight: Weight, clock: ScheduleClock) -> Option<bool> {
        let f = &self.flags[i];
        let w = f.weight_bp(u32::from(weight.basis_points()), clock)?;
        Some(u32::from(f.buckets[n as usize]) < w)
    }
}

/// A set of users, one bit each: 2,500 users fit in 40 words, so marking a request's user is
/// one store in memory that stays in the L1 cache, and counting is a popcount.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bits {
    /// Bit `n % 64` of word `n / 64` is user `n`.
    words: Vec<u64>,
}

impl Bits {
    /// An empty set for `size` users.
    fn new(size: u32) -> Bits {
        Bits {
            words: vec![0; (size as usize).div_ceil(64)],
        }
    }

    /// Adds user `n`.
    #[inline]
    fn insert(&mut self, n: u32) {
        self.words[(n / 64) as usize] |= 1 << (n % 64);
    }

    /// Empties the set, keeping its memory.
    fn clear(&mut self) {
        self.words.fill(0);
    }

    /// Number of users in the set.
    fn len(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// The users in the set, in increasing order.
    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &word)| {
            let mut w = word;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros();
                w &= w - 1;
                Some(i as u32 * 64 + bit)
            })
        })
    }
}

/// The stage whose users are being counted.
#[derive(Debug, Clone, Copy)]
struct StageMark {
    /// 1-based stage number.
    index: usize,
    /// The stage's weight: what a flag that follows the rollout is reported at.
    weight: Weight,
    /// When the stage began, for the counting window.
    started: PlanTime,
}

/// A world's population state: who was seen since the stage began, and the counts recorded
/// at each stage's end. Cloned with the world when a rehearsal forks it.
#[derive(Debug, Clone)]
pub(crate) struct Population {
    /// The users and their bucket positions, shared.
    users: Arc<Users>,
    /// Users seen since the stage began, one set per router weight (basis points) and
    /// schedule clock applied during the stage, in the order they were first seen.
    seen: Vec<(u16, ScheduleClock, Bits)>,
    /// How many entries of `seen` are in use this stage (the rest keep their memory).
    segments: usize,
    /// The stage being counted, if one has begun.
    stage: Option<StageMark>,
    /// Per stage end, every flag's distinct users, in stage then key order.
    records: Vec<FlagUsageSummary>,
}

impl Population {
    /// A population of `users`, nobody seen yet.
    pub(crate) fn new(users: Users) -> Population {
        Population {
            users: Arc::new(users),
            seen: Vec::new(),
            segments: 0,
            stage: None,
            records: Vec::new(),
        }
    }

    /// Number of users, the range a request's user is drawn from.
    pub(crate) fn size(&self) -> u32 {
        self.users.size()
    }

    /// The set of users seen at router weight `weight` and schedule clock `clock` this
    /// stage, created on first use: the index that [`Population::visit`] takes. Called once
    /// per simulated step, not per request.
    pub(crate) fn segment(&mut self, weight: Weight, clock: ScheduleClock) -> usize {
        let bp = weight.basis_points();
        if let Some(i) = self.seen[..self.segments]
            .iter()
            .position(|(w, c, _)| *w == bp && *c == clock)
        {
            return i;
        }
        if self.segments == self.seen.len() {
            self.seen.push((bp, clock, Bits::new(self.size())));
        } else {
            let entry = &mut self.seen[self.segments];
            entry.0 = bp;
            entry.1 = clock;
            entry.2.clear();
        }
        self.segments += 1;
        self.segments - 1
    }

    /// Records a request of user `n` in `segment` and says whether it goes to the canary: its
    /// cohort bucket is below `canary_bp`, the router's weight scaled by `canary_traffic`.
    #[inline]
    pub(crate) fn visit(&mut self, segment: usize, n: u32, canary_bp: u32) -> bool {
        self.seen[segment].2.insert(n);
        u32::from(self.users.cohort[n as usize]) < canary_bp
    }

    /// Stage `index` began at `now` with `weight`: counting starts afresh.
    pub(crate) fn stage_started(&mut self, index: usize, weight: Weight, now: PlanTime) {
        self.segments = 0;
        self.stage = Some(StageMark {
            index,
            weight,
            started: now,
        });
    }

    /// Stage `index` ended at `now` (decided, rolled back or halted): records every flag's
    /// distinct on and off users over the stage. `schedule_ms` is the time since the rollout
    /// started: a scheduled flag is reported at the weight its schedule gives then (the last
    /// share it was rolled out to in the stage, even when a rollback ends the stage, as a
    /// followed flag is reported at its stage's weight).
    pub(crate) fn stage_decided(&mut self, index: usize, now: PlanTime, schedule_ms: u64) {
        let Some(mark) = self.stage.filter(|m| m.index == index) else {
            return;
        };
        let size = self.size();
        let mut on = Bits::new(size);
        let mut off = Bits::new(size);
        for f in &self.users.flags {
            on.clear();
            off.clear();
            for (w, clock, seen) in &self.seen[..self.segments] {
                let Some(at) = f.weight_bp(u32::from(*w), *clock) else {
                    continue;
                };
                for n in seen.iter() {
                    if u32::from(f.buckets[n as usize]) < at {
                        on.insert(n);
                    } else {
                        off.insert(n);
                    }
                }
            }
            // A scheduled flag is reported at the share its schedule had during the stage's
            // last moment: a step due exactly at the stage's end is first served by the next
            // stage. A disabled flag serves nothing and is reported at the share its rollout
            // gives, as the live driver reports it.
            let at_end = f
                .schedule
                .as_ref()
                .map(|s| s.weight_at(schedule_ms.saturating_sub(1)));
            let weight_bp = match (f.rule, at_end) {
                (Rule::Schedule | Rule::Disabled, Some(bp)) => bp,
                (Rule::Schedule, None) | (Rule::Never, _) => 0,
                (Rule::Follow | Rule::Disabled, _) => u32::from(mark.weight.basis_points()),
                (Rule::Fixed(bp), _) => bp,
            };
            self.records.push(FlagUsageSummary {
                stage: index,
                key: f.key.clone(),
                weight: f64::from(weight_bp) / 100.0,
                on_users: on.len(),
                off_users: off.len(),
                window_s: now.since(mark.started).as_secs_f64(),
                exact: true,
                scheduled: f.schedule.is_some(),
            });
        }
        self.stage = None;
        self.segments = 0;
    }

    /// The counts recorded so far.
    pub(crate) fn into_records(self) -> Vec<FlagUsageSummary> {
        self.records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_count_and_iterate_what_was_inserted() {
        let mut b = Bits::new(130);
        for n in [0, 63, 64, 65, 129, 64] {
            b.insert(n);
        }
        assert_eq!(b.len(), 5);
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![0, 63, 64, 65, 129]);
        b.clear();
        assert_eq!(b.len(), 0);
        assert_eq!(b.iter().count(), 0);
    }

    #[test]
    fn bucket_positions_decide_as_in_rollout() {
        for n in 0..2_000 {
            let key = targeting_key(n);
            let pos = u32::from(bucket("salt", &key));
            assert!(pos < ramp_flags::BASIS_POINTS);
            for w in [0, 1, 500, 2_500, 5_000, 9_999, 10_000] {
                assert_eq!(
                    pos < w,
                    ramp_flags::in_rollout(b"salt", key.as_bytes(), w),
                    "{key} at {w} bp"
                );
            }
        }
    }
}
