//! Checks of the rules in ARCHITECTURE.md that a compiler does not enforce by itself: the
//! files are read as text, so that breaking a rule fails the suite rather than waiting for a
//! reviewer to notice.

use std::path::{Path, PathBuf};

/// The repository's root, two levels above this crate.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `dir`, recursively, sorted so that failures read the same each run.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
    out
}

/// Only `crates/ramp/src/main.rs` chooses exit codes: the other files of the binary return
/// how a command ended, or an error.
#[test]
fn only_main_chooses_exit_codes() {
    let src = root().join("crates/ramp/src");
    let offenders: Vec<String> = rust_files(&src)
        .into_iter()
        .filter(|path| path.file_name().is_some_and(|name| name != "main.rs"))
        .filter(|path| {
            let text = std::fs::read_to_string(path).expect("a readable source file");
            text.contains("ExitCode") || text.contains("process::exit")
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "only crates/ramp/src/main.rs may choose exit codes; found ExitCode or process::exit in {offenders:?}"
    );
}
