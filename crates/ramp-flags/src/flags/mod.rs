//! Feature flags whose rollout follows a live rollout's weight, or their own schedule.
//!
//! A flag has named variants (booleans, strings, integers, floats or objects, one kind per
//! flag), a `default_variant` that everybody outside the rollout sees and, when it is rolled
//! out, an `on_variant` that the users inside see. Who is inside is decided by
//! [`crate::in_rollout`] with the flag's salt (its key unless configured) and the user's
//! targeting key: flagd's `fractional` bucketing over basis points. Because a user's bucket
//! never changes, a user inside at 5 % stays inside at 25 %, 50 % and 100 %, and a rollback to
//! 0 % turns the flag off for everyone. A flag that follows the rollout reads the weight that a
//! live driver publishes through a [`WeightHandle`]; the proxy's sticky routing uses the same
//! function, so a flag salted with the deployment id agrees with the version a user is routed
//! to.
//!
//! A flag with its own `schedule` (LaunchDarkly-style progressive rollout: time since the
//! rollout started → percent of users) reads the time that a driver publishes through the
//! same [`WeightHandle`]. The published time is quantized to the last *change point* of any
//! schedule of an enabled flag ([`FlagSet::schedule_epoch`]), so the snapshot's version (and
//! the bulk ETag) changes only at a step that can change a served value, and [`FlagSet::next_schedule_change`]
//! tells the driver when to publish next. A rollback ([`WeightHandle::rollback`]) turns
//! scheduled flags off for everyone at once, as it does followed ones, and a schedule never
//! starts again after it.
//!
//! Evaluation reasons follow flagd, the OpenFeature reference server:
//! - `TARGETING_MATCH` for a fractional evaluation, inside the rollout or not (flagd returns
//!   it whenever its targeting rules, `fractional` included, pick a variant);
//! - `STATIC` when no targeting key is needed: a flag without a rollout, or a rollout at 0 %
//!   or 100 %;
//! - `DEFAULT` for a flag that follows the rollout before any weight was published (there is
//!   no rollout yet, so the default variant is served);
//! - `DISABLED` for a flag with `enabled = false`: a success without a value, so that the
//!   client uses its code default (flagd's behaviour since its disabled-flag ADR, and the
//!   OFREP `codeDefaultFlag` schema).
//!
//! This module is pure: it reads no clock and does no I/O. The state is swapped atomically
//! (`arc-swap`), so evaluations never wait for a lock, and every change of weight or
//! configuration bumps a version that the OFREP server folds into its ETags.

mod file;
pub mod raw;
pub mod stats;

pub use file::{load_flags_file, parse_flags_file, FlagFileError, FlagFileErrors};
pub use stats::{FlagStats, FlagUsage};

use crate::Membership;
use arc_swap::ArcSwap;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The kind of value every variant of a flag holds.
///
/// One kind per flag, because an OpenFeature client asks for a typed value (`get_bool`,
/// `get_int`…): a flag whose variants mixed kinds would fail with a type mismatch for some
/// users only, which is the worst time to find out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlagKind {
    /// `true` or `false`.
    Boolean,
    /// A string.
    String,
    /// An integer (a JSON number without a fraction, which typed clients read as `int`).
    Integer,
    /// A float (always written with a fraction, so that typed clients read it as `float`).
    Float,
    /// A JSON object (a TOML table).
    Object,
}

impl FlagKind {
    /// The kind's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            FlagKind::Boolean => "boolean",
            FlagKind::String => "string",
            FlagKind::Integer => "integer",
            FlagKind::Float => "float",
            FlagKind::Object => "object",
        }
    }
}

/// One named value of a flag.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The variant's name, which clients receive as `variant` (analytics group by it).
    name: String,
    /// The value served to users who get this variant.
    value: serde_json::Value,
    /// `name` as a JSON string, rendered once so that responses are written without
    /// escaping on every request.
    name_json: Box<str>,
    /// `value` as JSON, rendered once for the same reason.
    value_json: Box<str>,
}

