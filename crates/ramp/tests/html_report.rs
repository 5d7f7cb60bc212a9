//! The HTML report as a person sees it: `ramp simulate --report out.html` writes it, and a
//! real headless Chromium loads it; the tests read the page Chromium built (its DOM after
//! parsing, `--dump-dom`) and look for what a reader would: the stage headings, a gate's
//! sentence, a chart per stage with a point per checkpoint.
//!
//! Chromium is Debian's `chromium` (scripts/bootstrap.sh installs it). Without it the tests
//! say loudly that they were skipped, except under CI (the `CI` variable set), where they
//! fail: CI must not pass by skipping them.

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::{chromium, dump_dom};
use common::{arg, code, ramp, stderr, write_plan, TempDir, ERROR_SPIKE};
use std::path::{Path, PathBuf};

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The chart titled `title` in the DOM, from its `<svg>` to the end of its caption.
#[track_caller]
fn chart<'a>(dom: &'a str, title: &str) -> &'a str {
    let at = dom
        .find(&format!("\">{title}</title>"))
        .unwrap_or_else(|| panic!("the page has no chart titled {title:?}:\n{dom}"));
    let start = dom[..at].rfind("<svg").expect("a chart is an svg");
    let end = at + dom[at..].find("</figure>").expect("a chart's figure ends");
    &dom[start..end]
}

/// Simulates `plan` with `--report` to an HTML file, checks the exit code (README, "Exit
/// codes") and returns what Chromium shows.
fn simulated_page(chromium: &Path, plan: &Path, exit: i32, dir: &TempDir) -> String {
    // In a directory that does not exist yet, as `--report out/report.html` in a fresh
    // clone: ramp creates it.
    let html = dir.path("out/report.html");
    let out = ramp(&["simulate", &arg(plan), "--quiet", "--report", &arg(&html)]);
    assert_eq!(code(&out), exit, "ramp simulate: {}", stderr(&out));
    let url = format!(
        "file://{}",
        html.canonicalize().expect("the report exists").display()
    );
    dump_dom(chromium, &url, &dir.path("chromium-profile"), &[])
}

#[test]
fn the_staging_report_shows_each_stage_its_gate_sentences_and_a_point_per_checkpoint() {
    let Some(chromium) = chromium() else { return };
    let dir = TempDir::new("html-staging");
    let dom = simulated_page(
        &chromium,
        &root().join("examples/phase8-staging.toml"),
        0,
        &dir,
    );
    for stage in [
        "Stage 1: 5% traffic",
        "Stage 2: 25% traffic",
        "Stage 3: 50% traffic",
        "Stage 4: 100% traffic",
    ] {
        assert!(dom.contains(&format!("<h3>{stage}</h3>")), "no {stage:?}");
    }
    assert!(
        dom.contains("5 of 5 gates passed over 60 min of data"),
        "stage 1's decision sentence"
    );
    // Stage 1 records 4 checkpoints and stage 4 24: P50, P95 and P99 at each.
    let s1 = chart(&dom, "Stage 1: canary latency at each checkpoint");
    assert_eq!(s1.matches("<circle").count(), 3 * 4);
    assert!(s1.contains(">canary latency (ms)</text>"));
    let s4 = chart(&dom, "Stage 4: canary latency at each checkpoint");
    assert_eq!(s4.matches("<circle").count(), 3 * 24);
    assert!(
        s4.contains("warn P99 800 ms"),
        "stage 4's warn level is drawn"
    );
    let weight = chart(&dom, "Canary weight over the rollout");
    assert!(weight.contains(">time since the rollout started (h)</text>"));
    assert!(weight.contains("S4 MONITOR"));
    let rehearsal = chart(&dom, "Scenario 1 (Simulated P95 breach) timeline");
    assert!(rehearsal.contains(">time since the fault's onset (s)</text>"));
    assert!(!dom.contains("<script"), "the page needs no script");
}

#[test]
fn a_rolled_back_flag_rollout_shows_the_rollback_and_the_users_per_stage() {
    let Some(chromium) = chromium() else { return };
    let dir = TempDir::new("html-flags");
    let plan = write_plan(&dir, "plan.toml", &[], &format!("{ERROR_SPIKE}{FLAG}"));
    let dom = simulated_page(&chromium, &plan, 3, &dir);
    assert!(dom.contains("<h2>Automatic rollback</h2>"));
    let timeline = chart(&dom, "Stage 2 rollback timeline");
    assert!(timeline.contains("detection"));
    let users = chart(&dom, "Users with checkout_v2 on, per stage");
    // Counted at stage 1's end and at the rollback in stage 2: one bar each.
    assert_eq!(users.matches("<rect class=\"bar").count(), 2, "{users}");
    assert!(users.contains(">distinct users (count)</text>"));
}

/// The flag of a rollout that rolls back in stage 2 (`ERROR_SPIKE`), following the weight.
const FLAG: &str = r#"
[flags.checkout_v2]
variants = { on = true, off = false }
default_variant = "off"
on_variant = "on"
follow = "rollout"
salt = "checkout-20251006"
"#;
