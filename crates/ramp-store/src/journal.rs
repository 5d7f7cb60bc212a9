//! The journal: runs, their inputs and cursor, and their events, in one SQLite file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};

use crate::schema;
use crate::StoreError;

/// How long a statement waits for another connection's write lock before failing with
/// "database is locked". Writers hold the lock for one short transaction, so a few seconds is
/// ample, and a bounded wait turns a stuck writer into an error rather than a hang.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The columns of `runs` in the order [`run_from_row`] reads them.
const RUN_COLUMNS: &str = "run_id, deployment_id, plan_path, plan_toml, started_unix_ms, status, \
     outcome, finished_unix_ms, control_addr, controller_pid, summary_json, token";

/// Whether a run is still in progress; a run is finished exactly once, by
/// [`Journal::finish_run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// Started and not finished: either a controller is driving it, or its controller died and
    /// it is waiting to be resumed.
    Running,
    /// Finished with an outcome; its record is final.
    Finished,
}

impl RunStatus {
    /// The status as stored in the journal (`"running"` or `"finished"`), which is also how it
    /// is shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromSql for RunStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value.as_str()? {
            "running" => Ok(RunStatus::Running),
            "finished" => Ok(RunStatus::Finished),
            other => Err(FromSqlError::Other(
                format!("unknown run status {other:?}").into(),
            )),
        }
    }
}

/// One run (one rollout of one deployment) as recorded in the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// The run's id, unique in the journal and never reused, so that it can name the run in
    /// commands and logs.
    pub run_id: i64,
    /// The deployment being rolled out; at most one run per deployment is running.
    pub deployment_id: String,
    /// Where the plan was read from, for display (the plan itself is in `plan_toml`).
    pub plan_path: String,
    /// The plan's full text as it was when the run started, so that a resumed run replays
    /// against the same plan even if the file has since been edited.
    pub plan_toml: String,
    /// Wall-clock start, in milliseconds since the Unix epoch, for display.
    pub started_unix_ms: i64,
    /// Whether the run is still in progress.
    pub status: RunStatus,
    /// The outcome given to [`Journal::finish_run`] (e.g. "promoted"); `None` while running.
    pub outcome: Option<String>,
    /// Wall-clock end, in milliseconds since the Unix epoch; `None` while running.
    pub finished_unix_ms: Option<i64>,
    /// Where the run's control API listens, so that `ramp status` and operator commands can
    /// reach the controller; `None` until [`Journal::set_control`].
    pub control_addr: Option<String>,
    /// The controller's process id, so that an operator can tell which process drives the run
    /// (and whether it is still alive); `None` until [`Journal::set_control`].
    pub controller_pid: Option<u32>,
    /// The final summary JSON given to [`Journal::finish_run`]; `None` while running.
    pub summary_json: Option<String>,
    /// The run's token: 32 random hexadecimal digits drawn when it began, unique across
    /// journals, so that a router can say which run set its weights and a controller can
    /// check that its journal holds that run ([`Journal::run_by_token`]).
    pub token: String,
}

/// One engine input of a run, as needed to replay it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRecord {
    /// The input's position in its run (1, 2, 3…), which is the order of replay.
    pub seq: u64,
    /// The plan time at which the input was fed, in milliseconds.
    pub plan_ms: u64,
    /// What kind of input it is (e.g. "start", "tick", "abort", "pause"), so that the caller
    /// knows how to parse `body`.
    pub kind: String,
    /// The input itself, as JSON produced by the caller.
    pub body: String,
}

/// One event of a run: something that happened, for people and followers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// The event's position in its run (1, 2, 3…), which followers pass back as `after_seq`.
    pub seq: u64,
    /// The plan time of the event, in milliseconds, to place it on the rollout's timeline.
    pub plan_ms: u64,
    /// The wall-clock time of the event, in milliseconds since the Unix epoch, to relate it to
    /// logs and dashboards.
    pub unix_ms: i64,
    /// What kind of event it is (e.g. "decision", "checkpoint", "operator"), so that the
    /// caller knows how to parse `body`.
    pub kind: String,
    /// The event itself, as JSON produced by the caller.
    pub body: String,
}

