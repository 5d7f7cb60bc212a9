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

/// Lint levels are set once, in the root Cargo.toml's `[workspace.lints]`, and every crate
/// inherits them; no crate root sets levels of its own.
#[test]
fn every_crate_inherits_the_workspace_lints() {
    let root_manifest =
        std::fs::read_to_string(root().join("Cargo.toml")).expect("the root Cargo.toml");
    assert!(
        root_manifest.contains("[workspace.lints.rust]"),
        "the root Cargo.toml defines the lint levels in [workspace.lints.rust]"
    );
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .expect("the crates directory")
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.join("Cargo.toml").is_file())
        .collect();
    crates.sort();
    assert!(crates.len() > 1, "found the workspace's crates");
    for dir in crates {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a crate directory named in UTF-8");
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("a Cargo.toml");
        let inherits = manifest
            .split("\n[")
            .any(|section| section.starts_with("lints]") && section.contains("workspace = true"));
        assert!(
            inherits,
            "crates/{name}/Cargo.toml needs `[lints]\\nworkspace = true`"
        );
        for root_file in ["src/lib.rs", "src/main.rs"] {
            let Ok(text) = std::fs::read_to_string(dir.join(root_file)) else {
                continue;
            };
            for level in ["#![warn(", "#![deny(", "#![forbid("] {
                assert!(
                    !text.contains(level),
                    "crates/{name}/{root_file} sets a lint level ({level}…); set it in the root Cargo.toml's [workspace.lints]"
                );
            }
        }
    }
}
