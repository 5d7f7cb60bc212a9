//! Changing the weights: the one path that `PUT /weights` and the etcd follower
//! (`crate::follow`) both take, so that fencing, persistence and the swap cannot differ
//! between them.
//!
//! A change may carry a fencing token (a leading controller's, see `ramp_etcd::Fence`): the
//! proxy keeps the newest token it has accepted and refuses a change whose token is older,
//! so a controller that lost its leadership cannot move the weights back after its successor
//! moved them. A change without a token (a person at the admin API) is always accepted and
//! leaves the newest token as it was: operators must be able to intervene whoever leads.
//! The token is persisted with the weights in one atomic write, so a restarted proxy still
//! refuses the old leader. None of this is on the request path, which never reads the token.

use crate::clock;
use crate::config::bp_to_percent;
use crate::proxy::Proxy;
use crate::routing::RouteState;
use crate::state::{self, PersistedState, StateError};
use std::sync::Arc;

/// One weight change, as `PUT /weights` or an etcd weight document asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The new canary share in basis points (at most `ramp_flags::BASIS_POINTS`).
    pub canary_bp: u32,
    /// The run that asks for it, `None` when a person does.
    pub run: Option<Arc<str>>,
    /// The fencing token of the controller that asks, `None` when the change is not fenced.
    pub fence: Option<u64>,
}

/// Why a change was not applied; the weights are unchanged in every case.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The change's token is older than the newest the proxy has accepted: it comes from a
    /// controller that has since lost its leadership.
    #[error("fence {given} is older than fence {newest}, the newest this proxy has accepted; the weights are unchanged")]
    Stale {
        /// The token the change carried.
        given: u64,
        /// The newest token accepted before it.
        newest: u64,
    },
    /// The state file could not be written, so the change was not made (a weight the proxy
    /// would forget at its next start must not be routed with).
    #[error("weights not changed: {0}")]
    Persist(#[source] StateError),
    /// The blocking task writing the state file did not finish.
    #[error("weights not changed: the state file's write did not finish: {0}")]
    Writer(#[source] tokio::task::JoinError),
}

/// The newest token after accepting a change that carries `given`, or the refusal when it is
/// older than `newest`. Equal tokens are accepted: one leader sets many weights.
pub fn check_fence(newest: Option<u64>, given: Option<u64>) -> Result<Option<u64>, ApplyError> {
    match (newest, given) {
        (Some(newest), Some(given)) if given < newest => Err(ApplyError::Stale { given, newest }),
        (Some(newest), Some(given)) => Ok(Some(newest.max(given))),
        (None, given) => Ok(given),
        (newest, None) => Ok(newest),
    }
}

/// Checks the fence, persists, then swaps, all under the admin lock: the weight a client is
/// told, and the run and token it is told set it, are what a restart will restore. Returns
/// the route now in force.
pub async fn apply(proxy: &Proxy, change: Change) -> Result<Arc<RouteState>, ApplyError> {
    let _lock = proxy.admin_lock.lock().await;
    let current = proxy.route.load_full();
    let fence = check_fence(current.fence, change.fence).inspect_err(|_| {
        proxy
            .weights_refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })?;
    if let Some(path) = proxy.config.state_file.clone() {
        let persisted = PersistedState {
            version: 1,
            canary_bp: change.canary_bp,
            set_by: change.run.as_deref().map(str::to_string),
            fence,
        };
        tokio::task::spawn_blocking(move || state::store(&path, &persisted))
            .await
            .map_err(ApplyError::Writer)?
            .map_err(|e| {
                tracing::error!(error = %e, "cannot persist weights; the weight is unchanged");
                ApplyError::Persist(e)
            })?;
    }
    let now = clock::now();
    let faults = current
        .faults
        .iter()
        .filter(|f| f.expires_at > now)
        .cloned()
        .collect();
    let route = Arc::new(RouteState {
        canary_bp: change.canary_bp,
        faults,
        set_by: change.run,
        fence,
    });
    proxy.route.store(route.clone());
    tracing::info!(
        canary_percent = bp_to_percent(change.canary_bp),
        set_by = route.set_by.as_deref(),
        fence,
        "weights changed"
    );
    Ok(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_fence_is_refused_and_a_missing_one_keeps_the_newest() {
        assert_eq!(check_fence(None, None).ok(), Some(None));
        assert_eq!(check_fence(None, Some(5)).ok(), Some(Some(5)));
        assert_eq!(check_fence(Some(5), Some(5)).ok(), Some(Some(5)));
        assert_eq!(check_fence(Some(5), Some(9)).ok(), Some(Some(9)));
        assert_eq!(check_fence(Some(9), None).ok(), Some(Some(9)));
        let refused = check_fence(Some(9), Some(5)).unwrap_err();
        assert!(matches!(
            refused,
            ApplyError::Stale {
                given: 5,
                newest: 9
            }
        ));
        let line = refused.to_string();
        assert!(line.contains('5') && line.contains('9') && !line.contains('\n'));
    }
}