/// The journal of live rollouts: an open SQLite database in WAL mode where every commit is
/// durable before the call that made it returns.
///
/// Writing methods take `&mut self` because each is one write transaction on the connection;
/// several processes may open the same journal (a controller and `ramp status`, say), and
/// SQLite serialises their writes.
#[derive(Debug)]
pub struct Journal {
    /// The connection to the journal file.
    pub(crate) conn: Connection,
    /// The journal file's path, kept to name it in errors.
    pub(crate) path: PathBuf,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`.
    ///
    /// The journal is put in WAL mode (readers never block the controller's commits) with
    /// `synchronous = FULL` (every commit is synced to disk before it returns, because a
    /// decision is recorded before it is acted on), a busy timeout of a few seconds, and
    /// foreign keys on; its schema is created or migrated. A journal written by a newer Ramp
    /// is refused with [`StoreError::NewerSchema`], and an SQLite database that is not a Ramp
    /// journal with [`StoreError::NotAJournal`].
    pub fn open(path: &Path) -> Result<Journal, StoreError> {
        let fail = |what: &'static str| {
            move |source| StoreError::Open {
                path: path.to_owned(),
                what,
                source,
            }
        };
        let mut conn = Connection::open(path).map_err(fail("open the file"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(fail("set the busy timeout"))?;
        let mode = wal_mode(&conn).map_err(fail("switch to WAL mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NotWal {
                path: path.to_owned(),
                mode,
            });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(fail("set synchronous = FULL"))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(fail("enable foreign keys"))?;
        schema::migrate(&mut conn, path)?;
        Ok(Journal {
            conn,
            path: path.to_owned(),
        })
    }

    /// The journal file's path, as given to [`Journal::open`], so that callers can derive the
    /// lock file's path ([`crate::DeploymentLock::acquire`]) and name the journal in messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts a new run of `deployment_id` and returns its run id.
    ///
    /// Fails with [`StoreError::Active`] if the deployment already has a running run: that run
    /// must be resumed (see [`Journal::active_run`]) or finished first, because two runs of one
    /// deployment would fight over its weights.
    pub fn begin_run(
        &mut self,
        deployment_id: &str,
        plan_path: &str,
        plan_toml: &str,
        started_unix_ms: i64,
    ) -> Result<i64, StoreError> {
        let path = &self.path;
        let fail = sql_error(path, || {
            format!("begin a run of deployment {deployment_id:?}")
        });
        let tx = immediate(&mut self.conn).map_err(&fail)?;
        let running: Option<i64> = tx
            .query_row(
                "SELECT run_id FROM runs WHERE deployment_id = ?1 AND status = 'running'",
                [deployment_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(&fail)?;
        if let Some(run) = running {
            return Err(StoreError::Active {
                path: path.clone(),
                deployment: deployment_id.to_owned(),
                run,
            });
        }
        let token = new_token().map_err(|source| StoreError::Random {
            path: path.clone(),
            source,
        })?;
        tx.execute(
            "INSERT INTO runs (deployment_id, plan_path, plan_toml, started_unix_ms, status, token) \
             VALUES (?1, ?2, ?3, ?4, 'running', ?5)",
            params![deployment_id, plan_path, plan_toml, started_unix_ms, token],
        )
        .map_err(&fail)?;
        let run = tx.last_insert_rowid();
        tx.commit().map_err(&fail)?;
        Ok(run)
    }

    /// The running run of `deployment_id`, if any: after a crash, the run a restarted
    /// controller resumes.
    pub fn active_run(&self, deployment_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM runs \
                     WHERE deployment_id = ?1 AND status = 'running'"
                ),
                [deployment_id],
                run_from_row,
            )
            .optional()
            .map_err(sql_error(&self.path, || {
                format!("read the running run of deployment {deployment_id:?}")
            }))
    }

    /// Appends one engine input to a running run and returns its sequence number (1, 2, 3… per
    /// run).
    ///
    /// `kind` names the input (e.g. "start", "tick", "abort", "pause") and `body` is its JSON;
    /// `plan_ms` is the plan time at which it was fed. If `cursor` is given, it replaces the
    /// run's cursor in the same transaction, so that after a crash the inputs and the cursor
    /// they consumed are never out of step: either both are recorded or neither is.
    pub fn append_input(
        &mut self,
        run: i64,
        plan_ms: u64,
        kind: &str,
        body: &str,
        cursor: Option<&str>,
    ) -> Result<u64, StoreError> {
        let path = &self.path;
        let plan_ms = plan_ms_to_sql(path, plan_ms)?;
        let fail = sql_error(path, || format!("append a {kind:?} input to run {run}"));
        let tx = immediate(&mut self.conn).map_err(&fail)?;
        require_running(&tx, path, run).map_err(|e| e.or_else(&fail))?;
        let seq: u64 = tx
            .query_row(
                "SELECT coalesce(max(seq), 0) + 1 FROM inputs WHERE run_id = ?1",
                [run],
                |row| row.get(0),
            )
            .map_err(&fail)?;
        tx.execute(
            "INSERT INTO inputs (run_id, seq, plan_ms, kind, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![run, seq, plan_ms, kind, body],
        )
        .map_err(&fail)?;
        if let Some(cursor) = cursor {
            tx.execute(
                "UPDATE runs SET cursor = ?2 WHERE run_id = ?1",
                params![run, cursor],
            )
            .map_err(&fail)?;
        }
        tx.commit().map_err(&fail)?;
        Ok(seq)
    }

    /// All inputs of a run in sequence order, to replay them into a fresh engine.
    pub fn inputs(&self, run: i64) -> Result<Vec<InputRecord>, StoreError> {
        // Sequence numbers start at 1: every input is after 0.
        self.inputs_after(run, 0)
    }

    /// The run's cursor (the last value given to [`Journal::append_input`]), if one was ever
    /// recorded.
    pub fn cursor(&self, run: i64) -> Result<Option<String>, StoreError> {
        let cursor: Option<Option<String>> = self
            .conn
            .query_row("SELECT cursor FROM runs WHERE run_id = ?1", [run], |row| {
                row.get(0)
            })
            .optional()
            .map_err(sql_error(&self.path, || {
                format!("read the cursor of run {run}")
            }))?;
        cursor.ok_or_else(|| StoreError::NoSuchRun {
            path: self.path.clone(),
            run,
        })
    }

    /// Appends one event to a running run and returns its sequence number (1, 2, 3… per run).
    ///
    /// Events are the human-facing record (decisions, checkpoints, operator actions with who
    /// and why, check and hook results): `plan_ms` places the event on the rollout's timeline,
    /// `unix_ms` on the wall clock, `kind` names it and `body` is its JSON.
    pub fn append_event(
        &mut self,
        run: i64,
        plan_ms: u64,
        unix_ms: i64,
        kind: &str,
        body: &str,
    ) -> Result<u64, StoreError> {
        let path = &self.path;
        let plan_ms = plan_ms_to_sql(path, plan_ms)?;
        let fail = sql_error(path, || format!("append a {kind:?} event to run {run}"));
        let tx = immediate(&mut self.conn).map_err(&fail)?;
        require_running(&tx, path, run).map_err(|e| e.or_else(&fail))?;
        let seq: u64 = tx
            .query_row(
                "SELECT coalesce(max(seq), 0) + 1 FROM events WHERE run_id = ?1",
                [run],
                |row| row.get(0),
            )
            .map_err(&fail)?;
        tx.execute(
            "INSERT INTO events (run_id, seq, plan_ms, unix_ms, kind, body) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![run, seq, plan_ms, unix_ms, kind, body],
        )
        .map_err(&fail)?;
        tx.commit().map_err(&fail)?;
        Ok(seq)
    }

    /// The events of a run with a sequence number greater than `after_seq`, in order: pass 0
    /// for all of them, or the last sequence number seen to follow a run as it goes.
    pub fn events(&self, run: i64, after_seq: u64) -> Result<Vec<EventRecord>, StoreError> {
        let fail = sql_error(&self.path, || format!("read the events of run {run}"));
        require_exists(&self.conn, &self.path, run).map_err(|e| e.or_else(&fail))?;
        // Sequence numbers are at most i64::MAX, so a larger `after_seq` is after all of them.
        let after_seq = i64::try_from(after_seq).unwrap_or(i64::MAX);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT seq, plan_ms, unix_ms, kind, body FROM events \
                 WHERE run_id = ?1 AND seq > ?2 ORDER BY seq",
            )
            .map_err(&fail)?;
        let rows = statement
            .query_map(params![run, after_seq], |row| {
                Ok(EventRecord {
                    seq: row.get(0)?,
                    plan_ms: row.get(1)?,
                    unix_ms: row.get(2)?,
                    kind: row.get(3)?,
                    body: row.get(4)?,
                })
            })
            .map_err(&fail)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&fail)
    }

    /// Records where the running run's control API listens and the controller's process id,
    /// so that `ramp status` and operator commands can find the controller. A resumed run
    /// calls it again with its new address and pid.
    pub fn set_control(&mut self, run: i64, addr: &str, pid: u32) -> Result<(), StoreError> {
        let path = &self.path;
        let fail = sql_error(path, || format!("record the control address of run {run}"));
        let tx = immediate(&mut self.conn).map_err(&fail)?;
        require_running(&tx, path, run).map_err(|e| e.or_else(&fail))?;
        tx.execute(
            "UPDATE runs SET control_addr = ?2, controller_pid = ?3 WHERE run_id = ?1",
            params![run, addr, pid],
        )
        .map_err(&fail)?;
        tx.commit().map_err(&fail)
    }

    /// Marks a running run finished with its outcome (e.g. "promoted", "rolled_back"), its
    /// wall-clock end and its final summary JSON. The run's record is final afterwards:
    /// appending to it or finishing it again fails with [`StoreError::Finished`].
    pub fn finish_run(
        &mut self,
        run: i64,
        outcome: &str,
        finished_unix_ms: i64,
        summary_json: &str,
    ) -> Result<(), StoreError> {
        let path = &self.path;
        let fail = sql_error(path, || format!("finish run {run}"));
        let tx = immediate(&mut self.conn).map_err(&fail)?;
        require_running(&tx, path, run).map_err(|e| e.or_else(&fail))?;
        tx.execute(
            "UPDATE runs SET status = 'finished', outcome = ?2, finished_unix_ms = ?3, \
             summary_json = ?4 WHERE run_id = ?1",
            params![run, outcome, finished_unix_ms, summary_json],
        )
        .map_err(&fail)?;
        tx.commit().map_err(&fail)
    }

    /// All runs, newest first (by run id, which only grows, so the order does not depend on
    /// wall clocks), or only those of `deployment_id` when it is given.
    pub fn runs(&self, deployment_id: Option<&str>) -> Result<Vec<RunRecord>, StoreError> {
        let fail = sql_error(&self.path, || match deployment_id {
            Some(deployment) => format!("list the runs of deployment {deployment:?}"),
            None => "list the runs".to_owned(),
        });
        let mut statement = self
            .conn
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs \
                 WHERE ?1 IS NULL OR deployment_id = ?1 ORDER BY run_id DESC"
            ))
            .map_err(&fail)?;
        let rows = statement
            .query_map([deployment_id], run_from_row)
            .map_err(&fail)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&fail)
    }

    /// The run whose token is `token`, or `None` if this journal has no such run: whether the
    /// run that last set a router's weights is one of this journal's.
    pub fn run_by_token(&self, token: &str) -> Result<Option<RunRecord>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE token = ?1"),
                [token],
                run_from_row,
            )
            .optional()
            .map_err(sql_error(&self.path, || {
                format!("look up the run with token {token:?}")
            }))
    }

    /// One run by id, or `None` if the journal has no such run.
    pub fn run(&self, run: i64) -> Result<Option<RunRecord>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?1"),
                [run],
                run_from_row,
            )
            .optional()
            .map_err(sql_error(&self.path, || format!("read run {run}")))
    }
}

/// Switches the connection to WAL mode and returns the mode SQLite kept. SQLite answers the
/// switch with `SQLITE_BUSY` at once, without calling the busy handler, while another
/// connection holds a lock on a journal still being created (a controller starting while
/// `ramp status` polls); so the switch is retried here for as long as the busy timeout.
fn wal_mode(conn: &Connection) -> rusqlite::Result<String> {
    let mut waited = Duration::ZERO;
    let pause = Duration::from_millis(10);
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && waited < BUSY_TIMEOUT =>
            {
                std::thread::sleep(pause);
                waited += pause;
            }
            other => return other,
        }
    }
}

/// A new run token: 128 bits from the operating system's random source, as 32 lowercase
/// hexadecimal digits (a form routers accept as a run name). Public so that every journal
/// store (the SQLite one here, the etcd one of `ramp-live`) draws tokens by one rule.
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Starts an immediate transaction: it takes the write lock at once, so that the busy timeout
/// applies to it. A deferred transaction that reads and then writes can instead fail at its
/// first write, without waiting, when another connection wrote in between (SQLite cannot
/// upgrade a stale read snapshot to a write).
pub(crate) fn immediate(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

/// A mapper from SQLite errors to [`StoreError::Sqlite`] for the operation `what` describes;
/// `what` is only formatted when an error actually occurs.
pub(crate) fn sql_error<'a>(
    path: &'a Path,
    what: impl Fn() -> String + 'a,
) -> impl Fn(rusqlite::Error) -> StoreError + 'a {
    move |source| StoreError::Sqlite {
        path: path.to_owned(),
        what: what(),
        source,
    }
}

/// Converts a plan time for storage, refusing values beyond SQLite's signed 64-bit integers.
pub(crate) fn plan_ms_to_sql(path: &Path, plan_ms: u64) -> Result<i64, StoreError> {
    i64::try_from(plan_ms).map_err(|_| StoreError::OutOfRange {
        path: path.to_owned(),
        what: "plan time (ms)",
        value: plan_ms,
    })
}

/// Why a run check failed: either the run is not in a state that allows the operation (a
/// complete [`StoreError`]) or the check's query itself failed (an SQLite error that the
/// caller wraps with its own description).
pub(crate) enum CheckError {
    /// The run does not allow the operation.
    Store(StoreError),
    /// The query failed.
    Sql(rusqlite::Error),
}

impl CheckError {
    /// The [`StoreError`], wrapping an SQLite error with the caller's mapper.
    pub(crate) fn or_else(self, wrap: impl Fn(rusqlite::Error) -> StoreError) -> StoreError {
        match self {
            CheckError::Store(error) => error,
            CheckError::Sql(error) => wrap(error),
        }
    }
}

/// The run's status, or [`StoreError::NoSuchRun`].
fn run_status(conn: &Connection, path: &Path, run: i64) -> Result<RunStatus, CheckError> {
    conn.query_row("SELECT status FROM runs WHERE run_id = ?1", [run], |row| {
        row.get(0)
    })
    .optional()
    .map_err(CheckError::Sql)?
    .ok_or_else(|| {
        CheckError::Store(StoreError::NoSuchRun {
            path: path.to_owned(),
            run,
        })
    })
}

/// Succeeds if the run exists, so that reading an unknown run is an error rather than an
/// empty list that looks like a run with no history.
pub(crate) fn require_exists(conn: &Connection, path: &Path, run: i64) -> Result<(), CheckError> {
    run_status(conn, path, run).map(|_| ())
}

/// Succeeds if the run exists and is running: a finished run's record is final.
pub(crate) fn require_running(conn: &Connection, path: &Path, run: i64) -> Result<(), CheckError> {
    match run_status(conn, path, run)? {
        RunStatus::Running => Ok(()),
        RunStatus::Finished => Err(CheckError::Store(StoreError::Finished {
            path: path.to_owned(),
            run,
        })),
    }
}

/// Reads a [`RunRecord`] from a row selected with [`RUN_COLUMNS`]. Out-of-range or unknown
/// values (a corrupt row) are conversion errors, reported as [`StoreError::Sqlite`].
fn run_from_row(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        run_id: row.get(0)?,
        deployment_id: row.get(1)?,
        plan_path: row.get(2)?,
        plan_toml: row.get(3)?,
        started_unix_ms: row.get(4)?,
        status: row.get(5)?,
        outcome: row.get(6)?,
        finished_unix_ms: row.get(7)?,
        control_addr: row.get(8)?,
        controller_pid: row.get(9)?,
        summary_json: row.get(10)?,
        token: row.get(11)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh journal in a temporary directory (kept alive by the returned guard).
    fn journal() -> (tempfile::TempDir, Journal) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let journal = Journal::open(&dir.path().join("journal.db")).expect("open the journal");
        (dir, journal)
    }

    #[test]
    fn open_configures_wal_full_sync_busy_timeout_and_foreign_keys() {
        let (_dir, journal) = journal();
        let pragma = |name: &str| -> String {
            journal
                .conn
                .query_row(&format!("PRAGMA {name}"), [], |row| {
                    row.get::<_, rusqlite::types::Value>(0)
                })
                .map(|value| format!("{value:?}"))
                .expect("read pragma")
        };
        assert_eq!(pragma("journal_mode"), "Text(\"wal\")");
        // 2 is FULL.
        assert_eq!(pragma("synchronous"), "Integer(2)");
        assert_eq!(pragma("busy_timeout"), "Integer(5000)");
        assert_eq!(pragma("foreign_keys"), "Integer(1)");
        assert_eq!(
            pragma("user_version"),
            format!("Integer({})", schema::SCHEMA_VERSION)
        );
    }

    #[test]
    fn a_cursor_update_that_fails_takes_its_input_with_it() {
        let (_dir, mut journal) = journal();
        let run = journal.begin_run("web", "plan.toml", "", 0).expect("begin");
        journal
            .append_input(run, 0, "start", "{}", Some("c1"))
            .expect("first input");
        // Make the cursor update, which runs after the input's insert, fail.
        journal
            .conn
            .execute_batch(
                "CREATE TRIGGER refuse_cursor BEFORE UPDATE OF cursor ON runs \
                 WHEN NEW.cursor = 'poison' BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .expect("create trigger");
        let error = journal
            .append_input(run, 5_000, "tick", "{\"n\":2}", Some("poison"))
            .expect_err("the cursor update must fail");
        assert!(
            matches!(&error, StoreError::Sqlite { what, .. } if what.contains("\"tick\" input to run")),
            "{error}"
        );
        let inputs = journal.inputs(run).expect("inputs");
        assert_eq!(inputs.len(), 1, "the failed input must not be recorded");
        assert_eq!(journal.cursor(run).expect("cursor").as_deref(), Some("c1"));
        // The next input takes the sequence number the failed one would have had.
        assert_eq!(
            journal
                .append_input(run, 5_000, "tick", "{}", Some("c2"))
                .expect("retry"),
            2
        );
    }

    #[test]
    fn an_input_insert_that_fails_leaves_the_cursor_alone() {
        let (_dir, mut journal) = journal();
        let run = journal.begin_run("web", "plan.toml", "", 0).expect("begin");
        journal
            .append_input(run, 0, "start", "{}", Some("c1"))
            .expect("first input");
        journal
            .conn
            .execute_batch(
                "CREATE TRIGGER refuse_input BEFORE INSERT ON inputs \
                 WHEN NEW.kind = 'poison' BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .expect("create trigger");
        journal
            .append_input(run, 1_000, "poison", "{}", Some("c2"))
            .expect_err("the insert must fail");
        assert_eq!(journal.inputs(run).expect("inputs").len(), 1);
        assert_eq!(journal.cursor(run).expect("cursor").as_deref(), Some("c1"));
    }

    #[test]
    fn a_corrupt_status_is_an_error_not_a_panic() {
        let (_dir, mut journal) = journal();
        let run = journal.begin_run("web", "plan.toml", "", 0).expect("begin");
        // Bypass the CHECK constraint the way a hand edit with an old schema might.
        journal
            .conn
            .execute_batch("PRAGMA ignore_check_constraints = ON")
            .expect("pragma");
        journal
            .conn
            .execute("UPDATE runs SET status = 'paused' WHERE run_id = ?1", [run])
            .expect("corrupt the row");
        let error = journal.run(run).expect_err("unknown status");
        assert!(error.to_string().contains("unknown run status"), "{error}");
        let error = journal.runs(None).expect_err("unknown status");
        assert!(matches!(error, StoreError::Sqlite { .. }), "{error}");
    }

    #[test]
    fn status_strings_round_trip() {
        for status in [RunStatus::Running, RunStatus::Finished] {
            let parsed = RunStatus::column_result(ValueRef::Text(status.as_str().as_bytes()));
            assert_eq!(parsed.ok(), Some(status));
            assert_eq!(status.to_string(), status.as_str());
        }
    }
}
