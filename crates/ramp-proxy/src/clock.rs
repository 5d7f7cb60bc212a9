//! The one place where the proxy reads the clocks: [`now`] (monotonic) for latency and
//! deadlines, [`unix_ms`] (wall clock) for the start time a snapshot reports.
//!
//! The project forbids `Instant::now` and `SystemTime::now` in its pure crates (see the
//! workspace `clippy.toml`): the engine and the simulator are fed time. The proxy is the
//! live data plane, so it must read the clock to measure latency and expire faults; keeping
//! each read in one function makes the exception visible and easy to audit.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Returns the current monotonic time, for latency measurement and fault expiry.
#[allow(
    clippy::disallowed_methods,
    reason = "the live data plane measures real latency; this is its single clock read"
)]
pub fn now() -> Instant {
    Instant::now()
}

/// Milliseconds since the Unix epoch, now: when this process started, in the snapshot's
/// `instance`, which a controller compares across readings (a monotonic clock means nothing
/// outside its process).
#[allow(
    clippy::disallowed_methods,
    reason = "the proxy reports its start time on the wall clock; this is its single wall-clock read"
)]
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
