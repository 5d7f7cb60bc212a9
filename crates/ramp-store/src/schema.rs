//! The journal's schema and its migrations.
//!
//! The schema version lives in `PRAGMA user_version`. Each entry of [`MIGRATIONS`] takes the
//! schema from version `i` to `i + 1`; opening a journal applies the missing ones in one
//! transaction, so a journal is never left half-migrated. A journal whose version is newer
//! than [`SCHEMA_VERSION`] is refused.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;

/// The schema version this build writes and understands. A journal with a newer version is
/// refused with [`StoreError::NewerSchema`].
pub const SCHEMA_VERSION: i64 = 3;

/// `PRAGMA application_id` of a Ramp journal ("RAMP" in ASCII), so that a Ramp journal can be
/// told from another application's SQLite database.
pub(crate) const APPLICATION_ID: i64 = 0x5241_4D50;

/// Version 1: runs, their inputs (for replay) and their events (for people).
///
/// - `runs.run_id` is `AUTOINCREMENT` so that an id is never reused, even after the newest run
///   is deleted by hand: "newest first" is then simply descending id, with no reliance on
///   wall clocks, which can step backwards.
/// - The partial unique index `runs_one_running` makes "one running run per deployment" a
///   property of the database, not only of the code that checks it.
/// - `runs.cursor` is on the run row so that replacing it and inserting an input are one
///   transaction over two tables, and reading it is one lookup.
/// - Inputs and events are keyed by `(run_id, seq)` without a row id: they are always read by
///   run in sequence order, which is exactly that key.
const V1: &str = "
CREATE TABLE runs (
    run_id           INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id    TEXT    NOT NULL,
    plan_path        TEXT    NOT NULL,
    plan_toml        TEXT    NOT NULL,
    started_unix_ms  INTEGER NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('running', 'finished')),
    outcome          TEXT,
    finished_unix_ms INTEGER,
    control_addr     TEXT,
    controller_pid   INTEGER,
    summary_json     TEXT,
    cursor           TEXT
);
CREATE UNIQUE INDEX runs_one_running ON runs (deployment_id) WHERE status = 'running';
CREATE INDEX runs_by_deployment ON runs (deployment_id, run_id);

CREATE TABLE inputs (
    run_id  INTEGER NOT NULL REFERENCES runs (run_id),
    seq     INTEGER NOT NULL CHECK (seq >= 1),
    plan_ms INTEGER NOT NULL CHECK (plan_ms >= 0),
    kind    TEXT    NOT NULL,
    body    TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

CREATE TABLE events (
    run_id  INTEGER NOT NULL REFERENCES runs (run_id),
    seq     INTEGER NOT NULL CHECK (seq >= 1),
    plan_ms INTEGER NOT NULL CHECK (plan_ms >= 0),
    unix_ms INTEGER NOT NULL,
    kind    TEXT    NOT NULL,
    body    TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
";

/// Version 2: every run has a token, unique across journals, that the controller hands the
/// router with every weight it sets.
///
/// A router reports the token of the run that last set its weights, so a controller can tell
/// "this journal holds the run that set these weights" from "this journal was emptied,
/// replaced or belongs elsewhere" before it sends anything. Runs journaled before version 2
/// get a token derived from their id and start, which no router has seen (no controller sent
/// tokens then), and which can never collide with a random one (it has a different form).
const V2: &str = "
ALTER TABLE runs ADD COLUMN token TEXT NOT NULL DEFAULT '';
UPDATE runs SET token = 'legacy-' || run_id || '-' || started_unix_ms;
CREATE UNIQUE INDEX runs_token ON runs (token);
";

/// Version 3: each run's latest engine snapshot, so that a resume replays only the inputs
/// after it.
///
/// - One row per run (`run_id` is the key): a newer snapshot replaces the older one, which no
///   resume would use (the newer covers more inputs), so the journal grows by one snapshot
///   per run, not one per checkpoint.
/// - `after_seq` is the sequence number of the last input the snapshot covers; a resume
///   replays the inputs after it. The inputs stay the truth: a snapshot that cannot be used
///   is ignored and the run replayed in full.
/// - `body` is the snapshot's bytes as the caller encoded them (this crate does not read it).
const V3: &str = "
CREATE TABLE snapshots (
    run_id    INTEGER PRIMARY KEY REFERENCES runs (run_id),
    after_seq INTEGER NOT NULL CHECK (after_seq >= 0),
    plan_ms   INTEGER NOT NULL CHECK (plan_ms >= 0),
    body      BLOB    NOT NULL
);
";

/// The migrations in order: entry `i` takes the schema from version `i` to `i + 1`, so the
/// list's length is [`SCHEMA_VERSION`].
const MIGRATIONS: &[&str] = &[V1, V2, V3];

/// Brings the journal's schema to [`SCHEMA_VERSION`], refusing newer schemas and databases
/// that are not Ramp journals.
///
/// It runs in an immediate (write-locked) transaction so that two processes opening a new
/// journal at once do not both try to create the tables: the second waits for the first and
/// then finds the schema current.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let fail = |what: &'static str| {
        move |source| StoreError::Open {
            path: path.to_owned(),
            what,
            source,
        }
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail("lock the journal to check its schema"))?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(fail("read the schema version"))?;
    let application_id: i64 = tx
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .map_err(fail("read the application id"))?;

    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    // A negative version was never written by Ramp.
    let Ok(applied) = usize::try_from(version) else {
        return Err(StoreError::NotAJournal {
            path: path.to_owned(),
        });
    };
    if applied == 0 {
        // A fresh journal is an empty database; anything else is someone else's data.
        let objects: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
            .map_err(fail("list the database's tables"))?;
        if objects > 0 || (application_id != 0 && application_id != APPLICATION_ID) {
            return Err(StoreError::NotAJournal {
                path: path.to_owned(),
            });
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(fail("mark the file as a Ramp journal"))?;
    } else if application_id != APPLICATION_ID {
        return Err(StoreError::NotAJournal {
            path: path.to_owned(),
        });
    }

    if applied < MIGRATIONS.len() {
        for migration in &MIGRATIONS[applied..] {
            tx.execute_batch(migration)
                .map_err(fail("create or migrate the schema"))?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(fail("record the schema version"))?;
    }
    tx.commit().map_err(fail("commit the schema"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_is_one_migration_per_schema_version() {
        assert_eq!(i64::try_from(MIGRATIONS.len()).ok(), Some(SCHEMA_VERSION));
    }

    #[test]
    fn application_id_spells_ramp() {
        let bytes = u32::try_from(APPLICATION_ID).map(u32::to_be_bytes);
        assert_eq!(bytes.ok().as_ref().map(|b| &b[..]), Some(&b"RAMP"[..]));
    }
}
