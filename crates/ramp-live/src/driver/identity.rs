//! Before a run is opened or anything is sent to the router: which deployment the router
//! serves, and whether the run that last set its weights is one this journal holds.
//!
//! A journal that was emptied (`truncate -s 0`), replaced, or belongs to another controller
//! looks like "no run yet", and the same `ramp run` would then start run 1 at stage 1 and move
//! the router's weight without a word. The router remembers the token of the run that set its
//! weights, so the controller can tell the two apart and refuse, saying how to start over
//! deliberately (`--new-run`).

use super::{LiveError, Progress, ProgressSink, RETRY};
use crate::seams::{JournalStore, Router, RouterIdentity};
use crate::source::SourceError;
use ramp_core::PlanTime;
use std::future::Future;
use std::pin::Pin;

/// Asks the router who it is, retrying every [`RETRY`] (saying why, once per distinct reason)
/// while it cannot be reached; `None` when `shutdown` came first. Nothing is journaled: the
/// run is not open yet.
pub(super) async fn wait_for_router<R: Router, F: Future<Output = ()> + Send>(
    router: &R,
    on: ProgressSink<'_>,
    shutdown: &mut Pin<&mut F>,
) -> Option<RouterIdentity> {
    let mut said: Option<String> = None;
    loop {
        match router.identity().await {
            Ok(identity) => {
                if said.is_some() {
                    on(Progress::Line(
                        PlanTime::ZERO,
                        "Router reachable again".into(),
                    ));
                }
                return Some(identity);
            }
            Err(e) => {
                let text = unreachable_text(router, &e);
                if said.as_deref() != Some(&text) {
                    on(Progress::Line(PlanTime::ZERO, text.clone()));
                    said = Some(text);
                }
                tokio::select! {
                    _ = shutdown.as_mut() => return None,
                    _ = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    }
}

/// The line said while the router cannot be reached.
fn unreachable_text<R: Router>(router: &R, e: &SourceError) -> String {
    format!(
        "The router at {} cannot be reached ({e}); nothing is sent to it until it answers",
        router.location()
    )
}

/// What the identity check found, when the run may go on.
#[derive(Debug, Default)]
pub(super) struct Checked {
    /// Warnings to say once the run is open.
    pub said: Vec<String>,
    /// The operator starts over (`--new-run` against weights this journal does not account
    /// for): an unfinished run of the deployment in this journal is halted, not resumed.
    pub start_over: bool,
}

/// The value a controller sends as the run that sets a router's weights: the run's token and
/// the sequence number of the last input journaled before the weight was set, so that a
/// journal restored from an older copy can be told from the current one.
pub(super) fn run_mark(token: &str, last_seq: u64) -> String {
    format!("{token}:{last_seq}")
}

/// Checks the router's identity against the plan and the journal: a router of another
/// deployment is refused ([`LiveError::WrongProxy`]), and so is one whose weights were set by a
/// run the journal does not hold ([`LiveError::ForeignRun`]) or holds only an older copy of
/// ([`LiveError::JournalBehind`]), unless `new_run`.
pub(super) fn check<R: Router, J: JournalStore>(
    identity: &RouterIdentity,
    router: &R,
    store: &J,
    deployment: &str,
    new_run: bool,
) -> Result<Checked, LiveError> {
    let mut checked = Checked::default();
    match identity.deployment.as_deref() {
        Some(id) if id == deployment => {}
        // A router that has no sticky-routing salt (HAProxy, commands) names no deployment
        // by nature: nothing to warn about.
        None if !router.salts_by_deployment() => {}
        None | Some(ramp_proxy::config::DEFAULT_DEPLOYMENT_ID) => {
            checked.said.push(format!(
                "The proxy at {} names no deployment: it salts sticky routing with {:?}, not {deployment:?} (set deployment_id = {deployment:?} in its configuration so that flags salted by the deployment agree with it)",
                router.location(),
                ramp_proxy::config::DEFAULT_DEPLOYMENT_ID
            ));
        }
        Some(other) => {
            return Err(LiveError::WrongProxy {
                url: router.location().to_string(),
                proxy: other.to_string(),
                plan: deployment.to_string(),
            })
        }
    }
    if let Some(conflict) = &identity.conflict {
        if !new_run {
            return Err(LiveError::RouterDisagrees {
                url: router.location().to_string(),
                conflict: conflict.clone(),
            });
        }
        checked.said.push(format!(
            "Starting over as asked (--new-run): {conflict}; a new run begins at stage 1"
        ));
        checked.start_over = true;
        return Ok(checked);
    }
    let Some(mark) = identity.set_by.as_deref() else {
        return Ok(checked);
    };
    // `token:seq` since the journal check knows generations; a bare token before.
    let (token, seq) = match mark.rsplit_once(':') {
        Some((token, seq)) => (token, seq.parse::<u64>().ok()),
        None => (mark, None),
    };
    let refusal = match store.run_by_token(token)? {
        // Whether the journal holds input `seq` is read from there on (a resume of a long
        // run must not read every input for it, since replay starts from a snapshot); the
        // whole run is read only to say how far a journal that is behind goes.
        Some(run) => match seq {
            Some(seq) if seq > 0 && store.inputs_after(run.run_id, seq - 1)?.is_empty() => {
                let has = store.inputs(run.run_id)?.last().map_or(0, |r| r.seq);
                (seq > has).then(|| LiveError::JournalBehind {
                    url: router.location().to_string(),
                    journal: store.location(),
                    run: run.run_id,
                    has,
                    seq,
                })
            }
            Some(_) | None => None,
        },
        None => Some(LiveError::ForeignRun {
            url: router.location().to_string(),
            journal: store.location(),
            token: token.to_string(),
        }),
    };
    match refusal {
        None => Ok(checked),
        Some(_) if new_run => {
            checked.said.push(format!(
                "Starting over as asked (--new-run): the weights of the router at {} were set by run {mark}, which the journal {} does not account for; a new run begins at stage 1",
                router.location(),
                store.location()
            ));
            checked.start_over = true;
            Ok(checked)
        }
        Some(e) => Err(e),
    }
}
