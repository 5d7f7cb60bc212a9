//! The errors of the journal and of the deployment lock.

use std::path::PathBuf;

/// Why a journal or lock operation failed.
///
/// Every variant names the journal's path, because a controller, `ramp status` and an
/// operator's shell may each be looking at a different journal, and an error that does not say
/// which one is hard to act on.
#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    /// The journal could not be opened or configured (the file is not a database, the
    /// directory is not writable, the disk is full…); `what` says which step failed.
    #[error("cannot open the journal {}: could not {what}: {source}", .path.display())]
    Open {
        /// The journal's path, so that the operator knows which file to look at.
        path: PathBuf,
        /// The step that failed, e.g. "switch to WAL mode", so that the cause can be told apart
        /// from SQLite's sometimes terse message.
        what: &'static str,
        /// SQLite's own error, for the detail.
        source: rusqlite::Error,
    },

    /// SQLite refused to switch the journal to write-ahead logging (it does so for in-memory
    /// databases and some file systems). Without WAL, readers such as `ramp status` would block
    /// the controller's commits, so the journal is refused rather than silently degraded.
    #[error(
        "the journal {} cannot use write-ahead logging (SQLite kept journal mode {mode:?}); \
         put it on a local file system",
        .path.display()
    )]
    NotWal {
        /// The journal's path, so that the operator can move it.
        path: PathBuf,
        /// The journal mode SQLite reported instead of `wal`.
        mode: String,
    },

    /// The operating system's random source failed while drawing a new run's token; the run
    /// was not begun.
    #[error("cannot begin a run in the journal {}: no random token: {source}", .path.display())]
    Random {
        /// The journal's path.
        path: PathBuf,
        /// The random source's error.
        source: getrandom::Error,
    },

    /// The file is an SQLite database but not a Ramp journal (it has other tables, or another
    /// application id). Refused so that a mistyped path never adds Ramp's tables to someone
    /// else's database.
    #[error(
        "{} is an SQLite database but not a Ramp journal; choose another journal path",
        .path.display()
    )]
    NotAJournal {
        /// The path of the database that was refused.
        path: PathBuf,
    },

    /// The journal was written by a newer Ramp with a schema this build does not know. Refused
    /// rather than read, because reading a schema we do not understand could misreport runs,
    /// and writing to it could corrupt them.
    #[error(
        "the journal {} has schema version {found}, newer than version {supported} that this \
         build of Ramp understands; use a newer Ramp",
        .path.display()
    )]
    NewerSchema {
        /// The journal's path.
        path: PathBuf,
        /// The schema version found in the file (`PRAGMA user_version`).
        found: i64,
        /// The newest schema version this build understands ([`crate::SCHEMA_VERSION`]).
        supported: i64,
    },

    /// The deployment already has a running run. A deployment is rolled out by one run at a
    /// time; an unfinished run (for instance one whose controller crashed) has to be resumed or
    /// finished before a new one starts.
    #[error(
        "journal {}: deployment {deployment:?} already has a running run ({run}); resume it or \
         finish it before starting another",
        .path.display()
    )]
    Active {
        /// The journal's path.
        path: PathBuf,
        /// The deployment that already has a running run.
        deployment: String,
        /// The id of that running run, so that the caller can resume it.
        run: i64,
    },

    /// No run has this id in this journal (a mistyped id, or another journal's run).
    #[error("journal {}: there is no run {run}", .path.display())]
    NoSuchRun {
        /// The journal's path.
        path: PathBuf,
        /// The run id that was asked for.
        run: i64,
    },

    /// The run is finished, so its record is final: nothing more may be appended to it. This
    /// also stops a stale controller that did not notice the run ending from extending it.
    #[error("journal {}: run {run} is already finished; its record is final", .path.display())]
    Finished {
        /// The journal's path.
        path: PathBuf,
        /// The finished run.
        run: i64,
    },

    /// A value is too large for SQLite's signed 64-bit integers; refused rather than wrapped,
    /// since a wrapped plan time would replay in the wrong order.
    #[error(
        "journal {}: {what} {value} is too large to store (the largest is {max})",
        .path.display(),
        max = i64::MAX
    )]
    OutOfRange {
        /// The journal's path.
        path: PathBuf,
        /// Which value was too large, e.g. "plan time (ms)".
        what: &'static str,
        /// The value that was refused.
        value: u64,
    },

    /// An SQLite statement failed (I/O error, disk full, a corrupt row, the database stayed
    /// busy beyond the busy timeout…); `what` says which operation it was part of.
    #[error("journal {}: could not {what}: {source}", .path.display())]
    Sqlite {
        /// The journal's path.
        path: PathBuf,
        /// The operation that failed, e.g. "append a tick input to run 3".
        what: String,
        /// SQLite's own error, for the detail.
        source: rusqlite::Error,
    },

    /// Another controller holds the deployment's lock. Running two controllers on one
    /// deployment would interleave their decisions, so the second one is refused.
    #[error(
        "deployment {deployment} is already being run by another controller{}; stop it or wait \
         for it to finish (journal {}, lock file {})",
        holder(.pid),
        .path.display(),
        .lock_path.display()
    )]
    Locked {
        /// The journal's path.
        path: PathBuf,
        /// The lock file that is held, so that the operator can see who holds it (`fuser`).
        lock_path: PathBuf,
        /// The deployment that is being run.
        deployment: String,
        /// The holder's process id as it wrote it into the lock file, if it had written it
        /// when we looked, so that the operator knows which process to stop.
        pid: Option<u32>,
    },

    /// A controller that no longer leads its deployment tried to write to a shared journal
    /// (etcd): its lease expired or was revoked and another controller may lead now. The
    /// write was refused by the store itself (a fenced transaction), so nothing of it was
    /// recorded; the controller must stop acting at once and leave the router to the leader.
    #[error(
        "lost leadership of deployment {deployment}: the journal {location} refused a write \
         fenced by token {token}, because this controller's election key is gone (its lease \
         expired or was revoked) and another controller may lead now; this controller stops \
         acting and leaves the weights to the leader"
    )]
    Fenced {
        /// Where the journal is (the etcd endpoints and key prefix).
        location: String,
        /// The deployment whose leadership was lost.
        deployment: String,
        /// The fencing token the refused write carried.
        token: u64,
    },

    /// A request to a remote journal (etcd) failed or was not answered within its timeout;
    /// `what` says which operation it was part of. Nothing is acted on without the journal.
    #[error("journal {location}: could not {what}: {source}")]
    Remote {
        /// Where the journal is (the etcd endpoints and key prefix).
        location: String,
        /// The operation that failed, e.g. "append a tick input to run 3".
        what: String,
        /// The client's error, for the detail.
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A record is larger than the remote journal accepts in one value (etcd refuses
    /// requests over 1.5 MiB by default): refused before sending, with what it was.
    #[error("journal {location}: {what} is {bytes} bytes, more than the {max} bytes one record may hold")]
    TooLarge {
        /// Where the journal is.
        location: String,
        /// The record, e.g. "input 17 of run 3".
        what: String,
        /// Its size.
        bytes: usize,
        /// The most one record may hold.
        max: usize,
    },

    /// The lock file could not be created, locked or written (permissions, a missing
    /// directory, a journal path without a file name…).
    #[error(
        "journal {}: could not take the lock of deployment {deployment} ({}): {source}",
        .path.display(),
        .lock_path.display()
    )]
    Lock {
        /// The journal's path.
        path: PathBuf,
        /// The lock file involved.
        lock_path: PathBuf,
        /// The deployment whose lock was wanted.
        deployment: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// The " (pid N)" clause of [`StoreError::Locked`], empty when the pid is unknown.
fn holder(pid: &Option<u32>) -> String {
    match pid {
        Some(pid) => format!(" (pid {pid})"),
        None => String::new(),
    }
}
