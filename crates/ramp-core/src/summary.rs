//! The record of one rollout, simulated or live: the JSON summary whose keys are a stable
//! contract (README, "The JSON summary") and everything the report needs. The report is a pure function of this value, so a report
//! can be re-rendered later from a stored summary.
//!
//! Key names are a contract with users' scripts: add keys, never rename them. Times are
//! seconds from the deployment start; error rates are fractions.

use crate::plan::{Metric, SamplingMethod, Scope};
use ramp_stats::{CohortStats, Histogram};
use serde::{Deserialize, Serialize};

/// The whole record of a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The deployment's id from the plan.
    pub deployment_id: String,
    /// The service rolled out.
    pub service: String,
    /// Where it was rolled out.
    pub environment: String,
    /// Wall-clock start (RFC 3339), when the plan gave one.
    pub start: Option<String>,
    /// `simulation` or `live`.
    pub mode: String,
    /// The seed of a simulation, so that it can be reproduced.
    pub seed: Option<u64>,
    /// How a simulation drew its traffic (per request or aggregated per tick) and why; absent
    /// from live runs' JSON. A seed reproduces a run only with the same sampler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
    /// How the rollout ended.
    pub outcome: Outcome,
    /// How often the gates were evaluated, seconds of plan time.
    pub evaluate_every_s: f64,
    /// The reference numbers the report compares against.
    pub baseline: BaselineSummary,
    /// Every stage of the plan as planned, reached or not, with its gates: what approvers
    /// were promised, beside what happened.
    #[serde(default)]
    pub plan: Vec<PlannedStage>,
    /// Every stage that started, in order.
    pub stages: Vec<StageSummary>,
    /// The rollback of the main timeline, if there was one.
    pub rollback: Option<RollbackTiming>,
    /// Rehearsed rollbacks, each measured on a fork of the rollout.
    pub rehearsals: Vec<RehearsalSummary>,
    /// Measured per-feature overhead, when the plan names features.
    pub features: Vec<FeatureSummary>,
    /// Request counts over the whole run.
    pub totals: Totals,
    /// Notable events in time order (stage starts, decisions, rollbacks), for the timeline.
    pub timeline: Vec<TimelineEvent>,
    /// Distinct users each flag was on and off for, recorded at each stage's end (the staging report's
    /// "phase8_encryption_enabled: 625 users (25%)"); empty when the plan has no flags.
    #[serde(default)]
    pub flags: Vec<FlagUsageSummary>,
    /// The pre-deployment checks of a live run, in the order they ran, with their results
    /// (the report's checklist); empty in simulation and when the plan has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckSummary>,
    /// Every approval given, in order: who approved which stage, when and why (the report's
    /// sign-off record). A simulation takes approvals as given and says so in `reason`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalSummary>,
    /// The plan that follows this one (`[next]`), with a short simulated preview: what the
    /// approvers sign up for next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<NextSummary>,
    /// The infrastructure impact of a live run (`[[report.queries]]`): per query and stage,
    /// the value sampled from Prometheus before the stage's weight was applied and the
    /// samples taken during it. Empty in simulation (nothing is invented) and when the plan
    /// has no report queries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub infrastructure: Vec<InfraSummary>,
}

/// The plan to follow: its stages, and how a simulation of it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextSummary {
    /// Its file, relative to where ramp ran.
    pub plan: String,
    /// Its deployment id.
    pub deployment_id: String,
    /// Its environment ("production").
    pub environment: String,
    /// Its stages and gates as planned.
    pub stages: Vec<PlannedStage>,
    /// One simulated run of it, when it has a simulation model.
    pub preview: Option<NextPreview>,
}

/// One simulated run of the plan to follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextPreview {
    /// The seed it ran with (this run's, or 1 for a live run).
    pub seed: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Stages it ran.
    pub stages_run: usize,
    /// Its length, seconds.
    pub duration_s: f64,
    /// Requests it simulated.
    pub requests: u64,
    /// Why it was rolled back or halted, when it was.
    pub reason: Option<String>,
}

