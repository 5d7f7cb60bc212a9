//! What Ramp's controllers and proxies share about etcd.
//!
//! A deployment's state lives under one key prefix (`keys::Keys`): the journal, the
//! controllers' election and the weight the proxies follow. Who may write there is decided by
//! etcd's election: the leader's fencing token (`fence::Fence`) is the creation revision of
//! its election key, and every write a leader makes is a transaction that checks that key
//! still exists at that revision, so a leader whose lease has expired (paused, partitioned,
//! killed) cannot write, however late its request arrives.
//!
//! **Architecture Invariant:** nothing here decides anything about a rollout; this crate only
//! knows keys, connections and fences. The engine sees none of it.

pub mod cluster;
pub mod config;
pub mod error;
pub mod fence;
pub mod keys;

pub use config::{connect, connect_waiting, EtcdConfig};
pub use error::EtcdError;
pub use fence::{fenced_put, Fence, WeightDoc};
pub use keys::Keys;

/// The etcd client, re-exported so that users of this crate name one version of it.
pub use etcd_client;
