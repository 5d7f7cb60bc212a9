//! Engine snapshots: the engine's whole state (everything but the shared plan) as bytes, so
//! that a live driver can journal it at stage starts and checkpoints and a resume replays
//! only the inputs after it instead of every input of the run.
//!
//! The inputs remain the truth: a snapshot is an optimisation that must never change a
//! decision. Restoring one yields an engine whose future outputs are byte-identical to those
//! of the engine that was snapshotted, or an error, never an approximate engine. A snapshot
//! carries [`SNAPSHOT_VERSION`] and a fingerprint of the plan's text; one of another version
//! or another plan, one that cannot be read, or one whose state does not fit the plan is
//! refused, and the driver falls back to the full replay.
//!
//! The format is JSON with serde_json's `float_roundtrip` feature, so every `f64` reads back
//! bit for bit. A compact binary format (postcard, bincode) was not chosen because the
//! summary types the engine holds use `skip_serializing_if` and `flatten`, which formats that
//! do not describe themselves cannot read back, so it would need a parallel set of types; and
//! JSON was measured to be small enough: about 200 KB for the staging plan, whose resume from
//! it is over 30 times faster than the full replay (docs/benchmarks.md, "Resume from a
//! snapshot"). JSON cannot hold a non-finite number (it writes `null`), so
//! [`Snapshot::encode`] reads its own bytes back and refuses a snapshot that does not come
//! back equal: such a snapshot is simply not written.

use super::{coverage, queries, Engine, Pair, State};
use crate::plan::Plan;
use crate::summary::{
    ApprovalSummary, RollbackTiming, StageSummary, TestResult, TimelineEvent, Totals,
};
use crate::units::{PlanTime, Weight};
use ramp_stats::verdict::{SequentialCountTest, SequentialLatencyTest};
use ramp_stats::{CohortStats, SlidingWindow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// The snapshot format this build writes and reads. Bump it whenever the engine's state (any
/// field of `Engine` or of a type it holds) changes shape or meaning, so that an older
/// snapshot is ignored (and the run replayed in full) rather than misread.
pub const SNAPSHOT_VERSION: u32 = 1;

/// The fingerprint of a plan's text (FNV-1a, 64 bits, as 16 hexadecimal digits): a snapshot
/// is restored only into an engine of the very plan it was taken of.
pub fn plan_fingerprint(plan_text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in plan_text.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The engine's whole state with the format version and the plan's fingerprint: what a
/// driver journals so that a resume need not replay the inputs before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The format ([`SNAPSHOT_VERSION`] when written by this build).
    pub version: u32,
    /// [`plan_fingerprint`] of the plan's text.
    pub plan: String,
    /// Plan time of the last input the engine had seen, ms (also inside `state`; here so
    /// that a reader can say where the snapshot stands without reading the state).
    pub now_ms: u64,
    /// Numbers the driver keeps beside the engine and restores with it (a live driver: where
    /// its stream of slots ended), empty from [`Engine::snapshot`]. Here rather than in a
    /// wrapper so that they share the snapshot's version and its exactness check.
    #[serde(default)]
    pub driver: BTreeMap<String, u64>,
    /// The engine's fields.
    state: EngineState,
}

/// Only what a reader needs to decide whether to read the rest: a snapshot of another
/// version may have a state this build cannot read.
#[derive(Deserialize)]
struct Header {
    /// The format version.
    version: u32,
}

/// Why a snapshot was not written or not restored. The driver says it in a progress line
/// and replays every input instead; none of these is ever a wrong state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// The bytes are not a snapshot (garbage, truncated, or a state of another shape).
    Unreadable(String),
    /// The snapshot was written in another format version.
    Version {
        /// The version found.
        found: u32,
    },
    /// The snapshot was taken of another plan.
    OtherPlan,
    /// The snapshot's state does not fit the plan (a stage or gate that the plan lacks).
    Inconsistent(&'static str),
    /// The state would not read back equal (it holds a number JSON cannot carry), so it is
    /// not written.
    NotExact,
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Unreadable(e) => write!(f, "it cannot be read ({e})"),
            SnapshotError::Version { found } => write!(
                f,
                "it is of format version {found}, and this build reads version {SNAPSHOT_VERSION}"
            ),
            SnapshotError::OtherPlan => write!(f, "it was taken of another plan"),
            SnapshotError::Inconsistent(what) => write!(f, "it does not fit the plan ({what})"),
            SnapshotError::NotExact => {
                write!(
                    f,
                    "the engine's state holds a number JSON cannot carry exactly"
                )
            }
        }
    }
}

impl std::error::Error for SnapshotError {}

/// Every field of [`Engine`] but the plan, under the same names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct EngineState {
    state: State,
    weight: Weight,
    windows: SlidingWindow,
    stage_started: PlanTime,
    stage_data: Pair,
    interval_data: Pair,
    last_checkpoint: PlanTime,
    baseline_stable: CohortStats,
    baseline_ms: u64,
    baseline_requests: u64,
    worst: Vec<Option<(f64, Option<f64>)>>,
    now: PlanTime,
    stages: Vec<StageSummary>,
    timeline: Vec<TimelineEvent>,
    rollback: Option<RollbackTiming>,
    totals: Totals,
    seq_errors: Option<SequentialCountTest>,
    seq_latency: Option<SequentialLatencyTest>,
    relative: Vec<TestResult>,
    paused: Option<String>,
    approvals: Vec<(usize, String)>,
    approval_records: Vec<ApprovalSummary>,
    start_requested: bool,
    announced_wait: Option<usize>,
    coverage: coverage::Coverage,
    queries: queries::Queries,
}

