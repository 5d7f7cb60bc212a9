//! The loop: one reading of the metrics source per evaluation interval, fed to the engine as
//! a slot, with operator requests, finished hooks and flag schedule steps in between; and
//! what comes before it (the router's identity, the pre-deployment checks, the start).

use super::feed::CursorChange;
use super::records::outcome_json;
use super::teardown::HookDone;
use super::{capitalized, Driver, Ended, LiveError, RESTORE_POLL, RETRY};
use crate::checks;
use crate::clock;
use crate::control::Command;
use crate::seams::{JournalStore, MetricsSource, Reading, Router};
use crate::source::{Counters, SourceError};
use ramp_core::engine::{Input, State};
use ramp_core::{PlanTime, Weight};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The shutdown signal as the loop polls it.
type Shutdown<'s, F> = Pin<&'s mut F>;

impl<S: MetricsSource, R: Router, J: JournalStore> Driver<'_, S, R, J> {
    /// The main loop, until the rollout finished (and a rehearsal is timed) or the shutdown
    /// signal came.
    pub(super) async fn drive<F: Future<Output = ()> + Send>(
        &mut self,
        commands: &mut mpsc::Receiver<Command>,
        hooks_rx: &mut mpsc::Receiver<HookDone>,
        notes_rx: &mut mpsc::Receiver<crate::notify::Delivery>,
        shutdown: &mut Shutdown<'_, F>,
        fresh: bool,
    ) -> Result<Ended, LiveError> {
        if fresh {
            // No user reaches the canary before the checks pass and the first stage starts,
            // whatever weight an earlier run left in the router.
            self.apply_weight(Weight::ZERO).await;
            self.stop_if_superseded()?;
            let Some(()) = self.pre_deployment(shutdown).await? else {
                return Ok(Ended::Interrupted);
            };
        } else {
            // Re-assert the weight the engine holds, in every state: the router may have
            // restarted meanwhile, or the controller died between journaling a rollback and
            // applying it.
            let w = self.engine.weight();
            self.apply_weight(w).await;
        }
        let mut next_try: Option<tokio::time::Instant> = None;
        loop {
            self.stop_if_superseded()?;
            if let State::Finished(_) = self.engine.state() {
                if self.rehearsal_done() {
                    self.confirm_final_weight().await;
                    self.stop_if_superseded()?;
                    return Ok(Ended::Finished);
                }
            }
            let deadline = next_try.unwrap_or_else(|| self.deadline());
            // A step of a flag's own schedule that fell due while another branch ran (a tick,
            // a command) is published now: `schedule_due` only looks for steps still to come,
            // so a step passed unpublished would otherwise be skipped for good.
            self.publish_schedule();
            // The next step of a flag's own schedule, if any: published on its own wake-up,
            // so that the engine's ticks stay where they were.
            let schedule_due = self.schedule_due();
            let schedule_step = async {
                match schedule_due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = schedule_step => self.publish_schedule(),
                _ = shutdown.as_mut() => {
                    let t = self.plan_now();
                    let text = if self.resumable {
                        format!("Interrupted: {} keeps the current weight; run the same command again to resume", self.routing.router.noun())
                    } else {
                        "Interrupted: this run cannot be resumed, so it is halted".to_string()
                    };
                    self.line(t, text);
                    return Ok(Ended::Interrupted);
                }
                Some((request, reply)) = commands.recv() => {
                    // A caller that gave up waiting (and may retry) must not have its
                    // action applied late, twice.
                    if reply.is_closed() {
                        continue;
                    }
                    let answer = self.command(request).await?;
                    let _ = reply.send(answer);
                }
                Some(done) = hooks_rx.recv() => self.hook_done(done)?,
                Some(done) = notes_rx.recv() => self.notification_done(done)?,
                _ = tokio::time::sleep_until(deadline) => {
                    next_try = None;
                    if !self.tick().await? {
                        next_try = Some(clock::now() + self.retry_interval());
                    }
                }
            }
        }
    }

    /// The end of the run once the router refused a weight by fencing: a newer leader acts
    /// now, and this controller must not, not even to retry.
    fn stop_if_superseded(&self) -> Result<(), LiveError> {
        match &self.routing.superseded {
            Some(reason) => Err(LiveError::Superseded {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// When the next reading is due.
    fn deadline(&self) -> tokio::time::Instant {
        let due = match self.engine.state() {
            State::Finished(_) => PlanTime(self.plan_now().0 + RESTORE_POLL.as_millis() as u64),
            State::Pending | State::Running { .. } => {
                let mut due = self.engine.next_tick();
                if let Some(at) = self.rehearsal_onset_due() {
                    due = due.min(at);
                }
                due
            }
        };
        let wait_ms = due.0.saturating_sub(self.plan_now().0);
        clock::now() + Duration::from_millis(wait_ms)
    }

    /// How long to wait before reading again after a reading failed.
    fn retry_interval(&self) -> Duration {
        if matches!(self.engine.state(), State::Finished(_)) {
            RESTORE_POLL
        } else {
            RETRY
        }
    }

    /// Runs the pre-deployment checks, then starts the rollout (or halts it when a check
    /// failed). `None` when interrupted before the start.
    async fn pre_deployment<F: Future<Output = ()> + Send>(
        &mut self,
        shutdown: &mut Shutdown<'_, F>,
    ) -> Result<Option<()>, LiveError> {
        let plan = Arc::clone(&self.plan);
        for check in &plan.checks {
            let outcome = checks::run_check(check, &self.hooks.base_dir).await;
            let t = self.plan_now();
            self.event(t, "check", &outcome_json(&outcome))?;
            let mark = if outcome.ok { "✓" } else { "✗" };
            self.line(t, format!("{mark} {}: {}", outcome.name, outcome.detail));
            if !outcome.ok {
                let reason = format!(
                    "{} failed ({}); no traffic was shifted",
                    outcome.name, outcome.detail
                );
                let halt = Input::Halt {
                    who: "pre-deployment check".into(),
                    reason,
                };
                self.feed(halt, CursorChange::Keep).await?;
                return Ok(Some(()));
            }
        }
        if !plan.checks.is_empty() {
            let t = self.plan_now();
            self.line(t, "✓ Pre-deployment validation passed".into());
        }
        // The counters at the start are the base of the first slot.
        let Some(reading) = self.read_when_ready(shutdown).await? else {
            return Ok(None);
        };
        let t = self.plan_now().max(self.engine.now());
        self.metrics.last_end_ms = t.0;
        self.feed_at(t, Input::Start, CursorChange::Set(&reading.counters))
            .await?;
        self.metrics.cursor = Some(reading.counters);
        Ok(Some(()))
    }

    /// Reads the metrics source, retrying every [`RETRY`] (and saying why) while it cannot
    /// be read; `None` when interrupted meanwhile.
    async fn read_when_ready<F: Future<Output = ()> + Send>(
        &mut self,
        shutdown: &mut Shutdown<'_, F>,
    ) -> Result<Option<Reading>, LiveError> {
        loop {
            match self.metrics.source.read().await {
                Ok(r) => {
                    self.metrics_back();
                    return Ok(Some(r));
                }
                Err(e) => {
                    let Some(()) = self.wait_to_retry(&e, shutdown).await? else {
                        return Ok(None);
                    };
                }
            }
        }
    }

    /// Says why a reading failed (once per distinct reason), then waits [`RETRY`]; `None`
    /// when interrupted meanwhile.
    async fn wait_to_retry<F: Future<Output = ()> + Send>(
        &mut self,
        e: &SourceError,
        shutdown: &mut Shutdown<'_, F>,
    ) -> Result<Option<()>, LiveError> {
        let t = self.plan_now();
        self.metrics_problem(t, e)?;
        tokio::select! {
            _ = shutdown.as_mut() => Ok(None),
            _ = tokio::time::sleep(RETRY) => Ok(Some(())),
        }
    }

    /// One reading and engine tick. Returns `false` when the source could not be read (the
    /// rollout holds: no data is never a pass).
    async fn tick(&mut self) -> Result<bool, LiveError> {
        // A reading's counters are taken at some moment between sending the request and
        // receiving the answer; its slot ends when the request was sent, so that a slot never
        // claims time after the counts it holds (if the proxy dies just after answering, that
        // time is in the gap, not in the slot).
        let now = self.plan_now();
        let observed = observe(&self.metrics.source, &self.routing.router).await;
        let (counters, canary_bp) = match observed {
            Ok(r) => r,
            Err((what, e)) => {
                let t = self.plan_now();
                self.metrics.unread_by = what;
                self.metrics_problem(t, &e)?;
                if let State::Running { .. } = self.engine.state() {
                    self.unreadable_too_long(&e).await?;
                }
                return Ok(false);
            }
        };
        // Why the source could not be read, if it could not until now: the reason of a gap
        // that began then.
        let unreadable = self.metrics.problem.clone();
        self.metrics_back();
        self.metrics_incomplete(now)?;
        self.exposition.router_weight(canary_bp);
        // Followed flags never lead the router: when it routes less to the canary than they
        // serve (restarted without a state file, changed by hand), they come down to it at
        // once, and go back up only once the router is confirmed at the engine's weight.
        self.flags.cap_at(canary_bp);
        if let State::Finished(_) = self.engine.state() {
            self.rehearsal_poll(now, &counters);
            return Ok(true);
        }
        // The weight the router should have held when it was read. A router that held
        // another (a set that failed while reads work, a weight changed by hand) served that
        // time at a share the stage does not plan: it is unobserved, never judged as the
        // stage's, and the weight is set again below.
        let expected = self.engine.weight();
        let off_weight = (canary_bp != u32::from(expected.basis_points())).then(|| {
            format!(
                "{} routed {}% to the canary, not the stage's {}",
                self.routing.router.noun(),
                f64::from(canary_bp) / 100.0,
                expected
            )
        });
        self.feed_slot(now, &counters, unreadable, off_weight)
            .await?;
        if let State::Running { .. } = self.engine.state() {
            self.evaluate_queries(now).await?;
        }
        // Report queries are only asked here, never waited for: a tick is not delayed.
        self.sample_infra(now)?;
        if let State::Running { .. } = self.engine.state() {
            self.hold_weight(expected, canary_bp).await;
            self.rehearsal_inject(now, &counters).await?;
        } else {
            self.rehearsal_poll(now, &counters);
        }
        Ok(true)
    }

    /// Feeds what happened since the last reading, journaled with the counters that end it:
    /// a slot when the two readings are one stream of counts at the stage's weight, otherwise
    /// (the source restarted between them, or `off_weight` says the router held another
    /// weight) a gap, the time between them unobserved.
    async fn feed_slot(
        &mut self,
        now: PlanTime,
        counters: &Counters,
        unreadable: Option<String>,
        off_weight: Option<String>,
    ) -> Result<(), LiveError> {
        if now.0 <= self.metrics.last_end_ms {
            return Ok(());
        }
        let start_ms = self.metrics.last_end_ms;
        let input = match &self.metrics.cursor {
            Some(_) if off_weight.is_some() => Input::Gap {
                start_ms,
                end_ms: now.0,
                reason: off_weight.unwrap_or_default(),
            },
            Some(base) => match counters.gap_since(base) {
                None => Input::Tick(counters.slot_since(base, start_ms, now.0)),
                Some(reason) => Input::Gap {
                    start_ms,
                    end_ms: now.0,
                    reason: reason.to_string(),
                },
            },
            // No base to subtract from (the time before was declared unobserved while the
            // source could not be read): this reading only starts the stream again.
            None => Input::Gap {
                start_ms,
                end_ms: now.0,
                reason: match unreadable {
                    Some(p) => format!("{} could not be read ({p})", self.metrics.unread_by),
                    None => format!("{} could not be read", self.metrics.unread_by),
                },
            },
        };
        self.metrics.last_end_ms = now.0;
        self.feed_at(now, input, CursorChange::Set(counters))
            .await?;
        self.metrics.cursor = Some(counters.clone());
        Ok(())
    }

    /// While the source cannot be read, the rollout holds; once the time since the last
    /// reading is more than the running stage may leave unobserved, that time is declared a
    /// gap (and the engine halts the rollout: no data is never a pass, in time either). The
    /// counters read after it only start the stream again.
    async fn unreadable_too_long(&mut self, e: &SourceError) -> Result<(), LiveError> {
        let now = self.plan_now();
        let Some(view) = self.engine.live_view() else {
            return Ok(());
        };
        let limit = self.plan.max_unobserved_of(view.index).0;
        let allowance = limit.saturating_sub(view.unobserved_ms);
        let start_ms = self.metrics.last_end_ms;
        // The engine counts only the part inside the running stage (an operator's promote may
        // have started it after the last reading), so the allowance is measured the same way.
        if now.0.saturating_sub(start_ms.max(view.started.0)) <= allowance {
            return Ok(());
        }
        let gap = Input::Gap {
            start_ms,
            end_ms: now.0,
            reason: format!("{} could not be read ({e})", self.metrics.unread_by),
        };
        self.metrics.last_end_ms = now.0;
        self.metrics.cursor = None;
        self.feed_at(now, gap, CursorChange::Clear).await
    }

    /// The controller owns the weight: if the router holds another one than `expected` (it
    /// restarted without a state file, or was changed by hand), sets it again; once it holds
    /// the engine's weight, followed flags may catch up with it.
    async fn hold_weight(&mut self, expected: Weight, canary_bp: u32) {
        let w = self.engine.weight();
        if w == expected && canary_bp != u32::from(w.basis_points()) {
            let t = self.plan_now();
            self.line(
                t,
                format!(
                    "{} routes {}% to the canary, not {}; setting it again",
                    capitalized(self.routing.router.noun()),
                    f64::from(canary_bp) / 100.0,
                    w
                ),
            );
            self.apply_weight(w).await;
        } else if canary_bp == u32::from(w.basis_points()) {
            // The router holds the weight (a `PUT` that timed out may still have been
            // applied): followed flags may catch up with it now, never before.
            self.publish_flag_weight(w);
        }
    }

    /// Says once per distinct reason that metrics are unavailable, and journals it.
    fn metrics_problem(&mut self, t: PlanTime, e: &SourceError) -> Result<(), LiveError> {
        let text = e.to_string();
        if self.metrics.problem.as_deref() != Some(&text) {
            self.line(
                t,
                format!("Metrics unavailable ({text}); the rollout holds until they are back"),
            );
            self.event(t, "metrics_unavailable", &text)?;
        }
        self.metrics.problem = Some(text);
        Ok(())
    }

    /// Says what the source's readings lack when that changes (journaled, and shown by
    /// status while it lasts).
    fn metrics_incomplete(&mut self, t: PlanTime) -> Result<(), LiveError> {
        let now = self.metrics.source.incomplete();
        if now == self.metrics.incomplete {
            return Ok(());
        }
        match &now {
            Some(text) => {
                self.line(t, format!("Metrics incomplete: {text}"));
                self.event(t, "metrics_incomplete", text)?;
            }
            None => self.line(t, "Metrics complete again".into()),
        }
        self.metrics.incomplete = now;
        Ok(())
    }

    /// Says that metrics are back, when they were unavailable.
    fn metrics_back(&mut self) {
        if self.metrics.problem.take().is_some() {
            let t = self.plan_now();
            self.line(t, "Metrics available again".into());
        }
    }
}

/// One reading: the source's counters and the weight in force (from the source when it knows
/// it, from the router otherwise); an error with what could not be read (the source's or the
/// router's noun).
async fn observe<S: MetricsSource, R: Router>(
    source: &S,
    router: &R,
) -> Result<(Counters, u32), (&'static str, SourceError)> {
    let reading = source.read().await.map_err(|e| (source.noun(), e))?;
    let canary_bp = match reading.canary_bp {
        Some(bp) => bp,
        None => router.weight().await.map_err(|e| (router.noun(), e))?,
    };
    Ok((reading.counters, canary_bp))
}