/// One report query over one stage, as a live run sampled it from Prometheus. A sample that
/// could not be read is counted in `missing`, never recorded as a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfraSummary {
    /// The query's name in the plan.
    pub name: String,
    /// Its unit, as the plan gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The stage (1-based).
    pub stage: usize,
    /// The value at the stage's start, before its weight took effect (scaled); `None` when
    /// it could not be read.
    pub before: Option<f64>,
    /// The mean of the samples read during the stage; `None` when none could be read.
    pub during_mean: Option<f64>,
    /// The largest sample read during the stage; `None` when none could be read.
    pub during_max: Option<f64>,
    /// How many samples were read (the one before the stage included).
    pub samples: u64,
    /// How many samples could not be read (no data, an error, a timeout).
    pub missing: u64,
    /// The Prometheus server the samples came from: its host and port, never a token.
    pub source: String,
}

/// One pre-deployment check as it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckSummary {
    /// The check's name in the plan.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What it found, in words ("HTTP 200 in 12 ms").
    pub detail: String,
    /// When it finished, seconds of plan time.
    pub t_s: f64,
    /// How long it took, seconds.
    pub elapsed_s: f64,
}

/// One approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalSummary {
    /// The stage approved (1-based).
    pub stage: usize,
    /// The approver, as the plan's `approvals` list names them.
    pub who: String,
    /// When, seconds of plan time.
    pub t_s: f64,
    /// Why, as given (empty when none).
    pub reason: String,
}

/// How a simulation drew its traffic, as its summary and report record it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// The sampler.
    pub method: SamplingMethod,
    /// For the aggregated sampler, the longest stretch of plan time drawn at once: the
    /// engine's tick (`evaluate_every`), seconds. `None` per request.
    pub step_s: Option<f64>,
    /// Why this sampler ran: chosen automatically (and on what ground), set in the plan or
    /// forced on the command line, so that a reader knows how to reproduce the run.
    pub reason: String,
}

impl Sampling {
    /// "aggregated per 5 s" or "per request": the words the terminal and the report print.
    pub fn describe(&self) -> String {
        match (self.method, self.step_s) {
            (SamplingMethod::PerRequest, _) => "per request".into(),
            (SamplingMethod::Aggregated, Some(s)) => {
                format!("aggregated per {} s", (s * 1000.0).round() / 1000.0)
            }
            (SamplingMethod::Aggregated, None) => "aggregated".into(),
        }
    }
}

/// Distinct users (targeting keys) one flag was on and off for over a window ending at a
/// stage's end: measured by the OFREP server live, counted from the simulated population in
/// simulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagUsageSummary {
    /// 1-based stage at whose end the count was taken.
    pub stage: usize,
    /// The flag's key.
    pub key: String,
    /// The share of users the flag was rolled out to, percent.
    pub weight: f64,
    /// Distinct users the flag was on for.
    pub on_users: u64,
    /// Distinct users it was off for.
    pub off_users: u64,
    /// The window the users were counted over, seconds.
    pub window_s: f64,
    /// Whether the counts are exact (else a HyperLogLog estimate, about 1.6 % error).
    pub exact: bool,
    /// Whether the flag follows its own schedule (`schedule = [...]`): `weight` is then the
    /// schedule's share at the count, not the stage's traffic share, and the report says so.
    /// Left out of the JSON when false, so that summaries without schedules are unchanged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scheduled: bool,
}

/// How a rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every stage proceeded; the canary is at 100 %.
    Promoted,
    /// Reached 100 % but some gate warned: promoted, with caveats for the approvers.
    PromotedWithCaveats,
    /// A gate failed or an operator aborted; the canary is back at 0 %.
    RolledBack,
    /// The engine could not decide (no data, inconclusive): it holds and a human decides.
    Halted,
}

impl Outcome {
    /// The key used in JSON.
    pub fn key(self) -> &'static str {
        match self {
            Outcome::Promoted => "promoted",
            Outcome::PromotedWithCaveats => "promoted_with_caveats",
            Outcome::RolledBack => "rolled_back",
            Outcome::Halted => "halted",
        }
    }
}

/// The decision taken for a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Every gate passed: go on.
    Proceed,
    /// Some gate warned, none failed: go on, with a caveat.
    Monitor,
    /// No data or inconclusive: stop shifting traffic and wait for a human.
    Halt,
    /// A gate failed (or an operator aborted): back to 0 %.
    Rollback,
}

