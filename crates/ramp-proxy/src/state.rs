//! Persistence of the last weights, so that a restarted proxy keeps routing where it was
//! (ARCHITECTURE.md's invariant: the data plane keeps the last weight when the controller
//! dies).
//!
//! The file is replaced atomically: the new content is written to a temporary file in the
//! same directory, flushed to disk, renamed over the old file, and the directory is flushed,
//! so a crash leaves either the old or the new weights, never a torn file.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Numbers this process's writes, so that each has a temporary file of its own.
static NEXT_WRITE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The persisted document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistedState {
    /// Format version, so that a later format can be told apart; always 1.
    pub version: u32,
    /// Canary weight in basis points (0..=10 000).
    pub canary_bp: u32,
    /// The run that set the weight (see [`is_valid_run`]), or `None` when a person did. A
    /// file written before this field existed has none and loads with `None`; `None` is not
    /// written, so such a file reads the same in a proxy that predates the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_by: Option<String>,
    /// The newest fencing token the proxy has accepted (a leading controller's, see
    /// `crate::weights`), kept with the weights so that a restarted proxy still refuses an
    /// older leader. Absent in files written before fencing, which load with `None`; `None`
    /// is not written, so a file never fenced reads the same in an older proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<u64>,
}

/// The longest run name `PUT /weights` accepts.
pub const MAX_RUN_LEN: usize = 128;