impl Variant {
    /// Builds a variant and renders its JSON once.
    fn new(name: String, value: serde_json::Value) -> Self {
        let name_json = json_string(&name);
        let value_json = value.to_string().into_boxed_str();
        Self {
            name,
            value,
            name_json,
            value_json,
        }
    }

    /// The variant's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The variant's value.
    pub fn value(&self) -> &serde_json::Value {
        &self.value
    }

    /// The variant's name as a JSON string (quoted and escaped).
    pub fn name_json(&self) -> &str {
        &self.name_json
    }

    /// The variant's value as JSON.
    pub fn value_json(&self) -> &str {
        &self.value_json
    }
}

/// Where a flag's share of users comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Rollout {
    /// No rollout: everybody gets the default variant.
    Static,
    /// The weight of the live rollout (`follow = "rollout"`), published at run time through a
    /// [`WeightHandle`], so that the flag ramps up and rolls back with the deployment.
    FollowRollout,
    /// A fixed share in basis points (0–10,000; 1 bp = 0.01 %), from `weight = <percent>`.
    Fixed(u32),
    /// The flag's own schedule (`schedule = [{ after = "0s", weight = 1 }, …]`): the share
    /// depends on the time since the rollout started, which a driver publishes, so that a
    /// flag can be released progressively on its own clock while the deployment rolls out.
    Schedule(Schedule),
}

/// The most steps a schedule may have: a schedule is written by hand, and a longer one is a
/// generated mistake that would make every evaluation walk a long list.
pub const MAX_SCHEDULE_STEPS: usize = 100;

/// One step of a flag's schedule: from `after` on (time since the rollout started), the flag
/// is on for `weight_bp` of the users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScheduleStep {
    /// Milliseconds since the rollout started at which this step takes effect; integer
    /// milliseconds like the plan's own times, so that simulation stays exact.
    pub after_ms: u64,
    /// The share of users inside from then on, in basis points (0–10,000).
    pub weight_bp: u32,
}

/// A validated schedule: 1 to [`MAX_SCHEDULE_STEPS`] steps, strictly increasing in time and
/// non-decreasing in weight (a decrease would flip users who have the on variant back out;
/// a rollback is the way down). Built only by [`raw::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Schedule {
    /// The steps, in increasing order of `after_ms`.
    steps: Vec<ScheduleStep>,
}

impl Schedule {
    /// The steps, in increasing order of time.
    pub fn steps(&self) -> &[ScheduleStep] {
        &self.steps
    }

    /// The share of users inside, in basis points, `elapsed_ms` after the rollout started:
    /// the weight of the last step that has taken effect, 0 before the first.
    pub fn weight_at(&self, elapsed_ms: u64) -> u32 {
        // Steps are sorted: the last one at or before `elapsed_ms` decides.
        let taken = self.steps.partition_point(|s| s.after_ms <= elapsed_ms);
        taken.checked_sub(1).map_or(0, |i| self.steps[i].weight_bp)
    }

    /// The times (ms since the start) at which the served share changes: the steps whose
    /// weight differs from the weight just before them. A step that repeats the previous
    /// weight (or a first step at 0 %) changes nothing that a client could see.
    pub fn change_points(&self) -> impl Iterator<Item = u64> + '_ {
        let mut before = 0u32;
        self.steps.iter().filter_map(move |s| {
            let changes = s.weight_bp != before;
            before = s.weight_bp;
            changes.then_some(s.after_ms)
        })
    }
}

/// Where the scheduled flags of a snapshot stand: the part of "the time since the rollout
/// started" that decides evaluations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScheduleClock {
    /// The rollout has not started (no driver published a time): scheduled flags serve their
    /// default variant with reason `DEFAULT`, as followed flags do before any weight.
    NotStarted,
    /// The rollout started; the value is the time since then in milliseconds, quantized down
    /// to the last change point of any schedule ([`FlagSet::schedule_epoch`]), so that two
    /// snapshots with the same value serve the same values.
    At(u64),
    /// The rollout was rolled back: every scheduled flag is off for everyone, for good.
    RolledBack,
}