impl Decision {
    /// The key used in JSON and in reports (upper-cased there).
    pub fn key(self) -> &'static str {
        match self {
            Decision::Proceed => "proceed",
            Decision::Monitor => "monitor",
            Decision::Halt => "halt",
            Decision::Rollback => "rollback",
        }
    }
}

/// How much a stage's decision can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// Every gate passed on at least ten times its minimum sample count.
    High,
    /// Some gate warned, or passed on fewer than ten times its minimum samples.
    Medium,
    /// Some gate had no data or failed.
    Low,
}

/// A gate's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateStatus {
    /// Within the warn level (or the threshold when there is no warn level).
    Pass,
    /// Beyond the warn level but within the fail level.
    Warn,
    /// Beyond the fail level.
    Fail,
    /// Fewer samples than the gate's minimum: never a pass.
    NoData,
}

/// The numbers of one scope over one span of time. `None` where there were no requests.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    /// Median latency, ms.
    pub p50_ms: Option<f64>,
    /// 95th-percentile latency, ms.
    pub p95_ms: Option<f64>,
    /// 99th-percentile latency, ms.
    pub p99_ms: Option<f64>,
    /// Failed / all requests, as a fraction.
    pub error_rate: Option<f64>,
    /// Requests per second over the span.
    pub throughput_rps: Option<f64>,
    /// Requests in the span.
    pub requests: u64,
}

impl Metrics {
    /// The metrics of the requests of `parts` taken together over `span_ms` of data: one
    /// cohort for a cohort's numbers, both for the service-wide numbers. The engine's gates,
    /// the simulator's restoration check and the live driver's rehearsals all compute
    /// service-wide metrics here, so that the three cannot drift apart.
    pub fn of(parts: &[&CohortStats], span_ms: u64) -> Metrics {
        let requests: u64 = parts.iter().map(|c| c.requests).sum();
        let errors: u64 = parts.iter().map(|c| c.errors).sum();
        let hists: Vec<&Histogram> = parts.iter().map(|c| &c.latency).collect();
        let q = |q: f64| Histogram::quantile_of(&hists, q);
        Metrics {
            p50_ms: q(0.50),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            error_rate: (requests > 0).then(|| errors as f64 / requests as f64),
            throughput_rps: (span_ms > 0).then(|| requests as f64 / (span_ms as f64 / 1000.0)),
            requests,
        }
    }

    /// The value of one metric.
    pub fn get(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::P50Ms => self.p50_ms,
            Metric::P95Ms => self.p95_ms,
            Metric::P99Ms => self.p99_ms,
            Metric::ErrorRate => self.error_rate,
            Metric::ThroughputRps => self.throughput_rps,
        }
    }
}

/// Metrics of every scope over one span.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ScopedMetrics {
    /// The canary's requests.
    pub canary: Metrics,
    /// The stable version's requests.
    pub stable: Metrics,
    /// All requests.
    pub service: Metrics,
}

impl ScopedMetrics {
    /// The metrics of one scope.
    pub fn scope(&self, scope: Scope) -> &Metrics {
        match scope {
            Scope::Canary => &self.canary,
            Scope::Stable => &self.stable,
            Scope::Service => &self.service,
        }
    }

    /// The headline numbers: the canary's latency and errors (what is being judged) and the
    /// whole service's throughput (what users get).
    pub fn headline(&self) -> Metrics {
        Metrics {
            throughput_rps: self.service.throughput_rps,
            ..self.canary
        }
    }
}

/// The baseline the report compares with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineSummary {
    /// `plan` when the plan fixed it, `measured` when it was measured from the stable cohort
    /// while the canary was below 100 %.
    pub source: String,
    /// The numbers.
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// A stage as the plan describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStage {
    /// 1-based stage number.
    pub index: usize,
    /// Canary weight, percent.
    pub weight: f64,
    /// Planned length, seconds.
    pub duration_s: f64,
    /// Checkpoint interval, seconds.
    pub checkpoint_s: f64,
    /// The gates in force, defaults merged with the stage's overrides.
    pub gates: Vec<GateSpec>,
}

