//! Journal stores other than the local SQLite file, and what shared ones need.
//!
//! `etcd` is the journal of `[store] etcd`, shared by every controller of a deployment, its
//! writes fenced by the leader's token; `election` elects that leader and watches its lease;
//! `bridge` runs the async etcd client on a thread of its own for the synchronous journal
//! seam; `layout` is where each record lives, and `access` how the journal reads and writes
//! (paged reads, fenced transactions); `snapshots` keeps each run's latest engine snapshot.

mod access;
pub mod bridge;
pub mod election;
pub mod etcd;
mod layout;
mod snapshots;

pub use bridge::{Bridge, BridgeError};
pub use election::{controllers, Candidate, Controller, ElectionError, Leadership};
pub use etcd::EtcdJournal;
