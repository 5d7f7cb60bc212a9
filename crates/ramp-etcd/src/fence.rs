//! Fencing: the token that makes a stale leader's writes fail.

use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};
use serde::{Deserialize, Serialize};

use crate::EtcdError;

/// A leader's right to write: its election key and that key's creation revision.
///
/// etcd's revisions only grow, so a later leader's token is always larger: a proxy that has
/// seen token `t` refuses a weight change carrying a smaller one, and an etcd transaction
/// that compares the key's creation revision with `revision` fails once the key is gone
/// (lease expired, resigned) or was re-created by someone else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The leader's key under the election (`{election}/{lease id}`).
    pub leader_key: Vec<u8>,
    /// The key's creation revision: the fencing token.
    pub revision: i64,
}

impl Fence {
    /// The token as proxies and journal records carry it.
    pub fn token(&self) -> u64 {
        u64::try_from(self.revision).unwrap_or(0)
    }

    /// The condition every fenced write carries: the leader's key still exists at its
    /// revision.
    pub fn compare(&self) -> Compare {
        Compare::create_revision(self.leader_key.clone(), CompareOp::Equal, self.revision)
    }
}

/// The canary weight the controller publishes and the proxies follow, under `Keys::weight`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightDoc {
    /// The canary's share in basis points (0 to 10,000).
    pub canary_bp: u32,
    /// The fencing token of the leader that wrote it.
    pub fence: u64,
    /// The run that set it (its token), as `PUT /weights` names it.
    pub run: Option<String>,
}

/// Puts `value` at `key` only while `fence` holds: `Ok(true)` when written, `Ok(false)` when
/// the fence no longer holds (the caller is no longer the leader and must stop acting).
pub async fn fenced_put(
    client: &mut Client,
    fence: &Fence,
    key: &str,
    value: Vec<u8>,
) -> Result<bool, EtcdError> {
    let txn = Txn::new()
        .when(vec![fence.compare()])
        .and_then(vec![TxnOp::put(key, value, None)]);
    let response = client.txn(txn).await.map_err(|source| EtcdError::Request {
        what: format!("a fenced write of {key}"),
        source,
    })?;
    Ok(response.succeeded())
}
