//! The fencing token a leading controller sends with every weight change.
//!
//! With the etcd store, controllers elect a leader and the leader's token is the creation
//! revision of its election key (`ramp_etcd::Fence`): later leaders have larger tokens. The
//! driver sets the token once it leads; the routers read it when they set a weight, so a
//! proxy that has seen a newer leader's token refuses the older one's changes. With the
//! SQLite store there is no election and no token: routers send none, as before.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A shared, settable fencing token; clones share one value. Zero means "no token".
///
/// Proxies only need the number; the etcd router also needs the whole fence (the leader's
/// key and its revision) for the transaction that makes a deposed leader's write fail in
/// etcd itself, so the driver can set that too ([`FenceToken::set_fence`]).
#[derive(Debug, Clone, Default)]
pub struct FenceToken {
    /// The token, 0 for none.
    token: Arc<AtomicU64>,
    /// The whole fence, when the driver set it.
    fence: Arc<Mutex<Option<ramp_etcd::Fence>>>,
}

impl FenceToken {
    /// A token not yet set (no election, or not yet won).
    pub fn none() -> FenceToken {
        FenceToken::default()
    }

    /// Sets the token: the driver calls this when its controller wins the election.
    pub fn set(&self, token: u64) {
        self.token.store(token, Ordering::SeqCst);
    }

    /// Sets the whole fence and its token: what the driver calls with the election's
    /// leader key, so that the etcd router can write under it.
    pub fn set_fence(&self, fence: ramp_etcd::Fence) {
        self.set(fence.token());
        *self.fence.lock().unwrap_or_else(|e| e.into_inner()) = Some(fence);
    }

    /// The token to send with a weight change, `None` when there is none.
    pub fn get(&self) -> Option<u64> {
        match self.token.load(Ordering::SeqCst) {
            0 => None,
            t => Some(t),
        }
    }

    /// The whole fence, when the driver set it with [`FenceToken::set_fence`].
    pub fn fence(&self) -> Option<ramp_etcd::Fence> {
        self.fence.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_token() {
        let token = FenceToken::none();
        let router_side = token.clone();
        assert_eq!(router_side.get(), None);
        token.set(42);
        assert_eq!(router_side.get(), Some(42));
        assert_eq!(router_side.fence(), None);
        token.set_fence(ramp_etcd::Fence {
            leader_key: b"/ramp/deployments/d/election/1".to_vec(),
            revision: 57,
        });
        assert_eq!(router_side.get(), Some(57));
        assert_eq!(router_side.fence().map(|f| f.revision), Some(57));
    }
}
