//! The fencing token a leading controller sends with every weight change.
//!
//! With the etcd store, controllers elect a leader and the leader's token is the creation
//! revision of its election key (`ramp_etcd::Fence`): later leaders have larger tokens. The
//! driver sets the token once it leads; the routers read it when they set a weight, so a
//! proxy that has seen a newer leader's token refuses the older one's changes. With the
//! SQLite store there is no election and no token: routers send none, as before.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A shared, settable fencing token; clones share one value. Zero means "no token".
#[derive(Debug, Clone, Default)]
pub struct FenceToken(Arc<AtomicU64>);

impl FenceToken {
    /// A token not yet set (no election, or not yet won).
    pub fn none() -> FenceToken {
        FenceToken::default()
    }

    /// Sets the token: the driver calls this when its controller wins the election.
    pub fn set(&self, token: u64) {
        self.0.store(token, Ordering::SeqCst);
    }

    /// The token to send with a weight change, `None` when there is none.
    pub fn get(&self) -> Option<u64> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            t => Some(t),
        }
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
    }
}