/// What a driver has published that evaluations depend on besides the flags: the live
/// rollout's weight and the schedules' clock. Copied into every evaluation (two words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Live {
    /// The live rollout's weight in basis points; `None` until a driver publishes one.
    pub rollout_bp: Option<u32>,
    /// Where scheduled flags stand.
    pub schedule: ScheduleClock,
}

impl From<Option<u32>> for Live {
    /// A live rollout weight alone, schedules not started: what a caller that knows nothing
    /// of schedules (a followed or fixed flag) passes.
    fn from(rollout_bp: Option<u32>) -> Live {
        Live {
            rollout_bp,
            schedule: ScheduleClock::NotStarted,
        }
    }
}

/// A metadata value: OFREP allows booleans, strings and numbers only.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    /// A boolean.
    Bool(bool),
    /// A string.
    String(String),
    /// An integer.
    Integer(i64),
    /// A finite float.
    Float(f64),
}

impl MetadataValue {
    /// The value as JSON.
    fn to_json(&self) -> serde_json::Value {
        match self {
            MetadataValue::Bool(b) => serde_json::Value::Bool(*b),
            MetadataValue::String(s) => serde_json::Value::String(s.clone()),
            MetadataValue::Integer(i) => serde_json::Value::from(*i),
            MetadataValue::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
            }
        }
    }
}

/// A validated flag, built only by [`raw::validate`] (or a flags file), so that every flag
/// in a [`FlagSet`] can be evaluated without a runtime error other than a missing key.
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    /// The flag's key, which clients name in `/ofrep/v1/evaluate/flags/{key}`.
    key: String,
    /// `key` as a JSON string, rendered once.
    key_json: Box<str>,
    /// The kind of all the variants' values.
    kind: FlagKind,
    /// The variants, sorted by name.
    variants: Vec<Variant>,
    /// Index in `variants` of the variant served outside the rollout.
    default_variant: usize,
    /// Index in `variants` of the variant served inside the rollout; `None` for a static
    /// flag.
    on_variant: Option<usize>,
    /// Where the share of users inside comes from.
    rollout: Rollout,
    /// The bucketing salt: the flag key unless configured. Two flags with the same salt put
    /// the same users inside at the same weight; a flag salted with the deployment id agrees
    /// with the proxy's sticky routing.
    salt: String,
    /// `false` turns the flag off: evaluations answer `DISABLED` without a value.
    enabled: bool,
    /// Metadata returned with every evaluation (owner, ticket…), sorted by key.
    metadata: BTreeMap<String, MetadataValue>,
    /// `metadata` as a JSON object, rendered once.
    metadata_json: Box<str>,
}

impl Flag {
    /// The flag's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The flag's key as a JSON string.
    pub fn key_json(&self) -> &str {
        &self.key_json
    }

    /// The kind of the flag's values.
    pub fn kind(&self) -> FlagKind {
        self.kind
    }

    /// The variants, sorted by name.
    pub fn variants(&self) -> &[Variant] {
        &self.variants
    }

    /// The variant served outside the rollout.
    pub fn default_variant(&self) -> &Variant {
        &self.variants[self.default_variant]
    }

    /// The variant served inside the rollout, if the flag has a rollout.
    pub fn on_variant(&self) -> Option<&Variant> {
        self.on_variant.map(|i| &self.variants[i])
    }

    /// Where the flag's share of users comes from.
    pub fn rollout(&self) -> &Rollout {
        &self.rollout
    }

    /// The share of users inside the flag's rollout given what a driver published, in basis
    /// points (at most 10,000); `None` for a static flag and for a followed or scheduled
    /// flag before its driver published anything (it serves the default variant, `DEFAULT`).
    pub fn weight_bp(&self, live: Live) -> Option<u32> {
        // A flag without an `on_variant` has no rollout, whatever its `Rollout` says.
        self.on_variant?;
        match &self.rollout {
            Rollout::Static => None,
            Rollout::FollowRollout => live.rollout_bp,
            Rollout::Fixed(bp) => Some(*bp),
            Rollout::Schedule(s) => match live.schedule {
                ScheduleClock::NotStarted => None,
                ScheduleClock::At(ms) => Some(s.weight_at(ms)),
                ScheduleClock::RolledBack => Some(0),
            },
        }
        .map(|bp| bp.min(crate::BASIS_POINTS))
    }

