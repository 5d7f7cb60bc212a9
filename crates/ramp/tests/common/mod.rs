//! What the `ramp` binary's test files share: running the binary and reading what it did,
//! and a temporary directory of the test's own.

// Each test file compiles this module on its own and uses a different part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `ramp` with `args` and returns what it did.
pub fn ramp<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ramp"))
        .args(args)
        .output()
        .expect("the ramp binary runs")
}

/// The exit code (a signal is a test failure).
pub fn code(out: &Output) -> i32 {
    out.status.code().expect("ramp exits with a code")
}

/// Standard output as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `path` as an argument.
pub fn arg(path: &Path) -> String {
    path.to_str().expect("temp paths are UTF-8").to_string()
}

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new, empty directory whose name carries the process, a counter and `label`.
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("ramp-test-{}-{n}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }

    /// `name` inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A three-stage plan (5% 60m → 25% 120m → 100% 60m) with a clean canary; tests derive
/// their plans from it with small substitutions.
pub const BASE_PLAN: &str = r#"[deployment]
id = "cli-test"
service = "checkout"
environment = "staging"

[gates]
window = "5m"
min_samples = 200
p95_ms = { max = 500 }
error_rate = { max = "1%" }
throughput_rps = { min = 50, scope = "service" }

[[stages]]
weight = 5
duration = "60m"
checkpoint = "15m"

[[stages]]
weight = 25
duration = "120m"
checkpoint = "30m"

[[stages]]
weight = 100
duration = "60m"
checkpoint = "15m"

[simulation]
rps = 125
stable = { p50_ms = 145, p95_ms = 385, p99_ms = 720, error_rate = "0.28%" }
"#;

/// The canary's error rate jumps to 3% at T+90 min, in stage 2.
pub const ERROR_SPIKE: &str = r#"
[[simulation.faults]]
cohort = "canary"
at = "90m"
error_rate = "3%"
"#;

/// Writes `BASE_PLAN` with each `(from, to)` replaced (each `from` must occur) and `extra`
/// appended to `dir/name`.
pub fn write_plan(dir: &TempDir, name: &str, subs: &[(&str, &str)], extra: &str) -> PathBuf {
    let mut text = BASE_PLAN.to_string();
    for (from, to) in subs {
        assert!(text.contains(from), "the base plan has no {from:?}");
        text = text.replace(from, to);
    }
    text.push_str(extra);
    let path = dir.path(name);
    std::fs::write(&path, text).expect("write a plan");
    path
}