/// A gate as the plan describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateSpec {
    /// What is measured.
    pub metric: Metric,
    /// Whose requests.
    pub scope: Scope,
    /// The fail ceiling, for `max` gates.
    pub max: Option<f64>,
    /// The fail floor, for `min` gates.
    pub min: Option<f64>,
    /// The softer warn level, if any.
    pub warn: Option<f64>,
    /// The sliding window, seconds.
    pub window_s: f64,
    /// Fewer requests than this make the gate `no_data`.
    pub min_samples: u64,
}

/// One gate's evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    /// What was measured.
    pub metric: Metric,
    /// Whose requests.
    pub scope: Scope,
    /// The measured value; `None` when there were no requests.
    pub observed: Option<f64>,
    /// The fail ceiling, for `max` gates.
    pub max: Option<f64>,
    /// The fail floor, for `min` gates.
    pub min: Option<f64>,
    /// The softer warn level, when the gate has one.
    pub warn: Option<f64>,
    /// The end of the 99.9 % confidence interval of `observed` nearest to passing (the lower
    /// end for a ceiling). A gate fails only when this, not just the point estimate, is
    /// beyond the fail level, so sampling noise in a small window cannot roll back a healthy
    /// canary. For a throughput, the end of the exact (Garwood) Poisson interval of the rate,
    /// its requests counted over the observed time. `None` without a value.
    #[serde(default)]
    pub conservative: Option<f64>,
    /// The verdict.
    pub status: GateStatus,
    /// Requests the verdict rests on.
    pub samples: u64,
    /// Span of data evaluated, seconds (the window, or the stage for stage-end verdicts).
    pub span_s: f64,
    /// For a latency measured with coarse buckets (a Prometheus histogram), the bucket that
    /// holds the value: `observed` is then its lower bound, and the true value may be
    /// anywhere up to the upper one. `None` for exact data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<BucketBounds>,
}

/// A query gate's state: its last evaluation and how many failed in a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryResult {
    /// The gate's name, as in the plan.
    pub name: String,
    /// The last value the query returned; `None` before the first evaluation of the stage
    /// or when the last one had no data.
    pub value: Option<f64>,
    /// The fail ceiling, when the gate has one.
    pub max: Option<f64>,
    /// The fail floor, when the gate has one.
    pub min: Option<f64>,
    /// The warn level, when the gate has one.
    pub warn: Option<f64>,
    /// The verdict: `fail` once `consecutive` evaluations in a row were beyond the fail
    /// level, `warn` while fewer were (or beyond the warn level), `no_data` when the last
    /// evaluation returned nothing usable or none was made in this stage.
    pub status: GateStatus,
    /// Evaluations in a row beyond the fail level, up to the last.
    pub failed_in_a_row: u32,
    /// How many in a row fail the gate.
    pub consecutive: u32,
    /// Evaluations made in this stage.
    pub evaluations: u32,
    /// Why the last evaluation had no data ("Prometheus returned no series").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_data: Option<String>,
    /// When it was last evaluated, seconds of plan time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t_s: Option<f64>,
}

/// The bounds of the coarse histogram bucket a latency quantile lies in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BucketBounds {
    /// The bucket's lower bound, ms (0 for the first bucket).
    pub lower_ms: f64,
    /// The bucket's upper bound, ms; `None` for the last, open (`+Inf`) bucket.
    pub upper_ms: Option<f64>,
}

impl BucketBounds {
    /// Whether `level` lies in the bucket (`(lower, upper]`, the lower edge included), so
    /// that the data cannot say on which side of it the value is.
    pub fn holds(&self, level: f64) -> bool {
        self.lower_ms <= level && self.upper_ms.is_none_or(|u| u > level)
    }
}

/// A checkpoint row: the columns of the staging report's stage tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointSummary {
    /// When it was recorded.
    pub t_s: f64,
    /// Headline metrics over the interval since the previous checkpoint (or stage start).
    pub metrics: Metrics,
    /// Every scope's metrics over that interval.
    pub metrics_by_scope: ScopedMetrics,
    /// The gates evaluated on their sliding windows at this moment.
    pub gates: Vec<GateResult>,
}