    /// The bucketing salt.
    pub fn salt(&self) -> &str {
        &self.salt
    }

    /// Whether the flag is enabled.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The flag's metadata.
    pub fn metadata(&self) -> &BTreeMap<String, MetadataValue> {
        &self.metadata
    }

    /// The flag's metadata as a JSON object.
    pub fn metadata_json(&self) -> &str {
        &self.metadata_json
    }

    /// Evaluates the flag for a user, given what a driver published ([`Live`]; an
    /// `Option<u32>` converts to it for the live rollout's weight alone, `None` while no
    /// weight has been published).
    ///
    /// `targeting_key` is needed only for a fractional evaluation (a weight strictly between
    /// 0 and 100 %); an empty key counts as missing, because it would put every anonymous
    /// user in the same bucket.
    pub fn evaluate(
        &self,
        live: impl Into<Live>,
        targeting_key: Option<&str>,
    ) -> Result<Resolution<'_>, EvalError> {
        let live = live.into();
        if !self.enabled {
            return Ok(Resolution {
                flag: self,
                variant: None,
                reason: Reason::Disabled,
            });
        }
        let default = &self.variants[self.default_variant];
        let on = match self.on_variant {
            Some(i) => &self.variants[i],
            None => {
                return Ok(Resolution {
                    flag: self,
                    variant: Some(default),
                    reason: Reason::Static,
                })
            }
        };
        let weight = match self.rollout {
            Rollout::Static => None,
            _ => self.weight_bp(live),
        };
        let Some(weight) = weight else {
            // Only a followed rollout without a published weight, or a schedule that has not
            // started, gets here.
            return Ok(Resolution {
                flag: self,
                variant: Some(default),
                reason: Reason::Default,
            });
        };
        // The one placement function the proxy's flag mode shares, so that the cohort a
        // request is counted in is the variant this evaluation serves.
        let (variant, reason) = match crate::rollout_membership(
            self.salt.as_bytes(),
            weight,
            targeting_key.map(str::as_bytes),
        ) {
            Membership::Nobody => (default, Reason::Static),
            Membership::Everybody => (on, Reason::Static),
            Membership::Inside => (on, Reason::TargetingMatch),
            Membership::Outside => (default, Reason::TargetingMatch),
            Membership::KeyMissing => {
                return Err(EvalError::TargetingKeyMissing {
                    weight_bp: weight.min(crate::BASIS_POINTS),
                })
            }
        };
        Ok(Resolution {
            flag: self,
            variant: Some(variant),
            reason,
        })
    }

    /// Feeds everything that decides evaluations into `h` (for the configuration hash).
    fn hash_into(&self, h: &mut impl Hasher) {
        self.key.hash(h);
        self.kind.hash(h);
        for v in &self.variants {
            v.name.hash(h);
            v.value_json.hash(h);
        }
        self.default_variant.hash(h);
        self.on_variant.hash(h);
        self.rollout.hash(h);
        self.salt.hash(h);
        self.enabled.hash(h);
        self.metadata_json.hash(h);
    }
}

/// Why a flag was resolved to what it was: the OpenFeature resolution reasons this server
/// uses (see the module documentation for when each applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No targeting key was needed: a static flag, or a rollout at 0 % or 100 %.
    Static,
    /// A followed rollout with no published weight: the default variant.
    Default,
    /// The fractional bucketing placed the user inside or outside the rollout.
    TargetingMatch,
    /// The flag is disabled: no value, the client uses its code default.
    Disabled,
}

impl Reason {
    /// The reason as OFREP spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::Default => "DEFAULT",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Disabled => "DISABLED",
        }
    }
}

