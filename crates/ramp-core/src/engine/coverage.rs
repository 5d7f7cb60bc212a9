//! Observed time: what the engine saw of the running stage, and what it did not.
//!
//! A driver tells the engine about time it could not observe with `Input::Gap` (the metrics
//! source restarted and its counters began again, or it could not be read). No data is never
//! a pass, in time as well as in samples: a stage's decision needs its planned duration of
//! *observed* time, so the part of a gap inside the running stage is the stage's unobserved
//! time and moves the stage's end out by as much; rates over the stage or a checkpoint
//! interval are over the observed time only (the sliding windows count only their slots'
//! spans); and a stage whose unobserved time exceeds its limit
//! ([`crate::plan::Plan::max_unobserved_of`]) halts the rollout, because a decision on what
//! is left would be a guess.

use super::{group, Action, Engine, State};
use crate::summary::{Decision, Outcome};
use crate::units::{PlanTime, Span};

/// The unobserved time of the running stage and of its checkpoint interval, with why.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct Coverage {
    /// The end of the last slot or gap fed, ms: a later gap counts only from here, so that
    /// no time is counted twice.
    until_ms: u64,
    /// The running stage's unobserved time, ms.
    stage_ms: u64,
    /// Unobserved time since the last checkpoint (or the stage start), ms.
    interval_ms: u64,
    /// Why the running stage's time went unobserved: each driver's reason once, in order.
    reasons: Vec<String>,
}

impl Coverage {
    /// A slot ending at `end_ms` was observed.
    pub(super) fn observed(&mut self, end_ms: u64) {
        self.until_ms = self.until_ms.max(end_ms);
    }

    /// A new stage starts with all of its time still to observe.
    pub(super) fn start_stage(&mut self) {
        self.stage_ms = 0;
        self.interval_ms = 0;
        self.reasons.clear();
    }

    /// A checkpoint row was recorded: its interval starts again.
    pub(super) fn checkpoint(&mut self) {
        self.interval_ms = 0;
    }

    /// The running stage's unobserved time.
    pub(super) fn stage(&self) -> Span {
        Span(self.stage_ms)
    }

    /// Unobserved time since the last checkpoint.
    pub(super) fn interval(&self) -> Span {
        Span(self.interval_ms)
    }

    /// Why the running stage's time went unobserved, as one phrase ("proxy restarted: its
    /// counters began again; proxy unreachable").
    pub(super) fn reasons(&self) -> String {
        self.reasons.join("; ")
    }

    /// The part of `[start_ms, end_ms)` not already covered by an earlier slot or gap, which
    /// it marks as covered: `None` when nothing is left.
    fn claim(&mut self, start_ms: u64, end_ms: u64) -> Option<(u64, u64)> {
        let start = start_ms.max(self.until_ms);
        self.until_ms = self.until_ms.max(end_ms);
        (end_ms > start).then_some((start, end_ms))
    }

    /// Adds the part of `[start_ms, end_ms)` at or after `stage_started` to the running
    /// stage and the part at or after `interval_started` to the checkpoint interval, with
    /// its reason; returns the stage's part, ms.
    fn add_to_stage(
        &mut self,
        (start_ms, end_ms): (u64, u64),
        stage_started: PlanTime,
        interval_started: PlanTime,
        reason: &str,
    ) -> u64 {
        let stage = end_ms.saturating_sub(start_ms.max(stage_started.0));
        let interval = end_ms.saturating_sub(start_ms.max(interval_started.0));
        self.stage_ms += stage;
        self.interval_ms += interval;
        let reason = reason.trim();
        if stage > 0 && !reason.is_empty() && !self.reasons.iter().any(|r| r == reason) {
            self.reasons.push(reason.to_string());
        }
        stage
    }
}

/// "12 s unobserved (proxy restarted)": a span and why, for events and reasons.
fn unobserved_phrase(span: Span, reasons: &str) -> String {
    if reasons.is_empty() {
        format!("{span} unobserved")
    } else {
        format!("{span} unobserved ({reasons})")
    }
}

