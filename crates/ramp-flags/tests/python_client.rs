//! The OFREP server read by the real OpenFeature Python SDK and OFREP provider (PyPI's
//! `openfeature-sdk` and `openfeature-provider-ofrep`), through tests/py/ofrep_client.py.
//!
//! The interpreter is the workspace's `target/pyclients/bin/python`, which
//! `scripts/python-clients.sh` creates. Without it the test is skipped with a message, except
//! under CI (the `CI` variable set), where it fails: CI must not pass by skipping it.

mod common;

use common::TestServer;
use ramp_flags::ofrep::{ApiToken, RateLimit, ServeOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The workspace root: the nearest ancestor of this crate whose Cargo.toml has `[workspace]`.
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .map(|text| text.contains("[workspace]"))
                .unwrap_or(false)
        })
        .unwrap_or(manifest_dir)
        .to_path_buf()
}

/// The venv's interpreter, or `None` (after failing under CI, or saying why it is skipped).
fn python() -> Option<PathBuf> {
    let python = workspace_root().join("target/pyclients/bin/python");
    if python.exists() {
        return Some(python);
    }
    let message = format!(
        "{} does not exist: run scripts/python-clients.sh to install the OpenFeature Python SDK and OFREP provider",
        python.display()
    );
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("CI is set, so the Python OFREP client test may not be skipped: {message}");
    }
    eprintln!("SKIPPED python_client: {message}");
    None
}

/// Runs the client script (bounded at 120 s) and returns its standard output, failing the
/// test with its output when it exits non-zero.
async fn run_script(python: &Path, args: &[String]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/ofrep_client.py");
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(&script).args(args).kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the Python client finishes within 120 s")
        .expect("the Python client starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "ofrep_client.py {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    stdout
}

/// One cohort run's output.
#[derive(serde::Deserialize)]
struct Cohort {
    /// Whether each user got `true`.
    on: Vec<bool>,
    /// The reason reported for each user.
    reasons: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ofrep_client() {
    let Some(python) = python() else {
        return;
    };
    let open = TestServer::start(ServeOptions::default()).await;
    let token = "py-s3cr3t";
    let protected = TestServer::start(ServeOptions {
        token: Some(ApiToken::new(token).unwrap()),
        ..ServeOptions::default()
    })
    .await;
    let limited = TestServer::start(ServeOptions {
        rate_limit: Some(RateLimit::new(0.2, 1).unwrap()),
        ..ServeOptions::default()
    })
    .await;

    let out = run_script(
        &python,
        &[
            "check".into(),
            open.base_url(),
            protected.base_url(),
            token.into(),
            limited.base_url(),
        ],
    )
    .await;
    assert_eq!(out.trim(), "ok");

    // The cohort: on at 5 % stays on at 25, 50 and 100 %, and it is exactly the set that
    // in_rollout (the proxy's function) puts inside; a rollback turns everyone off.
    let count = 300usize;
    let users: Vec<String> = (0..count).map(|i| format!("customer-{i}")).collect();
    let handle = open.state.weight_handle();
    let mut previous = vec![false; count];
    for bp in [500u32, 2_500, 5_000, 10_000] {
        handle.set_bp(bp).unwrap();
        let out = run_script(
            &python,
            &["cohort".into(), open.base_url(), count.to_string()],
        )
        .await;
        let cohort: Cohort = serde_json::from_str(out.trim()).expect("the cohort as JSON");
        assert_eq!(cohort.on.len(), count);
        for (i, user) in users.iter().enumerate() {
            let inside = ramp_flags::in_rollout(b"phase8_encryption_enabled", user.as_bytes(), bp);
            assert_eq!(cohort.on[i], inside, "{user} at {bp} bp");
            assert!(!previous[i] || cohort.on[i], "{user} turned off at {bp} bp");
            let reason = if bp == 10_000 {
                "STATIC"
            } else {
                "TARGETING_MATCH"
            };
            assert_eq!(cohort.reasons[i], reason, "{user} at {bp} bp");
        }
        previous = cohort.on;
    }
    assert!(previous.iter().all(|b| *b));
    handle.rollback();
    let out = run_script(
        &python,
        &["cohort".into(), open.base_url(), count.to_string()],
    )
    .await;
    let cohort: Cohort = serde_json::from_str(out.trim()).expect("the cohort as JSON");
    assert!(
        cohort.on.iter().all(|b| !b),
        "everyone is off after the rollback"
    );
    assert!(cohort.reasons.iter().all(|r| r == "STATIC"));

    open.stop().await;
    protected.stop().await;
    limited.stop().await;
}