/// The result of one evaluation, borrowed from the snapshot it came from (nothing is
/// copied, so an evaluation allocates nothing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolution<'a> {
    /// The flag evaluated.
    pub flag: &'a Flag,
    /// The variant served; `None` when the flag is disabled (the client's default applies).
    pub variant: Option<&'a Variant>,
    /// Why.
    pub reason: Reason,
}

/// Why a flag could not be evaluated for a request; each maps to an OFREP error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// No flag has this key (`FLAG_NOT_FOUND`, HTTP 404).
    #[error("flag `{0}` does not exist")]
    FlagNotFound(String),
    /// The flag is rolled out to part of the users and the context has no targeting key to
    /// place this user with (`TARGETING_KEY_MISSING`, HTTP 400).
    #[error(
        "the flag is rolled out to {}% of users; the evaluation context needs a non-empty string `targetingKey` to place this user",
        percent(*weight_bp)
    )]
    TargetingKeyMissing {
        /// The weight that made the evaluation fractional, in basis points.
        weight_bp: u32,
    },
}

impl EvalError {
    /// The OFREP error code.
    pub fn code(&self) -> &'static str {
        match self {
            EvalError::FlagNotFound(_) => "FLAG_NOT_FOUND",
            EvalError::TargetingKeyMissing { .. } => "TARGETING_KEY_MISSING",
        }
    }
}

/// Formats basis points as a percentage without trailing zeros ("12.5", "0.01", "100").
pub fn percent(bp: u32) -> String {
    let whole = bp / 100;
    let frac = bp % 100;
    match frac {
        0 => whole.to_string(),
        f if f % 10 == 0 => format!("{whole}.{}", f / 10),
        f => format!("{whole}.{f:02}"),
    }
}

/// A validated set of flags, sorted by key, with a hash of everything that decides their
/// evaluations (part of the OFREP ETag, so that a changed file invalidates cached results
/// even when the version counter restarts with the process).
#[derive(Debug, Clone, PartialEq)]
pub struct FlagSet {
    /// The flags, sorted by key (lookups are binary searches: no hashing of client input).
    flags: Vec<Flag>,
    /// A 64-bit hash of the whole configuration.
    hash: u64,
}

impl FlagSet {
    /// Builds a set from validated flags; `flags` must have distinct keys (a map guarantees
    /// it in [`raw::validate`]).
    fn new(mut flags: Vec<Flag>) -> Self {
        flags.sort_by(|a, b| a.key.cmp(&b.key));
        flags.dedup_by(|a, b| a.key == b.key);
        // DefaultHasher::new() is SipHash with fixed keys: the same configuration hashes the
        // same in every process built with the same toolchain, which is all an ETag needs.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        flags.len().hash(&mut h);
        for f in &flags {
            f.hash_into(&mut h);
        }
        Self {
            flags,
            hash: h.finish(),
        }
    }

    /// A set with no flags (every evaluation is `FLAG_NOT_FOUND`).
    pub fn empty() -> Self {
        Self::new(Vec::new())
    }

    /// The flags, sorted by key.
    pub fn flags(&self) -> &[Flag] {
        &self.flags
    }

    /// The flag with this key.
    pub fn get(&self, key: &str) -> Option<&Flag> {
        self.flags
            .binary_search_by(|f| f.key.as_str().cmp(key))
            .ok()
            .map(|i| &self.flags[i])
    }

    /// The hash of the configuration.
    pub fn config_hash(&self) -> u64 {
        self.hash
    }

    /// Whether any flag follows the live rollout (a driver that finds none need not publish
    /// weights).
    pub fn follows_rollout(&self) -> bool {
        self.flags
            .iter()
            .any(|f| f.rollout == Rollout::FollowRollout)
    }

    /// Whether any flag has its own schedule (a driver that finds none need not publish the
    /// time since the rollout started).
    pub fn has_schedules(&self) -> bool {
        self.schedules().next().is_some()
    }

