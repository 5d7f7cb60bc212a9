//! The run with `[store] etcd`: several controllers of one deployment, one leading.
//!
//! A controller connects to the cluster, grants itself a lease and campaigns under the
//! deployment's election key. While another leads it stands by (and says who leads). Once it
//! wins, it sets the fencing token the routers send, opens the journal in etcd with its fence
//! and resumes the deployment's unfinished run by replaying it, exactly as a restarted
//! controller resumes from the SQLite file, journaling a `takeover` event.
//!
//! A leader that loses its lease (etcd without quorum, the process paused past the lease), or
//! whose journal writes fail or are refused by the fence, stops acting at once: the run is
//! interrupted through the shutdown future, so no decision is made and no weight is sent, and
//! the router keeps its last weight. It says why and **holds**: it grants itself a fresh lease
//! as soon as etcd can grant one and campaigns again. When quorum returns, it (or a standby
//! that campaigned first) wins and resumes the same run from the journal. Going back to the
//! election is safe because of fencing: whatever a deposed leader still tries to write is
//! refused by etcd's transaction and by the proxies' fence.
//!
//! **Architecture Invariant:** a controller acts only within one term of leadership: every
//! term opens the journal afresh with its own fence and rebuilds the engine by replay; nothing
//! of a lost term's engine is carried into the next.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ramp_core::plan::Store;
use ramp_core::summary::{Summary, TimelineEvent};
use ramp_core::PlanTime;
use ramp_etcd::{EtcdConfig, Keys};
use ramp_store::{EventRecord, RunRecord, StoreError};
use tokio::net::TcpListener;

use super::start::run_on;
use super::{LiveError, Progress, RunConfig, RunEnd};
use crate::clock;
use crate::seams::JournalStore;
use crate::stores::{Bridge, Candidate, ElectionError, EtcdJournal};

/// How long a controller that lost its leadership waits between attempts to get a lease
/// again while etcd cannot grant one (no quorum, unreachable).
const REJOIN_RETRY: Duration = Duration::from_secs(1);

