//! `ramp run`: the engine on the real clock.
//!
//! The loop, once per evaluation interval: read the proxy's cumulative counters, turn the
//! difference since the last reading into a slot, journal the slot (with the counters it
//! consumed, in one transaction), feed it to the engine, journal what the engine decided,
//! then act (set the weight through the proxy, run hooks). Operator actions arrive from the
//! control API and take the same path: journaled, fed, acted on.
//!
//! Resuming is replaying: the engine is deterministic, so feeding it the journaled inputs in
//! order rebuilds exactly the state it had when the controller died — the same stage, its
//! elapsed time, every checkpoint. The first reading after a restart covers the whole time
//! the controller was down (the proxy's counters kept counting), so that time is neither lost
//! nor counted twice.

use crate::checks;
use crate::clock;
use crate::control::{self, ActionBody, Command, DriverRequest, Refusal, Verb};
use crate::source::{Counters, FaultRequest, ProxyAdmin, ProxyReading, SourceError};
use crate::status::StatusView;
use ramp_core::engine::{Action, Engine, Input, State};
use ramp_core::plan::{Cohort, FaultEffect, Hook, HookEvent, Plan, Rehearsal};
use ramp_core::summary::{FlagUsageSummary, Metrics, Outcome, RehearsalSummary, Summary};
use ramp_core::{PlanTime, Weight};
use ramp_stats::CohortStats;
use ramp_store::{DeploymentLock, Journal, StoreError};
use serde::Serialize;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// Why a live run could not go on. Every variant leaves the proxy at its last weight.
#[derive(Debug, Error)]
pub enum LiveError {
    /// The journal could not be opened, locked or written; nothing is acted on without it.
    #[error("journal: {0}")]
    Store(#[from] StoreError),
    /// The journal's unfinished run of this deployment used a different plan.
    #[error("the journal {journal} has an unfinished run ({run}) of deployment {deployment} with a different plan; run it with the plan it started with, or use another --journal")]
    PlanChanged {
        /// The journal file.
        journal: String,
        /// The deployment.
        deployment: String,
        /// The run id.
        run: i64,
    },
    /// A journaled input could not be read back.
    #[error("journal {journal}: input {seq} of run {run} is unreadable: {message}")]
    Corrupt {
        /// The journal file.
        journal: String,
        /// The run.
        run: i64,
        /// The input's sequence number.
        seq: u64,
        /// The parser's description.
        message: String,
    },
    /// The control API's listener failed.
    #[error("control API: {0}")]
    Control(std::io::Error),
    /// The router's proxy serves another deployment: driving it would move another
    /// service's traffic, so nothing is sent to it.
    #[error("the proxy at {url} serves deployment {proxy:?}, but the plan is for {plan:?}; point [router] at this deployment's proxy, or set deployment_id = {plan:?} in the proxy's configuration")]
    WrongProxy {
        /// The proxy's admin URL.
        url: String,
        /// The deployment the proxy names.
        proxy: String,
        /// The plan's deployment.
        plan: String,
    },
}

/// Everything a live run needs; the listener and shutdown signal are passed in so that
/// tests can run it in-process.
pub struct RunConfig {
    /// The validated plan.
    pub plan: Arc<Plan>,
    /// The plan file as named on the command line, for the journal.
    pub plan_path: String,
    /// The plan's text: a resumed run must use the same.
    pub plan_text: String,
    /// Directory that relative paths in the plan (check programs' working directory) use.
    pub base_dir: PathBuf,
    /// The journal file.
    pub journal: PathBuf,
    /// The proxy's admin API.
    pub proxy: ProxyAdmin,
    /// Where the control API listens.
    pub control_listener: TcpListener,
    /// The control API's bearer token, when one is required.
    pub control_token: Option<String>,
    /// A rollback rehearsal to run live (`ramp rehearse`): its fault is injected through the
    /// proxy at its `at`, and the run ends once the system is restored (or the target passed).
    pub rehearsal: Option<Rehearsal>,
    /// Where to serve the plan's flags over OFREP, when it has any; the flags that follow
    /// the rollout move with every weight the engine sets.
    pub ofrep_listener: Option<TcpListener>,
    /// The token OFREP clients must send, when one is required.
    pub ofrep_token: Option<String>,
    /// For a run that cannot be resumed (`ramp demo`: its upstreams and proxy end with it):
    /// on interruption, halt it with this reason and record it finished, instead of leaving
    /// it open in the journal for a resume that can never come.
    pub halt_on_interrupt: Option<String>,
}

/// What the driver reports as it goes, for the terminal.
#[derive(Debug)]
pub enum Progress<'a> {
    /// The run began or resumed: the plan with its real start time filled in, for labels.
    Began(Arc<Plan>),
    /// An engine action, at its plan time.
    Action(PlanTime, &'a Action),
    /// A log line (checks, hooks, resume, metric outages, rehearsal steps).
    Line(PlanTime, String),
}

/// How a run ended.
#[derive(Debug)]
pub enum RunEnd {
    /// The rollout finished; the summary is journaled.
    Finished {
        /// The journal's run id.
        run_id: i64,
        /// The record of the run.
        summary: Box<Summary>,
    },
    /// The shutdown signal came first; the run stays open in the journal and the same
    /// command resumes it. The proxy keeps routing at the last weight.
    Interrupted {
        /// The journal's run id.
        run_id: i64,
    },
}

/// How long to wait between readings while the proxy cannot be read.
const RETRY: Duration = Duration::from_secs(1);

/// How often a rehearsal polls the proxy after the rollback, to time the restoration.
const RESTORE_POLL: Duration = Duration::from_millis(100);

/// The least span of data before a rehearsal's onset that its reference metrics cover.
const REFERENCE_SPAN: Duration = Duration::from_secs(10);

/// How long the OFREP server keeps answering after the rollout finished.
const FLAGS_LINGER: Duration = Duration::from_secs(2);

/// The longest time spent waiting for hooks still running at the end.
const HOOK_GRACE: Duration = Duration::from_secs(30);

/// A finished hook's result, for the journal.
struct HookDone {
    /// The hook's name.
    name: String,
    /// The event that ran it.
    event: HookEvent,
    /// Its outcome.
    outcome: checks::ProbeOutcome,
}

/// A live rehearsal in progress.
struct LiveRehearsal {
    /// The plan's rehearsal.
    spec: Rehearsal,
    /// The fault as the proxy takes it.
    request: FaultRequest,
    /// When the fault was injected (plan time, ms).
    onset_ms: Option<u64>,
    /// Stage (1-based) at injection.
    stage: usize,
    /// Service-wide counters at the start of the reference window and at onset.
    reference_from: Option<(u64, Counters)>,
    /// The reference metrics (service-wide, before onset).
    reference: Metrics,
    /// When the engine issued the rollback.
    initiated_ms: Option<u64>,
    /// Why.
    reason: String,
    /// When the proxy confirmed weight 0 and the canary had nothing in flight.
    rollback_ms: Option<u64>,
    /// When service-wide latency and errors were back at the reference.
    restored_ms: Option<u64>,
    /// Readings since the drain, oldest first, for the trailing restoration window.
    trail: std::collections::VecDeque<(u64, Counters)>,
    /// The failing window's metrics at detection.
    degraded: Option<Metrics>,
}

/// The running controller.
struct Driver<'a> {
    /// The plan (with the real start time filled in).
    plan: Arc<Plan>,
    /// The engine.
    engine: Engine,
    /// The journal; every input is appended before it is fed.
    journal: Journal,
    /// The journal's path, for messages.
    journal_path: String,
    /// This run.
    run_id: i64,
    /// Wall-clock start of the run (Unix ms): plan time zero.
    started_unix_ms: i64,
    /// The proxy.
    proxy: ProxyAdmin,
    /// Progress sink.
    on: &'a mut (dyn FnMut(Progress<'_>) + Send),
    /// Counters of the last reading fed to the engine.
    cursor: Option<Counters>,
    /// Plan time the last slot ended at.
    last_end_ms: u64,
    /// Why the proxy cannot be read, while it cannot.
    metrics_problem: Option<String>,
    /// Base directory for checks and hooks.
    base_dir: PathBuf,
    /// Finished hooks report here.
    hooks_tx: mpsc::Sender<HookDone>,
    /// Hooks still running.
    hooks_running: usize,
    /// When the proxy applied the rollback's weight 0 (plan ms).
    rollback_applied_ms: Option<u64>,
    /// A rehearsal, when this is `ramp rehearse`.
    rehearsal: Option<LiveRehearsal>,
    /// The weight that flags following the rollout serve, and the clock of flags with their
    /// own schedule, when the plan has flags.
    flag_weight: Option<ramp_flags::flags::WeightHandle>,
    /// Plan time (ms) of the journaled `Start`: the origin of every flag's schedule, so that a
    /// resumed run continues its schedules where they were instead of restarting them.
    rollout_start_ms: Option<u64>,
    /// Whether an interruption leaves the run open for a resume (false for `ramp demo`,
    /// which is halted instead); only what the interruption's line tells the operator.
    resumable: bool,
    /// The OFREP server's counters of distinct users per flag, and the flags they count.
    flag_stats: Option<(ramp_flags::ofrep::Stats, Arc<ramp_flags::flags::FlagState>)>,
}

