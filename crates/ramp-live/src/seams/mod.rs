//! The three seams of a live run: where metrics come from ([`MetricsSource`]), what routes
//! traffic ([`Router`]) and where the run is journaled ([`JournalStore`]).
//!
//! The driver is written against these traits only, so that a new metrics source
//! (Prometheus), router (HAProxy, nginx, a command, a fleet of proxies) or store (etcd) is a
//! new implementation beside today's, not a change to replay, gaps or decisions. Today's
//! implementations: [`crate::ProxyAdmin`] (one `ramp proxy`'s admin API) is both the metrics
//! source and the router, and [`ramp_store::Journal`] (SQLite) is the store.
//!
//! **Architecture Invariant:** the driver (`crate::driver`) names no concrete source, router
//! or store: it is generic over these three traits, and only `driver::run` picks today's
//! implementations.

mod fencing;
mod metrics;
mod router;
mod store;

pub use fencing::FenceToken;
pub use metrics::{MetricsSource, Reading};
pub use router::{Router, RouterIdentity};
pub use store::JournalStore;