/// Whether `run` can name the run that set the weights: 1 to [`MAX_RUN_LEN`] characters of
/// `A-Z a-z 0-9 . _ : -`, so that it is safe in logs, file names and URLs as it is.
pub fn is_valid_run(run: &str) -> bool {
    (1..=MAX_RUN_LEN).contains(&run.len())
        && run
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The weights a starting proxy routes with, and the run that set them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialWeights {
    /// Canary weight in basis points.
    pub canary_bp: u32,
    /// The run that set it, `None` when a person did or it is the configured initial weight.
    pub set_by: Option<String>,
    /// The newest fencing token accepted before the restart, `None` when none ever was.
    pub fence: Option<u64>,
}

/// Why the state file could not be read or written.
#[derive(Debug, Error)]
pub enum StateError {
    /// An I/O operation on `path` failed.
    #[error("state file {path}: {op}: {source}")]
    Io {
        /// The file or directory operated on.
        path: PathBuf,
        /// What was being done ("read", "write", "fsync", "rename").
        op: &'static str,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file exists but does not hold a valid state document.
    #[error("state file {path}: invalid content: {message}")]
    Invalid {
        /// The file read.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Largest state file read; the document is tiny, so anything bigger is not ours.
const MAX_STATE_BYTES: u64 = 64 * 1024;

/// Loads the state, or `Ok(None)` when the file does not exist yet.
pub fn load(path: &Path) -> Result<Option<PersistedState>, StateError> {
    let io = |op, source| StateError::Io {
        path: path.to_path_buf(),
        op,
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("stat", e)),
    };
    if meta.len() > MAX_STATE_BYTES {
        return Err(StateError::Invalid {
            path: path.to_path_buf(),
            message: format!("{} bytes is too large", meta.len()),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| io("read", e))?;
    let state: PersistedState = serde_json::from_str(&text).map_err(|e| StateError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if state.version != 1 || state.canary_bp > ramp_flags::BASIS_POINTS {
        return Err(StateError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "version {} / canary_bp {} not supported",
                state.version, state.canary_bp
            ),
        });
    }
    if let Some(run) = state.set_by.as_deref().filter(|run| !is_valid_run(run)) {
        return Err(StateError::Invalid {
            path: path.to_path_buf(),
            message: format!("set_by {run:?} is not a run name"),
        });
    }
    Ok(Some(state))
}

/// The canary weight a starting proxy uses: the persisted one when the state file exists,
/// otherwise the configured initial weight. A state file that exists but cannot be read is
/// an error: silently falling back could send a rolled-back canary traffic again.
pub fn initial_canary_bp(config: &crate::config::Config) -> Result<u32, StateError> {
    initial_weights(config).map(|w| w.canary_bp)
}

/// The weights a starting proxy uses and the run that set them: the persisted ones when the
/// state file exists, otherwise the configured initial weight, set by nobody. An unreadable
/// state file is an error, as for [`initial_canary_bp`].
pub fn initial_weights(config: &crate::config::Config) -> Result<InitialWeights, StateError> {
    let persisted = match &config.state_file {
        None => None,
        Some(path) => load(path)?,
    };
    Ok(match persisted {
        Some(state) => InitialWeights {
            canary_bp: state.canary_bp,
            set_by: state.set_by,
            fence: state.fence,
        },
        None => InitialWeights {
            canary_bp: config.initial_canary_bp,
            set_by: None,
            fence: None,
        },
    })
}

/// Writes the state atomically (temp file, fsync, rename, fsync of the directory).
pub fn store(path: &Path, state: &PersistedState) -> Result<(), StateError> {
    let io = |p: &Path, op, source| StateError::Io {
        path: p.to_path_buf(),
        op,
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    // One temporary name per write, not per process: two writers in one process (a stopping
    // follower and a restarted proxy, two proxies in a test) would otherwise rename each
    // other's file away, and the loser's weight would not be applied.
    let write = NEXT_WRITE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{file_name}.tmp.{}.{write}", std::process::id()));
    let body = serde_json::to_vec_pretty(state).map_err(|e| StateError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    {
        let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, "create", e))?;
        f.write_all(&body).map_err(|e| io(&tmp, "write", e))?;
        f.write_all(b"\n").map_err(|e| io(&tmp, "write", e))?;
        f.sync_all().map_err(|e| io(&tmp, "fsync", e))?;
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(path, "rename", e));
    }
    let d = std::fs::File::open(&dir).map_err(|e| io(&dir, "open directory", e))?;
    d.sync_all().map_err(|e| io(&dir, "fsync directory", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ramp-proxy-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        dir
    }

    /// Two writers in one process (two proxies in a test, or a follower task still finishing
    /// while a restarted proxy starts) must not share a temporary file: with one name per
    /// process, one writer's rename found the file already renamed by the other and failed,
    /// and the weight it carried was not applied.
    #[test]
    fn concurrent_writers_in_one_process_all_succeed() {
        let dir = temp_dir("concurrent");
        let path = dir.join("weights.json");
        let writers: Vec<_> = (0..4u32)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    (0..200u32)
                        .filter_map(|i| {
                            let state = PersistedState {
                                version: 1,
                                canary_bp: w * 1000 + i,
                                set_by: None,
                                fence: None,
                            };
                            store(&path, &state).err().map(|e| e.to_string())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for writer in writers {
            let failures = writer.join().expect("writer thread");
            assert!(
                failures.is_empty(),
                "{} writes failed: {:?}",
                failures.len(),
                failures.first()
            );
        }
        assert!(load(&path).expect("load").is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn round_trip_and_overwrite() {
        let dir = temp_dir("rt");
        let path = dir.join("weights.json");
        assert_eq!(load(&path).expect("load missing"), None);
        store(
            &path,
            &PersistedState {
                version: 1,
                canary_bp: 500,
                set_by: Some("run-1".into()),
                fence: Some(7),
            },
        )
        .expect("store");
        assert_eq!(
            load(&path).expect("load").and_then(|s| s.set_by).as_deref(),
            Some("run-1")
        );
        store(
            &path,
            &PersistedState {
                version: 1,
                canary_bp: 2500,
                set_by: None,
                fence: None,
            },
        )
        .expect("store again");
        assert_eq!(
            load(&path).expect("load"),
            Some(PersistedState {
                version: 1,
                canary_bp: 2500,
                set_by: None,
                fence: None,
            })
        );
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains("set_by"), "None is not written: {text}");
        assert!(!text.contains("fence"), "None is not written: {text}");
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .expect("list")
            .filter_map(Result::ok)
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_written_before_fencing_loads_without_a_fence() {
        let dir = temp_dir("old");
        let path = dir.join("weights.json");
        std::fs::write(
            &path,
            "{\"version\": 1, \"canary_bp\": 500, \"set_by\": \"r1\"}",
        )
        .expect("write");
        let state = load(&path).expect("load").expect("present");
        assert_eq!((state.canary_bp, state.fence), (500, None));
        std::fs::write(&path, "{\"version\": 1, \"canary_bp\": 500, \"fence\": -1}")
            .expect("write");
        assert!(matches!(load(&path), Err(StateError::Invalid { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn run_names_are_short_and_plain() {
        for good in ["r", "checkout-2025.10:r1_A", &"x".repeat(MAX_RUN_LEN)] {
            assert!(is_valid_run(good), "{good}");
        }
        for bad in [
            "",
            "two words",
            "r\u{e9}sum\u{e9}",
            "a/b",
            "semi;colon",
            &"x".repeat(129),
        ] {
            assert!(!is_valid_run(bad), "{bad}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_default() {
        let dir = temp_dir("bad");
        let path = dir.join("weights.json");
        std::fs::write(&path, "{\"canary_bp\": \"lots\"}").expect("write");
        assert!(matches!(load(&path), Err(StateError::Invalid { .. })));
        std::fs::write(&path, "{\"version\": 1, \"canary_bp\": 20000}").expect("write");
        assert!(matches!(load(&path), Err(StateError::Invalid { .. })));
        std::fs::write(
            &path,
            "{\"version\": 1, \"canary_bp\": 100, \"set_by\": \"two words\"}",
        )
        .expect("write");
        assert!(matches!(load(&path), Err(StateError::Invalid { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