impl Snapshot {
    /// The snapshot as bytes, checked to read back equal to itself.
    pub fn encode(&self) -> Result<Vec<u8>, SnapshotError> {
        let bytes =
            serde_json::to_vec(self).map_err(|e| SnapshotError::Unreadable(e.to_string()))?;
        match Snapshot::decode(&bytes) {
            Ok(back) if back == *self => Ok(bytes),
            _ => Err(SnapshotError::NotExact),
        }
    }

    /// A snapshot read from bytes: its version is checked before its state is read.
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
        let unreadable = |e: serde_json::Error| SnapshotError::Unreadable(e.to_string());
        let header: Header = serde_json::from_slice(bytes).map_err(unreadable)?;
        if header.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version {
                found: header.version,
            });
        }
        serde_json::from_slice(bytes).map_err(unreadable)
    }
}

impl Engine {
    /// The engine's state as a snapshot of the plan whose text is `plan_text` (the text the
    /// plan was parsed from, which the restoring side fingerprints the same way).
    pub fn snapshot(&self, plan_text: &str) -> Snapshot {
        // Destructured field by field, so that a field added to `Engine` and not to the
        // snapshot does not compile.
        let Engine {
            plan: _,
            state,
            weight,
            windows,
            stage_started,
            stage_data,
            interval_data,
            last_checkpoint,
            baseline_stable,
            baseline_ms,
            baseline_requests,
            worst,
            now,
            stages,
            timeline,
            rollback,
            totals,
            seq_errors,
            seq_latency,
            relative,
            paused,
            approvals,
            approval_records,
            start_requested,
            announced_wait,
            coverage,
            queries,
        } = self.clone();
        Snapshot {
            version: SNAPSHOT_VERSION,
            plan: plan_fingerprint(plan_text),
            now_ms: now.0,
            driver: BTreeMap::new(),
            state: EngineState {
                state,
                weight,
                windows,
                stage_started,
                stage_data,
                interval_data,
                last_checkpoint,
                baseline_stable,
                baseline_ms,
                baseline_requests,
                // Solved now: a restored engine reads the same bounds.
                worst: worst
                    .into_iter()
                    .map(|w| w.map(|(v, c)| (v, c.value())))
                    .collect(),
                now,
                stages,
                timeline,
                rollback,
                totals,
                seq_errors,
                seq_latency,
                relative,
                paused,
                approvals,
                approval_records,
                start_requested,
                announced_wait,
                coverage,
                queries,
            },
        }
    }

    /// The engine a snapshot was taken of, given back its plan (`plan_text` is the plan's
    /// text, whose fingerprint must match). Its future outputs are byte-identical to those
    /// of the engine snapshotted; a snapshot of another version or plan, or whose state does
    /// not fit the plan, is refused.
    pub fn restore(
        plan: Arc<Plan>,
        plan_text: &str,
        snapshot: Snapshot,
    ) -> Result<Engine, SnapshotError> {
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version {
                found: snapshot.version,
            });
        }
        if snapshot.plan != plan_fingerprint(plan_text) {
            return Err(SnapshotError::OtherPlan);
        }
        let s = snapshot.state;
        fits(&plan, &s)?;
        Ok(Engine {
            plan,
            state: s.state,
            weight: s.weight,
            windows: s.windows,
            stage_started: s.stage_started,
            stage_data: s.stage_data,
            interval_data: s.interval_data,
            last_checkpoint: s.last_checkpoint,
            baseline_stable: s.baseline_stable,
            baseline_ms: s.baseline_ms,
            baseline_requests: s.baseline_requests,
            worst: s
                .worst
                .into_iter()
                .map(|w| w.map(|(v, c)| (v, super::gates::Conservative::Known(c))))
                .collect(),
            now: s.now,
            stages: s.stages,
            timeline: s.timeline,
            rollback: s.rollback,
            totals: s.totals,
            seq_errors: s.seq_errors,
            seq_latency: s.seq_latency,
            relative: s.relative,
            paused: s.paused,
            approvals: s.approvals,
            approval_records: s.approval_records,
            start_requested: s.start_requested,
            announced_wait: s.announced_wait,
            coverage: s.coverage,
            queries: s.queries,
        })
    }
}

/// Checks what the engine indexes by (stages, gates, windows) against the plan, so that a
/// damaged snapshot that still parses cannot make the engine panic: it is refused instead.
fn fits(plan: &Arc<Plan>, s: &EngineState) -> Result<(), SnapshotError> {
    let fresh = Engine::new(Arc::clone(plan));
    if !s.windows.fits(&fresh.windows) {
        return Err(SnapshotError::Inconsistent("its sliding windows"));
    }
    if s.stages.len() > plan.stages.len() {
        return Err(SnapshotError::Inconsistent("more stages than the plan has"));
    }
    if let State::Running { index } = s.state {
        let Some(stage) = plan.stages.get(index) else {
            return Err(SnapshotError::Inconsistent(
                "a running stage the plan lacks",
            ));
        };
        if s.worst.len() != stage.gates.len() || s.stages.is_empty() {
            return Err(SnapshotError::Inconsistent("the running stage's gates"));
        }
    }
    let queries = s.queries.results().len();
    if queries != 0 && queries != plan.queries.len() {
        return Err(SnapshotError::Inconsistent("its query gates"));
    }
    if s.approvals.iter().any(|(i, _)| *i >= plan.stages.len()) {
        return Err(SnapshotError::Inconsistent(
            "an approval of a stage the plan lacks",
        ));
    }
    Ok(())
}