impl Engine {
    /// When the running stage `index` (0-based) ends: its planned duration after its start,
    /// moved out by the time it could not observe.
    pub(super) fn stage_end(&self, index: usize) -> PlanTime {
        self.stage_started
            .plus(self.plan.stages[index].duration)
            .plus(self.coverage.stage())
    }

    /// The running stage's observed time so far: the time since it started less what was
    /// not observed.
    pub(super) fn stage_observed(&self) -> Span {
        Span(
            self.now
                .since(self.stage_started)
                .0
                .saturating_sub(self.coverage.stage().0),
        )
    }

    /// Nothing was observed over `[start_ms, end_ms)`: the running stage's end moves out by
    /// its part of it, an event says so, and a stage that has gone unobserved for longer than
    /// its limit halts the rollout at the current weight.
    pub(super) fn gap(&mut self, start_ms: u64, end_ms: u64, reason: &str, out: &mut Vec<Action>) {
        if matches!(self.state, State::Finished(_)) {
            return;
        }
        let Some(span) = self.coverage.claim(start_ms, end_ms) else {
            return;
        };
        let index = match self.state {
            State::Running { index } => index,
            State::Pending => {
                let lost = Span(span.1 - span.0);
                let phrase = unobserved_phrase(lost, reason.trim());
                self.event(format!("{phrase} before the first stage"));
                return;
            }
            State::Finished(_) => return,
        };
        let (stage_started, interval_started) = (self.stage_started, self.last_checkpoint);
        let lost = self
            .coverage
            .add_to_stage(span, stage_started, interval_started, reason);
        let phrase = unobserved_phrase(Span(span.1 - span.0), reason.trim());
        if lost == 0 {
            // The gap ended before this stage started (it began at an operator's promotion,
            // stamped later than the last observation): it changes no stage.
            self.event(phrase);
            return;
        }
        let end = self.stage_end(index);
        self.event(format!(
            "{phrase}; stage {} extended to end at T+{}",
            index + 1,
            Span(end.0)
        ));
        let limit = self.plan.max_unobserved_of(index);
        let unobserved = self.coverage.stage();
        if unobserved <= limit {
            return;
        }
        let whose = if self.plan.max_unobserved.is_some() {
            "max_unobserved"
        } else {
            "max_unobserved: by default a quarter of the stage, at most 5 min"
        };
        let reasons = self.coverage.reasons();
        let why = if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({reasons})")
        };
        let reason = format!(
            "Stage {} halted: {} of its {} were unobserved{why}, more than the {} allowed ({whose}); Ramp never decides on time it did not see.",
            index + 1,
            unobserved,
            self.plan.stages[index].duration,
            limit
        );
        let gates = self.window_gates(index);
        self.close_stage(Decision::Halt, gates, vec![reason.clone()]);
        self.event(reason.clone());
        out.push(Action::StageDecided {
            index: index + 1,
            decision: Decision::Halt,
            reasons: vec![reason],
        });
        self.finish(Outcome::Halted, out);
    }

    /// The first reason of a stage decided on its data: how many gates passed over how much
    /// observed data, and, when the stage had gaps, how long they were and that they
    /// extended it.
    pub(super) fn passed_over(&self, passed: usize, gates: usize, observed: Span) -> String {
        let requests = format!(
            "{} canary and {} stable requests",
            group(self.stage_data.canary.requests),
            group(self.stage_data.stable.requests)
        );
        let unobserved = self.coverage.stage();
        if unobserved.0 == 0 {
            format!("{passed} of {gates} gates passed over {observed} of data ({requests}).")
        } else {
            format!(
                "{passed} of {gates} gates passed over {observed} of observed data ({requests}); {} extended the stage.",
                unobserved_phrase(unobserved, &self.coverage.reasons())
            )
        }
    }
}
