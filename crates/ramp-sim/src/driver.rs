//! The virtual-clock driver: the engine run against the seeded traffic and service model.
//! The per-request sampler lives here (`World::substep`); the aggregated one in `aggregate`.

mod aggregate;

pub use aggregate::TableCache;

use crate::model::{draw, FeatureTally, LatencyModel, StepModel};
use crate::population::{Population, Users};
use crate::ring::{Ring, REFERENCE_SECONDS};
use crate::sampler::{sampling, Options};
use ramp_core::engine::{Action, Engine, Input, State};
use ramp_core::summary::{
    FeatureSummary, Metrics, Outcome, RehearsalSummary, RollbackTiming, Summary, Totals,
};
use ramp_core::{
    Cohort, Fault, FaultEffect, Plan, PlanTime, Rehearsal, SamplingMethod, Simulation, Span, Weight,
};
use ramp_flags::flags::ScheduleClock;
use ramp_stats::{CohortStats, Histogram, Slot};
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Poisson};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::sync::Arc;
use std::time::Duration;

/// The simulator's one generator, seeded by the caller: xoshiro256++ (rand_xoshiro), whose
/// state advances by shifts and exclusive-ors in about a cycle, so that the aggregated
/// sampler's long runs of draws (a request placed per draw at low rates, two uniforms per
/// Poisson candidate at high rates) wait on the generator less than on a 128-bit multiply.
type SimRng = Xoshiro256PlusPlus;

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The plan has nothing to simulate with.
    #[error("the plan has no [simulation] section: add one with at least `rps` and `stable` to simulate it")]
    NoSimulation,
    /// The sampler asked for cannot simulate this plan (the aggregated sampler and a plan
    /// with flags, whose users must be simulated one request at a time).
    #[error("{0}")]
    Sampler(String),
}