/// Runs (or resumes) the plan's rollout until it finishes or `shutdown` resolves.
pub async fn run(
    config: RunConfig,
    on: &mut (dyn FnMut(Progress<'_>) + Send),
    shutdown: impl Future<Output = ()> + Send,
) -> Result<RunEnd, LiveError> {
    let deployment = config.plan.deployment.id.clone();
    let halt_on_interrupt = config.halt_on_interrupt.clone();
    let _lock = DeploymentLock::acquire(&config.journal, &deployment)?;
    let mut journal = Journal::open(&config.journal)?;
    let journal_path = config.journal.display().to_string();
    let (run_id, started_unix_ms, resumed) = match journal.active_run(&deployment)? {
        Some(r) => {
            if r.plan_toml != config.plan_text {
                return Err(LiveError::PlanChanged {
                    journal: journal_path,
                    deployment,
                    run: r.run_id,
                });
            }
            (r.run_id, r.started_unix_ms, true)
        }
        None => {
            let now = clock::unix_ms();
            let id = journal.begin_run(&deployment, &config.plan_path, &config.plan_text, now)?;
            (id, now, false)
        }
    };
    let mut plan = (*config.plan).clone();
    plan.deployment.start = Some(rfc3339(started_unix_ms));
    plan.deployment.start_second_of_day =
        u32::try_from(started_unix_ms.div_euclid(1000).rem_euclid(86_400)).unwrap_or(0);
    let plan = Arc::new(plan);
    on(Progress::Began(Arc::clone(&plan)));

    // Replay: rebuild the engine exactly as it was.
    let mut engine = Engine::new(Arc::clone(&plan));
    let mut last_end_ms = 0;
    let inputs = journal.inputs(run_id)?;
    for rec in &inputs {
        let input: Input = serde_json::from_str(&rec.body).map_err(|e| LiveError::Corrupt {
            journal: journal_path.clone(),
            run: run_id,
            seq: rec.seq,
            message: e.to_string(),
        })?;
        match &input {
            Input::Tick(slot) => last_end_ms = slot.end_ms,
            // The first slot starts where the rollout started, not at the checks before it.
            Input::Start => last_end_ms = rec.plan_ms,
            _ => {}
        }
        let _ = engine.step(PlanTime(rec.plan_ms), input);
    }
    // The flags' schedules count from the first stage's start (not from `Start`: the first
    // stage may wait for approvals, and no flag should ramp before any stage runs).
    let rollout_start_ms = engine
        .summary()
        .stages
        .first()
        .map(|st| (st.started_s * 1000.0).round() as u64);
    let cursor = match journal.cursor(run_id)? {
        Some(text) => Some(serde_json::from_str(&text).map_err(|e| LiveError::Corrupt {
            journal: journal_path.clone(),
            run: run_id,
            seq: inputs.last().map_or(0, |r| r.seq),
            message: format!("the proxy cursor is unreadable: {e}"),
        })?),
        None => None,
    };

    let control_addr = config
        .control_listener
        .local_addr()
        .map_err(LiveError::Control)?;
    journal.set_control(
        run_id,
        &format!("http://{control_addr}"),
        std::process::id(),
    )?;
    let (to_driver, mut commands) = mpsc::channel::<Command>(16);
    let (stop_control, control_stopped) = oneshot::channel::<()>();
    let control_task = tokio::spawn(control::serve(
        config.control_listener,
        format!("{deployment}/{run_id}"),
        config.control_token,
        to_driver,
        async move {
            let _ = control_stopped.await;
        },
    ));
    // The plan's flags, served over OFREP for as long as the controller runs.
    let (stop_flags, flags_stopped) = oneshot::channel::<()>();
    let mut flag_weight = None;
    let mut flag_stats = None;
    let mut flags_task = None;
    if let (false, Some(listener)) = (plan.flags.flags().is_empty(), config.ofrep_listener) {
        let state = Arc::new(ramp_flags::flags::FlagState::new(plan.flags.clone()));
        flag_weight = Some(state.weight_handle());
        let mut options = ramp_flags::ofrep::ServeOptions::default();
        if let Some(t) = &config.ofrep_token {
            options.token = ramp_flags::ofrep::ApiToken::new(t).ok();
        }
        if let Some(stats) = options.stats.clone() {
            flag_stats = Some((stats, Arc::clone(&state)));
        }
        if let Ok(addr) = listener.local_addr() {
            on(Progress::Line(
                engine.now(),
                format!(
                    "Serving {} flag(s) over OFREP at http://{addr}/ofrep/v1/evaluate/flags",
                    plan.flags.flags().len()
                ),
            ));
        }
        flags_task = Some(tokio::spawn(ramp_flags::ofrep::serve(
            listener,
            state,
            options,
            async move {
                let _ = flags_stopped.await;
            },
        )));
    }
    let (hooks_tx, mut hooks_rx) = mpsc::channel::<HookDone>(64);
    let rehearsal = config.rehearsal.map(|spec| LiveRehearsal {
        request: fault_request(&spec),
        spec,
        onset_ms: None,
        stage: 0,
        reference_from: None,
        reference: Metrics::default(),
        initiated_ms: None,
        reason: String::new(),
        rollback_ms: None,
        restored_ms: None,
        trail: std::collections::VecDeque::new(),
        degraded: None,
    });
    let mut d = Driver {
        plan: Arc::clone(&plan),
        engine,
        journal,
        journal_path,
        run_id,
        started_unix_ms,
        proxy: config.proxy,
        on,
        cursor,
        last_end_ms,
        metrics_problem: None,
        base_dir: config.base_dir,
        hooks_tx,
        hooks_running: 0,
        rollback_applied_ms: None,
        rehearsal,
        flag_weight,
        rollout_start_ms,
        resumable: halt_on_interrupt.is_none(),
        flag_stats,
    };
    // Followed flags serve 0 until the proxy is confirmed at the rollout's weight (`drive`
    // re-asserts it first thing): flags never lead the proxy. A rolled-back run's flags stay
    // off for everyone, scheduled ones included; otherwise schedules continue from the
    // journaled start.
    if d.engine.summary().rollback.is_some() {
        if let Some(h) = &d.flag_weight {
            h.rollback();
        }
    } else {
        d.publish_flag_weight(Weight::ZERO);
        d.publish_schedule();
    }
    let now = d.plan_now();
    if resumed {
        let where_ = match d.engine.state() {
            State::Pending => "before its first stage".to_string(),
            State::Running { index } => format!(
                "in stage {} of {} at {}",
                index + 1,
                plan.stages.len(),
                plan.stages[index].weight
            ),
            State::Finished(o) => format!("already finished ({})", o.key()),
        };
        d.line(
            now,
            format!(
                "Resumed run {run_id} of {deployment} from {}: {} journaled inputs replayed, {where_}; {} s since the last reading count in the stage",
                d.journal_path,
                inputs.len(),
                now.0.saturating_sub(d.last_end_ms) / 1000
            ),
        );
    } else {
        d.line(
            now,
            format!(
                "Run {run_id} of {deployment} journaled in {}; control API at http://{control_addr}",
                d.journal_path
            ),
        );
    }

    tokio::pin!(shutdown);
    let ended = d
        .drive(
            &mut commands,
            &mut hooks_rx,
            &mut shutdown,
            inputs.is_empty(),
        )
        .await;
    let _ = stop_control.send(());
    let _ = control_task.await;
    if let Some(t) = flags_task {
        if !interrupted_hint(&ended) {
            // Clients poll: give them a moment to see the final flags (all off after a
            // rollback) before the server goes away with the controller.
            tokio::time::sleep(FLAGS_LINGER).await;
        }
        let _ = stop_flags.send(());
        let _ = t.await;
    }
    let interrupted = ended?;
    if interrupted {
        let Some(reason) = halt_on_interrupt else {
            return Ok(RunEnd::Interrupted { run_id });
        };
        if !matches!(d.engine.state(), State::Finished(_)) {
            d.feed(
                Input::Halt {
                    who: "interrupted".into(),
                    reason,
                },
                None,
            )
            .await?;
        }
    }
    // Wait (bounded) for hooks still running, so that their results are journaled.
    let deadline = tokio::time::Instant::now() + HOOK_GRACE;
    while d.hooks_running > 0 {
        match tokio::time::timeout_at(deadline, hooks_rx.recv()).await {
            Ok(Some(done)) => d.hook_done(done)?,
            Ok(None) | Err(_) => break,
        }
    }
    let summary = d.summary();
    let json = serde_json::to_string(&summary).unwrap_or_default();
    d.journal
        .finish_run(run_id, summary.outcome.key(), clock::unix_ms(), &json)?;
    Ok(RunEnd::Finished {
        run_id,
        summary: Box::new(summary),
    })
}

impl Driver<'_> {
    /// Plan time now.
    fn plan_now(&self) -> PlanTime {
        PlanTime(u64::try_from(clock::unix_ms() - self.started_unix_ms).unwrap_or(0))
    }

    fn line(&mut self, t: PlanTime, text: String) {
        (self.on)(Progress::Line(t, text));
    }

    /// Appends an event to the journal.
    fn event<T: Serialize>(&mut self, t: PlanTime, kind: &str, body: &T) -> Result<(), LiveError> {
        let text = serde_json::to_string(body).unwrap_or_else(|_| "null".into());
        self.journal
            .append_event(self.run_id, t.0, clock::unix_ms(), kind, &text)?;
        Ok(())
    }

    /// The main loop; returns whether it was interrupted.
    async fn drive(
        &mut self,
        commands: &mut mpsc::Receiver<Command>,
        hooks_rx: &mut mpsc::Receiver<HookDone>,
        shutdown: &mut std::pin::Pin<&mut (impl Future<Output = ()> + Send)>,
        fresh: bool,
    ) -> Result<bool, LiveError> {
        if !self.confirm_proxy(shutdown).await? {
            return Ok(true);
        }
        if fresh {
            // No user reaches the canary before the checks pass and the first stage starts,
            // whatever weight an earlier run left in the proxy.
            self.apply_weight(Weight::ZERO).await;
            if !self.pre_deployment(shutdown).await? {
                return Ok(true);
            }
        } else {
            // Re-assert the weight the engine holds, in every state: the proxy may have
            // restarted meanwhile, or the controller died between journaling a rollback and
            // applying it.
            let w = self.engine.weight();
            self.apply_weight(w).await;
        }
        let mut next_try: Option<tokio::time::Instant> = None;
        loop {
            if let State::Finished(_) = self.engine.state() {
                if self.rehearsal_done() {
                    self.confirm_final_weight().await;
                    return Ok(false);
                }
            }
            let deadline = next_try.unwrap_or_else(|| self.deadline());
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
                        "Interrupted: the proxy keeps the current weight; run the same command again to resume"
                    } else {
                        "Interrupted: this run cannot be resumed, so it is halted"
                    };
                    self.line(t, text.into());
                    return Ok(true);
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
                _ = tokio::time::sleep_until(deadline) => {
                    next_try = None;
                    if !self.tick().await? {
                        next_try = Some(tokio::time::Instant::now() + self.retry_interval());
                    }
                }
            }
        }
    }

    /// How long until the next reading is due.
    fn deadline(&self) -> tokio::time::Instant {
        let due = match self.engine.state() {
            State::Finished(_) => PlanTime(self.plan_now().0 + RESTORE_POLL.as_millis() as u64),
            State::Pending | State::Running { .. } => {
                let mut due = self.engine.next_tick();
                if let Some(r) = &self.rehearsal {
                    if r.onset_ms.is_none() && r.spec.fault.at > self.engine.now() {
                        due = due.min(r.spec.fault.at);
                    }
                }
                due
            }
        };
        let wait_ms = due.0.saturating_sub(self.plan_now().0);
        tokio::time::Instant::now() + Duration::from_millis(wait_ms)
    }

    fn retry_interval(&self) -> Duration {
        if matches!(self.engine.state(), State::Finished(_)) {
            RESTORE_POLL
        } else {
            RETRY
        }
    }

    /// Runs the pre-deployment checks, then starts the rollout. Returns `false` when
    /// interrupted before the start.
    async fn pre_deployment(
        &mut self,
        shutdown: &mut std::pin::Pin<&mut (impl Future<Output = ()> + Send)>,
    ) -> Result<bool, LiveError> {
        let plan = Arc::clone(&self.plan);
        for check in &plan.checks {
            let outcome = checks::run_check(check, &self.base_dir).await;
            let t = self.plan_now();
            self.event(t, "check", &outcome_json(&outcome))?;
            let mark = if outcome.ok { "✓" } else { "✗" };
            self.line(t, format!("{mark} {}: {}", outcome.name, outcome.detail));
            if !outcome.ok {
                let reason = format!(
                    "{} failed ({}); no traffic was shifted",
                    outcome.name, outcome.detail
                );
                self.feed(
                    Input::Halt {
                        who: "pre-deployment check".into(),
                        reason,
                    },
                    None,
                )
                .await?;
                return Ok(true);
            }
        }
        if !plan.checks.is_empty() {
            let t = self.plan_now();
            self.line(t, "✓ Pre-deployment validation passed".into());
        }
        // The counters at the start are the base of the first slot.
        let Some(reading) = self.read_when_ready(shutdown).await? else {
            return Ok(false);
        };
        let t = self.plan_now().max(self.engine.now());
        self.last_end_ms = t.0;
        self.feed_at(t, Input::Start, Some(&reading.counters))
            .await?;
        self.cursor = Some(reading.counters);
        Ok(true)
    }

    /// Reads the proxy, retrying every [`RETRY`] (and saying why) while it cannot be read;
    /// `None` when interrupted meanwhile.
    async fn read_when_ready(
        &mut self,
        shutdown: &mut std::pin::Pin<&mut (impl Future<Output = ()> + Send)>,
    ) -> Result<Option<ProxyReading>, LiveError> {
        loop {
            match self.proxy.read().await {
                Ok(r) => {
                    self.metrics_back();
                    return Ok(Some(r));
                }
                Err(e) => {
                    let t = self.plan_now();
                    self.metrics_problem(t, &e)?;
                    tokio::select! {
                        _ = shutdown.as_mut() => return Ok(None),
                        _ = tokio::time::sleep(RETRY) => {}
                    }
                }
            }
        }
    }

    /// Reads the proxy once before anything is sent to it (waiting while it cannot be read)
    /// and refuses one that serves another deployment; a proxy that names none is driven,
    /// with a warning that its sticky salt is not the deployment's. Returns `false` when
    /// interrupted meanwhile.
    async fn confirm_proxy(
        &mut self,
        shutdown: &mut std::pin::Pin<&mut (impl Future<Output = ()> + Send)>,
    ) -> Result<bool, LiveError> {
        let Some(reading) = self.read_when_ready(shutdown).await? else {
            return Ok(false);
        };
        let plan_id = &self.plan.deployment.id;
        match reading.deployment_id.as_deref() {
            Some(id) if id == plan_id => {}
            None | Some(ramp_proxy::config::DEFAULT_DEPLOYMENT_ID) => {
                let t = self.plan_now();
                self.line(
                    t,
                    format!(
                        "The proxy at {} names no deployment: it salts sticky routing with {:?}, not {plan_id:?} (set deployment_id = {plan_id:?} in its configuration so that flags salted by the deployment agree with it)",
                        self.proxy.url(),
                        ramp_proxy::config::DEFAULT_DEPLOYMENT_ID
                    ),
                );
            }
            Some(other) => {
                return Err(LiveError::WrongProxy {
                    url: self.proxy.url().to_string(),
                    proxy: other.to_string(),
                    plan: plan_id.clone(),
                })
            }
        }
        Ok(true)
    }

    /// One reading and engine tick. Returns `false` when the proxy could not be read (the
    /// rollout holds: no data is never a pass).
    async fn tick(&mut self) -> Result<bool, LiveError> {
        let reading = match self.proxy.read().await {
            Ok(r) => r,
            Err(e) => {
                let t = self.plan_now();
                self.metrics_problem(t, &e)?;
                return Ok(false);
            }
        };
        self.metrics_back();
        // Followed flags never lead the proxy: when it routes less to the canary than they
        // serve (restarted without a state file, changed by hand), they come down to it at
        // once, and go back up only once the proxy is confirmed at the engine's weight.
        if let Some(h) = &self.flag_weight {
            if h.get_bp().is_some_and(|p| reading.canary_bp < p) {
                let _ = h.set_bp(reading.canary_bp);
            }
        }
        let now = self.plan_now();
        if let State::Finished(_) = self.engine.state() {
            self.rehearsal_poll(now, &reading.counters);
            return Ok(true);
        }
        // The weight the proxy should have held when it was read.
        let expected = self.engine.weight();
        let base = self
            .cursor
            .clone()
            .unwrap_or_else(|| reading.counters.clone());
        if now.0 > self.last_end_ms {
            let slot = reading.counters.slot_since(&base, self.last_end_ms, now.0);
            self.last_end_ms = now.0;
            self.feed_at(now, Input::Tick(slot), Some(&reading.counters))
                .await?;
            self.cursor = Some(reading.counters.clone());
        }
        if let State::Running { .. } = self.engine.state() {
            // The controller owns the weight: if the proxy holds another one (restarted
            // without a state file, or changed by hand), set it again.
            let w = self.engine.weight();
            if w == expected && reading.canary_bp != u32::from(w.basis_points()) {
                let t = self.plan_now();
                self.line(
                    t,
                    format!(
                        "The proxy routes {}% to the canary, not {}; setting it again",
                        f64::from(reading.canary_bp) / 100.0,
                        w
                    ),
                );
                self.apply_weight(w).await;
            } else if reading.canary_bp == u32::from(w.basis_points()) {
                // The proxy holds the weight (a `PUT` that timed out may still have been
                // applied): followed flags may catch up with it now, never before.
                self.publish_flag_weight(w);
            }
            self.rehearsal_inject(now, &reading.counters).await?;
        } else {
            self.rehearsal_poll(now, &reading.counters);
        }
        Ok(true)
    }

    fn metrics_problem(&mut self, t: PlanTime, e: &SourceError) -> Result<(), LiveError> {
        let text = e.to_string();
        if self.metrics_problem.as_deref() != Some(&text) {
            self.line(
                t,
                format!("Metrics unavailable ({text}); the rollout holds until they are back"),
            );
            self.event(t, "metrics_unavailable", &text)?;
        }
        self.metrics_problem = Some(text);
        Ok(())
    }

    fn metrics_back(&mut self) {
        if self.metrics_problem.take().is_some() {
            let t = self.plan_now();
            self.line(t, "Metrics available again".into());
        }
    }

    /// Journals `input` at plan time now and feeds it.
    async fn feed(&mut self, input: Input, cursor: Option<&Counters>) -> Result<(), LiveError> {
        let t = self.plan_now().max(self.engine.now());
        self.feed_at(t, input, cursor).await
    }

    /// Journals `input` at `t` (with the counters it consumed), feeds it, journals the
    /// decisions, then acts on them.
    async fn feed_at(
        &mut self,
        t: PlanTime,
        input: Input,
        cursor: Option<&Counters>,
    ) -> Result<(), LiveError> {
        let t = t.max(self.engine.now());
        let body = serde_json::to_string(&input).unwrap_or_default();
        let kind = input_kind(&input);
        let cursor_text = cursor.map(|c| serde_json::to_string(c).unwrap_or_default());
        let seq =
            self.journal
                .append_input(self.run_id, t.0, kind, &body, cursor_text.as_deref())?;
        let actions = self.engine.step(t, input);
        for a in &actions {
            if let Some((kind, body)) = action_event(a) {
                let body = serde_json::json!({ "input_seq": seq, "event": body });
                self.event(t, kind, &body)?;
            }
        }
        for a in &actions {
            (self.on)(Progress::Action(t, a));
            self.act(t, a).await;
        }
        Ok(())
    }

    /// Carries out one action.
    async fn act(&mut self, t: PlanTime, a: &Action) {
        match a {
            Action::SetWeight(w) => {
                // Flags move with the proxy: after it applies an increase, before a decrease
                // (see `apply_weight`).
                self.apply_weight(*w).await;
                if *w == Weight::ZERO && self.rollback_applied_ms.is_none() {
                    if let State::Finished(Outcome::RolledBack) | State::Running { .. } =
                        self.engine.state()
                    {
                        if self.engine.summary().rollback.is_some() {
                            self.rollback_applied_ms = Some(self.plan_now().0);
                        }
                    }
                }
            }
            Action::StageStarted { index, weight } => {
                // The flags' schedules start with the first stage (a resumed run finds the
                // same origin in the journaled stage start).
                if *index == 1 && self.rollout_start_ms.is_none() {
                    self.rollout_start_ms = Some(t.0);
                    self.publish_schedule();
                }
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
                self.run_hooks(
                    HookEvent::StageEnd,
                    serde_json::json!({"stage": index, "decision": decision.key(), "reasons": reasons}),
                );
            }
            Action::RollbackInitiated { stage, reason } => {
                // Every followed and scheduled flag off for everyone at once, before the
                // proxy moves (the engine's `SetWeight(0)` follows this action).
                if let Some(h) = &self.flag_weight {
                    h.rollback();
                }
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

    /// The OFREP server's distinct-user counts now, one row per flag, attributed to stage
    /// `stage` (1-based; a flag following the rollout is reported at that stage's weight, a
    /// scheduled one at its schedule's share at plan time `at`).
    fn flag_usage(&self, stage: usize, at: PlanTime) -> Vec<FlagUsageSummary> {
        let Some((stats, state)) = &self.flag_stats else {
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
                let scheduled = matches!(rollout, Some(ramp_flags::flags::Rollout::Schedule(_)));
                let weight = match rollout {
                    Some(ramp_flags::flags::Rollout::FollowRollout) => stage_weight,
                    Some(ramp_flags::flags::Rollout::Schedule(s)) => {
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

    /// Journals the flags' user counts at the end of stage `stage`, for the report (the
    /// journal keeps them across a restart).
    fn record_flag_usage(&mut self, t: PlanTime, stage: usize) {
        // The stage's last moment: a schedule step due exactly at its end belongs to the
        // next stage, which is the first to serve it.
        for row in self.flag_usage(stage, PlanTime(t.0.saturating_sub(1))) {
            if let Err(e) = self.event(t, "flag_usage", &row) {
                tracing::warn!(error = %e, "cannot journal flag usage");
            }
        }
    }

    /// Before the run is recorded as finished: the proxy must hold the final weight (0 after
    /// a rollback, 100 after a promotion). A weight that could not be set is retried until
    /// it is confirmed or a bounded number of attempts failed, and said so. A rehearsal's
    /// fault is removed.
    async fn confirm_final_weight(&mut self) {
        if self
            .rehearsal
            .as_ref()
            .is_some_and(|r| r.onset_ms.is_some())
        {
            if let Err(e) = self.proxy.clear_faults().await {
                let t = self.plan_now();
                self.line(t, format!("Could not remove the rehearsal's fault: {e}"));
            }
        }
        let w = self.engine.weight();
        for _ in 0..10 {
            match self.proxy.read().await {
                Ok(r) if r.canary_bp == u32::from(w.basis_points()) => return,
                Ok(_) | Err(_) => {
                    self.apply_weight(w).await;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        let t = self.plan_now();
        self.line(
            t,
            format!(
                "The proxy could not be confirmed at the final weight {w}; check it (GET /weights)"
            ),
        );
    }

    /// Moves the flags that follow the rollout to `w`.
    fn publish_flag_weight(&mut self, w: Weight) {
        if let Some(h) = &self.flag_weight {
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
        let start = self.rollout_start_ms?;
        Some(Duration::from_millis(t.0.saturating_sub(start)))
    }

    /// Publishes the time since the rollout started to flags with their own schedule (the
    /// state quantizes it, so the OFREP version moves only at a step). Nothing before the
    /// start: scheduled flags serve their default variant until then.
    fn publish_schedule(&mut self) {
        let (Some(h), Some(elapsed)) = (&self.flag_weight, self.schedule_elapsed()) else {
            return;
        };
        if h.has_schedules() {
            h.set_schedule_elapsed(elapsed);
        }
    }

    /// When the next step of a flag's own schedule is due, if any is still to come.
    fn schedule_due(&self) -> Option<tokio::time::Instant> {
        let h = self.flag_weight.as_ref()?;
        let elapsed = self.schedule_elapsed()?;
        let next = h.next_schedule_change(elapsed)?;
        Some(tokio::time::Instant::now() + next.saturating_sub(elapsed))
    }

    /// Sets the weight, retrying briefly; a weight that could not be set is set again at
    /// the next reading (the tick compares the proxy's weight with the engine's).
    ///
    /// Flags that follow the rollout never lead the proxy toward more exposure: a decrease
    /// (a rollback included) is published to them before the proxy's `PUT`, an increase only
    /// once the proxy has applied it (an increase that failed is published when the next
    /// reading sets it again). Returns whether the proxy took the weight.
    async fn apply_weight(&mut self, w: Weight) -> bool {
        let bp = u32::from(w.basis_points());
        let published = self.flag_weight.as_ref().and_then(|h| h.get_bp());
        let decrease = published.is_some_and(|p| bp < p);
        if decrease {
            self.publish_flag_weight(w);
        }
        for attempt in 0..5 {
            match self.proxy.set_weight(w).await {
                Ok(()) => {
                    if !decrease {
                        self.publish_flag_weight(w);
                    }
                    return true;
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

    /// Starts the plan's hooks for `event` in the background.
    fn run_hooks(&mut self, event: HookEvent, details: serde_json::Value) {
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
            "run_id": self.run_id,
            "t_s": t.as_secs_f64(),
            "details": details,
        })
        .to_string();
        for hook in hooks {
            self.hooks_running += 1;
            let tx = self.hooks_tx.clone();
            let body = body.clone();
            let base = self.base_dir.clone();
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

    fn hook_done(&mut self, done: HookDone) -> Result<(), LiveError> {
        self.hooks_running = self.hooks_running.saturating_sub(1);
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

    /// Answers one control API request.
    async fn command(
        &mut self,
        request: DriverRequest,
    ) -> Result<Result<StatusView, Refusal>, LiveError> {
        let (verb, body) = match request {
            DriverRequest::Status => return Ok(Ok(self.status())),
            DriverRequest::Act(verb, body) => (verb, body),
        };
        if let Some(message) = self.refusal(&verb, &body) {
            return Ok(Err(Refusal {
                status: 409,
                message,
            }));
        }
        let t = self.plan_now().max(self.engine.now());
        self.event(t, "operator", &serde_json::json!({"verb": verb.key(), "who": body.who, "reason": body.reason, "full": body.full, "stage": body.stage}))?;
        let reason_note = if body.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", body.reason)
        };
        self.line(
            t,
            format!("Operator {} {}{}", body.who, verb.key(), reason_note),
        );
        let ActionBody {
            who,
            reason,
            full,
            stage,
        } = body;
        let input = match verb {
            Verb::Pause => Input::Pause { who, reason },
            Verb::Resume => Input::Resume { who, reason },
            Verb::Promote => Input::Promote { who, reason, full },
            Verb::Abort => Input::Abort { who, reason },
            Verb::Approve => Input::Approve { who, reason, stage },
        };
        self.feed_at(t, input, None).await?;
        Ok(Ok(self.status()))
    }

    /// Why `verb` does not apply now, as a sentence; `None` when it does.
    fn refusal(&self, verb: &Verb, body: &ActionBody) -> Option<String> {
        let state = self.engine.state();
        if let State::Finished(o) = state {
            return Some(format!("the rollout is already finished ({})", o.key()));
        }
        match verb {
            Verb::Pause => self
                .engine
                .paused()
                .map(|p| format!("the rollout is already paused ({p})")),
            Verb::Resume => self
                .engine
                .paused()
                .is_none()
                .then(|| "the rollout is not paused".to_string()),
            Verb::Abort => None,
            Verb::Promote => {
                let State::Running { index } = state else {
                    return Some("no stage is running yet".into());
                };
                let last = self.plan.stages.len() - 1;
                let range = if body.full {
                    index + 1..=last
                } else {
                    index + 1..=(index + 1).min(last)
                };
                for i in range {
                    if i > index {
                        let missing = self.engine.missing_approvals(i);
                        if !missing.is_empty() {
                            return Some(format!(
                                "stage {} needs approval from {} first (ramp approve --as NAME --stage {})",
                                i + 1,
                                missing.join(", "),
                                i + 1
                            ));
                        }
                    }
                }
                None
            }
            Verb::Approve => {
                if self.engine.approval_target(&body.who, body.stage).is_some() {
                    return None;
                }
                let last = self.plan.stages.len();
                let pending: Vec<String> = (0..last)
                    .filter(|&i| match state {
                        State::Running { index } => i > index,
                        State::Pending | State::Finished(_) => true,
                    })
                    .filter_map(|i| {
                        let missing = self.engine.missing_approvals(i);
                        (!missing.is_empty())
                            .then(|| format!("stage {}: {}", i + 1, missing.join(", ")))
                    })
                    .collect();
                Some(match (body.stage, pending.is_empty()) {
                    (_, true) => "no stage still to come is waiting for approvals".into(),
                    (Some(n), false) => format!(
                        "stage {n} is not still to come or does not wait for {} (waiting: {})",
                        body.who,
                        pending.join("; ")
                    ),
                    (None, false) => format!(
                        "{} is not an approver any stage still to come is waiting for (waiting: {})",
                        body.who,
                        pending.join("; ")
                    ),
                })
            }
        }
    }

    fn status(&self) -> StatusView {
        let mut view = StatusView::of(&self.engine, self.run_id, self.metrics_problem.clone());
        let stage = match self.engine.state() {
            State::Running { index } => index + 1,
            State::Pending | State::Finished(_) => self.engine.summary().stages.len(),
        };
        view.flags = self.flag_usage(stage, self.plan_now().max(self.engine.now()));
        view
    }

    /// The final summary: the engine's, with the live measurements it cannot know.
    fn summary(&self) -> Summary {
        let mut s = self.engine.summary();
        s.mode = if self.rehearsal.is_some() {
            "rehearsal".into()
        } else {
            "live".into()
        };
        if let (Some(rb), Some(applied)) = (&mut s.rollback, self.rollback_applied_ms) {
            rb.rollback_s = PlanTime(applied).as_secs_f64();
        }
        if let Some(r) = &self.rehearsal {
            s.rehearsals.push(rehearsal_summary(r));
        }
        if let Ok(events) = self.journal.events(self.run_id, 0) {
            s.flags = events
                .iter()
                .filter(|e| e.kind == "flag_usage")
                .filter_map(|e| serde_json::from_str(&e.body).ok())
                .collect();
        }
        s
    }

    // -- Rehearsals ------------------------------------------------------------------------

    /// Injects the rehearsal's fault once its time has come.
    async fn rehearsal_inject(
        &mut self,
        now: PlanTime,
        counters: &Counters,
    ) -> Result<(), LiveError> {
        let Some(r) = &mut self.rehearsal else {
            return Ok(());
        };
        if r.onset_ms.is_some() {
            return Ok(());
        }
        let at = r.spec.fault.at;
        // The reference covers the run's last REFERENCE_SPAN (or restore window, if longer)
        // before the onset: long enough that its quantiles are not noise.
        let span = r
            .spec
            .restore_window
            .0
            .max(REFERENCE_SPAN.as_millis() as u64);
        if r.reference_from.is_none() || now.0 + span < at.0 {
            r.reference_from = Some((now.0, counters.clone()));
        }
        if now < at {
            return Ok(());
        }
        let State::Running { index } = self.engine.state() else {
            return Ok(());
        };
        let (from_ms, from) = r
            .reference_from
            .clone()
            .unwrap_or((now.0, counters.clone()));
        let before = counters.slot_since(&from, from_ms, now.0);
        r.reference = service_metrics(
            &before.canary,
            &before.stable,
            now.0.saturating_sub(from_ms),
        );
        let request = r.request.clone();
        let name = r.spec.name.clone();
        let onset = self.plan_now();
        match self.proxy.add_fault(&request).await {
            Ok(_) => {
                let r = self.rehearsal.as_mut().expect("checked above");
                r.onset_ms = Some(onset.0);
                r.stage = index + 1;
                let reference = r.reference;
                self.event(
                    onset,
                    "rehearsal_fault",
                    &serde_json::json!({"name": name, "fault": describe_fault(&request)}),
                )?;
                self.line(
                    onset,
                    format!(
                        "Rehearsal \"{name}\": baseline P95={} P99={} errors={}; injecting {}",
                        fmt_ms(reference.p95_ms),
                        fmt_ms(reference.p99_ms),
                        reference
                            .error_rate
                            .map_or("n/a".into(), |e| format!("{:.2}%", e * 100.0)),
                        describe_fault(&request)
                    ),
                );
            }
            Err(e) => {
                self.line(
                    onset,
                    format!("Rehearsal \"{name}\": could not inject the fault: {e}"),
                );
            }
        }
        Ok(())
    }

    /// After the rollback: times the drain, then the restoration on a trailing window of
    /// readings taken after the drain.
    fn rehearsal_poll(&mut self, now: PlanTime, counters: &Counters) {
        let applied = self.rollback_applied_ms;
        let Some(r) = &mut self.rehearsal else {
            return;
        };
        let (Some(_), Some(applied)) = (r.onset_ms, applied) else {
            return;
        };
        if r.rollback_ms.is_none() {
            // A reading taken before weight 0 was applied says nothing about the drain.
            if now.0 >= applied && counters.canary.in_flight <= 0 {
                r.rollback_ms = Some(now.0.max(applied));
                r.trail.clear();
                r.trail.push_back((now.0, counters.clone()));
            }
            return;
        }
        if r.restored_ms.is_some() {
            return;
        }
        r.trail.push_back((now.0, counters.clone()));
        let window = r.spec.restore_window.0;
        // Keep the newest reading that is at least a window old as the window's start.
        while r.trail.len() > 2 && r.trail[1].0 + window <= now.0 {
            r.trail.pop_front();
        }
        let Some((from_ms, from)) = r.trail.front().cloned() else {
            return;
        };
        let span = now.0.saturating_sub(from_ms);
        if span < window {
            return;
        }
        let slot = counters.slot_since(&from, from_ms, now.0);
        let m = service_metrics(&slot.canary, &slot.stable, span);
        if restored(&m, &r.reference, r.spec.restore_tolerance) {
            r.restored_ms = Some(now.0);
        }
    }

    /// Whether the run may end: always without a rehearsal; with one, once restoration is
    /// timed or its target has passed.
    fn rehearsal_done(&self) -> bool {
        let Some(r) = &self.rehearsal else {
            return true;
        };
        let Some(onset) = r.onset_ms else {
            return true;
        };
        if r.restored_ms.is_some() || r.initiated_ms.is_none() {
            return true;
        }
        self.plan_now().0 > onset + r.spec.target.0
    }
}

/// Whether the loop ended by interruption (no linger then: the operator asked to stop).
fn interrupted_hint(ended: &Result<bool, LiveError>) -> bool {
    matches!(ended, Ok(true))
}

/// The engine input's journal kind.
fn input_kind(input: &Input) -> &'static str {
    match input {
        Input::Start => "start",
        Input::Tick(_) => "tick",
        Input::Abort { .. } => "abort",
        Input::Pause { .. } => "pause",
        Input::Resume { .. } => "resume",
        Input::Promote { .. } => "promote",
        Input::Approve { .. } => "approve",
        Input::Halt { .. } => "halt",
    }
}

/// The journal event of an action, when it is one worth recording (weights are recorded
/// with their decisions).
fn action_event(a: &Action) -> Option<(&'static str, serde_json::Value)> {
    use serde_json::json;
    Some(match a {
        Action::SetWeight(w) => ("set_weight", json!({"weight": w.percent()})),
        Action::StageStarted { index, weight } => (
            "stage_started",
            json!({"stage": index, "weight": weight.percent()}),
        ),
        Action::Checkpoint(r) => (
            "checkpoint",
            json!({"stage": r.stage, "checkpoint": r.checkpoint}),
        ),
        Action::StageDecided {
            index,
            decision,
            reasons,
        } => (
            "stage_decided",
            json!({"stage": index, "decision": decision.key(), "reasons": reasons}),
        ),
        Action::RollbackInitiated { stage, reason } => (
            "rollback_initiated",
            json!({"stage": stage, "reason": reason}),
        ),
        Action::AwaitingApproval { stage, missing } => (
            "awaiting_approval",
            json!({"stage": stage, "missing": missing}),
        ),
        Action::Finished(o) => ("finished", json!({"outcome": o.key()})),
    })
}

fn outcome_json(o: &checks::ProbeOutcome) -> serde_json::Value {
    serde_json::json!({
        "name": o.name,
        "ok": o.ok,
        "detail": o.detail,
        "elapsed_s": o.elapsed.as_secs_f64(),
    })
}

/// The proxy request for a rehearsal's fault.
fn fault_request(r: &Rehearsal) -> FaultRequest {
    let cohort = match r.fault.cohort {
        Cohort::Canary => "canary",
        Cohort::Stable => "stable",
    }
    .to_string();
    let duration_s = r
        .fault
        .duration
        .map_or(r.target.as_secs_f64().max(60.0), |d| d.as_secs_f64());
    match r.fault.effect {
        FaultEffect::AddLatency { ms, fraction } => FaultRequest {
            cohort,
            fraction,
            add_latency_ms: Some(ms.round() as u64),
            abort_status: None,
            duration_s,
        },
        FaultEffect::ErrorRate { rate } => FaultRequest {
            cohort,
            fraction: rate,
            add_latency_ms: None,
            abort_status: Some(503),
            duration_s,
        },
    }
}

/// "+800 ms on 50% of canary requests".
fn describe_fault(f: &FaultRequest) -> String {
    let share = format!("{}% of {} requests", f.fraction * 100.0, f.cohort);
    match (f.add_latency_ms, f.abort_status) {
        (Some(ms), _) => format!("+{ms} ms on {share}"),
        (None, Some(status)) => format!("HTTP {status} on {share}"),
        (None, None) => share,
    }
}

/// Service-wide metrics of both cohorts over `span_ms`.
fn service_metrics(canary: &CohortStats, stable: &CohortStats, span_ms: u64) -> Metrics {
    let mut all = canary.clone();
    all.merge(stable);
    Metrics {
        p50_ms: all.latency.quantile(0.50),
        p95_ms: all.latency.quantile(0.95),
        p99_ms: all.latency.quantile(0.99),
        error_rate: all.error_rate(),
        throughput_rps: (span_ms > 0).then(|| all.requests as f64 * 1000.0 / span_ms as f64),
        requests: all.requests,
    }
}

/// Whether `m` is back within `tolerance` of `reference` on p95, p99 and errors (a metric
/// the reference lacks is not judged).
fn restored(m: &Metrics, reference: &Metrics, tolerance: f64) -> bool {
    if m.p95_ms.is_none() {
        return false;
    }
    let within = |now: Option<f64>, then: Option<f64>, slack: f64| match (now, then) {
        (Some(n), Some(t)) => n <= t * (1.0 + tolerance) + slack,
        _ => true,
    };
    within(m.p95_ms, reference.p95_ms, 0.0)
        && within(m.p99_ms, reference.p99_ms, 0.0)
        // Error rates are small fractions: allow one percentage point of noise on top.
        && within(m.error_rate, reference.error_rate, 0.01)
}

/// The metrics a stage's failing gates observed ("P95=850ms, P99=1450ms" at detection).
fn metrics_of_gates(gates: &[ramp_core::summary::GateResult]) -> Metrics {
    use ramp_core::Metric;
    let mut m = Metrics::default();
    for g in gates {
        match g.metric {
            Metric::P50Ms => m.p50_ms = m.p50_ms.or(g.observed),
            Metric::P95Ms => m.p95_ms = m.p95_ms.or(g.observed),
            Metric::P99Ms => m.p99_ms = m.p99_ms.or(g.observed),
            Metric::ErrorRate => m.error_rate = m.error_rate.or(g.observed),
            Metric::ThroughputRps => m.throughput_rps = m.throughput_rps.or(g.observed),
        }
    }
    m
}

fn rehearsal_summary(r: &LiveRehearsal) -> RehearsalSummary {
    let s = |ms: Option<u64>| ms.map(|v| PlanTime(v).as_secs_f64());
    let onset = r.onset_ms.unwrap_or(0);
    use ramp_core::summary::RehearsalOutcome;
    let outcome = match (r.onset_ms, r.initiated_ms, r.restored_ms) {
        (None, _, _) => RehearsalOutcome::NotInjected,
        (Some(_), None, _) => RehearsalOutcome::NotDetected,
        (Some(_), Some(_), None) => RehearsalOutcome::NotRestored,
        (Some(_), Some(_), Some(_)) => RehearsalOutcome::RolledBack,
    };
    RehearsalSummary {
        name: r.spec.name.clone(),
        outcome,
        stage: r.stage,
        reason: r.reason.clone(),
        fault_onset_s: PlanTime(onset).as_secs_f64(),
        detection_s: s(r.initiated_ms),
        initiated_s: s(r.initiated_ms),
        rollback_s: s(r.rollback_ms),
        restoration_s: s(r.restored_ms),
        total_recovery_s: r
            .restored_ms
            .map(|t| PlanTime(t.saturating_sub(onset)).as_secs_f64()),
        target_s: r.spec.target.as_secs_f64(),
        fault: describe_fault(&r.request),
        reference: r.reference,
        degraded: r.degraded,
    }
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.0}ms"))
}

/// Unix milliseconds as an RFC 3339 UTC timestamp (seconds precision).
pub fn rfc3339(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_759_773_600_000), "2025-10-06T18:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn restoration_needs_every_metric_back_within_tolerance() {
        let reference = Metrics {
            p50_ms: Some(100.0),
            p95_ms: Some(300.0),
            p99_ms: Some(500.0),
            error_rate: Some(0.001),
            throughput_rps: Some(100.0),
            requests: 1000,
        };
        let mut m = reference;
        assert!(restored(&m, &reference, 0.1));
        m.p99_ms = Some(560.0);
        assert!(!restored(&m, &reference, 0.1));
        m.p99_ms = Some(540.0);
        m.error_rate = Some(0.05);
        assert!(!restored(&m, &reference, 0.1));
        m.error_rate = Some(0.005);
        assert!(restored(&m, &reference, 0.1));
        assert!(!restored(&Metrics::default(), &reference, 0.1));
    }
}
