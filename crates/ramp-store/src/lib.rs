//! The crash-safe journal of live rollouts.
//!
//! A live controller must survive its own death: when it is killed (or its machine reboots)
//! in the middle of a rollout, a restarted controller has to pick the rollout up exactly where
//! it was, with the same decisions, and an operator has to be able to see what happened. This
//! crate is where that state lives. It keeps, in one SQLite file:
//!
//! - **runs**: one row per rollout of a deployment (its plan, when it started, whether it is
//!   still running, its outcome and final summary, and where its control API listens);
//! - **inputs**: every input the engine was fed, in order, so a restarted controller rebuilds
//!   the engine's state by replaying them (the engine is deterministic, so replay reproduces
//!   every decision), together with the run's **cursor** (the last cumulative proxy snapshot
//!   consumed), written in the same transaction as the input that consumed it;
//! - **snapshots**: each run's latest snapshot of the engine's state, with the sequence number
//!   of the last input it covers, so that a resume replays only the inputs after it (the
//!   inputs remain the truth: a snapshot is an optimisation a resume may ignore);
//! - **events**: the human-facing record (decisions, checkpoints, operator actions with who and
//!   why, check and hook results), which `ramp status` and followers read.
//!
//! Every commit is synced to disk before the call returns (WAL mode with
//! `synchronous = FULL`), because the controller acts on a decision only after recording it: a
//! decision that was acted on is never lost.
//!
//! [`DeploymentLock`] is the other half of crash safety: an OS file lock that keeps a second
//! controller off a deployment that is being run, and that the OS releases when its holder
//! dies, however it dies.
//!
//! The crate is independent of Ramp's other crates on purpose: bodies, cursors and summaries
//! are JSON text produced by the caller, so the storage format does not change when the
//! engine's types do, and this crate never needs to be rebuilt for them.

mod error;
mod journal;
mod lock;
mod schema;
mod snapshots;

pub use error::StoreError;
pub use journal::{new_token, EventRecord, InputRecord, Journal, RunRecord, RunStatus};
pub use lock::DeploymentLock;
pub use schema::SCHEMA_VERSION;
pub use snapshots::SnapshotRecord;
