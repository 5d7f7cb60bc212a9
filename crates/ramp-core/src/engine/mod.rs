//! The rollout engine: a pure state machine.
//!
//! Drivers feed it `Input`s stamped with plan time and carry out the `Action`s it returns.
//! It evaluates every gate on its sliding window at each tick (a few seconds of plan time),
//! so a breach is acted on within seconds; records a checkpoint row at each checkpoint
//! interval; decides at each stage end (proceed, monitor, halt); and rolls back at any time
//! when a gate fails or an operator aborts.
//!
//! **Architecture Invariant:** the engine never awaits, sleeps, reads a clock, draws a random
//! number or does I/O. Given the same inputs it returns the same actions, byte for byte; the
//! simulator and the live driver differ only in where the inputs come from.

mod coverage;
mod gates;
mod queries;
mod relative;
mod snapshot;

pub use gates::{evaluate, explain, explain_stage, group, undecided};
pub use queries::explain_query;
pub use snapshot::{plan_fingerprint, Snapshot, SnapshotError, SNAPSHOT_VERSION};

use crate::plan::{Bound, Plan, Scope};
use crate::summary::{
    ApprovalSummary, BaselineSummary, CheckpointSummary, Confidence, Decision, GateResult,
    GateSpec, GateStatus, Metrics, Outcome, PlannedStage, QueryResult, RollbackTiming,
    ScopedMetrics, StageSummary, Summary, TestResult, TimelineEvent, Totals,
};
use crate::units::{PlanTime, Span, Weight};
use gates::{average, closest_sentence, confidence, metrics_of, scoped};
use ramp_stats::verdict::{
    mann_whitney_verdict, MultiWindowBurn, SequentialCountTest, SequentialLatencyTest,
};
use ramp_stats::{CohortStats, SlidingWindow, Slot};
use std::sync::Arc;

/// What a driver tells the engine. Serializable because a live driver journals every input
/// before feeding it, and resumes by replaying them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Input {
    /// Begin the rollout: the first stage's weight is set.
    Start,
    /// Observations of both cohorts over `[slot.start_ms, slot.end_ms)`, after which the
    /// engine evaluates its gates as of `slot.end_ms`.
    Tick(Slot),
    /// An operator rolls back now.
    Abort {
        /// Who asked, for the record.
        who: String,
        /// Why, for the record.
        reason: String,
    },
    /// An operator holds the rollout at its current weight: gates keep running (a failure
    /// still rolls back) but the stage does not end until `Resume`.
    Pause {
        /// Who asked, for the record.
        who: String,
        /// Why, for the record.
        reason: String,
    },
    /// An operator lifts a pause; a stage whose time is up ends at the next tick.
    Resume {
        /// Who asked, for the record.
        who: String,
        /// Why, for the record.
        reason: String,
    },
    /// An operator ends the current stage now as `proceed` and moves on: to the next stage,
    /// or with `full` straight to 100 % and a promoted outcome. Ignored while a later stage
    /// still lacks approvals (drivers refuse it before it gets here).
    Promote {
        /// Who asked, for the record.
        who: String,
        /// Why, for the record.
        reason: String,
        /// Skip every remaining stage.
        full: bool,
    },
    /// A named approver approves a stage that requires them: `stage` when given, else the
    /// earliest stage still to come that lacks their approval. Approving a later stage ahead
    /// of time is what lets `promote --full` go past several gated stages.
    Approve {
        /// The approver's name, as the plan's `approvals` list spells it.
        who: String,
        /// A note for the record.
        reason: String,
        /// The stage approved (1-based), when the approver names one; absent from journals
        /// written before it existed, and left out when `None` so they replay unchanged.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stage: Option<usize>,
    },
    /// Nothing was observed over `[start_ms, end_ms)` (the metrics source restarted — its counters began again — or could not be read): that time counts toward no stage's observed duration and no window covers it.
    ///
    /// Drivers feed it at `end_ms`, and the next slot starts there. The running stage's end
    /// moves out by its part of the gap, since a decision needs the stage's planned duration
    /// of observed time; a stage unobserved for longer than its limit
    /// ([`Plan::max_unobserved_of`]) halts the rollout. A gap before the start or after the
    /// finish changes no stage.
    Gap {
        /// Start of the unobserved time, ms of plan time (the end of the last slot).
        start_ms: u64,
        /// End of the unobserved time (exclusive), ms of plan time: where the next slot starts.
        end_ms: u64,
        /// Why nothing was observed, as a phrase for events and reasons ("proxy restarted:
        /// its counters began again").
        reason: String,
    },
    /// One evaluation of the query gate `name` (`[[gates.query]]`): the number its
    /// expression returned, or `None` with the reason it returned none. A gate whose
    /// `consecutive` evaluations in a row are beyond its fail level rolls the canary back.
    Query {
        /// The gate's name, as in the plan.
        name: String,
        /// The value; `None` when the query returned no usable number.
        value: Option<f64>,
        /// Why there was no value ("Prometheus returned no series"), for status and report.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        no_data: Option<String>,
    },
    /// The driver stops the rollout before or during a stage without rolling back (a failed
    /// pre-deployment check): the outcome is `halted` and the weight stays where it is.
    Halt {
        /// Who or what stopped it ("pre-deployment check").
        who: String,
        /// Why, as a sentence.
        reason: String,
    },
}

