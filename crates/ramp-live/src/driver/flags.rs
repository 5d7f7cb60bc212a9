//! The plan's flags during a live run: flags that follow the rollout move with the weight the
//! router confirmed (never ahead of it), flags with their own schedule count from the first
//! stage's start, and each stage's distinct users per flag are journaled for the report.

use super::sidecars::FlagsServer;
use super::Driver;
use crate::clock;
use crate::seams::{JournalStore, MetricsSource, Router};
use ramp_core::engine::State;
use ramp_core::summary::FlagUsageSummary;
use ramp_core::{PlanTime, Weight};
use ramp_flags::flags::{FlagState, Rollout, WeightHandle};
use ramp_flags::ofrep;
use std::sync::Arc;
use std::time::Duration;

/// The driver's hold on the flags it serves.
pub(super) struct Flags {
    /// The weight that flags following the rollout serve, and the clock of flags with their
    /// own schedule, when the plan has flags.
    weight: Option<WeightHandle>,
    /// Plan time (ms) of the first stage's start: the origin of every flag's schedule, so that
    /// a resumed run continues its schedules where they were instead of restarting them.
    rollout_start_ms: Option<u64>,
    /// The OFREP server's counters of distinct users per flag, and the flags they count.
    stats: Option<(ofrep::Stats, Arc<FlagState>)>,
}

impl Flags {
    /// The flags of `server` (none without one), with schedules counting from
    /// `rollout_start_ms` once the first stage has started.
    pub(super) fn new(server: Option<&FlagsServer>, rollout_start_ms: Option<u64>) -> Flags {
        Flags {
            weight: server.map(|s| s.state.weight_handle()),
            rollout_start_ms,
            stats: server.and_then(|s| s.stats.clone().map(|st| (st, Arc::clone(&s.state)))),
        }
    }

    /// The canary share (basis points) that followed flags serve now, if any are served.
    pub(super) fn published_bp(&self) -> Option<u32> {
        self.weight.as_ref().and_then(|h| h.get_bp())
    }

    /// Turns every followed and scheduled flag off for everyone at once.
    pub(super) fn rollback(&self) {
        if let Some(h) = &self.weight {
            h.rollback();
        }
    }

    /// Moves followed flags down to `bp` at once when the router routes less to the canary
    /// than they serve (it restarted without a state file, or was changed by hand).
    pub(super) fn cap_at(&self, bp: u32) {
        if let Some(h) = &self.weight {
            if h.get_bp().is_some_and(|p| bp < p) {
                let _ = h.set_bp(bp);
            }
        }
    }
}

