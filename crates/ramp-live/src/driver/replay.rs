//! Resuming is replaying, bounded by snapshots.
//!
//! The journaled inputs are the truth: feeding them in order to a fresh engine rebuilds
//! exactly the state the engine had. To keep a resume short on a long run, the driver also
//! journals a snapshot of the engine's state at every stage start and checkpoint
//! ([`Driver::snapshot_after`]), recording the last input it covers; a resume restores the
//! latest snapshot and replays only the inputs after it ([`replay`]). A snapshot that cannot
//! be used (another format version or plan, unreadable, not matching its input) is ignored,
//! with a line saying why, and every input is replayed instead; one that cannot be written
//! is reported and the run goes on. A snapshot never decides anything.

use super::start::started_at;
use super::{Driver, LiveError};
use crate::seams::{JournalStore, MetricsSource, Router};
use crate::source::Counters;
use ramp_core::engine::{Action, Engine, Input, Snapshot, SnapshotError, State};
use ramp_core::plan::Plan;
use ramp_core::PlanTime;
use ramp_store::RunRecord;
use std::sync::Arc;

/// The key of [`Snapshot::driver`] holding where the stream of slots ended (ms of plan
/// time) as of the snapshot's last input, which replay would otherwise derive from the
/// inputs before it.
const LAST_END_MS: &str = "last_end_ms";

/// The engine rebuilt from the journal, and where the run's stream of slots stands.
pub(super) struct Replayed {
    /// The engine, exactly as it was when the controller stopped.
    pub(super) engine: Engine,
    /// Plan time the last slot ended at.
    pub(super) last_end_ms: u64,
    /// How many inputs were replayed (after the snapshot, when one was restored).
    pub(super) inputs: usize,
    /// Plan time (ms) the first stage started at, the origin of the flags' schedules.
    pub(super) rollout_start_ms: Option<u64>,
    /// The metrics cursor of the last journaled reading.
    pub(super) cursor: Option<Counters>,
    /// The sequence number of the last journaled input (0 for a new run).
    pub(super) last_seq: u64,
    /// Where the restored snapshot stood ("stage 3's checkpoint at input 812"), when the
    /// replay started from one.
    pub(super) snapshot: Option<String>,
    /// Why the latest snapshot was not used, when there was one: said in a progress line.
    pub(super) ignored: Option<String>,
    /// The last input replayed and the decisions the engine made on it (none when no input
    /// was replayed), so that the resume journals those a controller that died between the
    /// input and its decisions did not ([`journal_lost_decisions`]).
    pub(super) last_decisions: Option<(u64, PlanTime, Vec<Action>)>,
}

/// A snapshot restored, with what replay needs to go on from it.
struct Restored {
    /// The engine as of the snapshot's last input.
    engine: Engine,
    /// That input's sequence number.
    after_seq: u64,
    /// Where the stream of slots ended then.
    last_end_ms: u64,
    /// Where the snapshot stood, for the resume line.
    label: String,
}

/// Rebuilds the run's engine: from its latest usable snapshot and the inputs after it, or
/// from every journaled input when there is none (or `use_snapshot` is false). `plan_text`
/// is the run's plan as journaled, whose fingerprint a snapshot must carry.
pub(super) fn replay<J: JournalStore + ?Sized>(
    store: &J,
    plan: &Arc<Plan>,
    plan_text: &str,
    run_id: i64,
    journal_path: &str,
    use_snapshot: bool,
) -> Result<Replayed, LiveError> {
    let corrupt = |seq: u64, message: String| LiveError::Corrupt {
        journal: journal_path.to_string(),
        run: run_id,
        seq,
        message,
    };
    let mut ignored = None;
    let restored = if use_snapshot {
        match restore(store, plan, plan_text, run_id) {
            Ok(r) => r,
            Err(why) => {
                ignored = Some(why);
                None
            }
        }
    } else {
        None
    };
    let (mut engine, after_seq, mut last_end_ms, snapshot) = match restored {
        Some(r) => (r.engine, r.after_seq, r.last_end_ms, Some(r.label)),
        None => (Engine::new(Arc::clone(plan)), 0, 0, None),
    };
    let inputs = store.inputs_after(run_id, after_seq)?;
    let mut last_decisions = None;
    for rec in &inputs {
        let input: Input =
            serde_json::from_str(&rec.body).map_err(|e| corrupt(rec.seq, e.to_string()))?;
        match &input {
            Input::Tick(slot) => last_end_ms = slot.end_ms,
            Input::Gap { end_ms, .. } => last_end_ms = *end_ms,
            // The first slot starts where the rollout started, not at the checks before it.
            Input::Start => last_end_ms = rec.plan_ms,
            _ => {}
        }
        let actions = engine.step(PlanTime(rec.plan_ms), input);
        last_decisions = Some((rec.seq, PlanTime(rec.plan_ms), actions));
    }
    // The flags' schedules count from the first stage's start (not from `Start`: the first
    // stage may wait for approvals, and no flag should ramp before any stage runs).
    let rollout_start_ms = engine
        .summary()
        .stages
        .first()
        .map(|st| (st.started_s * 1000.0).round() as u64);
    let last_seq = inputs.last().map_or(after_seq, |r| r.seq);
    // A cursor journaled as `null` was cleared (the time before it was unobserved).
    let cursor = match store.cursor(run_id)? {
        Some(text) => serde_json::from_str::<Option<Counters>>(&text)
            .map_err(|e| corrupt(last_seq, format!("the proxy cursor is unreadable: {e}")))?,
        None => None,
    };
    Ok(Replayed {
        engine,
        last_end_ms,
        inputs: inputs.len(),
        rollout_start_ms,
        cursor,
        last_seq,
        snapshot,
        ignored,
        last_decisions,
    })
}