/// One stage's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageSummary {
    /// 1-based stage number.
    pub index: usize,
    /// Canary weight, percent.
    pub weight: f64,
    /// Planned length, seconds.
    pub planned_duration_s: f64,
    /// When it started.
    pub started_s: f64,
    /// How long it actually ran, seconds, unobserved time included.
    pub elapsed_s: f64,
    /// How much of `elapsed_s` was not observed (the metrics source restarted or could not
    /// be read), seconds; 0 when none. That time counted toward no decision and extended the
    /// stage by as much. Absent from summaries written before it existed, which read as 0.
    #[serde(default)]
    pub unobserved_s: f64,
    /// Checkpoint interval, seconds.
    pub checkpoint_s: f64,
    /// The decision at its end (or at the rollback); `None` only for a run cut short.
    pub decision: Option<Decision>,
    /// How much the decision can be trusted.
    pub confidence: Confidence,
    /// Plain sentences giving the reasons for the decision.
    pub reasons: Vec<String>,
    /// Headline metrics over the whole stage.
    pub metrics: Metrics,
    /// Every scope's metrics over the whole stage.
    pub metrics_by_scope: ScopedMetrics,
    /// The gates judged on the whole stage's data at its end (or, after a rollback, the
    /// failing window evaluation).
    pub gates: Vec<GateResult>,
    /// Checkpoint rows in time order.
    pub checkpoints: Vec<CheckpointSummary>,
    /// The canary-versus-stable sequential tests of the stage, as of its end (or rollback).
    #[serde(default)]
    pub tests: Vec<TestResult>,
    /// Its query gates (`[[gates.query]]`) as of the stage's end; empty without any (and
    /// then left out, so summaries without query gates are unchanged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<QueryResult>,
    /// For a fleet of proxies, what each member served during the stage, in plan order, so
    /// that a member that served little (a load balancer skewed away from it) is visible;
    /// empty (and left out) for any other router, or when the controller did not see the
    /// stage start (it was resumed mid-stage).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberStageSummary>,
}

/// One fleet member's requests over one stage, from its own counters (`/snapshot`) read at
/// the stage's start and end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStageSummary {
    /// Its admin API.
    pub url: String,
    /// Requests it completed during the stage (both cohorts).
    pub requests: u64,
    /// How many of them were errors (both cohorts).
    pub errors: u64,
    /// Whether it restarted during the stage: its counters began again, so `requests` and
    /// `errors` count only what it served since.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restarted: bool,
}

/// A canary-versus-stable sequential test's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// `sequential_errors` or `sequential_latency`.
    pub test: String,
    /// Its false-rollback budget for the stage.
    pub alpha: f64,
    /// Whether it concluded that the canary is worse than stable.
    pub reject: bool,
    /// One plain sentence saying what it saw.
    pub explanation: String,
}

/// Timing of a rollback, measured from requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackTiming {
    /// Plain sentence: what failed ("canary p95_ms 850 ms > 500 ms over 5 min").
    pub reason: String,
    /// 1-based stage in which it happened.
    pub stage: usize,
    /// When the fault that caused it began, when known (simulation and rehearsals).
    pub fault_onset_s: Option<f64>,
    /// When a gate first failed.
    pub detection_s: f64,
    /// When the engine issued the rollback.
    pub initiated_s: f64,
    /// When the router applied weight 0 and the canary's last in-flight request finished.
    pub rollback_s: f64,
    /// When service-wide metrics were back at the pre-fault reference; `None` if never.
    pub restoration_s: Option<f64>,
    /// `restoration_s − fault_onset_s` (or from detection when onset is unknown).
    pub total_recovery_s: Option<f64>,
}

/// A rehearsal's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RehearsalSummary {
    /// The rehearsal's name.
    pub name: String,
    /// How the rehearsal ended.
    pub outcome: RehearsalOutcome,
    /// 1-based stage in which the fault was injected.
    pub stage: usize,
    /// What failed.
    pub reason: String,
    /// Fault onset.
    pub fault_onset_s: f64,
    /// First failing gate evaluation.
    pub detection_s: Option<f64>,
    /// Rollback issued.
    pub initiated_s: Option<f64>,
    /// Rollback applied and drained.
    pub rollback_s: Option<f64>,
    /// Metrics back at the reference.
    pub restoration_s: Option<f64>,
    /// Onset to restoration.
    pub total_recovery_s: Option<f64>,
    /// The recovery target (seconds).
    pub target_s: f64,
    /// A description of the fault ("+800 ms on 50% of canary requests").
    pub fault: String,
    /// Service-wide metrics over the window before onset ("Recording baseline metrics").
    pub reference: Metrics,
    /// The failing gate's window metrics at detection ("P95=850ms, P99=1450ms").
    pub degraded: Option<Metrics>,
}

