//! The one place where the live driver reads the clock: [`unix_ms`] for plan time, [`now`]
//! for timers.
//!
//! The engine is fed time (see ARCHITECTURE.md); the live driver is where plan time meets
//! the real clock. Wall time (Unix milliseconds) is used for plan time because a resumed
//! controller must count the time that passed while it was down, which a monotonic clock of
//! a dead process cannot tell. Deadlines of sleeps and timeouts use tokio's monotonic clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
#[allow(
    clippy::disallowed_methods,
    reason = "the live driver maps plan time to the real clock; this is its single clock read"
)]
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Tokio's monotonic clock now, for the deadlines of sleeps, timeouts and probes.
#[allow(
    clippy::disallowed_methods,
    reason = "the live driver's timers need the monotonic clock; this is its single read"
)]
pub fn now() -> tokio::time::Instant {
    tokio::time::Instant::now()
}