    /// The schedules of the enabled flags: only their steps can change a served value, so
    /// only they move the published clock (and with it the version and the bulk ETag). A
    /// disabled flag's statistics read its schedule directly.
    fn schedules(&self) -> impl Iterator<Item = &Schedule> {
        self.flags.iter().filter_map(|f| match &f.rollout {
            Rollout::Schedule(s) if f.on_variant.is_some() && f.enabled => Some(s),
            _ => None,
        })
    }

    /// The time since the rollout started, quantized down to the last change point of any
    /// schedule at or before `elapsed` (0 when there is none): every flag serves the same
    /// value at `elapsed` as at the quantized time, and two times with the same epoch serve
    /// the same values. Pure, so a simulator and a live driver quantize alike.
    pub fn schedule_epoch(&self, elapsed: std::time::Duration) -> std::time::Duration {
        let ms = duration_ms(elapsed);
        let epoch = self
            .schedules()
            .flat_map(Schedule::change_points)
            .filter(|&t| t <= ms)
            .max()
            .unwrap_or(0);
        std::time::Duration::from_millis(epoch)
    }

    /// The next time since the rollout started, strictly after `elapsed`, at which a
    /// scheduled flag's share changes; `None` when no schedule changes any more. A driver
    /// publishes the time then (and need not before), so that it wakes only when a served
    /// value can change.
    pub fn next_schedule_change(
        &self,
        elapsed: std::time::Duration,
    ) -> Option<std::time::Duration> {
        let ms = duration_ms(elapsed);
        self.schedules()
            .flat_map(Schedule::change_points)
            .filter(|&t| t > ms)
            .min()
            .map(std::time::Duration::from_millis)
    }
}

/// A duration in whole milliseconds, saturating (no schedule is 584 million years long).
fn duration_ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What the server evaluates against at one instant: the flags, the live rollout's weight and
/// the version. Replaced whole on every change, so a request sees one consistent state.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The flags.
    flags: Arc<FlagSet>,
    /// The live rollout's weight in basis points; `None` until a driver publishes one.
    rollout_bp: Option<u32>,
    /// Where scheduled flags stand: not started, a quantized time, or rolled back.
    schedule: ScheduleClock,
    /// Bumped on every change of weight, schedule clock or flags.
    version: u64,
}

impl Snapshot {
    /// The flags.
    pub fn flags(&self) -> &FlagSet {
        &self.flags
    }

    /// The live rollout's weight in basis points, if published.
    pub fn rollout_weight_bp(&self) -> Option<u32> {
        self.rollout_bp
    }

    /// Where scheduled flags stand.
    pub fn schedule_clock(&self) -> ScheduleClock {
        self.schedule
    }

    /// Everything published that evaluations depend on besides the flags.
    pub fn live(&self) -> Live {
        Live {
            rollout_bp: self.rollout_bp,
            schedule: self.schedule,
        }
    }

    /// The configuration version: bumped on every change of weight, schedule clock or flags.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Evaluates the flag `key` for a user.
    pub fn evaluate(
        &self,
        key: &str,
        targeting_key: Option<&str>,
    ) -> Result<Resolution<'_>, EvalError> {
        match self.flags.get(key) {
            Some(flag) => flag.evaluate(self.live(), targeting_key),
            None => Err(EvalError::FlagNotFound(key.to_string())),
        }
    }
}

/// Why a weight was refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum WeightError {
    /// Basis points above 10,000 (100 %).
    #[error("weight {0} bp is out of range (0 to 10000 basis points)")]
    BasisPointsOutOfRange(u32),
    /// A percentage outside 0–100, not finite, or finer than 0.01 %.
    #[error("weight {0}% is not a percentage between 0 and 100 in steps of 0.01")]
    BadPercent(f64),
}

/// Converts a percentage to basis points; `None` outside 0–100, when not finite, or when it
/// is not a multiple of 0.01 (the resolution of [`crate::in_rollout`] and of the proxy).
pub fn percent_to_bp(p: f64) -> Option<u32> {
    if !p.is_finite() || !(0.0..=100.0).contains(&p) {
        return None;
    }
    let bp = (p * 100.0).round();
    if (bp - p * 100.0).abs() > 1e-6 {
        return None;
    }
    Some(bp as u32)
}

