//! Decisions: every input is journaled, then fed to the engine, whose actions are journaled
//! before they are carried out (weights through the router, hooks, flags, a rehearsal's
//! timings). A journal write that fails stops the controller, never the router.

use super::records::{action_event, input_kind};
use super::rehearsal::metrics_of_gates;
use super::{Driver, LiveError, Progress};
use crate::seams::{JournalStore, MetricsSource, Router};
use crate::source::Counters;
use ramp_core::engine::{Action, Input, State};
use ramp_core::plan::HookEvent;
use ramp_core::summary::Outcome;
use ramp_core::{PlanTime, Weight};
use std::time::Duration;

/// What journaling an input does to the run's metrics cursor (the counters the next slot is
/// measured from), in the same transaction as the input.
#[derive(Debug, Clone, Copy)]
pub(super) enum CursorChange<'a> {
    /// The input consumed no reading (an operator action, a halt): the cursor stays.
    Keep,
    /// The input consumed this reading: the next slot is measured from it.
    Set(&'a Counters),
    /// The time before was declared unobserved: the next reading only starts the stream
    /// again, after a resume too.
    Clear,
}

impl<S: MetricsSource, R: Router, J: JournalStore> Driver<'_, S, R, J> {
    /// Journals `input` at plan time now and feeds it.
    pub(super) async fn feed(
        &mut self,
        input: Input,
        cursor: CursorChange<'_>,
    ) -> Result<(), LiveError> {
        let t = self.plan_now().max(self.engine.now());
        self.feed_at(t, input, cursor).await
    }

    /// Journals `input` at `t` (with the counters it consumed), feeds it, journals the
    /// decisions, then acts on them.
    pub(super) async fn feed_at(
        &mut self,
        t: PlanTime,
        input: Input,
        cursor: CursorChange<'_>,
    ) -> Result<(), LiveError> {
        let t = t.max(self.engine.now());
        let body = serde_json::to_string(&input).unwrap_or_default();
        let kind = input_kind(&input);
        let cursor_text = match cursor {
            CursorChange::Keep => None,
            CursorChange::Set(c) => Some(serde_json::to_string(c).unwrap_or_default()),
            CursorChange::Clear => Some("null".to_string()),
        };
        let run_id = self.journal.run_id;
        let written =
            self.journal
                .store
                .append_input(run_id, t.0, kind, &body, cursor_text.as_deref());
        let seq = self.exposition.journaled(written)?;
        self.journal.last_seq = seq;
        self.exposition.fed(&input);
        let actions = self.engine.step(t, input);
        self.exposition.acted(&actions);
        for a in &actions {
            if let Some((kind, body)) = action_event(a) {
                let body = serde_json::json!({ "input_seq": seq, "event": body });
                self.event(t, kind, &body)?;
            }
        }
        // Notifications are offered before the actions are carried out, without waiting:
        // a full queue drops a note, never delays the router.
        self.notify(t, &actions)?;
        for a in &actions {
            (self.on)(Progress::Action(t, a));
            self.act(t, a).await;
        }
        self.publish();
        // After the actions are carried out, so that a snapshot never delays one.
        self.snapshot_after(seq, t, &actions);
        Ok(())
    }

    /// Carries out one action.
    async fn act(&mut self, t: PlanTime, a: &Action) {
        match a {
            Action::SetWeight(w) => {
                // Flags move with the router: after it applies an increase, before a decrease
                // (see `apply_weight`).
                self.apply_weight(*w).await;
                if *w == Weight::ZERO && self.routing.rollback_applied_ms.is_none() {
                    if let State::Finished(Outcome::RolledBack) | State::Running { .. } =
                        self.engine.state()
                    {
                        if self.engine.summary().rollback.is_some() {
                            self.routing.rollback_applied_ms = Some(self.plan_now().0);
                        }
                    }
                }
            }
            Action::StageStarted { index, weight } => {
                // The flags' schedules start with the first stage.
                if *index == 1 {
                    self.rollout_started(t);
                }
                self.members_at_stage_start(t, *index);
                self.run_hooks(
                    HookEvent::StageStart,
                    serde_json::json!({"stage": index, "weight": weight.percent()}),
                );
            }
            Action::StageDecided {
                index,
                decision,
                reasons,
            } => {
                self.record_flag_usage(t, *index);
                self.record_members(t, *index);
                self.run_hooks(
                    HookEvent::StageEnd,
                    serde_json::json!({"stage": index, "decision": decision.key(), "reasons": reasons}),
                );
            }
            Action::RollbackInitiated { stage, reason } => {
                // Every followed and scheduled flag off for everyone at once, before the
                // router moves (the engine's `SetWeight(0)` follows this action).
                self.flags.rollback();
                if let Some(r) = &mut self.rehearsal {
                    if r.onset_ms.is_some() && r.initiated_ms.is_none() {
                        r.initiated_ms = Some(t.0);
                        r.reason = reason.clone();
                        r.degraded = self
                            .engine
                            .summary()
                            .stages
                            .last()
                            .map(|s| metrics_of_gates(&s.gates));
                    }
                }
                self.run_hooks(
                    HookEvent::Rollback,
                    serde_json::json!({"stage": stage, "reason": reason}),
                );
            }
            Action::Finished(outcome) => {
                if matches!(outcome, Outcome::Promoted | Outcome::PromotedWithCaveats) {
                    self.run_hooks(
                        HookEvent::Promotion,
                        serde_json::json!({"outcome": outcome.key()}),
                    );
                }
            }
            Action::Checkpoint(_) | Action::AwaitingApproval { .. } => {}
        }
    }

    /// Sets the weight, retrying briefly; a weight that could not be set is set again at
    /// the next reading (the tick compares the router's weight with the engine's).
    ///
    /// Flags that follow the rollout never lead the router toward more exposure: a decrease
    /// (a rollback included) is published to them before the router's change, an increase
    /// only once the router has applied it (an increase that failed is published when the
    /// next reading sets it again). Returns whether the router took the weight.
    ///
    /// A refusal by fencing (a newer leader set the weights) is not retried, now or ever:
    /// it is remembered, nothing more is sent, and the loop ends the run with
    /// [`LiveError::Superseded`](super::LiveError::Superseded).
    pub(super) async fn apply_weight(&mut self, w: Weight) -> bool {
        if self.routing.superseded.is_some() {
            return false;
        }
        let bp = u32::from(w.basis_points());
        let decrease = self.flags.published_bp().is_some_and(|p| bp < p);
        if decrease {
            self.publish_flag_weight(w);
        }
        for attempt in 0..5 {
            let mark = super::identity::run_mark(&self.journal.token, self.journal.last_seq);
            match self.routing.router.set_weight(w, &mark).await {
                Ok(()) => {
                    if !decrease {
                        self.publish_flag_weight(w);
                    }
                    return true;
                }
                Err(e) if e.is_superseded() => {
                    let t = self.plan_now();
                    self.line(
                        t,
                        format!(
                            "Could not set the weight to {w}: {e}; this controller stops acting"
                        ),
                    );
                    self.routing.superseded = Some(e.to_string());
                    return false;
                }
                Err(e) => {
                    let t = self.plan_now();
                    self.line(
                        t,
                        format!(
                            "Could not set the weight to {w} (attempt {}): {e}",
                            attempt + 1
                        ),
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        false
    }

    /// Before the run is recorded as finished: the router must hold the final weight (0
    /// after a rollback, 100 after a promotion). A weight that could not be set is retried
    /// until it is confirmed or a bounded number of attempts failed, and said so. A
    /// rehearsal's fault is removed.
    pub(super) async fn confirm_final_weight(&mut self) {
        if self
            .rehearsal
            .as_ref()
            .is_some_and(|r| r.onset_ms.is_some())
        {
            if let Err(e) = self.routing.router.clear_faults().await {
                let t = self.plan_now();
                self.line(t, format!("Could not remove the rehearsal's fault: {e}"));
            }
        }
        let w = self.engine.weight();
        for _ in 0..10 {
            match self.routing.router.weight().await {
                Ok(bp) if bp == u32::from(w.basis_points()) => return,
                Ok(_) | Err(_) => {
                    // A router that refused every attempt of one round (a command hanging
                    // until its timeout each time) is not tried for nine more rounds: the
                    // run ends, saying so, rather than minutes later.
                    if !self.apply_weight(w).await {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        let t = self.plan_now();
        self.line(
            t,
            format!(
                "{} could not be confirmed at the final weight {w}; check it ({})",
                super::capitalized(self.routing.router.noun()),
                self.routing.router.location()
            ),
        );
    }
}
