//! The run with `[store] etcd`: several controllers of one deployment, one leading.
//!
//! A controller connects to the cluster, grants itself a lease and campaigns under the
//! deployment's election key. While another leads it stands by (and says who leads). Once it
//! wins, it sets the fencing token the routers send, opens the journal in etcd with its fence
//! and resumes the deployment's unfinished run by replaying it, exactly as a restarted
//! controller resumes from the SQLite file, journaling a `takeover` event. If its lease is lost
//! it stops acting at once (the run is interrupted through the shutdown future, so no further
//! weight is sent) and the command fails with `LiveError::LostLeadership`; a controller that
//! lost its lease does not stand by again, because whatever paused or cut it off may do so
//! again, and its supervisor (systemd, Kubernetes) restarts it as a fresh standby.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ramp_core::plan::Store;
use ramp_core::summary::{Summary, TimelineEvent};
use ramp_core::PlanTime;
use ramp_etcd::{EtcdConfig, Keys};
use ramp_store::{EventRecord, RunRecord};

use super::start::run_on;
use super::{LiveError, Progress, RunConfig, RunEnd};
use crate::clock;
use crate::seams::JournalStore;
use crate::stores::{Bridge, Candidate, ElectionError, EtcdJournal};

/// Runs the plan as one of the deployment's controllers on etcd: stands by until it leads,
/// then runs (or resumes) the rollout for as long as it keeps its lease.
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
    let candidate = Candidate::new(&bridge, &keys, ttl, me)
        .await
        .map_err(fail)?;
    // The runs the journal held before this controller stood by: a run begun and finished by
    // the leader meanwhile is not started again.
    let reader = EtcdJournal::new(Arc::clone(&bridge), &etcd, &deployment, None);
    let last_before = reader.runs()?.last().map_or(0, |r| r.run_id);
    if let Some(leader) = candidate.leader(&bridge).await {
        on(Progress::Line(
            PlanTime::ZERO,
            format!(
                "standby: {leader} leads {deployment}; this controller takes over if the leader stops renewing its {} s lease",
                ttl.as_secs()
            ),
        ));
    }
    tokio::pin!(shutdown);
    let lease = candidate.lease();
    let leadership = tokio::select! {
        won = candidate.campaign(&bridge) => won.map_err(fail)?,
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
    if journal.active_run(&deployment)?.is_none() {
        if let Some(done) = journal.runs()?.pop().filter(|r| r.run_id > last_before) {
            leadership.resign(&bridge).await;
            return finished_meanwhile(done, &journal);
        }
    }
    let mut lost = leadership.lost.clone();
    let lease_lost = async move {
        while lost.borrow().is_none() {
            if lost.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    let stop = async move {
        tokio::select! {
            () = shutdown => {}
            () = lease_lost => {}
        }
    };
    let ended = run_on(config, journal, on, stop).await;
    let why = leadership.lost.borrow().clone();
    leadership.resign(&bridge).await;
    match (why, ended) {
        (Some(reason), Ok(RunEnd::Interrupted { .. })) => {
            Err(LiveError::LostLeadership { deployment, reason })
        }
        (_, ended) => ended,
    }
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