/// What the engine asks its driver to do, or tells it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Route this share of traffic to the canary.
    SetWeight(Weight),
    /// Stage `index` (1-based) began.
    StageStarted {
        /// 1-based stage number.
        index: usize,
        /// Its weight.
        weight: Weight,
    },
    /// A checkpoint row was recorded (drivers print the monitoring panel from it).
    Checkpoint(Box<CheckpointReport>),
    /// A stage ended with a decision.
    StageDecided {
        /// 1-based stage number.
        index: usize,
        /// The decision.
        decision: Decision,
        /// Its reasons, as sentences.
        reasons: Vec<String>,
    },
    /// A gate failed or an operator aborted: the weight goes to 0 now.
    RollbackInitiated {
        /// 1-based stage number.
        stage: usize,
        /// What failed, as a sentence.
        reason: String,
    },
    /// The rollout holds until these people approve stage `stage` (1-based); the weight
    /// stays where it is and gates keep running.
    AwaitingApproval {
        /// 1-based stage number waiting to start.
        stage: usize,
        /// Approvers still missing, in plan order.
        missing: Vec<String>,
    },
    /// The rollout is over.
    Finished(Outcome),
}

/// Everything a progress display needs at a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointReport {
    /// 1-based stage number.
    pub stage: usize,
    /// Number of stages in the plan.
    pub stages: usize,
    /// The stage's weight.
    pub weight: Weight,
    /// Time spent in the stage so far, unobserved time included.
    pub elapsed: Span,
    /// The part of `elapsed` that was not observed (gaps), which moved the stage's end out
    /// by as much: panels show "observed X of Y (Z unobserved)" when it is not zero.
    pub unobserved: Span,
    /// The stage's planned duration (of observed time).
    pub duration: Span,
    /// The row recorded.
    pub checkpoint: CheckpointSummary,
    /// Mean of the stage's checkpoint headline metrics so far (the staging report's running averages).
    pub running_average: Metrics,
    /// The baseline as known now.
    pub baseline: Metrics,
}

/// Where the engine is. Serializable as part of an engine snapshot ([`Snapshot`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum State {
    /// Waiting for `Input::Start`.
    Pending,
    /// Stage `index` (0-based) is running.
    Running {
        /// 0-based index into the plan's stages.
        index: usize,
    },
    /// The rollout ended.
    Finished(Outcome),
}

/// Running totals of both cohorts.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Pair {
    canary: CohortStats,
    stable: CohortStats,
}

impl Pair {
    fn add(&mut self, slot: &Slot) {
        self.canary.merge(&slot.canary);
        self.stable.merge(&slot.stable);
    }
    fn clear(&mut self) {
        self.canary.clear();
        self.stable.clear();
    }
}

/// The running stage as a status display explains it: which stage, since when, and how its
/// gates and statistical tests stand. A named struct rather than a tuple so that a caller
/// cannot mix up the stage's index with its start, or the gates with the tests.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveView {
    /// The running stage, 0-based.
    pub index: usize,
    /// When the stage started, in plan time.
    pub started: PlanTime,
    /// The stage's unobserved time so far (gaps), ms; it moved `ends_at` out by as much, so
    /// that status can say "observed 28 s of 40 s; 12 s unobserved".
    pub unobserved_ms: u64,
    /// When the stage ends unless paused or held for approvals: its planned duration after
    /// `started`, moved out by its unobserved time.
    pub ends_at: PlanTime,
    /// Its gates on their sliding windows as of the last tick.
    pub gates: Vec<GateResult>,
    /// Its statistical tests as of the last tick.
    pub tests: Vec<TestResult>,
    /// Its query gates as of their last evaluation.
    pub queries: Vec<QueryResult>,
}

/// The rollout engine. `Clone` so that a simulation can fork it (rehearsals).
#[derive(Debug, Clone)]
pub struct Engine {
    /// The validated plan, shared with the driver.
    plan: Arc<Plan>,
    /// Where the rollout is.
    state: State,
    /// The weight last asked of the router.
    weight: Weight,
    /// Sliding windows of every gate length.
    windows: SlidingWindow,
    /// When the current stage started.
    stage_started: PlanTime,
    /// The current stage's data so far.
    stage_data: Pair,
    /// Data since the last checkpoint.
    interval_data: Pair,
    /// When the last checkpoint (or the stage start) was.
    last_checkpoint: PlanTime,
    /// The stable cohort while the canary was below 100 %: the measured baseline.
    baseline_stable: CohortStats,
    /// Plan time the measured baseline covers, ms.
    baseline_ms: u64,
    /// Requests of both cohorts over `baseline_ms`, for the measured baseline throughput.
    baseline_requests: u64,
    /// Per gate of the current stage: the worst non-`no_data` window value seen, with the
    /// end of its 99.9 % interval nearest to passing (`GateResult::conservative`), solved
    /// when it is read.
    worst: Vec<Option<(f64, gates::Conservative)>>,
    /// The last time fed in.
    now: PlanTime,
    /// Finished stages and the current one.
    stages: Vec<StageSummary>,
    /// Notable events.
    timeline: Vec<TimelineEvent>,
    /// The rollback, if one happened.
    rollback: Option<RollbackTiming>,
    /// Whole-run totals.
    totals: Totals,
    /// The stage's sequential error test, when the plan asks for it and stable has traffic.
    seq_errors: Option<SequentialCountTest>,
    /// The stage's sequential latency test, likewise.
    seq_latency: Option<SequentialLatencyTest>,
    /// The relative and burn-rate gates' latest window evaluation in this stage.
    relative: Vec<TestResult>,
    /// Who paused the rollout and why, while it is paused.
    paused: Option<String>,
    /// Approvals given so far: (0-based stage index, approver name).
    approvals: Vec<(usize, String)>,
    /// The same approvals with when and why, for the summary's sign-off record.
    approval_records: Vec<ApprovalSummary>,
    /// `Start` arrived while the first stage still lacked approvals.
    start_requested: bool,
    /// The stage (0-based) whose missing approvals were last announced, so the announcement
    /// is made once rather than at every tick.
    announced_wait: Option<usize>,
    /// The running stage's unobserved time (see `coverage`).
    coverage: coverage::Coverage,
    /// The query gates' states in the running stage.
    queries: queries::Queries,
}

