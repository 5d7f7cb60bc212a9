//! One controller per deployment per journal, enforced with an OS file lock.
//!
//! The journal alone cannot stop two controllers: a running run in the journal may belong to a
//! live controller or to one that was killed, and only the former should keep it. An OS lock
//! tells them apart, because the operating system releases it when its holder dies, however it
//! dies (`kill -9` included), while a live holder keeps it. The lock is an exclusive
//! `flock`-style lock ([`File::try_lock`]) on a file next to the journal,
//! `<journal file name>.<sanitised deployment id>-<hash>.lock`, whose content is the holder's
//! process id, for the message the next controller shows.
//!
//! The lock file is never deleted: deleting it would let a newcomer lock a fresh file while a
//! waiter still holds the old, unlinked one, and both would think they own the deployment.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::StoreError;

/// The longest sanitised deployment id kept in a lock file's name; the hash that follows keeps
/// longer ids distinct, and the limit keeps the name well under file systems' 255 bytes.
const MAX_NAME_CHARS: usize = 64;

/// The exclusive right to run one deployment of one journal, held until the guard is dropped
/// (or the process dies).
#[derive(Debug)]
pub struct DeploymentLock {
    /// The locked lock file; closing it (on drop) releases the lock.
    file: File,
    /// The lock file's path, so that callers can show it.
    lock_path: PathBuf,
    /// The deployment this lock is for, for display.
    deployment: String,
}

impl DeploymentLock {
    /// Takes the lock of `deployment_id` for the journal at `journal_path`, without waiting.
    ///
    /// Fails with [`StoreError::Locked`] (with the holder's pid when it could be read) when
    /// another controller holds it, in this process or another, and with
    /// [`StoreError::Lock`] when the lock file cannot be created, locked or written. On
    /// success the lock file holds this process's id.
    pub fn acquire(journal_path: &Path, deployment_id: &str) -> Result<DeploymentLock, StoreError> {
        let lock_path = lock_path(journal_path, deployment_id);
        let fail = |source: io::Error| StoreError::Lock {
            path: journal_path.to_owned(),
            lock_path: lock_path.clone(),
            deployment: deployment_id.to_owned(),
            source,
        };
        if journal_path.file_name().is_none() {
            return Err(fail(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the journal path has no file name to derive the lock file's name from",
            )));
        }
        // Not truncated on open: the file may belong to a live holder whose pid we want to
        // read.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(fail)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    path: journal_path.to_owned(),
                    pid: read_pid(&mut file),
                    lock_path,
                    deployment: deployment_id.to_owned(),
                });
            }
            Err(TryLockError::Error(error)) => return Err(fail(error)),
        }
        // The previous holder's pid (if it died) is replaced by ours.
        write_pid(&mut file, std::process::id()).map_err(fail)?;
        Ok(DeploymentLock {
            file,
            lock_path,
            deployment: deployment_id.to_owned(),
        })
    }

    /// The lock file's path, to show operators where the lock is.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// The deployment this lock is for.
    pub fn deployment(&self) -> &str {
        &self.deployment
    }
}

impl Drop for DeploymentLock {
    fn drop(&mut self) {
        // Closing the file releases the lock anyway; unlocking first releases it even if the
        // descriptor has been duplicated (e.g. inherited by a child process). A failure leaves
        // nothing to do, since the close that follows releases it too.
        let _ = self.file.unlock();
    }
}

/// The lock file of `deployment_id` for the journal at `journal_path`:
/// `<journal file name>.<sanitised id>-<hash>.lock` in the journal's directory.
pub(crate) fn lock_path(journal_path: &Path, deployment_id: &str) -> PathBuf {
    let mut name = journal_path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{}.lock", sanitise(deployment_id)));
    journal_path.with_file_name(name)
}

/// A file-name-safe form of a deployment id: `[A-Za-z0-9._-]` kept, every other character
/// replaced by `_`, cut to [`MAX_NAME_CHARS`], then `-` and a 64-bit FNV-1a hash of the
/// original id in hex, so that distinct ids (`a/b` and `a_b`, or two long ids with a common
/// prefix) never share a lock file.
pub(crate) fn sanitise(deployment_id: &str) -> String {
    let mut name: String = deployment_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME_CHARS)
        .collect();
    name.push_str(&format!("-{:016x}", fnv1a64(deployment_id.as_bytes())));
    name
}

/// FNV-1a, 64-bit. Chosen over `std`'s hasher because the lock file's name must be the same for
/// every build of Ramp that shares a journal, and `DefaultHasher`'s output may change between
/// Rust releases.
fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

/// The pid written in a held lock file, if it is there and readable; the holder may not have
/// written it yet, which is why this is optional.
fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Replaces the lock file's content with `pid`.
fn write_pid(file: &mut File, pid: u32) -> io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{pid}")?;
    file.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn sanitise_keeps_safe_characters_and_replaces_the_rest() {
        let name = sanitise("web-api_v2.prod");
        assert!(name.starts_with("web-api_v2.prod-"), "{name}");
        let name = sanitise("team/web api:ü");
        assert!(name.starts_with("team_web_api__-"), "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
            "{name}"
        );
    }

    #[test]
    fn ids_that_sanitise_alike_get_distinct_names() {
        assert_ne!(sanitise("a/b"), sanitise("a_b"));
        assert_ne!(sanitise("a/b"), sanitise("a:b"));
        let long_a = format!("{}a", "x".repeat(200));
        let long_b = format!("{}b", "x".repeat(200));
        assert_ne!(sanitise(&long_a), sanitise(&long_b));
    }

    #[test]
    fn names_stay_short_and_traversal_free() {
        let name = sanitise(&"é/".repeat(500));
        assert_eq!(name.len(), MAX_NAME_CHARS + 17);
        let path = lock_path(Path::new("/var/lib/ramp/journal.db"), "../../etc/passwd");
        assert_eq!(path.parent(), Some(Path::new("/var/lib/ramp")));
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(
            file_name.starts_with("journal.db..._.._etc_passwd-"),
            "{file_name}"
        );
        assert!(file_name.ends_with(".lock"), "{file_name}");
    }

    #[test]
    fn the_lock_file_holds_the_holders_pid() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let journal = dir.path().join("journal.db");
        let lock = DeploymentLock::acquire(&journal, "web").expect("acquire");
        let text = std::fs::read_to_string(lock.lock_path()).expect("read lock file");
        assert_eq!(text.trim(), std::process::id().to_string());
        assert_eq!(lock.deployment(), "web");
    }

    #[test]
    fn a_journal_path_without_a_file_name_is_an_error() {
        let error = DeploymentLock::acquire(Path::new("/"), "web").expect_err("no file name");
        assert!(matches!(error, StoreError::Lock { .. }), "{error}");
    }
}
