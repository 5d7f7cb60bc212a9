//! Hooks and the end of a run: hooks run in the background and report back to the loop; at
//! the end, an interrupted run that cannot be resumed is halted, hooks still running are
//! waited for (bounded), and the summary is journaled as the run's record.

use super::feed::CursorChange;
use super::records::outcome_json;
use super::{Driver, Ended, LiveError, RunEnd};
use crate::checks;
use crate::clock;
use crate::seams::{JournalStore, MetricsSource, Router};
use ramp_core::engine::{Input, State};
use ramp_core::plan::{Hook, HookEvent};
use ramp_core::summary::Summary;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

/// The longest time spent waiting for hooks still running at the end.
const HOOK_GRACE: Duration = Duration::from_secs(30);

/// The longest time spent waiting at the end for notifications still queued or retrying.
const NOTIFY_GRACE: Duration = Duration::from_secs(30);

/// The longest time an interrupted run waits for notifications already being delivered: an
/// interrupt should end the controller promptly, but what was told must be journaled.
const INTERRUPT_NOTIFY_GRACE: Duration = Duration::from_secs(5);

/// A finished hook's result, for the journal.
pub(super) struct HookDone {
    /// The hook's name.
    name: String,
    /// The event that ran it.
    event: HookEvent,
    /// Its outcome.
    outcome: checks::ProbeOutcome,
}

/// The hooks running in the background.
pub(super) struct Hooks {
    /// Base directory for checks and hooks.
    pub(super) base_dir: PathBuf,
    /// Finished hooks report here.
    tx: mpsc::Sender<HookDone>,
    /// Hooks still running.
    running: usize,
}

impl Hooks {
    /// No hooks running yet; finished ones report to the returned receiver.
    pub(super) fn new(base_dir: PathBuf) -> (Hooks, mpsc::Receiver<HookDone>) {
        let (tx, rx) = mpsc::channel::<HookDone>(64);
        let hooks = Hooks {
            base_dir,
            tx,
            running: 0,
        };
        (hooks, rx)
    }
}