/// The multiwindow burn-rate rules of the Google SRE workbook ("Alerting on SLOs"): fast
/// (14.4× over 1 h and 5 min) and slow (6× over 6 h and 30 min).
const BURN_RULES: [MultiWindowBurn; 2] = [MultiWindowBurn::FAST, MultiWindowBurn::SLOW];

impl Engine {
    /// An engine for `plan`, waiting for `Input::Start`.
    pub fn new(plan: Arc<Plan>) -> Engine {
        let spans: Vec<u64> = plan
            .stages
            .iter()
            .flat_map(|s| s.gates.iter().map(|g| g.window.0))
            .chain(plan.relative.iter().map(|g| g.window.0))
            .chain(
                plan.burn_rate_slo
                    .iter()
                    .flat_map(|_| BURN_RULES.iter().flat_map(|r| r.spans())),
            )
            .collect();
        Engine {
            windows: SlidingWindow::new(&spans),
            plan,
            state: State::Pending,
            weight: Weight::ZERO,
            stage_started: PlanTime::ZERO,
            stage_data: Pair::default(),
            interval_data: Pair::default(),
            last_checkpoint: PlanTime::ZERO,
            baseline_stable: CohortStats::new(),
            baseline_ms: 0,
            baseline_requests: 0,
            worst: Vec::new(),
            now: PlanTime::ZERO,
            stages: Vec::new(),
            timeline: Vec::new(),
            rollback: None,
            totals: Totals::default(),
            seq_errors: None,
            seq_latency: None,
            relative: Vec::new(),
            paused: None,
            approvals: Vec::new(),
            approval_records: Vec::new(),
            start_requested: false,
            announced_wait: None,
            coverage: coverage::Coverage::default(),
            queries: queries::Queries::default(),
        }
    }

    /// Where the rollout is.
    pub fn state(&self) -> State {
        self.state
    }

    /// The weight last asked of the router.
    pub fn weight(&self) -> Weight {
        self.weight
    }

    /// The plan being run.
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// The next plan time at which the driver should tick: one evaluation interval on, but
    /// never past the next checkpoint or stage end (moved out by the stage's unobserved
    /// time), so that those land exactly.
    pub fn next_tick(&self) -> PlanTime {
        let every = self.now.plus(self.plan.evaluate_every);
        match self.state {
            State::Running { index } => {
                let stage = &self.plan.stages[index];
                let end = self.stage_end(index);
                let cp = self.checkpoint_due(stage.checkpoint, end);
                // A checkpoint that fell due while nothing was observed (a gap) is recorded
                // at the next regular tick, not by a slot of a millisecond; the stage end
                // still lands exactly.
                [cp, end]
                    .into_iter()
                    .filter(|t| *t > self.now)
                    .fold(every, PlanTime::min)
                    .max(PlanTime(self.now.0 + 1))
            }
            State::Pending | State::Finished(_) => every,
        }
    }

