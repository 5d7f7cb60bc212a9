//! Start-up and the run from start to end: the deployment's lock, the journal's run (new or
//! resumed), replay (`replay`: from the latest snapshot when there is a usable one), the
//! sidecar servers, the loop, then the end.

use super::flags::Flags;
use super::identity;
use super::infra::InfraSampler;
use super::queries::QueryGates;
use super::rehearsal::LiveRehearsal;
use super::replay::replay;
use super::sidecars::{ControlServer, FlagsServer};
use super::teardown::Hooks;
use super::{
    records, Driver, Ended, LiveError, MetricsFeed, Progress, ProgressSink, Routing, RunConfig,
    RunEnd, RunJournal,
};
use crate::clock;
use crate::control::MetricsEndpoint;
use crate::exposition::ControllerMetrics;
use crate::notify::Notifications;
use crate::prometheus::{PromClient, PromError, PrometheusSource};
use crate::seams::{JournalStore, MetricsSource, Router};
use ramp_core::engine::{Input, State};
use ramp_core::plan::{MetricsSource as PlanSource, Plan};
use ramp_core::PlanTime;
use ramp_store::{DeploymentLock, Journal, RunRecord};
use std::future::Future;
use std::sync::Arc;

/// Runs (or resumes) the plan's rollout until it finishes or `shutdown` resolves, with
/// today's seams: the router of `config.router` (a Ramp proxy is also the metrics source;
/// the other routers are driven by `routed`), and the SQLite
/// journal at `config.journal`, locked for the deployment for as long as the run goes on.
pub async fn run(
    config: RunConfig,
    on: &mut (dyn FnMut(Progress<'_>) + Send),
    shutdown: impl Future<Output = ()> + Send,
) -> Result<RunEnd, LiveError> {
    if let Some(store) = config.plan.store.clone() {
        return super::ha::run(config, store, on, shutdown).await;
    }
    let _lock = DeploymentLock::acquire(&config.journal, &config.plan.deployment.id)?;
    let journal = Journal::open(&config.journal)?;
    run_on(config, journal, on, shutdown).await
}

/// The run on an opened journal (the SQLite file, locked; or etcd, led): the checks before
/// it, then the router and metrics source of the plan.
pub(super) async fn run_on<J: JournalStore>(
    config: RunConfig,
    journal: J,
    on: &mut (dyn FnMut(Progress<'_>) + Send),
    shutdown: impl Future<Output = ()> + Send,
) -> Result<RunEnd, LiveError> {
    let exposition = Arc::new(ControllerMetrics::default());
    // What the checks before the run found but did not stop it for, said once it starts.
    let mut said = Vec::new();
    let queries = query_gates(&config, &mut said).await?;
    let prometheus = match config.plan.metrics {
        PlanSource::Proxy => None,
        PlanSource::Prometheus => Some(prometheus_source(&config, &mut said).await?),
    };
    for line in said {
        on(Progress::Line(PlanTime::ZERO, line));
    }
    let opened = Opened {
        journal,
        exposition,
        queries,
    };
    super::routed::run_routed(
        config.router.clone(),
        prometheus,
        config,
        opened,
        on,
        shutdown,
    )
    .await
}

/// What `run` has opened and checked before it picks the seams: the journal, the metrics
/// registry and the query gates.
pub(super) struct Opened<J> {
    /// The journal, locked for the deployment (SQLite) or led (etcd).
    pub(super) journal: J,
    /// What `GET /metrics` renders.
    pub(super) exposition: Arc<ControllerMetrics>,
    /// The query gates, when the plan has any.
    pub(super) queries: Option<QueryGates>,
}

/// The plan's Prometheus server settings and bearer token (read from its file, relative to
/// the plan's directory).
fn prometheus_settings(
    config: &RunConfig,
) -> Result<(&ramp_core::plan::PrometheusSource, Option<String>), LiveError> {
    let settings = config
        .plan
        .prometheus
        .as_ref()
        .ok_or_else(|| LiveError::Prometheus {
            what: "[metrics]".into(),
            source: PromError::Config {
                url: String::new(),
                message: "the plan names no server (url)".into(),
            },
        })?;
    let token = match &settings.token_file {
        None => None,
        Some(file) => {
            let path = config.base_dir.join(file);
            let text = std::fs::read_to_string(&path).map_err(|source| LiveError::File {
                what: "the Prometheus token file",
                path: path.display().to_string(),
                source,
            })?;
            Some(text.trim().to_string())
        }
    };
    Ok((settings, token))
}

/// The Prometheus metrics source of the plan, checked once before anything is journaled or
/// any weight moves: a query Prometheus refuses as malformed, or one whose answer has the
/// wrong shape (not series, buckets that are not a histogram), stops the run (exit 2); other
/// problems (no series yet, Prometheus not answering yet) are added to `said`.
pub(super) async fn prometheus_source(
    config: &RunConfig,
    said: &mut Vec<String>,
) -> Result<PrometheusSource, LiveError> {
    let (settings, token) = prometheus_settings(config)?;
    let plan = &config.plan;
    let source = PrometheusSource::new(settings, &plan.deployment, plan.evaluate_every, token)
        .map_err(|source| LiveError::Prometheus {
            what: "metrics source".into(),
            source,
        })?;
    let refused = |e: PromError| LiveError::Prometheus {
        what: "metrics source".into(),
        source: e,
    };
    match source.check().await {
        Err(e) if e.is_bad_query() => return Err(refused(e)),
        Err(e) => said.push(format!("Prometheus cannot be read yet: {e}")),
        Ok(problems) => {
            for e in problems {
                if matches!(e, PromError::NotVector { .. } | PromError::Histogram { .. }) {
                    return Err(refused(e));
                }
                said.push(format!("Prometheus: {e}"));
            }
        }
    }
    Ok(source)
}

/// The plan's query gates with their Prometheus client, each evaluated once up front for
/// the same reason; `None` without any.
async fn query_gates(
    config: &RunConfig,
    said: &mut Vec<String>,
) -> Result<Option<QueryGates>, LiveError> {
    if config.plan.queries.is_empty() {
        return Ok(None);
    }
    let (settings, token) = prometheus_settings(config)?;
    let timeout = std::time::Duration::from_millis(settings.timeout.0);
    let client =
        PromClient::new(&settings.url, token, timeout).map_err(|source| LiveError::Prometheus {
            what: "query gates".into(),
            source,
        })?;
    let gates = QueryGates::new(&config.plan, client)?;
    if let Some(g) = &gates {
        said.extend(g.check(clock::unix_ms()).await?);
    }
    Ok(gates)
}

/// The plan's report queries with their Prometheus client; `None` without any. They are not
/// checked up front: they never decide anything, and a sample that fails is recorded as
/// missing.
fn report_queries(config: &RunConfig) -> Result<Option<InfraSampler>, LiveError> {
    if config.plan.report_queries.is_empty() {
        return Ok(None);
    }
    let (settings, token) = prometheus_settings(config)?;
    let timeout = std::time::Duration::from_millis(settings.timeout.0);
    let client =
        PromClient::new(&settings.url, token, timeout).map_err(|source| LiveError::Prometheus {
            what: "report queries".into(),
            source,
        })?;
    InfraSampler::new(&config.plan, client)
}

/// What a run observes: its metrics source, and its query gates when the plan has any.
pub(super) struct Observation<S> {
    /// Where canary and stable are read.
    pub(super) source: S,
    /// The query gates and their Prometheus client.
    pub(super) queries: Option<QueryGates>,
}

/// The run against any metrics source, router and journal store.
pub(super) async fn run_with<S: MetricsSource, R: Router, J: JournalStore>(
    config: RunConfig,
    observed: Observation<S>,
    router: R,
    mut store: J,
    exposition: Arc<ControllerMetrics>,
    on: ProgressSink<'_>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<RunEnd, LiveError> {
    let journal_path = store.location();
    let infra = report_queries(&config)?;
    // A notifier that cannot be set up stops the run before anything is journaled or sent.
    let (notify, mut notes_rx) = Notifications::start(&config.plan.notify, &config.base_dir)?;
    tokio::pin!(shutdown);
    // Nothing is journaled or sent to the router before it says who it is and whose weights
    // it holds.
    let Some(identity) = identity::wait_for_router(&router, &mut *on, &mut shutdown).await else {
        return Ok(RunEnd::Interrupted { run_id: None });
    };
    let checked = identity::check(
        &identity,
        &router,
        &store,
        &config.plan.deployment.id,
        config.new_run,
    )?;
    if checked.start_over {
        supersede(&mut store, &config, &journal_path)?;
    }
    let warnings = checked.said;
    let (run, resumed) = open_run(&mut store, &config, &journal_path)?;
    let (run_id, started_unix_ms) = (run.run_id, run.started_unix_ms);
    let plan = Arc::new(started_at(&config.plan, started_unix_ms));
    on(Progress::Began(Arc::clone(&plan)));
    let replayed = replay(&store, &plan, &run.plan_toml, run_id, &journal_path, true)?;
    let lost = if resumed {
        super::replay::journal_lost_decisions(&mut store, run_id, replayed.last_decisions.as_ref())?
    } else {
        0
    };
    if lost > 0 {
        let t = replayed
            .last_decisions
            .as_ref()
            .map_or(PlanTime::ZERO, |d| d.1);
        on(Progress::Line(
            t,
            format!("Journaled {lost} decisions of input {} that the previous controller made but had not journaled when it stopped (their hooks and notifications did not run)", replayed.last_seq),
        ));
    }
    if resumed {
        // A leader elected on etcd that resumes a run took it over from another controller.
        super::ha::journal_takeover(&mut store, &config, run_id, started_unix_ms, &mut *on)?;
    }
    let deployment = &plan.deployment.id;
    let (control, mut commands) = ControlServer::start(
        config.control_listener,
        format!("{deployment}/{run_id}"),
        config.control_token,
        MetricsEndpoint {
            registry: Arc::clone(&exposition),
            token: config.metrics_token,
        },
        &mut store,
        run_id,
    )?;
    let flags_server = FlagsServer::start(
        &plan,
        config.ofrep_listener,
        config.ofrep_token.as_deref(),
        &mut *on,
        replayed.engine.now(),
    );
    let (hooks, mut hooks_rx) = Hooks::new(config.base_dir);
    // A new run has no journaled input (a resumed one restored from a snapshot may have
    // none after the snapshot, and is not fresh).
    let fresh = replayed.last_seq == 0;
    let mut d = Driver {
        plan: Arc::clone(&plan),
        engine: replayed.engine,
        journal: RunJournal {
            store,
            path: journal_path,
            run_id,
            token: run.token,
            last_seq: replayed.last_seq,
            started_unix_ms,
            plan_text: run.plan_toml,
        },
        metrics: MetricsFeed {
            unread_by: observed.source.noun(),
            source: observed.source,
            cursor: replayed.cursor,
            last_end_ms: replayed.last_end_ms,
            problem: None,
            incomplete: None,
            queries: observed.queries,
            infra,
        },
        routing: Routing {
            router,
            rollback_applied_ms: None,
            members_start: None,
            superseded: None,
        },
        on,
        hooks,
        notify,
        flags: Flags::new(flags_server.as_ref(), replayed.rollout_start_ms),
        rehearsal: config.rehearsal.map(LiveRehearsal::new),
        resumable: config.halt_on_interrupt.is_none(),
        exposition,
    };
    d.publish();
    d.init_flags();
    for text in warnings {
        let now = d.plan_now();
        d.line(now, text);
    }
    if resumed {
        if let State::Running { index } = d.engine.state() {
            d.resume_members(index + 1);
        }
        if let Some(why) = replayed.ignored {
            let now = d.plan_now();
            let text = format!("The latest engine snapshot of run {run_id} is not used: {why}; every journaled input is replayed instead");
            d.line(now, text);
        }
        d.announce_resume(replayed.inputs, replayed.snapshot.as_deref());
    } else {
        let text = format!(
            "Run {run_id} of {deployment} journaled in {}; control API at {}, dashboard at {}/",
            d.journal.path,
            control.url(),
            control.url()
        );
        let now = d.plan_now();
        d.line(now, text);
    }

    let ended = d
        .drive(
            &mut commands,
            &mut hooks_rx,
            &mut notes_rx,
            &mut shutdown,
            fresh,
        )
        .await;
    control.stop().await;
    if let Some(server) = flags_server {
        // No linger after an interruption: the operator asked to stop.
        server.stop(!matches!(ended, Ok(Ended::Interrupted))).await;
    }
    d.finish(
        ended?,
        config.halt_on_interrupt,
        &mut hooks_rx,
        &mut notes_rx,
    )
    .await
}

/// Finds the deployment's unfinished run (which must have the same plan) or begins a new one.
/// Returns the run and whether it is resumed.
fn open_run<J: JournalStore>(
    store: &mut J,
    config: &RunConfig,
    journal_path: &str,
) -> Result<(RunRecord, bool), LiveError> {
    let deployment = &config.plan.deployment.id;
    match store.active_run(deployment)? {
        Some(r) if r.plan_toml != config.plan_text => Err(LiveError::PlanChanged {
            journal: journal_path.to_string(),
            deployment: deployment.clone(),
            run: r.run_id,
        }),
        Some(r) => Ok((r, true)),
        None => {
            let now = clock::unix_ms();
            let run = store.begin_run(deployment, &config.plan_path, &config.plan_text, now)?;
            Ok((run, false))
        }
    }
}

/// Halts the deployment's unfinished run in this journal, if any, because the operator starts
/// over (`--new-run`) against a router this journal does not account for: the run is replayed
/// from its own plan, a journaled halt ends it, and it is recorded finished, so that the new
/// run does not resume it.
fn supersede<J: JournalStore>(
    store: &mut J,
    config: &RunConfig,
    journal_path: &str,
) -> Result<(), LiveError> {
    let deployment = &config.plan.deployment.id;
    let Some(old) = store.active_run(deployment)? else {
        return Ok(());
    };
    let corrupt = |message: String| LiveError::Corrupt {
        journal: journal_path.to_string(),
        run: old.run_id,
        seq: 0,
        message,
    };
    let plan = ramp_core::parse_plan(&old.plan_toml, &old.plan_path)
        .map_err(|e| corrupt(format!("its plan no longer loads: {e}")))?;
    let plan = Arc::new(started_at(&plan, old.started_unix_ms));
    let mut engine = replay(store, &plan, &old.plan_toml, old.run_id, journal_path, true)?.engine;
    let halt = Input::Halt {
        who: "--new-run".into(),
        reason: "the operator started over: the router's weights had been set by a run this journal does not account for".into(),
    };
    let t = engine.now();
    let body = serde_json::to_string(&halt).unwrap_or_default();
    store.append_input(old.run_id, t.0, "halt", &body, None)?;
    let _ = engine.step(t, halt);
    let summary = engine.summary();
    let json = serde_json::to_string(&summary).unwrap_or_default();
    store.finish_run(old.run_id, summary.outcome.key(), clock::unix_ms(), &json)?;
    Ok(())
}

/// The plan with the run's real start filled in.
pub(super) fn started_at(plan: &Plan, started_unix_ms: i64) -> Plan {
    let mut plan = plan.clone();
    plan.deployment.start = Some(records::rfc3339(started_unix_ms));
    plan.deployment.start_second_of_day =
        u32::try_from(started_unix_ms.div_euclid(1000).rem_euclid(86_400)).unwrap_or(0);
    plan
}

impl<S: MetricsSource, R: Router, J: JournalStore> Driver<'_, S, R, J> {
    /// Says where a resumed run picks up.
    fn announce_resume(&mut self, replayed: usize, snapshot: Option<&str>) {
        let plan = Arc::clone(&self.plan);
        let where_ = match self.engine.state() {
            State::Pending => "before its first stage".to_string(),
            State::Running { index } => format!(
                "in stage {} of {} at {}",
                index + 1,
                plan.stages.len(),
                plan.stages[index].weight
            ),
            State::Finished(o) => format!("already finished ({})", o.key()),
        };
        let now = self.plan_now();
        let replayed = match snapshot {
            Some(at) => {
                format!("from the snapshot at {at}, {replayed} journaled inputs replayed after it")
            }
            None => format!("{replayed} journaled inputs replayed"),
        };
        let text = format!(
            "Resumed run {} of {} from {}: {replayed}, {where_}; the {} s since the last reading count in the stage if {} kept counting, and are unobserved if it restarted",
            self.journal.run_id,
            plan.deployment.id,
            self.journal.path,
            now.0.saturating_sub(self.metrics.last_end_ms) / 1000,
            self.metrics.source.noun()
        );
        self.line(now, text);
    }
}
