//! Ramp's live driver: the pure engine of `ramp-core` on the real clock.
//!
//! A live run reads per-cohort metrics from a `ramp proxy` (its exact `/snapshot`), feeds
//! them to the engine as slots, carries out the engine's actions (weights through the proxy's
//! admin API), journals every input and decision before acting on it, and serves a control
//! API for operators. The driver sees the metrics source, the router and the journal only
//! through the traits of [`seams`]. Pre-deployment checks and hooks live in [`checks`];
//! the controller's own metrics, for Prometheus, in [`exposition`].

pub mod checks;
pub mod clock;
pub mod control;
pub mod dashboard;
pub mod driver;
pub mod exposition;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod notify;
pub mod prometheus;
pub mod routers;
pub mod seams;
pub mod source;
pub mod status;
pub mod stores;

pub use driver::{run, LiveError, Progress, RunConfig, RunEnd};
pub use routers::LiveRouter;
pub use source::ProxyAdmin;
pub use status::StatusView;