impl<S: MetricsSource, R: Router, J: JournalStore> Driver<'_, S, R, J> {
    /// Sets the flags up as a run starts or resumes. Followed flags serve 0 until the router
    /// is confirmed at the rollout's weight (`drive` re-asserts it first thing): flags never
    /// lead the router. A rolled-back run's flags stay off for everyone, scheduled ones
    /// included; otherwise schedules continue from the journaled start.
    pub(super) fn init_flags(&mut self) {
        if self.engine.summary().rollback.is_some() {
            self.flags.rollback();
        } else {
            self.publish_flag_weight(Weight::ZERO);
            self.publish_schedule();
        }
    }

    /// Marks the first stage's start as the origin of the flags' schedules (a resumed run
    /// finds the same origin in the journaled stage start).
    pub(super) fn rollout_started(&mut self, t: PlanTime) {
        if self.flags.rollout_start_ms.is_none() {
            self.flags.rollout_start_ms = Some(t.0);
            self.publish_schedule();
        }
    }

    /// The OFREP server's distinct-user counts now, one row per flag, attributed to stage
    /// `stage` (1-based; a flag following the rollout is reported at that stage's weight, a
    /// scheduled one at its schedule's share at plan time `at`).
    pub(super) fn flag_usage(&self, stage: usize, at: PlanTime) -> Vec<FlagUsageSummary> {
        let Some((stats, state)) = &self.flags.stats else {
            return Vec::new();
        };
        let stage_weight = self
            .plan
            .stages
            .get(stage.saturating_sub(1))
            .map_or(0.0, |s| s.weight.percent());
        stats
            .report(state)
            .into_iter()
            .map(|u| {
                // A followed flag is reported at its stage's weight; a scheduled one at the
                // weight its schedule gives at `at` (for a stage's row, the stage's last
                // moment: the share it was rolled out to, even when a rollback ends the stage,
                // as the simulator reports it); any other at what the server serves.
                let rollout = self.plan.flags.get(&u.key).map(|f| f.rollout());
                let scheduled = matches!(rollout, Some(Rollout::Schedule(_)));
                let weight = match rollout {
                    Some(Rollout::FollowRollout) => stage_weight,
                    Some(Rollout::Schedule(s)) => {
                        let ms = self
                            .schedule_elapsed_at(at)
                            .map_or(0, |e| u64::try_from(e.as_millis()).unwrap_or(u64::MAX));
                        f64::from(s.weight_at(ms)) / 100.0
                    }
                    _ => u.weight.unwrap_or(0.0),
                };
                FlagUsageSummary {
                    stage,
                    weight,
                    scheduled,
                    key: u.key,
                    on_users: u.on_users,
                    off_users: u.off_users,
                    window_s: u.window_s,
                    exact: u.exact,
                }
            })
            .collect()
    }

    /// The flag counts for `ramp status`: the running stage's (or the last one's).
    pub(super) fn flag_usage_now(&self) -> Vec<FlagUsageSummary> {
        let stage = match self.engine.state() {
            State::Running { index } => index + 1,
            State::Pending | State::Finished(_) => self.engine.summary().stages.len(),
        };
        self.flag_usage(stage, self.plan_now().max(self.engine.now()))
    }

    /// Journals the flags' user counts at the end of stage `stage`, for the report (the
    /// journal keeps them across a restart).
    pub(super) fn record_flag_usage(&mut self, t: PlanTime, stage: usize) {
        // The stage's last moment: a schedule step due exactly at its end belongs to the
        // next stage, which is the first to serve it.
        for row in self.flag_usage(stage, PlanTime(t.0.saturating_sub(1))) {
            if let Err(e) = self.event(t, "flag_usage", &row) {
                tracing::warn!(error = %e, "cannot journal flag usage");
            }
        }
    }

    /// Moves the flags that follow the rollout to `w`.
    pub(super) fn publish_flag_weight(&mut self, w: Weight) {
        if let Some(h) = &self.flags.weight {
            let _ = h.set_bp(u32::from(w.basis_points()));
        }
    }

    /// The time since the first stage started, once it has (never less than the engine's
    /// time, so a wall clock stepped backwards does not move schedules back).
    fn schedule_elapsed(&self) -> Option<Duration> {
        self.schedule_elapsed_at(self.plan_now().max(self.engine.now()))
    }

    /// The time since the first stage started at plan time `t`, once it has.
    fn schedule_elapsed_at(&self, t: PlanTime) -> Option<Duration> {
        let start = self.flags.rollout_start_ms?;
        Some(Duration::from_millis(t.0.saturating_sub(start)))
    }

    /// Publishes the time since the rollout started to flags with their own schedule (the
    /// state quantizes it, so the OFREP version moves only at a step). Nothing before the
    /// start: scheduled flags serve their default variant until then.
    pub(super) fn publish_schedule(&mut self) {
        let (Some(h), Some(elapsed)) = (&self.flags.weight, self.schedule_elapsed()) else {
            return;
        };
        if h.has_schedules() {
            h.set_schedule_elapsed(elapsed);
        }
    }

    /// When the next step of a flag's own schedule is due, if any is still to come.
    pub(super) fn schedule_due(&self) -> Option<tokio::time::Instant> {
        let h = self.flags.weight.as_ref()?;
        let elapsed = self.schedule_elapsed()?;
        let next = h.next_schedule_change(elapsed)?;
        Some(clock::now() + next.saturating_sub(elapsed))
    }
}