impl RehearsalSummary {
    /// Whether the rehearsal met its target: the fault was caught, the rollout rolled back and
    /// the service was restored within the target time. The report's verdict and the exit
    /// code of `ramp rehearse` and `ramp demo --rehearse` both follow this one rule.
    pub fn met_target(&self) -> bool {
        self.outcome == RehearsalOutcome::RolledBack
            && self.total_recovery_s.is_some_and(|t| t <= self.target_s)
    }
}

/// How a rehearsal ended. A closed set, so that the report, the CLI's exit code and the
/// emitters (the simulator and the live driver) cannot drift apart on a spelling; the JSON
/// keys are part of the summary's contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RehearsalOutcome {
    /// A gate caught the fault, the rollback completed and service metrics came back to the
    /// reference: the only outcome that can pass.
    RolledBack,
    /// No gate failed within the rehearsal's horizon after the fault's onset.
    NotDetected,
    /// A gate caught the fault and the rollout rolled back, but service metrics were not back
    /// at the reference by the rehearsal's end.
    NotRestored,
    /// Simulation only: the rollout had already ended before the fault's onset, so the
    /// rehearsal never forked.
    NotRun,
    /// Live only: the fault was never injected through the proxy (the rollout was no longer
    /// running at the fault's onset, or the proxy refused the fault).
    NotInjected,
}

impl RehearsalOutcome {
    /// The key used in JSON and printed by the CLI.
    pub fn key(self) -> &'static str {
        match self {
            RehearsalOutcome::RolledBack => "rolled_back",
            RehearsalOutcome::NotDetected => "not_detected",
            RehearsalOutcome::NotRestored => "not_restored",
            RehearsalOutcome::NotRun => "not_run",
            RehearsalOutcome::NotInjected => "not_injected",
        }
    }
}

/// Measured overhead of one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSummary {
    /// The feature's name.
    pub name: String,
    /// Its configured latency overhead at full rollout (fraction).
    pub configured_latency: f64,
    /// Canary requests that went through it.
    pub requests: u64,
    /// Mean milliseconds it added per canary request.
    pub mean_added_ms: f64,
    /// Its added time over the canary's total time without features (fraction).
    pub latency_impact: f64,
    /// Errors attributed to it.
    pub errors: u64,
}

/// Request totals.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Totals {
    /// All requests.
    pub requests: u64,
    /// Requests served by the canary.
    pub canary_requests: u64,
    /// Requests served by the stable version.
    pub stable_requests: u64,
    /// Failed requests.
    pub errors: u64,
    /// Plan time covered, seconds.
    pub duration_s: f64,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    /// When.
    pub t_s: f64,
    /// What happened, in a sentence.
    pub message: String,
}

/// What one simulated run contributes to a Monte Carlo study: the numbers that tuning a plan
/// needs, without the run's full record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunDigest {
    /// The run's seed.
    pub seed: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Each stage's decision, in order.
    pub decisions: Vec<Decision>,
    /// The main timeline's rollback: stage, seconds from the fault's onset to detection
    /// (`None` when no simulated fault had begun: a false rollback).
    pub rollback: Option<(usize, Option<f64>)>,
    /// Per rehearsal, in plan order: (outcome, detection delay after onset, total recovery).
    pub rehearsals: Vec<(RehearsalOutcome, Option<f64>, Option<f64>)>,
}

impl RunDigest {
    /// The digest of a run's summary.
    pub fn of(s: &Summary) -> RunDigest {
        RunDigest {
            seed: s.seed.unwrap_or(0),
            outcome: s.outcome,
            decisions: s.stages.iter().filter_map(|st| st.decision).collect(),
            rollback: s.rollback.as_ref().map(|r| {
                let delay = r
                    .fault_onset_s
                    .filter(|&o| r.detection_s >= o)
                    .map(|o| r.detection_s - o);
                (r.stage, delay)
            }),
            rehearsals: s
                .rehearsals
                .iter()
                .map(|r| {
                    (
                        r.outcome,
                        r.detection_s.map(|d| d - r.fault_onset_s),
                        r.total_recovery_s,
                    )
                })
                .collect(),
        }
    }
}

