//! `ramp run`: the engine on the real clock.
//!
//! The loop, once per evaluation interval: read the metrics source's cumulative counters,
//! turn the difference since the last reading into a slot, journal the slot (with the
//! counters it consumed, in one transaction), feed it to the engine, journal what the engine
//! decided, then act (set the weight through the router, run hooks). Operator actions arrive
//! from the control API and take the same path: journaled, fed, acted on.
//!
//! Resuming is replaying: the engine is deterministic, so feeding it the journaled inputs in
//! order rebuilds exactly the state it had when the controller died — the same stage, its
//! elapsed time, every checkpoint. Replay is bounded: the engine's state is snapshotted into
//! the journal at every stage start and checkpoint, and a resume restores the latest
//! snapshot and replays only the inputs after it (`replay`). The first reading after a restart covers the whole time
//! the controller was down (the source's counters kept counting), so that time is neither
//! lost nor counted twice.
//!
//! The driver sees its metrics source, router and journal only through the traits of
//! [`crate::seams`]; [`run`] picks today's implementations (a Ramp proxy and the SQLite
//! journal). The files: `start` (lock, journal, replay, the run from start to end),
//! `sidecars` (the control and OFREP servers), `run_loop` (the loop and its readings),
//! `feed` (journal, feed, act), `flags`, `operator` (the control API's requests),
//! `rehearsal` (a rollback rehearsed on live traffic), `teardown` (hooks and the end of the
//! run), `notices` (notifications offered and their deliveries journaled), `infra` (report
//! queries sampled for the report's infrastructure impact) and `records` (what the journal's
//! events say).

mod feed;
mod flags;
mod ha;
mod identity;
mod infra;
mod members;
mod notices;
mod operator;
mod queries;
mod records;
mod rehearsal;
mod replay;
mod routed;
mod run_loop;
mod sidecars;
mod start;
mod teardown;

pub use ha::{attach_takeovers, takeovers_from_events};
pub use infra::infra_from_events;
pub use records::{checks_from_events, rfc3339};
pub use replay::{encode_snapshot, replay_run, run_plan, ResumeReport};
pub use start::run;

use crate::clock;
use crate::seams::{JournalStore, MetricsSource, Router};
use crate::source::Counters;
use ramp_core::engine::{Action, Engine};
use ramp_core::plan::{Plan, Rehearsal};
use ramp_core::summary::Summary;
use ramp_core::PlanTime;
use ramp_store::StoreError;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;