impl<S: MetricsSource, R: Router, J: JournalStore> Driver<'_, S, R, J> {
    /// Starts the plan's hooks for `event` in the background.
    pub(super) fn run_hooks(&mut self, event: HookEvent, details: serde_json::Value) {
        let hooks: Vec<Hook> = self
            .plan
            .hooks
            .iter()
            .filter(|h| h.on.contains(&event))
            .cloned()
            .collect();
        if hooks.is_empty() {
            return;
        }
        let t = self.engine.now();
        let body = serde_json::json!({
            "event": event,
            "deployment_id": self.plan.deployment.id,
            "run_id": self.journal.run_id,
            "t_s": t.as_secs_f64(),
            "details": details,
        })
        .to_string();
        for hook in hooks {
            self.hooks.running += 1;
            let tx = self.hooks.tx.clone();
            let body = body.clone();
            let base = self.hooks.base_dir.clone();
            tokio::spawn(async move {
                let outcome = checks::run_hook(&hook, &body, &base).await;
                let _ = tx
                    .send(HookDone {
                        name: hook.name.clone(),
                        event,
                        outcome,
                    })
                    .await;
            });
        }
    }

    /// Journals a finished hook's result and says it.
    pub(super) fn hook_done(&mut self, done: HookDone) -> Result<(), LiveError> {
        self.hooks.running = self.hooks.running.saturating_sub(1);
        let t = self.plan_now();
        let mut body = outcome_json(&done.outcome);
        body["event"] = serde_json::json!(done.event);
        self.event(t, "hook", &body)?;
        let mark = if done.outcome.ok { "✓" } else { "✗" };
        self.line(
            t,
            format!(
                "{mark} hook {} ({:?}): {}",
                done.name, done.event, done.outcome.detail
            ),
        );
        Ok(())
    }

    /// Lets each notifier finish its queue, waiting at most `grace`, journals every result
    /// that comes back, and abandons (and journals as abandoned) what is left: the journal
    /// says what was told, whatever ends the run (`when` names it in the message).
    async fn drain_notifications(
        &mut self,
        grace: Duration,
        when: &str,
        notes_rx: &mut mpsc::Receiver<crate::notify::Delivery>,
    ) -> Result<(), LiveError> {
        self.notify.close();
        let deadline = clock::now() + grace;
        while self.notify.pending() > 0 {
            match tokio::time::timeout_at(deadline, notes_rx.recv()).await {
                Ok(Some(done)) => self.notification_done(done)?,
                Ok(None) | Err(_) => break,
            }
        }
        let abandoned = self.notify.abandon();
        if abandoned > 0 {
            let t = self.plan_now();
            let secs = grace.as_secs();
            let body = serde_json::json!({
                "result": "abandoned",
                "notes": abandoned,
                "detail": format!("{abandoned} notifications were not delivered within {secs} s of {when}"),
                "dropped_total": self.notify.dropped(),
            });
            self.event(t, "notification", &body)?;
            self.line(
                t,
                format!("✗ {abandoned} notifications abandoned at {when} (not delivered within {secs} s)"),
            );
        }
        Ok(())
    }

    /// Ends the run after the loop: an interrupted run journals the notifications in flight
    /// (waiting a few seconds at most) and stays open for a resume unless it cannot be
    /// resumed (`halt_on_interrupt`: it is halted); a finished one waits (bounded) for its
    /// hooks and notifications and is journaled finished with its summary.
    pub(super) async fn finish(
        mut self,
        ended: Ended,
        halt_on_interrupt: Option<String>,
        hooks_rx: &mut mpsc::Receiver<HookDone>,
        notes_rx: &mut mpsc::Receiver<crate::notify::Delivery>,
    ) -> Result<RunEnd, LiveError> {
        let run_id = self.journal.run_id;
        match ended {
            Ended::Finished => {}
            Ended::Interrupted => {
                let Some(reason) = halt_on_interrupt else {
                    // Deliveries in flight are waited for (briefly) and journaled, so the
                    // journal says what was told before the controller stopped.
                    self.drain_notifications(INTERRUPT_NOTIFY_GRACE, "interruption", notes_rx)
                        .await?;
                    return Ok(RunEnd::Interrupted {
                        run_id: Some(run_id),
                    });
                };
                if !matches!(self.engine.state(), State::Finished(_)) {
                    let halt = Input::Halt {
                        who: "interrupted".into(),
                        reason,
                    };
                    self.feed(halt, CursorChange::Keep).await?;
                }
            }
        }
        // Wait (bounded) for hooks still running, so that their results are journaled.
        let deadline = clock::now() + HOOK_GRACE;
        while self.hooks.running > 0 {
            match tokio::time::timeout_at(deadline, hooks_rx.recv()).await {
                Ok(Some(done)) => self.hook_done(done)?,
                Ok(None) | Err(_) => break,
            }
        }
        // The same for notifications (the run's last one is usually its end).
        self.drain_notifications(NOTIFY_GRACE, "the run's end", notes_rx)
            .await?;
        // Report queries still in flight are waited for (bounded) and journaled.
        self.finish_samples().await?;
        let summary = self.summary();
        let json = serde_json::to_string(&summary).unwrap_or_default();
        self.journal
            .store
            .finish_run(run_id, summary.outcome.key(), clock::unix_ms(), &json)?;
        Ok(RunEnd::Finished {
            run_id,
            summary: Box::new(summary),
        })
    }

    /// The final summary: the engine's, with the live measurements it cannot know.
    fn summary(&self) -> Summary {
        let mut s = self.engine.summary();
        s.mode = if self.rehearsal.is_some() {
            "rehearsal".into()
        } else {
            "live".into()
        };
        if let (Some(rb), Some(applied)) = (&mut s.rollback, self.routing.rollback_applied_ms) {
            rb.rollback_s = ramp_core::PlanTime(applied).as_secs_f64();
        }
        if let Some(r) = &self.rehearsal {
            s.rehearsals.push(r.summary());
        }
        if let Ok(events) = self.journal.store.events(self.journal.run_id, 0) {
            super::members::attach(
                &mut s,
                events
                    .iter()
                    .filter(|e| e.kind == "fleet_members")
                    .map(|e| e.body.as_str()),
            );
            s.flags = events
                .iter()
                .filter(|e| e.kind == "flag_usage")
                .filter_map(|e| serde_json::from_str(&e.body).ok())
                .collect();
            s.checks = super::records::checks_from_events(&events);
            s.infrastructure = super::infra::infra_from_events(&events);
            super::ha::attach_takeovers(&mut s, &events);
        }
        s
    }
}
