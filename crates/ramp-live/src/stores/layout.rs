//! Where the etcd journal keeps each record, and the JSON each record is.
//!
//! Under the deployment's `Keys::journal()` directory `J/`:
//! - `J/active`: the id of the deployment's unfinished run; absent when none is running.
//!   Every append compares it, so nothing is added to a finished run.
//! - `J/runs/{run}`: the run (`RunDoc`), without its summary.
//! - `J/inputs/{run}/{seq}`: the engine inputs (`InputDoc`), replayed in key order.
//! - `J/cursor/{run}`: the metrics cursor of the last input that carried one, written in the
//!   same transaction as that input.
//! - `J/events/{run}/{seq}`: the events (`EventDoc`).
//! - `J/summary/{run}/{chunk}`: the final summary, in chunks (one etcd value is bounded).
//! - `J/snapshot/{run}`: the run's latest engine snapshot (`SnapshotDoc`): the input it
//!   covers up to, and how its bytes are chunked under
//! - `J/snapshots/{run}/{after_seq}/{chunk}`: the snapshot's bytes, one generation per
//!   snapshot, so that a new one is written beside the old and the head switches to it (and
//!   the older generations are deleted) in one transaction; a reader never sees half of one.
//!
//! Run ids and sequence numbers are zero-padded to 12 digits, so that etcd's key order is
//! their numeric order and a range read returns them in order.

use ramp_store::{RunRecord, RunStatus};
use serde::{Deserialize, Serialize};

/// The journal keys of one deployment.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    /// `…/journal/`, ending in `/`.
    dir: String,
}

impl Layout {
    /// The layout under the journal directory `dir` (`Keys::journal()`).
    pub(super) fn new(dir: String) -> Layout {
        Layout { dir }
    }

    /// The key naming the unfinished run.
    pub(super) fn active(&self) -> String {
        format!("{}active", self.dir)
    }

    /// The directory of the runs.
    pub(super) fn runs(&self) -> String {
        format!("{}runs/", self.dir)
    }

    /// One run's record.
    pub(super) fn run(&self, run: i64) -> String {
        format!("{}runs/{run:012}", self.dir)
    }

    /// The directory of one run's inputs.
    pub(super) fn inputs(&self, run: i64) -> String {
        format!("{}inputs/{run:012}/", self.dir)
    }

    /// One input.
    pub(super) fn input(&self, run: i64, seq: u64) -> String {
        format!("{}{seq:012}", self.inputs(run))
    }

    /// One run's metrics cursor.
    pub(super) fn cursor(&self, run: i64) -> String {
        format!("{}cursor/{run:012}", self.dir)
    }

    /// The directory of one run's events.
    pub(super) fn events(&self, run: i64) -> String {
        format!("{}events/{run:012}/", self.dir)
    }

    /// One event.
    pub(super) fn event(&self, run: i64, seq: u64) -> String {
        format!("{}{seq:012}", self.events(run))
    }

    /// The directory of one run's summary chunks.
    pub(super) fn summary(&self, run: i64) -> String {
        format!("{}summary/{run:012}/", self.dir)
    }

    /// One chunk of a run's summary.
    pub(super) fn summary_chunk(&self, run: i64, chunk: usize) -> String {
        format!("{}{chunk:06}", self.summary(run))
    }

    /// The head of one run's latest snapshot.
    pub(super) fn snapshot(&self, run: i64) -> String {
        format!("{}snapshot/{run:012}", self.dir)
    }

    /// The directory of one run's snapshot generations.
    pub(super) fn snapshots(&self, run: i64) -> String {
        format!("{}snapshots/{run:012}/", self.dir)
    }

    /// The directory of the chunks of the snapshot as of input `after_seq`.
    pub(super) fn snapshot_generation(&self, run: i64, after_seq: u64) -> String {
        format!("{}{after_seq:012}/", self.snapshots(run))
    }