/// Why a live run could not go on. Every variant leaves the router at its last weight.
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
    /// A notifier could not be set up (its `url_file` cannot be read or holds no valid URL,
    /// or no TLS root certificates could be loaded): caught before anything is journaled.
    #[error(transparent)]
    Notify(#[from] crate::notify::NotifyError),
    /// The control API's listener failed.
    #[error("control API: {0}")]
    Control(std::io::Error),
    /// The router refused a weight change by fencing: a controller elected after this one
    /// has set the weights, so this one stopped acting (nothing more is sent to the router;
    /// the run stays open in the journal for the leader).
    #[error("lost leadership, stopped acting: {reason}")]
    Superseded {
        /// The router's refusal.
        reason: String,
    },
    /// The router's weights were set by a run this journal does not hold (the journal was
    /// emptied, replaced, or belongs to another controller): starting here would start over at
    /// stage 1 and move its weight without a word, so nothing is sent to it.
    #[error("the router at {url} holds weights set by run {token}, which the journal {journal} does not hold (it was emptied or replaced, or another controller's journal drives this router); nothing was sent to the router. Use the journal that holds that run to resume it, or run the same command with --new-run to start a new run from stage 1 (the canary goes to 0 % first; an unfinished run in this journal is halted)")]
    ForeignRun {
        /// The router's location.
        url: String,
        /// The journal file.
        journal: String,
        /// The token of the run that set the router's weights.
        token: String,
    },
    /// The journal holds the run that set the router's weights, but only an older copy of it
    /// (restored from a backup): resuming would replay a rollout the router has moved past.
    #[error("the router at {url} holds weights set after input {seq} of run {run}, but the journal {journal} holds that run only up to input {has}: it is an older copy (restored from a backup?), and resuming from it would redo a rollout the router has moved past; nothing was sent to the router. Use the journal's current copy, or run the same command with --new-run to halt that run and start a new one from stage 1 (the canary goes to 0 % first)")]
    JournalBehind {
        /// The router's location.
        url: String,
        /// The journal file.
        journal: String,
        /// The run.
        run: i64,
        /// The last input the journal holds of it.
        has: u64,
        /// The input after which the router's weights were set.
        seq: u64,
    },
    /// Prometheus refused a query of the plan as malformed, or cannot be used at all (its
    /// URL or token): caught before any weight moves, and not retried.
    #[error("Prometheus, {what}: {source}")]
    Prometheus {
        /// Which query or setting ("query gate checkout", "metrics source").
        what: String,
        /// What Prometheus or the client said.
        source: crate::prometheus::PromError,
    },
    /// A file the plan names could not be read (a token file).
    #[error("cannot read {what} {path}: {source}")]
    File {
        /// What the file is for.
        what: &'static str,
        /// The path, resolved against the plan's directory.
        path: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The parts of the router (the members of a fleet) hold weights set by different runs:
    /// which run's journal accounts for them is unclear, so nothing is sent to them.
    #[error("the router at {url} is not one state: {conflict}; nothing was sent to it. Run the same command with --new-run to start a new run from stage 1 (every member goes to 0 % first)")]
    RouterDisagrees {
        /// The router's location.
        url: String,
        /// What disagrees.
        conflict: String,
    },
    /// The plan reads the router's own counters from a router that keeps none Ramp can read
    /// (the plan loader refuses this; kept for a plan built in code).
    #[error("the {router} has no counters of its own; set [metrics] source = \"prometheus\" (and [metrics] url) so that the rollout is judged on canary and stable from Prometheus")]
    NoCounters {
        /// The router's location.
        router: String,
    },
    /// etcd could not be reached, or the election could not be entered: nothing was
    /// journaled or sent to the router.
    #[error("etcd at {endpoints}: {source}")]
    Etcd {
        /// The endpoints of `[store] etcd`.
        endpoints: String,
        /// What failed.
        source: crate::stores::ElectionError,
    },
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
    /// What routes the run's traffic (one Ramp proxy, a fleet of them, nginx, HAProxy,
    /// commands); a Ramp proxy, a fleet or HAProxy is also the metrics source of
    /// `[metrics] source = "proxy"`.
    pub router: crate::routers::LiveRouter,
    /// Where the control API listens.
    pub control_listener: TcpListener,
    /// The control API's bearer token, when one is required.
    pub control_token: Option<String>,
    /// The bearer token `GET /metrics` on the control API requires, when one is; without
    /// it the metrics are served to every scrape (the control listener is loopback unless
    /// the plan says otherwise).
    pub metrics_token: Option<String>,
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
    /// Drive a router whose weights were set by a run this journal does not hold (`--new-run`):
    /// the operator starts over deliberately. Without it such a router is refused
    /// ([`LiveError::ForeignRun`]).
    pub new_run: bool,
    /// The fencing token this controller's weight changes carry: with `[store] etcd` the
    /// driver sets it when its controller wins the election, and the routers (given the same
    /// token) send it, so that a proxy refuses a deposed leader's changes. Left unset with
    /// the SQLite journal.
    pub fence: crate::seams::FenceToken,
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
        /// The journal's run id; `None` when the signal came before the run was opened
        /// (while waiting for the router), so nothing was journaled.
        run_id: Option<i64>,
    },
}

/// How the driver's loop ended: the rollout finished (and a rehearsal, if any, is timed), or
/// the shutdown signal came first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The engine finished the rollout.
    Finished,
    /// The shutdown signal came first.
    Interrupted,
}

/// How long to wait between readings while the metrics source cannot be read.
const RETRY: Duration = Duration::from_secs(1);

/// How often a rehearsal polls the source after the rollback, to time the restoration.
const RESTORE_POLL: Duration = Duration::from_millis(100);

