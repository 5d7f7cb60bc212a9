//! `promtool check metrics` on a page of metrics: the linter of the real Prometheus (Debian's
//! 2.42), which tests of Ramp's `/metrics` endpoints run their pages through.
//!
//! Where promtool is missing a check cannot pass: under `CI=true` that is an error, anywhere
//! else the check is skipped with a loud message, so that a developer without Prometheus
//! installed can still run the rest of a test.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long promtool may take to lint one page.
const TIMEOUT: Duration = Duration::from_secs(20);

/// What a check came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linted {
    /// promtool ran and found nothing wrong.
    Clean,
    /// promtool is not installed and this is not CI: nothing was checked.
    Skipped,
}

/// Runs `promtool check metrics` on `page`. An error names every problem promtool found, or
/// why it could not run (missing under `CI=true`, or no answer within 20 s).
pub fn check_metrics(page: &str) -> Result<Linted, String> {
    let Some(binary) = executable() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            return Err("promtool not found (looked for $RAMP_PROMTOOL, /usr/bin/promtool and `promtool` on PATH), and CI=true: install it with `apt-get install prometheus`".into());
        }
        eprintln!("\n*** promtool not found: `promtool check metrics` SKIPPED (install prometheus; under CI=true this fails) ***\n");
        return Ok(Linted::Skipped);
    };
    let mut child = Command::new(&binary)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(page.as_bytes())
            .map_err(|e| format!("cannot write to promtool: {e}"))?;
    }
    let mut waited = Duration::ZERO;
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if waited >= TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("promtool did not finish within {TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
        waited += Duration::from_millis(20);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("cannot read promtool's answer: {e}"))?;
    // promtool may print a complaint and still exit 0; a clean page gets no words at all.
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(Linted::Clean)
    } else {
        Err(format!(
            "promtool check metrics failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The promtool to run: `$RAMP_PROMTOOL`, else `/usr/bin/promtool`, else one on `PATH`.
fn executable() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RAMP_PROMTOOL") {
        return Some(PathBuf::from(p));
    }
    let debian = PathBuf::from("/usr/bin/promtool");
    if debian.is_file() {
        return Some(debian);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("promtool"))
            .find(|p| p.is_file())
    })
}