    /// One chunk of the snapshot as of input `after_seq`.
    pub(super) fn snapshot_chunk(&self, run: i64, after_seq: u64, chunk: usize) -> String {
        format!("{}{chunk:06}", self.snapshot_generation(run, after_seq))
    }
}

/// The end of a range read over every key that starts with `prefix`: the prefix with its
/// last byte incremented (prefixes here end in `/`, whose successor is `0`).
pub(super) fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

/// The number at the end of a key (`…/000000000017` → 17), `None` when it is not one.
pub(super) fn trailing_number(key: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(key).ok()?;
    text.rsplit('/').next()?.parse().ok()
}

/// A run as the journal keeps it (`RunRecord` without the summary, kept in chunks).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RunDoc {
    /// The run's id.
    pub(super) run_id: i64,
    /// The deployment.
    pub(super) deployment_id: String,
    /// Where the plan was read from.
    pub(super) plan_path: String,
    /// The plan's text.
    pub(super) plan_toml: String,
    /// Wall-clock start (Unix ms).
    pub(super) started_unix_ms: i64,
    /// Whether it finished.
    pub(super) finished: bool,
    /// Its outcome, once finished.
    pub(super) outcome: Option<String>,
    /// Wall-clock end (Unix ms), once finished.
    pub(super) finished_unix_ms: Option<i64>,
    /// The leader's control API address.
    pub(super) control_addr: Option<String>,
    /// The leader's process id.
    pub(super) controller_pid: Option<u32>,
    /// How many summary chunks there are (0 while running).
    pub(super) summary_chunks: usize,
    /// The run's token.
    pub(super) token: String,
}

impl RunDoc {
    /// The record the seam returns; `summary_json` is filled in by the caller that reads the
    /// chunks.
    pub(super) fn record(self, summary_json: Option<String>) -> RunRecord {
        RunRecord {
            run_id: self.run_id,
            deployment_id: self.deployment_id,
            plan_path: self.plan_path,
            plan_toml: self.plan_toml,
            started_unix_ms: self.started_unix_ms,
            status: if self.finished {
                RunStatus::Finished
            } else {
                RunStatus::Running
            },
            outcome: self.outcome,
            finished_unix_ms: self.finished_unix_ms,
            control_addr: self.control_addr,
            controller_pid: self.controller_pid,
            summary_json,
            token: self.token,
        }
    }
}

/// An engine input as the journal keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InputDoc {
    /// Plan time it was fed at (ms).
    pub(super) plan_ms: u64,
    /// Its kind.
    pub(super) kind: String,
    /// The input as JSON.
    pub(super) body: String,
}

/// The head of a run's latest engine snapshot: which generation of chunks holds it, and how
/// to check that they were read whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SnapshotDoc {
    /// The last input the snapshot covers.
    pub(super) after_seq: u64,
    /// Plan time of that input (ms).
    pub(super) plan_ms: u64,
    /// How many chunks there are.
    pub(super) chunks: usize,
    /// How many bytes they hold together.
    pub(super) bytes: usize,
    /// FNV-1a (64 bits) of the bytes.
    pub(super) fnv: u64,
}

/// An event as the journal keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventDoc {
    /// Plan time (ms).
    pub(super) plan_ms: u64,
    /// Wall-clock time (Unix ms).
    pub(super) unix_ms: i64,
    /// Its kind.
    pub(super) kind: String,
    /// The event as JSON.
    pub(super) body: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_numerically_and_ranges_cover_exactly_their_directory() {
        let l = Layout::new("/ramp/deployments/d/journal/".into());
        assert!(l.input(3, 9) < l.input(3, 10));
        assert!(l.run(9) < l.run(10));
        assert_eq!(trailing_number(l.input(3, 42).as_bytes()), Some(42));
        let end = prefix_end(&l.inputs(3));
        assert!(l.input(3, 999_999_999_999).as_bytes() < end.as_slice());
        assert!(l.input(4, 1).as_bytes() > end.as_slice());
    }
}
