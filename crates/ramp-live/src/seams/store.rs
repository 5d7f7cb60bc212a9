//! The journal seam: what the driver needs from the store that makes a run resumable.
//!
//! Every input is appended (with the metrics cursor it consumed, atomically) before the
//! engine sees it, and every decision before it is acted on; resuming reads the inputs and
//! the cursor back. At stage starts and checkpoints the engine's state is snapshotted too,
//! so that a resume replays only the inputs after the latest snapshot. The calls are synchronous because the SQLite journal is local and its
//! writes are short; a write that fails stops the controller, never the router.

use ramp_store::{EventRecord, InputRecord, Journal, RunRecord, SnapshotRecord, StoreError};

/// Where a live run is journaled.
pub trait JournalStore: Send {
    /// Where the journal is (a file path), for messages and errors.
    fn location(&self) -> String;

    /// The deployment's unfinished run, if any: the one to resume.
    fn active_run(&self, deployment_id: &str) -> Result<Option<RunRecord>, StoreError>;

    /// Records a new run; returns it.
    fn begin_run(
        &mut self,
        deployment_id: &str,
        plan_path: &str,
        plan_toml: &str,
        started_unix_ms: i64,
    ) -> Result<RunRecord, StoreError>;

    /// The run with this token, if the journal holds it: whether the run that set a router's
    /// weights is one of this journal's.
    fn run_by_token(&self, token: &str) -> Result<Option<RunRecord>, StoreError>;

    /// Where the run's control API listens and which process serves it, for operator verbs.
    fn set_control(&mut self, run: i64, addr: &str, pid: u32) -> Result<(), StoreError>;

    /// Appends an input, with the metrics cursor it consumed, in one transaction; returns its
    /// sequence number.
    fn append_input(
        &mut self,
        run: i64,
        plan_ms: u64,
        kind: &str,
        body: &str,
        cursor: Option<&str>,
    ) -> Result<u64, StoreError>;

    /// The run's inputs in order, for replay.
    fn inputs(&self, run: i64) -> Result<Vec<InputRecord>, StoreError>;

    /// The metrics cursor of the run's last input that had one.
    fn cursor(&self, run: i64) -> Result<Option<String>, StoreError>;

    /// The run's inputs after sequence number `after_seq`, in order: what a resume replays
    /// after restoring the snapshot that covers the inputs up to `after_seq`.
    fn inputs_after(&self, run: i64, after_seq: u64) -> Result<Vec<InputRecord>, StoreError>;

    /// Records a snapshot of the engine as of input `after_seq` (fed at `plan_ms`), so that a
    /// resume need not replay the inputs up to it. Only the latest is kept. A failure is the
    /// caller's to report and ignore: the inputs remain the truth.
    fn append_snapshot(
        &mut self,
        run: i64,
        after_seq: u64,
        plan_ms: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError>;

    /// The run's latest snapshot, if one was recorded.
    fn latest_snapshot(&self, run: i64) -> Result<Option<SnapshotRecord>, StoreError>;

    /// Appends an event (a decision, an operator action, a check or hook result).
    fn append_event(
        &mut self,
        run: i64,
        plan_ms: u64,
        unix_ms: i64,
        kind: &str,
        body: &str,
    ) -> Result<u64, StoreError>;

    /// The run's events after sequence number `after_seq`.
    fn events(&self, run: i64, after_seq: u64) -> Result<Vec<EventRecord>, StoreError>;

    /// Marks the run finished with its outcome and final summary.
    fn finish_run(
        &mut self,
        run: i64,
        outcome: &str,
        finished_unix_ms: i64,
        summary_json: &str,
    ) -> Result<(), StoreError>;
}

/// The SQLite journal of `ramp-store`.
impl JournalStore for Journal {
    fn location(&self) -> String {
        self.path().display().to_string()
    }

    fn active_run(&self, deployment_id: &str) -> Result<Option<RunRecord>, StoreError> {
        Journal::active_run(self, deployment_id)
    }

    fn begin_run(
        &mut self,
        deployment_id: &str,
        plan_path: &str,
        plan_toml: &str,
        started_unix_ms: i64,
    ) -> Result<RunRecord, StoreError> {
        let run = Journal::begin_run(self, deployment_id, plan_path, plan_toml, started_unix_ms)?;
        Journal::run(self, run)?.ok_or_else(|| StoreError::NoSuchRun {
            path: self.path().to_owned(),
            run,
        })
    }

    fn run_by_token(&self, token: &str) -> Result<Option<RunRecord>, StoreError> {
        Journal::run_by_token(self, token)
    }

    fn set_control(&mut self, run: i64, addr: &str, pid: u32) -> Result<(), StoreError> {
        Journal::set_control(self, run, addr, pid)
    }

    fn append_input(
        &mut self,
        run: i64,
        plan_ms: u64,
        kind: &str,
        body: &str,
        cursor: Option<&str>,
    ) -> Result<u64, StoreError> {
        Journal::append_input(self, run, plan_ms, kind, body, cursor)
    }

    fn inputs(&self, run: i64) -> Result<Vec<InputRecord>, StoreError> {
        Journal::inputs(self, run)
    }

    fn cursor(&self, run: i64) -> Result<Option<String>, StoreError> {
        Journal::cursor(self, run)
    }

    fn inputs_after(&self, run: i64, after_seq: u64) -> Result<Vec<InputRecord>, StoreError> {
        Journal::inputs_after(self, run, after_seq)
    }

    fn append_snapshot(
        &mut self,
        run: i64,
        after_seq: u64,
        plan_ms: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        Journal::append_snapshot(self, run, after_seq, plan_ms, bytes)
    }

    fn latest_snapshot(&self, run: i64) -> Result<Option<SnapshotRecord>, StoreError> {
        Journal::latest_snapshot(self, run)
    }

    fn append_event(
        &mut self,
        run: i64,
        plan_ms: u64,
        unix_ms: i64,
        kind: &str,
        body: &str,
    ) -> Result<u64, StoreError> {
        Journal::append_event(self, run, plan_ms, unix_ms, kind, body)
    }

    fn events(&self, run: i64, after_seq: u64) -> Result<Vec<EventRecord>, StoreError> {
        Journal::events(self, run, after_seq)
    }

    fn finish_run(
        &mut self,
        run: i64,
        outcome: &str,
        finished_unix_ms: i64,
        summary_json: &str,
    ) -> Result<(), StoreError> {
        Journal::finish_run(self, run, outcome, finished_unix_ms, summary_json)
    }
}