/// Runs the plan as one of the deployment's controllers on etcd: stands by until it leads,
/// then runs (or resumes) the rollout for as long as it keeps its lease; a lost lease sends it
/// back to the election (see the module's documentation).
pub(super) async fn run(
    config: RunConfig,
    store: Store,
    on: &mut (dyn FnMut(Progress<'_>) + Send),
    shutdown: impl Future<Output = ()> + Send,
) -> Result<RunEnd, LiveError> {
    let etcd = etcd_config(&config, &store)?;
    let deployment = config.plan.deployment.id.clone();
    let endpoints = etcd.endpoints.join(",");
    let fail = |source: ElectionError| LiveError::Etcd {
        endpoints: endpoints.clone(),
        source,
    };
    let bridge = Arc::new(Bridge::connect(&etcd).map_err(|source| {
        fail(ElectionError::Etcd {
            what: "connect",
            source,
        })
    })?);
    let keys = Keys::new(&etcd.prefix, &deployment);
    let ttl = Duration::from_millis(store.lease_ttl.0);
    let control = config
        .control_listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let me = format!("{} (control API http://{control})", whoami());
    let mut candidate = Candidate::new(&bridge, &keys, ttl, me.clone())
        .await
        .map_err(fail)?;
    // The last run the journal held finished before this controller stood by: a run finished
    // by another leader meanwhile (begun before this controller came, or while it waited) is
    // not started again. A run still active then is not counted as finished: this controller
    // resumes it if it wins while the run is open, and ends with its outcome if it is over.
    let reader = EtcdJournal::new(Arc::clone(&bridge), &etcd, &deployment, None);
    let last_before = reader
        .runs()?
        .iter()
        .filter(|r| r.status == ramp_store::RunStatus::Finished)
        .map(|r| r.run_id)
        .max()
        .unwrap_or(0);
    tokio::pin!(shutdown);
    loop {
        if let Some(leader) = candidate.leader(&bridge).await {
            on(Progress::Line(
                PlanTime::ZERO,
                format!(
                    "standby: {leader} leads {deployment}; this controller takes over if the leader stops renewing its {} s lease",
                    ttl.as_secs()
                ),
            ));
        }
        let lease = candidate.lease();
        let leadership = tokio::select! {
            won = candidate.campaign(&bridge) => match won {
                Ok(won) => won,
                // The lease of a standby lapsed (etcd lost quorum while it waited): it gets
                // a fresh one once etcd can grant it, and stands by again.
                Err(ElectionError::Lost(why)) => {
                    on(Progress::Line(PlanTime::ZERO, format!("standby: {why}; campaigning again with a fresh lease")));
                    match rejoin(&bridge, &keys, ttl, &me, lease, on, &mut shutdown).await {
                        Some(c) => { candidate = c; continue; }
                        None => return Ok(RunEnd::Interrupted { run_id: None }),
                    }
                }
                Err(e) => return Err(fail(e)),
            },
            () = &mut shutdown => {
                // A standby that stops leaves the election at once.
                crate::stores::election::revoke(&bridge, lease).await;
                return Ok(RunEnd::Interrupted { run_id: None });
            }
        };
        let token = leadership.fence.token();
        // The whole fence: routers send its token to proxies, and the etcd router writes the
        // weight under it.
        config.fence.set_fence(leadership.fence.clone());
        on(Progress::Line(
            PlanTime::ZERO,
            format!("leader: this controller leads {deployment} (fencing token {token})"),
        ));
        let journal = EtcdJournal::new(
            Arc::clone(&bridge),
            &etcd,
            &deployment,
            Some(leadership.fence.clone()),
        );
        let term = match journal.active_run(&deployment) {
            Ok(None) => match journal.runs().map(|mut r| r.pop()) {
                Ok(Some(done)) if done.run_id > last_before => {
                    leadership.resign(&bridge).await;
                    return finished_meanwhile(done, &journal);
                }
                Ok(_) => Ok(()),
                Err(e) => Err(LiveError::Store(e)),
            },
            Ok(Some(_)) => Ok(()),
            Err(e) => Err(LiveError::Store(e)),
        };
        let ended = match term {
            Ok(()) => {
                let interrupted = AtomicBool::new(false);
                let mut lost = leadership.lost.clone();
                let lease_lost = async move { crate::stores::election::lapsed(&mut lost).await };
                let stop = async {
                    tokio::select! {
                        () = &mut shutdown => interrupted.store(true, Ordering::SeqCst),
                        () = lease_lost => {}
                    }
                };
                let ended = run_on(term_config(&config)?, journal, on, stop).await;
                if interrupted.load(Ordering::SeqCst) {
                    leadership.resign(&bridge).await;
                    return ended;
                }
                ended
            }
            Err(e) => Err(e),
        };
        let why = leadership.lost.borrow().clone();
        let lease = leadership.lease();
        leadership.resign(&bridge).await;
        let reason = match held(why, ended) {
            Ok(ended) => return Ok(ended),
            Err(Hold::No(e)) => return Err(e),
            Err(Hold::Yes(reason)) => reason,
        };
        on(Progress::Line(
            PlanTime::ZERO,
            format!(
                "Lost leadership of {deployment}: {reason}. Holding: no decision and no weight change (the router keeps its last weight) until this controller or a standby leads again; campaigning again with a fresh lease"
            ),
        ));
        match rejoin(&bridge, &keys, ttl, &me, lease, on, &mut shutdown).await {
            Some(c) => candidate = c,
            None => return Ok(RunEnd::Interrupted { run_id: None }),
        }
    }
}

/// Whether a term's end sends the controller back to the election.
enum Hold {
    /// It does: why it lost the leadership.
    Yes(String),
    /// It does not: the run failed for a reason another term would meet again.
    No(LiveError),
}

/// Sorts how a term ended (`why`: the lease's loss, if it was lost): a finished run ends the
/// command; a lost lease, a journal write etcd refused by the fence or could not make (no
/// quorum, unreachable) or a proxy's fence refusal is a lost leadership, and the controller
/// holds; any other error ends the command.
fn held(why: Option<String>, ended: Result<RunEnd, LiveError>) -> Result<RunEnd, Hold> {
    match (why, ended) {
        (Some(reason), Ok(RunEnd::Interrupted { .. })) => Err(Hold::Yes(reason)),
        (_, Ok(ended)) => Ok(ended),
        (_, Err(LiveError::Store(e @ (StoreError::Remote { .. } | StoreError::Fenced { .. })))) => {
            Err(Hold::Yes(e.to_string()))
        }
        (_, Err(LiveError::Superseded { reason })) => Err(Hold::Yes(reason)),
        (_, Err(e)) => Err(Hold::No(e)),
    }
}

/// Gets a fresh lease for a controller that lost its leadership, waiting (and saying so once)
/// while etcd cannot grant one, then revokes the lost lease so that its election key does not
/// stand in the way for another TTL. `None` when the shutdown signal came first.
async fn rejoin(
    bridge: &Bridge,
    keys: &Keys,
    ttl: Duration,
    me: &str,
    old_lease: i64,
    on: &mut (dyn FnMut(Progress<'_>) + Send),
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> Option<Candidate> {
    let mut said = false;
    loop {
        let attempt = tokio::select! {
            c = Candidate::new(bridge, keys, ttl, me.to_string()) => c,
            () = &mut *shutdown => return None,
        };
        match attempt {
            Ok(candidate) => {
                crate::stores::election::revoke(bridge, old_lease).await;
                if said {
                    on(Progress::Line(
                        PlanTime::ZERO,
                        "etcd grants leases again; this controller campaigns for the deployment"
                            .into(),
                    ));
                }
                return Some(candidate);
            }
            Err(e) if !said => {
                said = true;
                on(Progress::Line(
                    PlanTime::ZERO,
                    format!(
                        "Holding: etcd cannot grant a lease yet ({e}); trying again every {} s",
                        REJOIN_RETRY.as_secs()
                    ),
                ));
            }
            Err(_) => {}
        }
        tokio::select! {
            () = tokio::time::sleep(REJOIN_RETRY) => {}
            () = &mut *shutdown => return None,
        }
    }
}

/// The run's configuration for one term of leadership: the same plan and seams, with the
/// control API's and OFREP's listening sockets duplicated, so that each term serves on the
/// same addresses (the template keeps the sockets open between terms; connections queue).
fn term_config(config: &RunConfig) -> Result<RunConfig, LiveError> {
    Ok(RunConfig {
        plan: Arc::clone(&config.plan),
        plan_path: config.plan_path.clone(),
        plan_text: config.plan_text.clone(),
        base_dir: config.base_dir.clone(),
        journal: config.journal.clone(),
        router: config.router.clone(),
        control_listener: duplicate(&config.control_listener).map_err(LiveError::Control)?,
        control_token: config.control_token.clone(),
        metrics_token: config.metrics_token.clone(),
        rehearsal: config.rehearsal.clone(),
        ofrep_listener: match &config.ofrep_listener {
            Some(l) => Some(duplicate(l).map_err(LiveError::Control)?),
            None => None,
        },
        ofrep_token: config.ofrep_token.clone(),
        halt_on_interrupt: config.halt_on_interrupt.clone(),
        new_run: config.new_run,
        fence: config.fence.clone(),
    })
}

/// A second handle on a listening socket (the same socket, a duplicated descriptor).
fn duplicate(listener: &TcpListener) -> std::io::Result<TcpListener> {
    use std::os::fd::AsFd;
    let fd = listener.as_fd().try_clone_to_owned()?;
    TcpListener::from_std(std::net::TcpListener::from(fd))
}

/// The connection settings of the plan's `[store]`, the password read from its file
/// (relative to the plan's directory).
fn etcd_config(config: &RunConfig, store: &Store) -> Result<EtcdConfig, LiveError> {
    let mut etcd = EtcdConfig::new(store.etcd.clone());
    etcd.prefix = store.prefix.clone();
    etcd.dial_timeout = Duration::from_millis(store.dial_timeout.0);
    etcd.request_timeout = Duration::from_millis(store.request_timeout.0);
    if let (Some(user), Some(file)) = (&store.user, &store.password_file) {
        let path = config.base_dir.join(file);
        let password = std::fs::read_to_string(&path).map_err(|source| LiveError::File {
            what: "the etcd password file",
            path: path.display().to_string(),
            source,
        })?;
        etcd.user = Some((user.clone(), password.trim().to_string()));
    }
    Ok(etcd)
}

/// The run the leader began and finished while this controller stood by: its outcome, not a
/// new run.
fn finished_meanwhile(run: RunRecord, journal: &EtcdJournal) -> Result<RunEnd, LiveError> {
    let corrupt = |message: String| LiveError::Corrupt {
        journal: journal.location(),
        run: run.run_id,
        seq: 0,
        message,
    };
    let text = run
        .summary_json
        .as_deref()
        .ok_or_else(|| corrupt("the finished run has no summary".into()))?;
    let summary: Summary = serde_json::from_str(text)
        .map_err(|e| corrupt(format!("its summary is unreadable: {e}")))?;
    Ok(RunEnd::Finished {
        run_id: run.run_id,
        summary: Box::new(summary),
    })
}

/// This process, as the election and the journal name it: its pid and host.
fn whoami() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "an unknown host".into());
    format!("pid {} on {host}", std::process::id())
}

/// Journals that this controller, elected leader, took over the deployment's unfinished run
/// (nothing without an election: the SQLite journal's controller resumes its own run).
pub(super) fn journal_takeover<J: JournalStore>(
    store: &mut J,
    config: &RunConfig,
    run_id: i64,
    started_unix_ms: i64,
    on: super::ProgressSink<'_>,
) -> Result<(), LiveError> {
    let Some(token) = config.fence.get() else {
        return Ok(());
    };
    let now = clock::unix_ms();
    let t = PlanTime(u64::try_from(now - started_unix_ms).unwrap_or(0));
    let by = whoami();
    let body = serde_json::json!({ "fence": token, "by": by });
    store.append_event(run_id, t.0, now, "takeover", &body.to_string())?;
    on(Progress::Line(
        t,
        format!("Took over run {run_id} as its leader ({by}, fencing token {token})"),
    ));
    Ok(())
}

/// The takeovers a run's journal records, as timeline lines.
pub fn takeovers_from_events(events: &[EventRecord]) -> Vec<TimelineEvent> {
    /// The body of a `takeover` event.
    #[derive(serde::Deserialize)]
    struct Body {
        fence: u64,
        by: String,
    }
    events
        .iter()
        .filter(|e| e.kind == "takeover")
        .filter_map(|e| {
            let b: Body = serde_json::from_str(&e.body).ok()?;
            Some(TimelineEvent {
                t_s: PlanTime(e.plan_ms).as_secs_f64(),
                message: format!(
                    "Controller takeover: {} became the leader (fencing token {}) and resumed the run from its journal",
                    b.by, b.fence
                ),
            })
        })
        .collect()
}

/// Adds the journal's takeovers to the summary's timeline, in time order.
pub fn attach_takeovers(summary: &mut Summary, events: &[EventRecord]) {
    let takeovers = takeovers_from_events(events);
    if takeovers.is_empty() {
        return;
    }
    summary.timeline.extend(takeovers);
    summary.timeline.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
}