/// The flags and the live rollout's weight, shared by the server's requests and the driver
/// that moves the weight.
///
/// Reads are lock-free (`arc-swap`): a request loads the current [`Snapshot`] and evaluates
/// against it; a writer builds a new snapshot and swaps it in.
#[derive(Debug)]
pub struct FlagState {
    /// The current snapshot.
    current: ArcSwap<Snapshot>,
}

impl FlagState {
    /// A state serving `flags`, with no rollout weight published yet (version 1).
    pub fn new(flags: FlagSet) -> Self {
        Self {
            current: ArcSwap::from_pointee(Snapshot {
                flags: Arc::new(flags),
                rollout_bp: None,
                schedule: ScheduleClock::NotStarted,
                version: 1,
            }),
        }
    }

    /// The current snapshot (one atomic load and a reference count; no lock).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The configuration version.
    pub fn version(&self) -> u64 {
        self.current.load().version
    }

    /// The live rollout's weight in basis points, if published.
    pub fn rollout_weight_bp(&self) -> Option<u32> {
        self.current.load().rollout_bp
    }

    /// Publishes the live rollout's weight in basis points (0–10,000). Flags that follow the
    /// rollout use it from the next request on. Setting the weight it already has changes
    /// nothing (the version stays, so clients' cached bulk results stay valid), and after a
    /// rollback ([`FlagState::roll_back`]) only 0 is taken: a rollback is final.
    pub fn set_rollout_weight_bp(&self, bp: u32) -> Result<(), WeightError> {
        if bp > crate::BASIS_POINTS {
            return Err(WeightError::BasisPointsOutOfRange(bp));
        }
        self.update(|s| {
            if s.schedule == ScheduleClock::RolledBack && bp > 0 {
                return None;
            }
            (s.rollout_bp != Some(bp)).then(|| Snapshot {
                rollout_bp: Some(bp),
                version: s.version + 1,
                ..s.clone()
            })
        });
        Ok(())
    }

    /// Publishes the live rollout's weight as a percentage (steps of 0.01).
    pub fn set_rollout_weight_percent(&self, p: f64) -> Result<(), WeightError> {
        let bp = percent_to_bp(p).ok_or(WeightError::BadPercent(p))?;
        self.set_rollout_weight_bp(bp)
    }

    /// Withdraws the live rollout's weight: flags that follow it serve their default variant
    /// with reason `DEFAULT`, as before any weight was published.
    pub fn clear_rollout_weight(&self) {
        self.update(|s| {
            s.rollout_bp.is_some().then(|| Snapshot {
                rollout_bp: None,
                version: s.version + 1,
                ..s.clone()
            })
        });
    }

    /// Where scheduled flags stand.
    pub fn schedule_clock(&self) -> ScheduleClock {
        self.current.load().schedule
    }

    /// Publishes the time since the rollout started, for flags with their own schedule. The
    /// time is quantized ([`FlagSet::schedule_epoch`]): the version changes only when a
    /// step that changes a share is crossed, so clients' cached bulk results stay valid in
    /// between, and publishing often costs nothing. After a rollback nothing changes: a
    /// rolled-back schedule stays off. The clock never goes back (a wall clock stepped
    /// backwards, a resume on a host that is behind): a user a schedule let in stays in.
    pub fn set_schedule_elapsed(&self, elapsed: std::time::Duration) {
        self.update(|s| {
            let epoch = duration_ms(s.flags.schedule_epoch(elapsed));
            match s.schedule {
                ScheduleClock::RolledBack => return None,
                ScheduleClock::At(now) if epoch <= now => return None,
                ScheduleClock::At(_) | ScheduleClock::NotStarted => {}
            }
            let at = ScheduleClock::At(epoch);
            (s.schedule != at).then(|| Snapshot {
                schedule: at,
                version: s.version + 1,
                ..s.clone()
            })
        });
    }