/// The sink the driver reports progress to.
type ProgressSink<'a> = &'a mut (dyn FnMut(Progress<'_>) + Send);

/// The run's journal: the store, which run of it this is, and the run's origin on the clock.
struct RunJournal<J> {
    /// The store; every input is appended before it is fed.
    store: J,
    /// Where the store is, for messages.
    path: String,
    /// This run.
    run_id: i64,
    /// This run's token, handed to the router with every weight.
    token: String,
    /// The sequence number of the last input journaled, sent with every weight after the
    /// token, so that an older copy of this journal is recognised as one.
    last_seq: u64,
    /// Wall-clock start of the run (Unix ms): plan time zero.
    started_unix_ms: i64,
    /// The run's plan as journaled, whose fingerprint every engine snapshot carries.
    plan_text: String,
}

/// The metrics source and where its stream of slots stands.
struct MetricsFeed<S> {
    /// The source.
    source: S,
    /// Counters of the last reading fed to the engine.
    cursor: Option<Counters>,
    /// Plan time the last slot ended at.
    last_end_ms: u64,
    /// Why the source cannot be read, while it cannot.
    problem: Option<String>,
    /// What could not be read the last time a reading failed: the source, or the router
    /// asked for the weight in force ("Prometheus", "the command router"), for the reason of
    /// the gap that follows.
    unread_by: &'static str,
    /// What the source's readings lack, while they lack it ([`MetricsSource::incomplete`]).
    incomplete: Option<String>,
    /// The query gates, when the plan has any.
    queries: Option<queries::QueryGates>,
    /// The report queries, sampled for the report, when the plan has any.
    infra: Option<infra::InfraSampler>,
}

/// The router and what the driver knows of the weights it applied.
struct Routing<R> {
    /// The router.
    router: R,
    /// When the router applied the rollback's weight 0 (plan ms).
    rollback_applied_ms: Option<u64>,
    /// A fleet's members as read when the running stage started (its number, 1-based),
    /// which the stage's per-member counts start from ([`members`]).
    members_start: Option<(usize, Vec<crate::status::MemberView>)>,
    /// Why the router refused a weight by fencing, once it has: a newer leader has set the
    /// weights, so this controller stops acting ([`LiveError::Superseded`]).
    superseded: Option<String>,
}

/// The running controller, generic over its three seams.
struct Driver<'a, S, R, J> {
    /// The plan (with the real start time filled in).
    plan: Arc<Plan>,
    /// The engine.
    engine: Engine,
    /// The journal.
    journal: RunJournal<J>,
    /// The metrics source and the slot stream.
    metrics: MetricsFeed<S>,
    /// The router.
    routing: Routing<R>,
    /// Progress sink.
    on: ProgressSink<'a>,
    /// Hooks running in the background.
    hooks: teardown::Hooks,
    /// The plan's notifiers, each draining its own queue in the background.
    notify: crate::notify::Notifications,
    /// The plan's flags, when they are served.
    flags: flags::Flags,
    /// A rehearsal, when this is `ramp rehearse`.
    rehearsal: Option<rehearsal::LiveRehearsal>,
    /// Whether an interruption leaves the run open for a resume (false for `ramp demo`,
    /// which is halted instead); only what the interruption's line tells the operator.
    resumable: bool,
    /// What `GET /metrics` renders: the driver publishes to it and counts in it.
    exposition: Arc<crate::exposition::ControllerMetrics>,
}

/// `noun` with its first letter in capitals, to start a sentence ("The proxy", "HAProxy").
fn capitalized(noun: &str) -> String {
    let mut chars = noun.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl<S: MetricsSource, R: Router, J: JournalStore> Driver<'_, S, R, J> {
    /// Plan time now.
    fn plan_now(&self) -> PlanTime {
        PlanTime(u64::try_from(clock::unix_ms() - self.journal.started_unix_ms).unwrap_or(0))
    }

    /// Reports a line of progress.
    fn line(&mut self, t: PlanTime, text: String) {
        (self.on)(Progress::Line(t, text));
    }

    /// Appends an event to the journal.
    fn event<T: Serialize>(&mut self, t: PlanTime, kind: &str, body: &T) -> Result<(), LiveError> {
        let text = serde_json::to_string(body).unwrap_or_else(|_| "null".into());
        let run_id = self.journal.run_id;
        let written = self
            .journal
            .store
            .append_event(run_id, t.0, clock::unix_ms(), kind, &text);
        self.exposition.journaled(written)?;
        Ok(())
    }

    /// Publishes the engine's state for `GET /metrics`.
    fn publish(&self) {
        let onset_s = self
            .rehearsal
            .as_ref()
            .and_then(|r| r.onset_ms)
            .map(|ms| PlanTime(ms).as_secs_f64());
        self.exposition.publish(&self.engine, onset_s);
    }
}