/// Journals the decisions of the run's last input that its events lack: a controller that
/// died after journaling an input and before journaling what the engine decided on it (or
/// part-way through) left them out, and the timeline and report are built from the events.
/// Events are journaled in the order of the decisions, so the ones present are the first;
/// the rest are appended now, as that input's, at its plan time. Returns how many were
/// journaled. The decisions' hooks and notifications are not run again (the weight is set by
/// the resume, as always).
pub(super) fn journal_lost_decisions<J: JournalStore + ?Sized>(
    store: &mut J,
    run_id: i64,
    last: Option<&(u64, PlanTime, Vec<Action>)>,
) -> Result<usize, LiveError> {
    let Some((seq, t, actions)) = last else {
        return Ok(0);
    };
    let decided: Vec<_> = actions
        .iter()
        .filter_map(super::records::action_event)
        .collect();
    if decided.is_empty() {
        return Ok(0);
    }
    let journaled = store
        .events(run_id, 0)?
        .iter()
        .filter(|e| {
            serde_json::from_str::<serde_json::Value>(&e.body)
                .ok()
                .and_then(|b| b.get("input_seq").and_then(serde_json::Value::as_u64))
                == Some(*seq)
        })
        .count();
    let mut written = 0;
    for (kind, body) in decided.into_iter().skip(journaled) {
        let body = serde_json::json!({ "input_seq": seq, "event": body });
        store.append_event(
            run_id,
            t.0,
            crate::clock::unix_ms(),
            kind,
            &body.to_string(),
        )?;
        written += 1;
    }
    Ok(written)
}

/// The run's latest snapshot restored, `Ok(None)` when there is none, or why it cannot be
/// used: it must read, be of this format and plan, carry where the slots ended, and cover
/// an input the journal holds at the plan time it says.
fn restore<J: JournalStore + ?Sized>(
    store: &J,
    plan: &Arc<Plan>,
    plan_text: &str,
    run_id: i64,
) -> Result<Option<Restored>, String> {
    let record = match store.latest_snapshot(run_id) {
        Ok(None) => return Ok(None),
        Ok(Some(r)) => r,
        Err(e) => return Err(format!("it could not be read: {e}")),
    };
    let at = format!("the snapshot after input {}", record.after_seq);
    let snapshot = Snapshot::decode(&record.bytes).map_err(|e| format!("{at}: {e}"))?;
    let Some(&last_end_ms) = snapshot.driver.get(LAST_END_MS) else {
        return Err(format!("{at}: it does not say where the slots ended"));
    };
    let covered = store
        .inputs_after(run_id, record.after_seq.saturating_sub(1))
        .map_err(|e| format!("{at}: its input could not be read: {e}"))?;
    if !covered
        .first()
        .is_some_and(|r| r.seq == record.after_seq && r.plan_ms == record.plan_ms)
    {
        return Err(format!("{at}: the journal holds no such input"));
    }
    let engine =
        Engine::restore(Arc::clone(plan), plan_text, snapshot).map_err(|e| format!("{at}: {e}"))?;
    let label = match (engine.state(), engine.live_view()) {
        (State::Running { index }, Some(view)) if view.started.0 == record.plan_ms => {
            format!("the start of stage {}", index + 1)
        }
        (State::Running { index }, _) => format!("stage {}'s checkpoint", index + 1),
        (State::Pending, _) => "before the first stage".to_string(),
        (State::Finished(o), _) => format!("the end of the rollout ({})", o.key()),
    };
    Ok(Some(Restored {
        engine,
        after_seq: record.after_seq,
        last_end_ms,
        label: format!("{label} (input {})", record.after_seq),
    }))
}