/// What the simulation reports while it runs, for progress displays.
#[derive(Debug, Clone)]
pub enum Progress<'a> {
    /// The engine acted at this plan time on the main timeline.
    Action(PlanTime, &'a Action),
    /// A rehearsal finished (its fork ran to rollback and restoration).
    Rehearsal(&'a RehearsalSummary),
}

/// Restore window for rollbacks outside rehearsals (rehearsals set their own).
const DEFAULT_RESTORE_WINDOW: Span = Span(10_000);

/// Restore tolerance for rollbacks outside rehearsals.
const DEFAULT_RESTORE_TOLERANCE: f64 = 0.10;

/// Longest the simulation watches a rollback for restoration before giving up.
const RECOVERY_LIMIT: Span = Span(900_000);

/// Watching a rollback until the service is restored.
#[derive(Debug, Clone)]
struct Recovery {
    /// When the engine issued the rollback.
    initiated: PlanTime,
    /// When the router applied weight 0.
    applied: Option<PlanTime>,
    /// When the metrics were back at the reference.
    restored: Option<PlanTime>,
}

/// The whole simulated world: engine, router, service and clock. `Clone` so that a
/// rehearsal can fork it at any moment.
#[derive(Debug, Clone)]
struct World {
    /// The engine under test.
    engine: Engine,
    /// The plan (and its model).
    plan: Arc<Plan>,
    /// The stable latency model.
    latency: LatencyModel,
    /// The only source of randomness.
    rng: SimRng,
    /// Plan time reached.
    now: PlanTime,
    /// The weight the router applies now.
    router_weight: Weight,
    /// A weight the engine asked for that the router has not applied yet.
    pending: Option<(PlanTime, Weight)>,
    /// Faults in force in this timeline.
    faults: Vec<Fault>,
    /// Feature attribution.
    tally: FeatureTally,
    /// Service-wide stats per second of the last `REFERENCE_SECONDS`.
    ring: Ring,
    /// How requests are drawn: one by one, or aggregated per tick.
    sampler: SamplingMethod,
    /// The aggregated sampler's bucket tables, per model state met.
    tables: aggregate::Tables,
    /// The aggregated sampler's scratch bucket counts (the last cohort drawn).
    counts: crate::buckets::Counts,
    /// Latest completion time (ms) of any canary request, for the drain after a rollback.
    canary_done_ms: f64,
    /// Rollback being watched.
    recovery: Option<Recovery>,
    /// What "restored" means: the pre-fault reference metrics, the window that must match
    /// them, and the relative tolerance. Recorded when a fault starts.
    restore_rule: Option<(Metrics, Span, f64)>,
    /// When the fault that the rule belongs to began.
    fault_onset: Option<PlanTime>,
    /// Requests simulated after the engine finished (while a rollback drained and the
    /// service recovered).
    after_finish: Totals,
    /// The simulated users of a plan with flags, whose bucketing decides each request's
    /// cohort and whose flags are counted per stage; `None` without flags, where each request
    /// is split on its own.
    population: Option<Population>,
    /// Whether any flag has its own schedule: only then do steps split at schedule change
    /// points and carry a schedule clock (flag-less and schedule-less runs stay as they were).
    schedules: bool,
    /// When the rollout started (the engine's `Start`), the origin of every flag's schedule.
    schedule_origin: Option<PlanTime>,
    /// Whether the engine rolled back: scheduled flags are then off for everyone, at once.
    schedules_rolled_back: bool,
}

impl World {
    fn new(
        plan: Arc<Plan>,
        seed: u64,
        sampler: SamplingMethod,
        tables: Option<Arc<TableCache>>,
    ) -> Result<World, SimError> {
        let sim = plan.simulation.as_ref().ok_or(SimError::NoSimulation)?;
        let latency = LatencyModel::new(sim.stable.p50_ms, sim.stable.p95_ms, sim.stable.p99_ms);
        let n = sim.features.len();
        Ok(World {
            engine: Engine::new(Arc::clone(&plan)),
            latency,
            rng: SimRng::seed_from_u64(seed),
            now: PlanTime::ZERO,
            router_weight: Weight::ZERO,
            pending: None,
            faults: sim.faults.clone(),
            tally: FeatureTally {
                added_ms: vec![0.0; n],
                errors: vec![0; n],
                ..FeatureTally::default()
            },
            ring: Ring::default(),
            sampler,
            tables: aggregate::Tables::sharing(tables),
            counts: crate::buckets::Counts::default(),
            canary_done_ms: 0.0,
            recovery: None,
            restore_rule: None,
            fault_onset: None,
            after_finish: Totals::default(),
            population: Users::for_plan(&plan).map(Population::new),
            schedules: plan.flags.has_schedules(),
            schedule_origin: None,
            schedules_rolled_back: false,
            plan,
        })
    }

    fn sim(&self) -> &Simulation {
        self.plan
            .simulation
            .as_ref()
            .expect("checked in World::new")
    }

    /// Request rate at plan time `t`: the mean rate times the daily profile, interpolated
    /// linearly between hours.
    fn rate(&self, t: PlanTime) -> f64 {
        let sim = self.sim();
        match &sim.daily_profile {
            None => sim.rps,
            Some(p) => {
                let sec =
                    (self.plan.deployment.start_second_of_day as f64 + t.as_secs_f64()) % 86_400.0;
                let h = (sec / 3600.0).floor() as usize % 24;
                let frac = (sec - h as f64 * 3600.0) / 3600.0;
                sim.rps * (p[h] * (1.0 - frac) + p[(h + 1) % 24] * frac)
            }
        }
    }

    /// Where the flags' schedules stand at plan time `t`, as the live driver would have
    /// published it to the OFREP server (quantized to the last change point).
    fn schedule_clock(&self, t: PlanTime) -> ScheduleClock {
        if !self.schedules {
            return ScheduleClock::NotStarted;
        }
        if self.schedules_rolled_back {
            return ScheduleClock::RolledBack;
        }
        match self.schedule_origin {
            None => ScheduleClock::NotStarted,
            Some(origin) => {
                let elapsed = Duration::from_millis(t.since(origin).0);
                let epoch = self.plan.flags.schedule_epoch(elapsed);
                ScheduleClock::At(u64::try_from(epoch.as_millis()).unwrap_or(u64::MAX))
            }
        }
    }

    /// The next schedule change point strictly after `t`, in plan time.
    fn next_schedule_change(&self, t: PlanTime) -> Option<PlanTime> {
        if !self.schedules || self.schedules_rolled_back {
            return None;
        }
        let origin = self.schedule_origin?;
        let elapsed = Duration::from_millis(t.since(origin).0);
        let next = self.plan.flags.next_schedule_change(elapsed)?;
        Some(origin.plus(Span(u64::try_from(next.as_millis()).unwrap_or(u64::MAX))))
    }

    /// Simulates requests arriving in `[now, to)` and returns them as one slot.
    fn advance(&mut self, to: PlanTime) -> Slot {
        let mut slot = Slot {
            start_ms: self.now.0,
            end_ms: to.0,
            canary: CohortStats::new(),
            stable: CohortStats::new(),
        };
        if self.sampler == SamplingMethod::Aggregated {
            self.advance_aggregated(to, &mut slot);
            return slot;
        }
        while self.now < to {
            let a = self.now;
            let mut b = PlanTime((a.0 / 1000 + 1) * 1000).min(to);
            // A step never straddles a schedule step: all its requests see one clock.
            if let Some(change) = self.next_schedule_change(a) {
                b = b.min(change);
            }
            self.substep(a, b, &mut slot);
            self.now = b;
        }
        slot
    }

    /// One step of at most a second, aligned to whole seconds, drawn request by request.
    fn substep(&mut self, a: PlanTime, b: PlanTime, slot: &mut Slot) {
        self.note_fault_onset(a, b);
        let dt = b.since(a).as_secs_f64();
        let lambda = self.rate(a) * dt;
        let n = if lambda > 0.0 {
            Poisson::new(lambda)
                .map(|p| p.sample(&mut self.rng) as u64)
                .unwrap_or(0)
        } else {
            0
        };
        // Exact arrival times matter only when something changes inside the step.
        let boundary = |t: PlanTime| t > a && t < b;
        let pending_here = self.pending.filter(|(t, _)| boundary(*t));
        let need_times = pending_here.is_some()
            || self.recovery.is_some()
            || self
                .faults
                .iter()
                .any(|f| boundary(f.at) || f.duration.is_some_and(|d| boundary(f.at.plus(d))));
        if let Some((t, w)) = self.pending {
            if t <= a {
                self.apply_weight(t, w);
            }
        }
        let sim = self
            .plan
            .simulation
            .as_ref()
            .expect("checked in World::new");
        let share_before = self.router_weight.share() * sim.canary_traffic;
        let step_before = StepModel::at_share(&sim.features, &sim.load, share_before);
        let step_after = pending_here.map(|(_, w)| {
            StepModel::at_share(&sim.features, &sim.load, w.share() * sim.canary_traffic)
        });
        // With a population, a request's cohort is its user's side of the rollout: the set of
        // users seen at each weight and the cohort threshold (the weight scaled by
        // `canary_traffic`, in basis points) are looked up once per step, not per request.
        let canary_bp =
            |w: Weight| (f64::from(w.basis_points()) * sim.canary_traffic).round() as u32;
        let clock = self.schedule_clock(a);
        let segments = self.population.as_mut().map(|p| {
            let before = (
                p.segment(self.router_weight, clock),
                canary_bp(self.router_weight),
            );
            let after = pending_here.map(|(_, w)| (p.segment(w, clock), canary_bp(w)));
            (before, after)
        });
        let mut second_canary = CohortStats::new();
        let mut second_stable = CohortStats::new();
        for _ in 0..n {
            let t_ms = if need_times {
                a.0 as f64 + self.rng.random::<f64>() * (b.0 - a.0) as f64
            } else {
                a.0 as f64
            };
            let t = PlanTime(t_ms as u64);
            let (late, share, step) = match (pending_here, &step_after) {
                (Some((tp, w)), Some(s)) if t >= tp => (true, w.share() * sim.canary_traffic, s),
                _ => (false, share_before, &step_before),
            };
            let canary = match (&mut self.population, segments) {
                (Some(users), Some((before, after))) => {
                    let (segment, bp) = if late {
                        after.unwrap_or(before)
                    } else {
                        before
                    };
                    let user = self.rng.random_range(0..users.size());
                    users.visit(segment, user, bp)
                }
                _ => self.rng.random::<f64>() < share,
            };
            let cohort = if canary {
                Cohort::Canary
            } else {
                Cohort::Stable
            };
            let r = draw(
                &mut self.rng,
                &sim.stable,
                &self.latency,
                step,
                &self.faults,
                cohort,
                t,
                &mut self.tally,
            );
            let idx = Histogram::index_of(r.latency_ms);
            let (stats, second) = match cohort {
                Cohort::Canary => {
                    self.canary_done_ms = self.canary_done_ms.max(t_ms + r.latency_ms);
                    (&mut slot.canary, &mut second_canary)
                }
                Cohort::Stable => (&mut slot.stable, &mut second_stable),
            };
            stats.requests += 1;
            stats.errors += r.error as u64;
            stats.latency.record_n(idx, 1);
            second.requests += 1;
            second.errors += r.error as u64;
            second.latency.record_n(idx, 1);
        }
        if let Some((t, w)) = pending_here {
            self.apply_weight(t, w);
        }
        let whole = b.0.is_multiple_of(1000);
        self.ring
            .push(second_canary, second_stable, &[(lambda.max(0.0), whole)]);
        if whole {
            self.check_restored(b);
        }
    }

    fn apply_weight(&mut self, t: PlanTime, w: Weight) {
        self.router_weight = w;
        self.pending = None;
        if w == Weight::ZERO {
            if let Some(r) = &mut self.recovery {
                r.applied.get_or_insert(t);
            }
        }
    }

    /// Service-wide metrics over the last `secs` seconds (the ring's entries).
    fn recent(&mut self, secs: usize) -> Metrics {
        self.ring.recent(secs, &mut self.rng)
    }

    /// After a rollback has drained, marks the first second at which the last restore
    /// window of service-wide requests is back within tolerance of the reference.
    fn check_restored(&mut self, now: PlanTime) {
        let Some(rec) = &self.recovery else { return };
        if rec.restored.is_some() || !self.drained(now) {
            return;
        }
        let Some((reference, window, tol)) = self.restore_rule else {
            return;
        };
        let m = self.recent((window.0 / 1000).max(1) as usize);
        if ramp_core::recovery::restored(&m, &reference, tol) {
            if let Some(r) = &mut self.recovery {
                r.restored = Some(now);
            }
        }
    }

    /// Whether weight 0 is applied and the canary's last request has finished.
    fn drained(&self, now: PlanTime) -> bool {
        self.recovery
            .as_ref()
            .and_then(|r| r.applied)
            .is_some_and(|_| now.0 as f64 >= self.canary_done_ms)
    }

    /// Runs the engine until it finishes or the next tick would pass `stop`.
    fn run(&mut self, stop: Option<PlanTime>, on: &mut dyn FnMut(Progress<'_>)) {
        if self.engine.state() == State::Pending {
            self.schedule_origin = Some(self.now);
            let actions = self.engine.step(self.now, Input::Start);
            self.apply(&actions, on);
        }
        while let State::Running { .. } = self.engine.state() {
            let next = self.engine.next_tick();
            if stop.is_some_and(|s| next > s) {
                return;
            }
            let slot = self.advance(next);
            let actions = self.engine.step(next, Input::Tick(slot));
            self.apply(&actions, on);
        }
    }

    fn apply(&mut self, actions: &[Action], on: &mut dyn FnMut(Progress<'_>)) {
        for a in actions {
            match a {
                Action::SetWeight(w) => {
                    let delay = self.sim().router_delay;
                    if delay.0 == 0 {
                        let now = self.now;
                        self.apply_weight(now, *w);
                    } else {
                        self.pending = Some((self.now.plus(delay), *w));
                    }
                }
                Action::RollbackInitiated { .. } => {
                    // Scheduled flags are off for everyone at once (the live driver publishes
                    // the rollback to its flags before the proxy moves).
                    self.schedules_rolled_back = true;
                    self.recovery = Some(Recovery {
                        initiated: self.now,
                        applied: None,
                        restored: None,
                    });
                }
                Action::StageStarted { index, weight } => {
                    if let Some(p) = &mut self.population {
                        p.stage_started(*index, *weight, self.now);
                    }
                }
                Action::StageDecided { index, .. } => {
                    // A rollback and a halt decide the stage too, so every stage that began
                    // is counted exactly once.
                    let since_start = self
                        .schedule_origin
                        .map_or(0, |origin| self.now.since(origin).0);
                    if let Some(p) = &mut self.population {
                        p.stage_decided(*index, self.now, since_start);
                    }
                }
                Action::Checkpoint(_) | Action::AwaitingApproval { .. } | Action::Finished(_) => {}
            }
            on(Progress::Action(self.now, a));
            if let Action::AwaitingApproval { missing, .. } = a {
                // A simulation has no people: every approval is taken as given at once, and
                // the report's timeline says so.
                for who in missing {
                    let input = Input::Approve {
                        who: who.clone(),
                        reason: "assumed in simulation".into(),
                        stage: None,
                    };
                    let more = self.engine.step(self.now, input);
                    self.apply(&more, on);
                }
            }
        }
    }
}

/// Runs `plan` on the virtual clock with `seed`, reporting progress to `on`, and returns the
/// summary, with the sampler the plan asks for or the simulator chooses. Same plan and seed
/// give the same summary, byte for byte.
pub fn simulate(
    plan: Arc<Plan>,
    seed: u64,
    on: &mut dyn FnMut(Progress<'_>),
) -> Result<Summary, SimError> {
    simulate_with(plan, seed, Options::default(), on)
}

/// [`simulate`] with options from outside the plan (a command-line sampler). Same plan, seed
/// and sampler give the same summary, byte for byte.
pub fn simulate_with(
    plan: Arc<Plan>,
    seed: u64,
    options: Options,
    on: &mut dyn FnMut(Progress<'_>),
) -> Result<Summary, SimError> {
    simulate_sharing(plan, seed, options, None, on)
}

/// [`simulate_with`] taking the aggregated sampler's bucket tables from `tables`, shared by
/// the runs of one plan's study (a `--runs N` study builds each table once instead of once
/// per run). The summary is byte for byte the one [`simulate_with`] gives: a table depends
/// only on the plan and the model state. `tables` must only ever serve runs of one plan's
/// latency model (other models are kept apart, never mixed up, but not shared).
pub fn simulate_sharing(
    plan: Arc<Plan>,
    seed: u64,
    options: Options,
    tables: Option<Arc<TableCache>>,
    on: &mut dyn FnMut(Progress<'_>),
) -> Result<Summary, SimError> {
    let chosen = sampling(&plan, options.sampler)?;
    // Query gates read a Prometheus server, which a simulation has not got: they are left
    // out of the simulated run, and its timeline says so.
    let unjudged: Vec<String> = plan.queries.iter().map(|q| q.name.clone()).collect();
    // Report queries read it too: the summary's infrastructure impact stays empty (nothing
    // is invented), and the timeline says why.
    let unsampled: Vec<String> = plan.report_queries.iter().map(|q| q.name.clone()).collect();
    let plan = if unjudged.is_empty() {
        plan
    } else {
        Arc::new(Plan {
            queries: Vec::new(),
            ..(*plan).clone()
        })
    };
    let mut world = World::new(Arc::clone(&plan), seed, chosen.method, tables)?;
    let mut rehearsals: Vec<(usize, &Rehearsal)> = plan.rehearsals.iter().enumerate().collect();
    rehearsals.sort_by_key(|(i, r)| (r.fault.at, *i));
    let mut results = Vec::new();
    for (i, r) in rehearsals {
        world.run(Some(r.fault.at), on);
        let result = match world.engine.state() {
            State::Running { index } => rehearse(&world, r, index + 1, seed, i),
            State::Pending | State::Finished(_) => RehearsalSummary {
                name: r.name.clone(),
                outcome: ramp_core::summary::RehearsalOutcome::NotRun,
                stage: 0,
                reason: format!(
                    "The rollout had already ended before {}; the rehearsal did not run.",
                    offset(r.fault.at)
                ),
                fault_onset_s: r.fault.at.as_secs_f64(),
                detection_s: None,
                initiated_s: None,
                rollback_s: None,
                restoration_s: None,
                total_recovery_s: None,
                target_s: r.target.as_secs_f64(),
                fault: describe(&r.fault),
                reference: Metrics::default(),
                degraded: None,
            },
        };
        on(Progress::Rehearsal(&result));
        results.push(result);
    }
    world.run(None, on);
    let mut summary = world.engine.summary();
    if summary.outcome == Outcome::RolledBack {
        summary.rollback = Some(world.recover(summary.rollback.take()));
        let t = &mut summary.totals;
        t.requests += world.after_finish.requests;
        t.canary_requests += world.after_finish.canary_requests;
        t.stable_requests += world.after_finish.stable_requests;
        t.errors += world.after_finish.errors;
        t.duration_s = world.now.as_secs_f64();
    }
    if !unjudged.is_empty() {
        summary.timeline.insert(
            0,
            ramp_core::summary::TimelineEvent {
                t_s: 0.0,
                message: format!(
                    "Query gates not simulated ({}): they read Prometheus, which a simulation has not got; a live run judges them",
                    unjudged.join(", ")
                ),
            },
        );
    }
    if !unsampled.is_empty() {
        summary.timeline.insert(
            0,
            ramp_core::summary::TimelineEvent {
                t_s: 0.0,
                message: format!(
                    "Report queries not sampled ({}): they read Prometheus, which a simulation has not got; a live run's report shows their infrastructure impact",
                    unsampled.join(", ")
                ),
            },
        );
    }
    summary.mode = "simulation".into();
    summary.seed = Some(seed);
    summary.sampling = Some(chosen);
    summary.rehearsals = results;
    summary.features = world.feature_summary();
    if let Some(p) = world.population.take() {
        summary.flags = p.into_records();
    }
    Ok(summary)
}

impl World {
    /// After the engine rolled back: keeps the traffic flowing until the rollback is applied,
    /// drained and the service restored (or the limit passes), and fills in the timing.
    fn recover(&mut self, timing: Option<RollbackTiming>) -> RollbackTiming {
        let mut timing = timing.expect("a rolled-back engine records its rollback");
        if self.restore_rule.is_none() {
            let reference = self.recent(REFERENCE_SECONDS);
            self.restore_rule =
                Some((reference, DEFAULT_RESTORE_WINDOW, DEFAULT_RESTORE_TOLERANCE));
        }
        let limit = self.now.plus(RECOVERY_LIMIT);
        while self.recovery.as_ref().is_some_and(|r| r.restored.is_none()) && self.now < limit {
            let to = PlanTime((self.now.0 / 1000 + 1) * 1000);
            // The engine has finished, but users keep sending requests while the rollback
            // takes effect: they count in the run's totals.
            let slot = self.advance(to);
            let t = &mut self.after_finish;
            t.requests += slot.canary.requests + slot.stable.requests;
            t.canary_requests += slot.canary.requests;
            t.stable_requests += slot.stable.requests;
            t.errors += slot.canary.errors + slot.stable.errors;
        }
        let rec = self
            .recovery
            .clone()
            .expect("set when the rollback was initiated");
        let drained = rec
            .applied
            .map(|t| PlanTime(t.0.max(self.canary_done_ms.ceil() as u64)));
        timing.fault_onset_s = self.fault_onset.map(PlanTime::as_secs_f64);
        timing.initiated_s = rec.initiated.as_secs_f64();
        timing.rollback_s = drained.unwrap_or(rec.initiated).as_secs_f64();
        timing.restoration_s = rec.restored.map(PlanTime::as_secs_f64);
        let from = self.fault_onset.unwrap_or(rec.initiated);
        timing.total_recovery_s = rec.restored.map(|t| t.since(from).as_secs_f64());
        timing
    }

    fn feature_summary(&self) -> Vec<FeatureSummary> {
        let t = &self.tally;
        self.sim()
            .features
            .iter()
            .enumerate()
            .map(|(i, f)| FeatureSummary {
                name: f.name.clone(),
                configured_latency: f.latency,
                requests: t.requests,
                mean_added_ms: if t.requests > 0 {
                    t.added_ms[i] / t.requests as f64
                } else {
                    0.0
                },
                latency_impact: if t.base_ms > 0.0 {
                    t.added_ms[i] / t.base_ms
                } else {
                    0.0
                },
                errors: t.errors[i],
            })
            .collect()
    }
}

/// Runs one rehearsal on a fork of `world`, taken just before the fault's onset.
fn rehearse(
    world: &World,
    r: &Rehearsal,
    stage: usize,
    seed: u64,
    index: usize,
) -> RehearsalSummary {
    let mut fork = world.clone();
    // The fork draws its own random numbers so that the main timeline is not replayed.
    fork.rng =
        SimRng::seed_from_u64(seed ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(index as u64 + 1)));
    fork.faults.push(r.fault);
    // Bring the fork to the onset exactly, then record the reference before the fault.
    let onset = r.fault.at;
    fork.advance_engine_to(onset);
    let reference = fork.recent(REFERENCE_SECONDS);
    fork.restore_rule = Some((reference, r.restore_window, r.restore_tolerance));
    fork.fault_onset = Some(onset);
    let limit = onset.plus(Span((2 * r.target.0).max(600_000)));
    fork.run(Some(limit), &mut |_| {});
    let summary = fork.engine.summary();
    let mut out = RehearsalSummary {
        name: r.name.clone(),
        outcome: ramp_core::summary::RehearsalOutcome::NotDetected,
        stage,
        reason: format!("No gate failed within {} of the fault.", limit.since(onset)),
        fault_onset_s: onset.as_secs_f64(),
        detection_s: None,
        initiated_s: None,
        rollback_s: None,
        restoration_s: None,
        total_recovery_s: None,
        target_s: r.target.as_secs_f64(),
        fault: describe(&r.fault),
        reference,
        degraded: None,
    };
    if summary.outcome != Outcome::RolledBack {
        return out;
    }
    let timing = fork.recover(summary.rollback.clone());
    out.reason = timing.reason.clone();
    out.detection_s = Some(timing.detection_s);
    out.initiated_s = Some(timing.initiated_s);
    out.rollback_s = Some(timing.rollback_s);
    out.restoration_s = timing.restoration_s;
    out.total_recovery_s = timing.total_recovery_s;
    out.outcome = if timing.restoration_s.is_some() {
        ramp_core::summary::RehearsalOutcome::RolledBack
    } else {
        ramp_core::summary::RehearsalOutcome::NotRestored
    };
    out.degraded = summary.stages.last().and_then(|s| {
        let failed = s
            .gates
            .iter()
            .find(|g| g.status == ramp_core::summary::GateStatus::Fail)?;
        let mut m = Metrics {
            requests: failed.samples,
            ..Metrics::default()
        };
        for g in s.gates.iter().filter(|g| g.scope == failed.scope) {
            match g.metric {
                ramp_core::Metric::P50Ms => m.p50_ms = g.observed,
                ramp_core::Metric::P95Ms => m.p95_ms = g.observed,
                ramp_core::Metric::P99Ms => m.p99_ms = g.observed,
                ramp_core::Metric::ErrorRate => m.error_rate = g.observed,
                ramp_core::Metric::ThroughputRps => m.throughput_rps = g.observed,
            }
        }
        Some(m)
    });
    out
}

impl World {
    /// Simulates traffic up to `t` without ticking the engine past it: the slot is handed to
    /// the engine at its next tick, which `run` does.
    fn advance_engine_to(&mut self, t: PlanTime) {
        if t <= self.now {
            return;
        }
        // Split the engine's next tick at `t`: feed the part before the onset now, as a
        // short slot, so the fault starts exactly at `t`.
        let slot = self.advance(t);
        let actions = self.engine.step(t, Input::Tick(slot));
        self.apply(&actions, &mut |_| {});
    }
}

/// "+800 ms on 50% of canary requests".
pub fn describe(f: &Fault) -> String {
    let cohort = match f.cohort {
        Cohort::Canary => "canary",
        Cohort::Stable => "stable",
    };
    let what = match f.effect {
        FaultEffect::AddLatency { ms, fraction } => {
            format!(
                "+{ms:.0} ms on {:.0}% of {cohort} requests",
                fraction * 100.0
            )
        }
        FaultEffect::ErrorRate { rate } => {
            format!("{:.2}% of {cohort} requests fail", rate * 100.0)
        }
    };
    match f.duration {
        Some(d) => format!("{what} from {} for {}", offset(f.at), d),
        None => format!("{what} from {}", offset(f.at)),
    }
}

/// "T+12h00m".
pub fn offset(t: PlanTime) -> String {
    let s = t.0 / 1000;
    format!("T+{}h{:02}m", s / 3600, (s % 3600) / 60)
}