    /// Rolls back at once, in one new snapshot: the live rollout's weight goes to 0 and
    /// every followed and scheduled flag is off for everyone, for good (later weights above
    /// 0 and later clock times are ignored).
    pub fn roll_back(&self) {
        self.update(|s| {
            (s.rollout_bp != Some(0) || s.schedule != ScheduleClock::RolledBack).then(|| Snapshot {
                rollout_bp: Some(0),
                schedule: ScheduleClock::RolledBack,
                version: s.version + 1,
                ..s.clone()
            })
        });
    }

    /// Replaces the flags (a reloaded file or plan); the weight is kept.
    pub fn replace_flags(&self, flags: FlagSet) {
        let flags = Arc::new(flags);
        self.update(|s| {
            Some(Snapshot {
                flags: flags.clone(),
                version: s.version + 1,
                ..s.clone()
            })
        });
    }

    /// A handle through which a driver moves the live rollout's weight.
    pub fn weight_handle(self: &Arc<Self>) -> WeightHandle {
        WeightHandle {
            state: self.clone(),
        }
    }

    /// Swaps in the snapshot `change` builds from the current one, retrying if another
    /// writer got in first; `None` means "no change".
    fn update(&self, change: impl Fn(&Snapshot) -> Option<Snapshot>) {
        self.current.rcu(|current| match change(current) {
            Some(next) => Arc::new(next),
            None => current.clone(),
        });
    }
}

/// The driver's side of a [`FlagState`]: it moves the live rollout's weight (ramp up, roll
/// back) and the schedules' clock, and nothing else. Cheap to clone.
#[derive(Debug, Clone)]
pub struct WeightHandle {
    /// The state whose weight this handle moves.
    state: Arc<FlagState>,
}

impl WeightHandle {
    /// Publishes the weight in basis points (0–10,000).
    pub fn set_bp(&self, bp: u32) -> Result<(), WeightError> {
        self.state.set_rollout_weight_bp(bp)
    }

    /// Publishes the weight as a percentage (0–100, steps of 0.01).
    pub fn set_percent(&self, p: f64) -> Result<(), WeightError> {
        self.state.set_rollout_weight_percent(p)
    }

    /// Rolls back: weight 0, every flag that follows the rollout or has its own schedule is
    /// off for everyone, in one snapshot (one version change).
    pub fn rollback(&self) {
        self.state.roll_back();
    }

    /// Publishes the time since the rollout started (see
    /// [`FlagState::set_schedule_elapsed`]).
    pub fn set_schedule_elapsed(&self, elapsed: std::time::Duration) {
        self.state.set_schedule_elapsed(elapsed);
    }

    /// The next time since the rollout started, after `elapsed`, at which a scheduled flag
    /// changes (see [`FlagSet::next_schedule_change`]).
    pub fn next_schedule_change(
        &self,
        elapsed: std::time::Duration,
    ) -> Option<std::time::Duration> {
        self.state.snapshot().flags().next_schedule_change(elapsed)
    }

    /// Whether the flags include any with its own schedule.
    pub fn has_schedules(&self) -> bool {
        self.state.snapshot().flags().has_schedules()
    }

    /// Withdraws the weight (see [`FlagState::clear_rollout_weight`]).
    pub fn clear(&self) {
        self.state.clear_rollout_weight();
    }

    /// The weight currently published, in basis points.
    pub fn get_bp(&self) -> Option<u32> {
        self.state.rollout_weight_bp()
    }
}

/// Renders a string as a JSON string literal.
fn json_string(s: &str) -> Box<str> {
    serde_json::Value::String(s.to_string())
        .to_string()
        .into_boxed_str()
}

/// Renders metadata as a JSON object, keys sorted.
fn metadata_json(metadata: &BTreeMap<String, MetadataValue>) -> Box<str> {
    let map: serde_json::Map<String, serde_json::Value> = metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.to_json()))
        .collect();
    serde_json::Value::Object(map).to_string().into_boxed_str()
}

#[cfg(test)]
mod tests;