/// What a resume of a journaled run rebuilds, as [`replay_run`] returns it: public so that
/// the resume benchmark and tests can time and check bounded replay without a controller.
#[derive(Debug)]
pub struct ResumeReport {
    /// How many inputs were replayed (after the snapshot, when one was restored).
    pub inputs: usize,
    /// The sequence number of the last journaled input.
    pub last_seq: u64,
    /// Plan time the last slot ended at (ms).
    pub last_end_ms: u64,
    /// Plan time the first stage started at (ms), the origin of the flags' schedules.
    pub rollout_start_ms: Option<u64>,
    /// Where the restored snapshot stood, when the replay started from one.
    pub snapshot: Option<String>,
    /// Why the latest snapshot was not used, when there was one.
    pub ignored: Option<String>,
    /// The engine rebuilt.
    pub engine: Engine,
}

/// The plan a resume of `run` runs: its journaled text, with the run's real start filled in.
pub fn run_plan(run: &RunRecord) -> Result<Arc<Plan>, LiveError> {
    let plan =
        ramp_core::parse_plan(&run.plan_toml, &run.plan_path).map_err(|e| LiveError::Corrupt {
            journal: run.plan_path.clone(),
            run: run.run_id,
            seq: 0,
            message: format!("its plan no longer loads: {e}"),
        })?;
    Ok(Arc::new(started_at(&plan, run.started_unix_ms)))
}

/// Rebuilds `run`'s engine from `store` as a resuming controller does: from the latest
/// usable snapshot and the inputs after it, or (`use_snapshot` false, or no usable
/// snapshot) from every journaled input.
pub fn replay_run(
    store: &dyn JournalStore,
    run: &RunRecord,
    use_snapshot: bool,
) -> Result<ResumeReport, LiveError> {
    let plan = run_plan(run)?;
    let location = store.location();
    let r = replay(
        store,
        &plan,
        &run.plan_toml,
        run.run_id,
        &location,
        use_snapshot,
    )?;
    Ok(ResumeReport {
        inputs: r.inputs,
        last_seq: r.last_seq,
        last_end_ms: r.last_end_ms,
        rollout_start_ms: r.rollout_start_ms,
        snapshot: r.snapshot,
        ignored: r.ignored,
        engine: r.engine,
    })
}

/// The bytes of a snapshot of `engine` as the driver journals it: the engine's state, the
/// fingerprint of `plan_text` (the run's plan as journaled), and where the stream of slots
/// ended after the snapshot's last input.
pub fn encode_snapshot(
    engine: &Engine,
    plan_text: &str,
    last_end_ms: u64,
) -> Result<Vec<u8>, SnapshotError> {
    let mut snapshot = engine.snapshot(plan_text);
    snapshot.driver.insert(LAST_END_MS.to_string(), last_end_ms);
    snapshot.encode()
}

impl<S: MetricsSource, R: Router, J: JournalStore> Driver<'_, S, R, J> {
    /// Journals a snapshot of the engine after input `seq` (fed at `t`) when the engine's
    /// `actions` started a stage or recorded a checkpoint. A snapshot that cannot be encoded
    /// or written is reported and the run goes on: the inputs remain the truth.
    pub(super) fn snapshot_after(&mut self, seq: u64, t: PlanTime, actions: &[Action]) {
        let due = actions
            .iter()
            .any(|a| matches!(a, Action::StageStarted { .. } | Action::Checkpoint(_)));
        if !due || matches!(self.engine.state(), State::Finished(_)) {
            return;
        }
        let encoded = encode_snapshot(
            &self.engine,
            &self.journal.plan_text,
            self.metrics.last_end_ms,
        );
        let run_id = self.journal.run_id;
        let written = match encoded {
            Ok(bytes) => self
                .journal
                .store
                .append_snapshot(run_id, seq, t.0, &bytes)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(why) = written {
            let text = format!(
                "Warning: the engine's snapshot after input {seq} was not journaled ({why}); the run goes on, and a resume replays the journaled inputs instead"
            );
            self.line(t, text.clone());
            let body = serde_json::json!({ "input_seq": seq, "message": text });
            if let Err(e) = self.event(t, "snapshot_failed", &body) {
                tracing::warn!(error = %e, "cannot journal the failed snapshot");
            }
        }
    }
}
