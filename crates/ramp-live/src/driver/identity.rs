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

/// Checks the router's identity against the plan and the journal: a router of another
/// deployment is refused ([`LiveError::WrongProxy`]), and so is one whose weights were set by a
/// run the journal does not hold ([`LiveError::ForeignRun`]) unless `new_run`. Returns the
/// warnings to say when the run may go on.
pub(super) fn check<R: Router, J: JournalStore>(
    identity: &RouterIdentity,
    router: &R,
    store: &J,
    deployment: &str,
    new_run: bool,
) -> Result<Vec<String>, LiveError> {
    let mut said = Vec::new();
    match identity.deployment.as_deref() {
        Some(id) if id == deployment => {}
        None | Some(ramp_proxy::config::DEFAULT_DEPLOYMENT_ID) => {
            said.push(format!(
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
    let Some(token) = identity.set_by.as_deref() else {
        return Ok(said);
    };
    if store.run_by_token(token)?.is_some() {
        return Ok(said);
    }
    if new_run {
        said.push(format!(
            "Starting over as asked (--new-run): the weights of the router at {} were set by run {token}, which the journal {} does not hold",
            router.location(),
            store.location()
        ));
        return Ok(said);
    }
    Err(LiveError::ForeignRun {
        url: router.location().to_string(),
        journal: store.location(),
        token: token.to_string(),
    })
}
