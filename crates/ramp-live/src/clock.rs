//! The one place where the live driver reads the clock.
//!
//! The engine is fed time (see ARCHITECTURE.md); the live driver is where plan time meets
//! the real clock. Wall time (Unix milliseconds) is used because a resumed controller must
//! count the time that passed while it was down, which a monotonic clock of a dead process
//! cannot tell.

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
