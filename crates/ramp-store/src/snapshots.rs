//! Engine snapshots in the journal: each run's latest one, and the inputs after it.
//!
//! A resume used to replay every input of the run; with a snapshot it restores the engine's
//! state as of input `after_seq` and replays only the inputs after it. The inputs remain the
//! truth: the snapshot is an optimisation, which the caller ignores (replaying everything)
//! when it cannot use it, and whose write may fail without harm.

use rusqlite::{params, OptionalExtension};

use crate::journal::{immediate, plan_ms_to_sql, require_exists, require_running, sql_error};
use crate::{InputRecord, Journal, StoreError};

/// A run's latest engine snapshot, as journaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// The sequence number of the last input the snapshot covers: a resume replays the
    /// inputs after it.
    pub after_seq: u64,
    /// The plan time of that input, ms, to say where the snapshot stands.
    pub plan_ms: u64,
    /// The snapshot as the caller encoded it (this crate does not read it).
    pub bytes: Vec<u8>,
}

impl Journal {
    /// Records the engine snapshot of a running run as of its input `after_seq`, replacing
    /// the run's previous snapshot: a resume only ever uses the latest, which covers the
    /// most inputs, so keeping one per run bounds the journal's growth.
    pub fn append_snapshot(
        &mut self,
        run: i64,
        after_seq: u64,
        plan_ms: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let path = &self.path;
        let plan_ms = plan_ms_to_sql(path, plan_ms)?;
        let after = i64::try_from(after_seq).map_err(|_| StoreError::OutOfRange {
            path: path.to_owned(),
            what: "input sequence number",
            value: after_seq,
        })?;
        let fail = sql_error(path, || {
            format!("record the snapshot of run {run} after input {after_seq}")
        });
        let tx = immediate(&mut self.conn).map_err(&fail)?;
        require_running(&tx, path, run).map_err(|e| e.or_else(&fail))?;
        tx.execute(
            "INSERT INTO snapshots (run_id, after_seq, plan_ms, body) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (run_id) DO UPDATE SET \
             after_seq = excluded.after_seq, plan_ms = excluded.plan_ms, body = excluded.body",
            params![run, after, plan_ms, bytes],
        )
        .map_err(&fail)?;
        tx.commit().map_err(&fail)
    }

    /// The run's latest engine snapshot, if one was recorded.
    pub fn latest_snapshot(&self, run: i64) -> Result<Option<SnapshotRecord>, StoreError> {
        let fail = sql_error(&self.path, || format!("read the snapshot of run {run}"));
        require_exists(&self.conn, &self.path, run).map_err(|e| e.or_else(&fail))?;
        self.conn
            .query_row(
                "SELECT after_seq, plan_ms, body FROM snapshots WHERE run_id = ?1",
                [run],
                |row| {
                    Ok(SnapshotRecord {
                        after_seq: row.get(0)?,
                        plan_ms: row.get(1)?,
                        bytes: row.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(&fail)
    }

    /// The run's inputs with a sequence number greater than `after_seq`, in order: what a
    /// resume replays after restoring the snapshot as of `after_seq` (0 for every input).
    pub fn inputs_after(&self, run: i64, after_seq: u64) -> Result<Vec<InputRecord>, StoreError> {
        let fail = sql_error(&self.path, || format!("read the inputs of run {run}"));
        require_exists(&self.conn, &self.path, run).map_err(|e| e.or_else(&fail))?;
        // Sequence numbers are at most i64::MAX, so a larger `after_seq` is after all of them.
        let after_seq = i64::try_from(after_seq).unwrap_or(i64::MAX);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT seq, plan_ms, kind, body FROM inputs \
                 WHERE run_id = ?1 AND seq > ?2 ORDER BY seq",
            )
            .map_err(&fail)?;
        let rows = statement
            .query_map(params![run, after_seq], |row| {
                Ok(InputRecord {
                    seq: row.get(0)?,
                    plan_ms: row.get(1)?,
                    kind: row.get(2)?,
                    body: row.get(3)?,
                })
            })
            .map_err(&fail)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&fail)
    }
}