    /// Feeds one input at plan time `now` and returns what to do.
    pub fn step(&mut self, now: PlanTime, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Start => {
                if self.state == State::Pending {
                    self.now = now;
                    self.start_requested = true;
                    self.start_when_approved(&mut out);
                }
            }
            Input::Gap {
                start_ms,
                end_ms,
                reason,
            } => {
                self.now = self.now.max(PlanTime(end_ms)).max(now);
                self.gap(start_ms, end_ms, &reason, &mut out);
            }
            Input::Tick(slot) => {
                self.now = self.now.max(PlanTime(slot.end_ms)).max(now);
                self.observe(slot);
                if let State::Running { index } = self.state {
                    self.evaluate(index, &mut out);
                }
            }
            Input::Abort { who, reason } => {
                self.now = self.now.max(now);
                let reason = format!("{} aborted{}", operator(&who), because(&reason));
                match self.state {
                    State::Running { index } => {
                        let gates = self.window_gates(index);
                        self.roll_back(index, reason, gates, &mut out);
                    }
                    State::Pending => {
                        // No user has reached the canary yet: nothing to roll back.
                        self.event(format!("Rollout stopped before its first stage: {reason}"));
                        self.finish(Outcome::Halted, &mut out);
                    }
                    State::Finished(_) => {}
                }
            }
            Input::Pause { who, reason } => {
                self.now = self.now.max(now);
                if !matches!(self.state, State::Finished(_)) && self.paused.is_none() {
                    let why = format!("{} paused{}", operator(&who), because(&reason));
                    self.event(format!("Rollout paused by {who}{}", because(&reason)));
                    self.paused = Some(why);
                }
            }
            Input::Resume { who, reason } => {
                self.now = self.now.max(now);
                if self.paused.take().is_some() {
                    self.event(format!("Rollout resumed by {who}{}", because(&reason)));
                }
            }
            Input::Promote { who, reason, full } => {
                self.now = self.now.max(now);
                if let State::Running { index } = self.state {
                    self.promote(index, &who, &reason, full, &mut out);
                }
            }
            Input::Approve { who, reason, stage } => {
                self.now = self.now.max(now);
                self.approve(&who, &reason, stage, &mut out);
            }
            Input::Query {
                name,
                value,
                no_data,
            } => {
                self.now = self.now.max(now);
                if let State::Running { index } = self.state {
                    let plan = Arc::clone(&self.plan);
                    if let Some(failed) =
                        self.queries
                            .record(&plan.queries, &name, value, no_data, self.now)
                    {
                        let gates = self.window_gates(index);
                        self.roll_back(index, explain_query(&failed), gates, &mut out);
                    }
                }
            }
            Input::Halt { who, reason } => {
                self.now = self.now.max(now);
                match self.state {
                    State::Running { index } => {
                        let gates = self.window_gates(index);
                        let reason = format!("{who}: {reason}");
                        self.close_stage(Decision::Halt, gates, vec![reason.clone()]);
                        self.event(format!("Rollout halted in stage {}: {reason}", index + 1));
                        out.push(Action::StageDecided {
                            index: index + 1,
                            decision: Decision::Halt,
                            reasons: vec![reason],
                        });
                        self.finish(Outcome::Halted, &mut out);
                    }
                    State::Pending => {
                        self.event(format!(
                            "Rollout halted before its first stage: {who}: {reason}"
                        ));
                        self.finish(Outcome::Halted, &mut out);
                    }
                    State::Finished(_) => {}
                }
            }
        }
        out
    }

    /// The running stage as of the last tick (see [`LiveView`]); `None` unless a stage runs.
    pub fn live_view(&self) -> Option<LiveView> {
        match self.state {
            State::Running { index } => Some(LiveView {
                index,
                started: self.stage_started,
                gates: self.window_gates(index),
                tests: self.tests(),
                queries: self.queries.results(),
                unobserved_ms: self.coverage.stage().0,
                ends_at: self.stage_end(index),
            }),
            State::Pending | State::Finished(_) => None,
        }
    }

    /// The last plan time fed in.
    pub fn now(&self) -> PlanTime {
        self.now
    }

    /// Who paused the rollout and why, while it is paused.
    pub fn paused(&self) -> Option<&str> {
        self.paused.as_deref()
    }

    /// The stage (0-based) that would start next: the current one's successor, or the first
    /// while pending. `None` when none is left or the rollout is over.
    fn next_stage(&self) -> Option<usize> {
        let next = match self.state {
            State::Pending => 0,
            State::Running { index } => index + 1,
            State::Finished(_) => return None,
        };
        (next < self.plan.stages.len()).then_some(next)
    }

    /// Approvers that stage `index` (0-based) requires and has not had yet, in plan order.
    pub fn missing_approvals(&self, index: usize) -> Vec<String> {
        self.plan.stages.get(index).map_or_else(Vec::new, |st| {
            st.approvals
                .iter()
                .filter(|name| {
                    !self
                        .approvals
                        .iter()
                        .any(|(i, n)| *i == index && n == *name)
                })
                .cloned()
                .collect()
        })
    }

    /// The next stage and the approvers it still lacks, when it lacks any.
    pub fn awaiting(&self) -> Option<(usize, Vec<String>)> {
        let next = self.next_stage()?;
        let missing = self.missing_approvals(next);
        (!missing.is_empty()).then_some((next, missing))
    }

    /// Whether `who` is an approver the next stage still needs; drivers check this to answer
    /// an operator before the input is journaled.
    pub fn needs_approval_from(&self, who: &str) -> bool {
        self.awaiting()
            .is_some_and(|(_, missing)| missing.iter().any(|m| m == who))
    }

    /// The stage (0-based) an approval by `who` applies to: `stage` (1-based) when given and
    /// it is still to come and lacks `who`, else the earliest stage still to come that lacks
    /// `who`. `None` when the approval would change nothing; drivers check this to refuse an
    /// operator before the input is journaled.
    pub fn approval_target(&self, who: &str, stage: Option<usize>) -> Option<usize> {
        let next = self.next_stage()?;
        let lacks = |i: usize| self.missing_approvals(i).iter().any(|m| m == who);
        match stage {
            Some(s) => {
                let i = s.checked_sub(1)?;
                (i >= next && lacks(i)).then_some(i)
            }
            None => (next..self.plan.stages.len()).find(|&i| lacks(i)),
        }
    }

    fn approve(&mut self, who: &str, reason: &str, stage: Option<usize>, out: &mut Vec<Action>) {
        let Some(target) = self.approval_target(who, stage) else {
            return;
        };
        self.approvals.push((target, who.to_string()));
        self.approval_records.push(ApprovalSummary {
            stage: target + 1,
            who: who.to_string(),
            t_s: self.now.as_secs_f64(),
            reason: reason.to_string(),
        });
        self.event(format!(
            "Stage {} approved by {who}{}",
            target + 1,
            because(reason)
        ));
        if self.state == State::Pending {
            self.start_when_approved(out);
        }
        // A running stage whose time is up moves on at the next tick, with its end judged on
        // all of its data, waiting included.
    }

    /// Starts the first stage once `Start` has arrived and its approvals are complete.
    fn start_when_approved(&mut self, out: &mut Vec<Action>) {
        if !self.start_requested || self.state != State::Pending {
            return;
        }
        let missing = self.missing_approvals(0);
        if missing.is_empty() {
            let now = self.now;
            self.start_stage(0, now, out);
        } else if self.announced_wait != Some(0) {
            self.announced_wait = Some(0);
            self.event(format!(
                "Stage 1 waits for approval from {}",
                missing.join(", ")
            ));
            out.push(Action::AwaitingApproval { stage: 1, missing });
        }
    }

    /// An operator ends stage `index` now as `proceed`.
    fn promote(
        &mut self,
        index: usize,
        who: &str,
        reason: &str,
        full: bool,
        out: &mut Vec<Action>,
    ) {
        let last = self.plan.stages.len() - 1;
        let blocked = if full {
            (index + 1..=last).any(|i| !self.missing_approvals(i).is_empty())
        } else {
            index < last && !self.missing_approvals(index + 1).is_empty()
        };
        if blocked {
            return;
        }
        let gates = self.window_gates(index);
        let target = if full { "100%" } else { "the next stage" };
        let why = format!("{} promoted to {target}{}", operator(who), because(reason));
        self.close_stage(Decision::Proceed, gates, vec![why.clone()]);
        self.event(format!(
            "Stage {} promoted by {who} to {target}{}",
            index + 1,
            because(reason)
        ));
        out.push(Action::StageDecided {
            index: index + 1,
            decision: Decision::Proceed,
            reasons: vec![why],
        });
        self.paused = None;
        if !full && index < last {
            let now = self.now;
            self.start_stage(index + 1, now, out);
        } else {
            if self.weight != Weight::FULL {
                self.weight = Weight::FULL;
                out.push(Action::SetWeight(Weight::FULL));
            }
            self.finish_promoted(out);
        }
    }

    /// Finishes promoted, with caveats when any stage was decided `monitor`.
    fn finish_promoted(&mut self, out: &mut Vec<Action>) {
        let caveats = self
            .stages
            .iter()
            .any(|s| s.decision == Some(Decision::Monitor));
        let outcome = if caveats {
            Outcome::PromotedWithCaveats
        } else {
            Outcome::Promoted
        };
        self.finish(outcome, out);
    }

    /// The record of the rollout so far; complete once the state is `Finished`.
    pub fn summary(&self) -> Summary {
        let d = &self.plan.deployment;
        let outcome = match self.state {
            State::Finished(o) => o,
            State::Pending | State::Running { .. } => Outcome::Halted,
        };
        Summary {
            deployment_id: d.id.clone(),
            service: d.service.clone(),
            environment: d.environment.clone(),
            start: d.start.clone(),
            mode: String::new(),
            seed: None,
            sampling: None,
            outcome,
            evaluate_every_s: self.plan.evaluate_every.as_secs_f64(),
            baseline: self.baseline(),
            plan: self.planned(),
            stages: self.stages.clone(),
            rollback: self.rollback.clone(),
            rehearsals: Vec::new(),
            features: Vec::new(),
            totals: self.totals,
            timeline: self.timeline.clone(),
            flags: Vec::new(),
            checks: Vec::new(),
            approvals: self.approval_records.clone(),
            next: None,
            infrastructure: Vec::new(),
        }
    }

    /// The plan's stages and gates as the summary records them.
    fn planned(&self) -> Vec<PlannedStage> {
        self.plan
            .stages
            .iter()
            .enumerate()
            .map(|(i, st)| PlannedStage {
                index: i + 1,
                weight: st.weight.percent(),
                duration_s: st.duration.as_secs_f64(),
                checkpoint_s: st.checkpoint.as_secs_f64(),
                gates: st
                    .gates
                    .iter()
                    .map(|g| GateSpec {
                        metric: g.metric,
                        scope: g.scope,
                        max: (g.bound == Bound::Max).then_some(g.threshold),
                        min: (g.bound == Bound::Min).then_some(g.threshold),
                        warn: g.warn,
                        window_s: g.window.as_secs_f64(),
                        min_samples: g.min_samples,
                    })
                    .collect(),
            })
            .collect()
    }

    /// The baseline: the plan's fixed numbers where given, the stable cohort's measured
    /// numbers elsewhere.
    pub fn baseline(&self) -> BaselineSummary {
        let measured = metrics_of(
            &self.baseline_stable,
            &CohortStats::new(),
            Scope::Canary,
            self.baseline_ms,
        );
        let mut m = measured;
        let mut source = "measured";
        if let Some(b) = &self.plan.baseline {
            source = "plan";
            m.p50_ms = b.p50_ms.or(m.p50_ms);
            m.p95_ms = b.p95_ms.or(m.p95_ms);
            m.p99_ms = b.p99_ms.or(m.p99_ms);
            m.error_rate = b.error_rate.or(m.error_rate);
            m.throughput_rps = b.throughput_rps.or(m.throughput_rps);
        } else if self.baseline_ms > 0 {
            // The measured throughput is the whole service's, not just the stable cohort's.
            m.throughput_rps =
                Some(self.baseline_requests as f64 / (self.baseline_ms as f64 / 1000.0));
        }
        BaselineSummary {
            source: source.to_string(),
            metrics: m,
        }
    }

    /// Takes the slot into every running total; the sliding windows keep the slot itself
    /// (moved in last, not copied: this runs at every tick).
    fn observe(&mut self, slot: Slot) {
        if let Some(t) = &mut self.seq_errors {
            t.observe(&slot.canary, &slot.stable);
        }
        if let Some(t) = &mut self.seq_latency {
            t.observe(&slot.canary.latency, &slot.stable.latency);
        }
        self.coverage.observed(slot.end_ms);
        self.stage_data.add(&slot);
        self.interval_data.add(&slot);
        self.totals.requests += slot.canary.requests + slot.stable.requests;
        self.totals.canary_requests += slot.canary.requests;
        self.totals.stable_requests += slot.stable.requests;
        self.totals.errors += slot.canary.errors + slot.stable.errors;
        self.totals.duration_s = PlanTime(slot.end_ms).as_secs_f64();
        if self.weight < Weight::FULL && !matches!(self.state, State::Finished(_)) {
            self.baseline_stable.merge(&slot.stable);
            self.baseline_ms += slot.end_ms.saturating_sub(slot.start_ms);
            self.baseline_requests += slot.canary.requests + slot.stable.requests;
        }
        self.windows.push(slot);
    }

    fn start_stage(&mut self, index: usize, now: PlanTime, out: &mut Vec<Action>) {
        let plan = Arc::clone(&self.plan);
        let stage = &plan.stages[index];
        self.state = State::Running { index };
        self.weight = stage.weight;
        self.stage_started = now;
        self.last_checkpoint = now;
        self.stage_data.clear();
        self.interval_data.clear();
        self.worst = vec![None; stage.gates.len()];
        // Each stage starts new tests: the canary's share (the tests' null) changed. At 100 %
        // there is no stable traffic to compare with, so no test runs.
        let compare = stage.weight < Weight::FULL;
        self.seq_errors = plan
            .sequential
            .errors
            .filter(|_| compare)
            .map(SequentialCountTest::new);
        self.seq_latency = plan
            .sequential
            .latency
            .filter(|_| compare)
            .map(|(alpha, floor)| SequentialLatencyTest::with_floor(alpha, floor));
        self.relative.clear();
        self.coverage.start_stage();
        self.queries.start_stage(&plan.queries);
        self.stages.push(StageSummary {
            index: index + 1,
            weight: stage.weight.percent(),
            planned_duration_s: stage.duration.as_secs_f64(),
            started_s: now.as_secs_f64(),
            elapsed_s: 0.0,
            unobserved_s: 0.0,
            checkpoint_s: stage.checkpoint.as_secs_f64(),
            decision: None,
            confidence: Confidence::Low,
            reasons: Vec::new(),
            metrics: Metrics::default(),
            metrics_by_scope: ScopedMetrics::default(),
            gates: Vec::new(),
            checkpoints: Vec::new(),
            tests: Vec::new(),
            queries: Vec::new(),
            members: Vec::new(),
        });
        self.event(format!(
            "Stage {} started: canary at {} for {}",
            index + 1,
            stage.weight,
            stage.duration
        ));
        out.push(Action::SetWeight(stage.weight));
        out.push(Action::StageStarted {
            index: index + 1,
            weight: stage.weight,
        });
    }

    fn event(&mut self, message: String) {
        self.timeline.push(TimelineEvent {
            t_s: self.now.as_secs_f64(),
            message,
        });
    }

    /// Every gate of stage `index` on its sliding window, as of now.
    fn window_gates(&self, index: usize) -> Vec<GateResult> {
        self.gates_with(index, evaluate)
    }

    /// Every gate of stage `index` on its sliding window, as of now, as [`Engine::window_gates`]
    /// gives them but with throughput bounds left for [`gates::complete`]: this runs at every
    /// tick, and the bounds are read only from the results that are kept.
    fn window_gates_deferred(&self, index: usize) -> Vec<GateResult> {
        self.gates_with(index, gates::evaluate_deferred)
    }

    /// Every gate of stage `index` judged by `judge` on its sliding window.
    fn gates_with(
        &self,
        index: usize,
        judge: fn(&crate::plan::Gate, &CohortStats, &CohortStats, u64) -> GateResult,
    ) -> Vec<GateResult> {
        self.plan.stages[index]
            .gates
            .iter()
            .map(|g| {
                let v = self
                    .windows
                    .view(g.window.0)
                    .expect("every gate window is registered in Engine::new");
                judge(g, v.canary, v.stable, v.covered_ms)
            })
            .collect()
    }

    fn evaluate(&mut self, index: usize, out: &mut Vec<Action>) {
        let plan = Arc::clone(&self.plan);
        let stage_gates = &plan.stages[index].gates;
        let mut gates = self.window_gates_deferred(index);
        // Every result that leaves this function (a rollback's, a checkpoint's) is completed
        // first, so that it is exactly what `window_gates` would have given.
        let complete_all = |gates: &mut Vec<GateResult>| {
            for (g, r) in stage_gates.iter().zip(gates.iter_mut()) {
                gates::complete(g, r);
            }
        };
        for (i, r) in gates.iter_mut().enumerate() {
            if r.status == GateStatus::NoData {
                continue;
            }
            if let Some(v) = r.observed {
                let bound = stage_gates[i].bound;
                let w = &mut self.worst[i];
                let worse = match (*w, bound) {
                    (None, _) => true,
                    (Some((o, _)), Bound::Max) => v > o,
                    (Some((o, _)), Bound::Min) => v < o,
                };
                if worse {
                    *w = Some((v, gates::Conservative::of(&stage_gates[i], r)));
                }
            }
        }
        if gates.iter().any(|r| r.status == GateStatus::Fail) {
            complete_all(&mut gates);
        }
        if let Some(failed) = gates.iter().find(|r| r.status == GateStatus::Fail) {
            let reason = explain(failed);
            self.roll_back(index, reason, gates.clone(), out);
            return;
        }
        self.relative = if self.plan.stages[index].weight < Weight::FULL {
            self.relative_gates()
        } else {
            Vec::new()
        };
        self.relative.extend(self.burn_rates());
        if let Some(t) = self.tests().into_iter().find(|t| t.reject) {
            let reason = format!("{} test: {}", t.test.replace('_', " "), t.explanation);
            complete_all(&mut gates);
            self.roll_back(index, reason, gates, out);
            return;
        }
        let end = self.stage_end(index);
        let due = self.checkpoint_due(self.plan.stages[index].checkpoint, end);
        if self.now >= due {
            complete_all(&mut gates);
            self.record_checkpoint(index, gates, out);
        }
        // A query gate in a streak of failures holds the stage end: it fails or recovers
        // first, so a stage is never promoted on a value beyond its fail level.
        if self.now >= end
            && self.paused.is_none()
            && !self.queries.holds(&self.plan.queries, self.now.since(end))
        {
            self.end_stage(index, out);
        }
    }

    /// When the next checkpoint row is due: one interval after the last, and never past the
    /// stage end so that the end lands on one. A stage held past its end (paused, or waiting
    /// for approvals) has had that row; it then records one per interval, not one per tick.
    fn checkpoint_due(&self, every: Span, end: PlanTime) -> PlanTime {
        let next = self.last_checkpoint.plus(every);
        if end > self.last_checkpoint {
            next.min(end)
        } else {
            next
        }
    }

    fn record_checkpoint(&mut self, index: usize, gates: Vec<GateResult>, out: &mut Vec<Action>) {
        // Rates over the interval are over the time it observed.
        let span = self
            .now
            .since(self.last_checkpoint)
            .0
            .saturating_sub(self.coverage.interval().0);
        let by_scope = scoped(&self.interval_data, span);
        let cp = CheckpointSummary {
            t_s: self.now.as_secs_f64(),
            metrics: by_scope.headline(),
            metrics_by_scope: by_scope,
            gates,
        };
        self.interval_data.clear();
        self.coverage.checkpoint();
        self.last_checkpoint = self.now;
        let plan = Arc::clone(&self.plan);
        let stage = &plan.stages[index];
        let summary = self
            .stages
            .last_mut()
            .expect("a running stage has a record");
        summary.checkpoints.push(cp.clone());
        let running_average = average(summary.checkpoints.iter().map(|c| &c.metrics));
        let report = CheckpointReport {
            stage: index + 1,
            stages: self.plan.stages.len(),
            weight: stage.weight,
            elapsed: self.now.since(self.stage_started),
            unobserved: self.coverage.stage(),
            duration: stage.duration,
            checkpoint: cp,
            running_average,
            baseline: self.baseline().metrics,
        };
        out.push(Action::Checkpoint(Box::new(report)));
    }

    /// Fills the current stage's record from its data.
    fn close_stage(&mut self, decision: Decision, gates: Vec<GateResult>, reasons: Vec<String>) {
        let tests = self.tests();
        let queries = self.queries.results();
        let elapsed = self.now.since(self.stage_started);
        let by_scope = scoped(&self.stage_data, self.stage_observed().0);
        let confidence = confidence(
            &gates,
            decision,
            &self.plan.stages[self.stages.len() - 1].gates,
        );
        let s = self
            .stages
            .last_mut()
            .expect("a running stage has a record");
        s.elapsed_s = elapsed.as_secs_f64();
        s.unobserved_s = self.coverage.stage().as_secs_f64();
        s.decision = Some(decision);
        s.confidence = confidence;
        s.reasons = reasons;
        s.metrics = by_scope.headline();
        s.metrics_by_scope = by_scope;
        s.gates = gates;
        s.tests = tests;
        s.queries = queries;
    }

    fn end_stage(&mut self, index: usize, out: &mut Vec<Action>) {
        let plan = Arc::clone(&self.plan);
        let stage = &plan.stages[index];
        // The stage is judged on the time it observed, not on the time it took.
        let observed = self.stage_observed();
        let span = observed.0;
        let gates: Vec<GateResult> = stage
            .gates
            .iter()
            .map(|g| evaluate(g, &self.stage_data.canary, &self.stage_data.stable, span))
            .collect();
        let no_data: Vec<&GateResult> = gates
            .iter()
            .filter(|r| r.status == GateStatus::NoData)
            .collect();
        let warned: Vec<&GateResult> = gates
            .iter()
            .filter(|r| r.status == GateStatus::Warn)
            .collect();
        let failed: Vec<&GateResult> = gates
            .iter()
            .filter(|r| r.status == GateStatus::Fail)
            .collect();
        // A latency measured with coarse buckets whose bucket holds the fail level: the data
        // cannot say which side the canary is on.
        let undecided: Vec<&GateResult> = gates.iter().filter(|r| undecided(r)).collect();
        let mut reasons = Vec::new();
        let decision = if gates.is_empty() {
            reasons.push(
                "No gate judged this stage, so there is no evidence that the canary is healthy; Ramp never promotes without evidence.".to_string(),
            );
            Decision::Halt
        } else if !failed.is_empty() {
            // Over the whole stage a gate is beyond its fail level even though no single
            // window was: the data as a whole says the canary hurts users.
            for r in &failed {
                reasons.push(explain_stage(r));
            }
            Decision::Rollback
        } else if !no_data.is_empty() {
            for r in &no_data {
                reasons.push(format!(
                    "{} {} had no data: {} requests over the stage, fewer than the {} required; Ramp never promotes without data.",
                    r.scope.key(),
                    r.metric,
                    group(r.samples),
                    group(stage.gates.iter().find(|g| g.metric == r.metric).map(|g| g.min_samples).unwrap_or(0))
                ));
            }
            Decision::Halt
        } else if !undecided.is_empty() {
            for r in &undecided {
                reasons.push(format!(
                    "{} Ramp never promotes without evidence (set the fail level on a bucket bound, or export finer buckets).",
                    explain_stage(r)
                ));
            }
            Decision::Halt
        } else if !warned.is_empty() {
            for r in &warned {
                reasons.push(explain_stage(r));
            }
            Decision::Monitor
        } else {
            Decision::Proceed
        };
        let decision = self.judge_queries(decision, &mut reasons);
        if matches!(decision, Decision::Proceed | Decision::Monitor) {
            let passed = gates
                .iter()
                .filter(|r| r.status == GateStatus::Pass)
                .count();
            reasons.insert(0, self.passed_over(passed, gates.len(), observed));
            if let Some(closest) = self.closest_window(index) {
                reasons.push(closest);
            }
        }
        if matches!(decision, Decision::Proceed | Decision::Monitor)
            && index + 1 < self.plan.stages.len()
        {
            let missing = self.missing_approvals(index + 1);
            if !missing.is_empty() {
                // The stage passed but the next one needs people: hold here, gates still
                // running, and judge the stage again on all its data once they approve.
                if self.announced_wait != Some(index + 1) {
                    self.announced_wait = Some(index + 1);
                    self.event(format!(
                        "Stage {} passed; stage {} waits for approval from {}",
                        index + 1,
                        index + 2,
                        missing.join(", ")
                    ));
                    out.push(Action::AwaitingApproval {
                        stage: index + 2,
                        missing,
                    });
                }
                return;
            }
        }
        // Kayenta-style: valid at one planned look only, so it runs here, once, when the
        // stage really ends (not at every tick a stage is held for approvals).
        if let (Some(alpha), true) = (plan.mann_whitney, stage.weight < Weight::FULL) {
            let v = mann_whitney_verdict(
                &self.stage_data.canary.latency,
                &self.stage_data.stable.latency,
                alpha,
            );
            self.relative.push(TestResult {
                test: "mann_whitney".into(),
                alpha,
                reject: v.reject,
                explanation: v.explanation.clone(),
            });
            if v.reject {
                let reason = format!("mann whitney test at the stage end: {}", v.explanation);
                self.roll_back(index, reason, gates, out);
                return;
            }
        }
        if decision == Decision::Rollback {
            let reason = reasons.join(" ");
            self.roll_back(index, reason, gates, out);
            return;
        }
        self.close_stage(decision, gates, reasons.clone());
        self.event(format!(
            "Stage {} decided {}: {}",
            index + 1,
            decision.key().to_uppercase(),
            reasons.first().cloned().unwrap_or_default()
        ));
        out.push(Action::StageDecided {
            index: index + 1,
            decision,
            reasons,
        });
        match decision {
            Decision::Halt => self.finish(Outcome::Halted, out),
            Decision::Proceed | Decision::Monitor => {
                if index + 1 < self.plan.stages.len() {
                    let now = self.now;
                    self.start_stage(index + 1, now, out);
                } else {
                    self.finish_promoted(out);
                }
            }
            Decision::Rollback => unreachable!("handled above"),
        }
    }

    /// The current state of the stage's canary-versus-stable checks: the relative gates'
    /// latest window evaluation and the sequential tests.
    fn tests(&self) -> Vec<TestResult> {
        let mut out = self.relative.clone();
        if let Some(t) = &self.seq_errors {
            let v = t.verdict();
            out.push(TestResult {
                test: "sequential_errors".into(),
                alpha: t.alpha(),
                reject: v.reject,
                explanation: v.explanation,
            });
        }
        if let Some(t) = &self.seq_latency {
            let v = t.verdict();
            out.push(TestResult {
                test: "sequential_latency".into(),
                alpha: t.alpha(),
                reject: v.reject,
                explanation: v.explanation,
            });
        }
        out
    }

    /// A sentence on the gate that came closest to failing in any window of the stage. A
    /// window whose point estimate was beyond the fail level, but not at 99.9 % confidence,
    /// is said to be so, with its bound: "the closest" must not read as "within the level".
    fn closest_window(&self, index: usize) -> Option<String> {
        let stage = &self.plan.stages[index];
        let mut best: Option<(f64, String)> = None;
        for (g, w) in stage.gates.iter().zip(&self.worst) {
            let Some((v, conservative)) = *w else {
                continue;
            };
            let ratio = match g.bound {
                Bound::Max if g.threshold > 0.0 => v / g.threshold,
                Bound::Min if v > 0.0 => g.threshold / v,
                _ => continue,
            };
            if best.as_ref().is_none_or(|(r, _)| ratio > *r) {
                best = Some((ratio, closest_sentence(g, v, conservative.value())));
            }
        }
        best.map(|(_, s)| s)
    }

    fn roll_back(
        &mut self,
        index: usize,
        reason: String,
        gates: Vec<GateResult>,
        out: &mut Vec<Action>,
    ) {
        self.weight = Weight::ZERO;
        self.close_stage(Decision::Rollback, gates, vec![reason.clone()]);
        self.event(format!(
            "Rollback initiated in stage {}: {}",
            index + 1,
            reason
        ));
        self.rollback = Some(RollbackTiming {
            reason: reason.clone(),
            stage: index + 1,
            fault_onset_s: None,
            detection_s: self.now.as_secs_f64(),
            initiated_s: self.now.as_secs_f64(),
            rollback_s: self.now.as_secs_f64(),
            restoration_s: None,
            total_recovery_s: None,
        });
        out.push(Action::RollbackInitiated {
            stage: index + 1,
            reason: reason.clone(),
        });
        out.push(Action::SetWeight(Weight::ZERO));
        out.push(Action::StageDecided {
            index: index + 1,
            decision: Decision::Rollback,
            reasons: vec![reason],
        });
        self.finish(Outcome::RolledBack, out);
    }

    fn finish(&mut self, outcome: Outcome, out: &mut Vec<Action>) {
        self.state = State::Finished(outcome);
        self.event(format!("Rollout finished: {}", outcome.key()));
        out.push(Action::Finished(outcome));
    }
}

/// "operator alice", or "an operator" when the name is empty or is the word itself (the
/// CLI's fallback without `$USER`), never "operator operator".
fn operator(who: &str) -> String {
    let who = who.trim();
    if who.is_empty() || who.eq_ignore_ascii_case("operator") {
        "an operator".into()
    } else {
        format!("operator {who}")
    }
}

/// ": reason" for an operator's note, or nothing when they gave none.
fn because(reason: &str) -> String {
    if reason.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", reason.trim())
    }
}
