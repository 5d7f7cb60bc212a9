//! The soak's clock origin and its own record of what it did when.
//!
//! Every time the soak reports is seconds after the first controller was started ("T+"),
//! the moment the scenario's times count from. [`Origin`] converts between that, the
//! monotonic clock the soak schedules with, and the Unix milliseconds of the controller's
//! journal. [`Timeline`] is the soak's log of faults and process events, printed as they
//! happen and kept for the summary.

use crate::clock;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The soak's time origin: T+0, on both clocks.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    /// T+0 on the monotonic clock.
    pub instant: Instant,
    /// T+0 in Unix milliseconds.
    pub unix_ms: i64,
}

impl Origin {
    /// T+0 is now.
    pub fn now() -> Origin {
        let instant = clock::now();
        let unix_ms = clock::unix_ms();
        Origin { instant, unix_ms }
    }

    /// The instant `s` seconds after T+0 (before it, for negative `s`).
    pub fn at(&self, s: f64) -> Instant {
        if s >= 0.0 {
            self.instant + Duration::from_secs_f64(s)
        } else {
            self.instant
                .checked_sub(Duration::from_secs_f64(-s))
                .unwrap_or(self.instant)
        }
    }

    /// Seconds from T+0 to `t` (negative before it).
    pub fn secs(&self, t: Instant) -> f64 {
        if t >= self.instant {
            t.duration_since(self.instant).as_secs_f64()
        } else {
            -self.instant.duration_since(t).as_secs_f64()
        }
    }

    /// Seconds from T+0 to now.
    pub fn elapsed(&self) -> f64 {
        self.secs(clock::now())
    }
}

/// One thing the soak did or saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// Seconds after T+0.
    pub t_s: f64,
    /// Its kind: `proxy_kill`, `proxy_restart`, `controller_kill`, `controller_resume`,
    /// `controller_exit`, `upstream_down`, `upstream_up`, `regression`, `weight`, `note`…
    pub kind: String,
    /// What happened, in a sentence.
    pub detail: String,
}

/// The soak's log, shared by its tasks.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// T+0.
    pub origin: Origin,
    /// The events so far, in the order they were logged.
    events: Arc<Mutex<Vec<Event>>>,
    /// Whether to print events as they happen (to standard error).
    echo: bool,
}

impl Timeline {
    /// An empty log counting from `origin`.
    pub fn new(origin: Origin, echo: bool) -> Timeline {
        Timeline {
            origin,
            events: Arc::new(Mutex::new(Vec::new())),
            echo,
        }
    }

    /// Logs an event now.
    pub fn log(&self, kind: &str, detail: impl Into<String>) -> f64 {
        let t_s = self.origin.elapsed();
        let detail = detail.into();
        if self.echo {
            eprintln!("[T{t_s:+8.1}s] {kind}: {detail}");
        }
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Event {
                t_s,
                kind: kind.to_string(),
                detail,
            });
        t_s
    }

    /// A copy of the events so far.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