/// A Monte Carlo study of one plan over many seeds: how often it promotes, how often it
/// rolls back a healthy canary, and how fast it catches the faults it rehearses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonteCarlo {
    /// The deployment id of the plan.
    pub deployment_id: String,
    /// Number of runs.
    pub runs: usize,
    /// First seed; runs use `first_seed .. first_seed + runs`.
    pub first_seed: u64,
    /// Runs per outcome key, in a fixed order.
    pub outcomes: Vec<(Outcome, usize)>,
    /// Share of runs that rolled back with no simulated fault active.
    pub unfaulted_rollback_rate: f64,
    /// The same share when the simulated canary is identical to stable (no features, no
    /// overhead): then every such rollback is a false rollback. `None` otherwise, since
    /// rolling back a canary that really is slower is not false.
    pub false_rollback_rate: Option<f64>,
    /// For plans with main-timeline faults: share of runs that rolled back after a fault
    /// began (detection power); `None` without faults.
    pub fault_detection_rate: Option<f64>,
    /// Median seconds from fault onset to detection among detected runs.
    pub median_fault_detection_s: Option<f64>,
    /// Per rehearsal.
    pub rehearsals: Vec<RehearsalStudy>,
    /// Runs whose decisions differ from the most common sequence: how stable the verdict is.
    pub decision_disagreements: usize,
    /// The sampler every run used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
    /// Each outcome's count with its share and 95 % Wilson interval, in the order of
    /// `outcomes`.
    #[serde(default)]
    pub outcome_shares: Vec<(Outcome, Proportion)>,
    /// `unfaulted_rollback_rate` as a count with its 95 % Wilson interval.
    #[serde(default)]
    pub unfaulted_rollbacks: Proportion,
    /// `false_rollback_rate` as a count with its 95 % Wilson interval, when it applies.
    #[serde(default)]
    pub false_rollbacks: Option<Proportion>,
    /// `fault_detection_rate` as a count with its 95 % Wilson interval, when it applies.
    #[serde(default)]
    pub fault_detections: Option<Proportion>,
    /// When the study ran with a stopping rule (`--until-ci`): the target and whether it was
    /// met before the run limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping: Option<Stopping>,
}

/// A share of runs with its 95 % Wilson score interval, so that a study of a few hundred runs
/// says how much its rates can be trusted ("0 of 200" is "below 1.9 %", not "0 %").
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Proportion {
    /// Runs with the property.
    pub count: usize,
    /// Runs counted.
    pub runs: usize,
    /// `count / runs` (0 without runs).
    pub rate: f64,
    /// Lower end of the 95 % Wilson interval.
    pub low: f64,
    /// Upper end of the 95 % Wilson interval.
    pub high: f64,
}

/// A study's stopping rule and where it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stopping {
    /// The rate whose interval was watched: the false-rollback rate when the plan's canary
    /// equals stable, else the unfaulted-rollback rate.
    pub target: f64,
    /// The most runs allowed (`--runs`).
    pub limit: usize,
    /// Whether the interval's upper end fell below the target within the limit.
    pub met: bool,
}

/// A rehearsal's figures over many runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RehearsalStudy {
    /// The rehearsal's name.
    pub name: String,
    /// Share of runs in which the fault was detected (detection power).
    pub detection_rate: f64,
    /// Median detection delay after onset, seconds, among detected runs.
    pub median_detection_s: Option<f64>,
    /// 95th percentile of that delay.
    pub p95_detection_s: Option<f64>,
    /// Median total recovery, seconds, among restored runs.
    pub median_recovery_s: Option<f64>,
    /// Share of runs restored within the target.
    pub within_target_rate: f64,
    /// The target, seconds.
    pub target_s: f64,
    /// `detection_rate` as a count with its 95 % Wilson interval.
    #[serde(default)]
    pub detections: Proportion,
    /// `within_target_rate` as a count with its 95 % Wilson interval.
    #[serde(default)]
    pub within_target: Proportion,
}
