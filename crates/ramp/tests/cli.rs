//! End-to-end tests of the `ramp` binary: exit codes, the JSON summary contract, the report
//! and the monitoring panel, located plan errors, and determinism (the README's exit codes
//! and JSON summary; issue 2, "What it must show").
//!
//! Every test runs the real binary. No test asserts on wall-clock time: performance is shown
//! by benchmarks (docs/benchmarks.md), not by timed tests.

mod common;

use common::{arg, code, ramp, stderr, stdout, write_plan, TempDir, ERROR_SPIKE};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn repo_file(rel: &str) -> String {
    format!("{}/../../{rel}", env!("CARGO_MANIFEST_DIR"))
}

fn staging() -> String {
    repo_file("examples/phase8-staging.toml")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The `[simulation]` block of `BASE_PLAN`; replace it with "" for a plan without one.
const SIMULATION: &str = r#"[simulation]
rps = 125
stable = { p50_ms = 145, p95_ms = 385, p99_ms = 720, error_rate = "0.28%" }
"#;

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("the JSON summary was written");
    serde_json::from_str(&text).expect("the JSON summary parses")
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is a number in {v}"))
}

fn stages(summary: &Value) -> &Vec<Value> {
    summary["stages"].as_array().expect("stages is an array")
}

fn decisions(summary: &Value) -> Vec<&str> {
    stages(summary)
        .iter()
        .map(|s| s["decision"].as_str().expect("decision is a string"))
        .collect()
}

fn assert_keys(v: &Value, keys: &[&str], what: &str) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what} is an object: {v}"));
    for k in keys {
        assert!(obj.contains_key(*k), "{what} lacks key `{k}`: {v}");
    }
}

const RECOVERY_KEYS: &[&str] = &[
    "reason",
    "stage",
    "fault_onset_s",
    "detection_s",
    "rollback_s",
    "restoration_s",
    "total_recovery_s",
];

/// A `rollback` or rehearsal: contract keys, times in order from onset to restoration, and
/// total recovery measured from onset to restoration.
fn assert_recovery(r: &Value, what: &str) {
    assert_keys(r, RECOVERY_KEYS, what);
    let onset = num(r, "fault_onset_s");
    let detection = num(r, "detection_s");
    let rollback = num(r, "rollback_s");
    let restoration = num(r, "restoration_s");
    assert!(
        onset <= detection && detection <= rollback && rollback <= restoration,
        "{what}: times out of order: {r}"
    );
    let total = num(r, "total_recovery_s");
    assert!(
        (total - (restoration - onset)).abs() < 1e-6,
        "{what}: total_recovery_s is not restoration_s − fault_onset_s: {r}"
    );
    assert!(
        !r["reason"].as_str().unwrap_or("").is_empty(),
        "{what}: no reason: {r}"
    );
}

fn assert_metrics(m: &Value, what: &str) {
    assert_keys(
        m,
        &["p50_ms", "p95_ms", "p99_ms", "error_rate", "throughput_rps"],
        what,
    );
    let e = num(m, "error_rate");
    assert!(
        (0.0..1.0).contains(&e),
        "{what}: error_rate {e} is not a fraction"
    );
    let (p50, p95, p99) = (num(m, "p50_ms"), num(m, "p95_ms"), num(m, "p99_ms"));
    assert!(
        0.0 < p50 && p50 <= p95 && p95 <= p99,
        "{what}: percentiles out of order: {m}"
    );
}

fn assert_gate(g: &Value, what: &str) {
    assert_keys(
        g,
        &[
            "metric", "scope", "observed", "max", "min", "warn", "status",
        ],
        what,
    );
    let status = g["status"].as_str().expect("status is a string");
    assert!(
        ["pass", "warn", "fail", "no_data"].contains(&status),
        "{what}: status {status:?}"
    );
    let scope = g["scope"].as_str().expect("scope is a string");
    assert!(
        ["canary", "stable", "service"].contains(&scope),
        "{what}: scope {scope:?}"
    );
    assert!(
        g["max"].is_number() != g["min"].is_number(),
        "{what}: exactly one of max and min is a fail level: {g}"
    );
    if g["metric"] == "error_rate" {
        for k in ["observed", "max", "warn"] {
            if let Some(x) = g[k].as_f64() {
                assert!(x < 1.0, "{what}: error_rate {k} {x} is not a fraction");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The staging example: the staging report's shape, the JSON contract, the report and the panel.
// ---------------------------------------------------------------------------------------

#[test]
fn staging_example_is_promoted_with_caveats_and_writes_the_contract() {
    let dir = TempDir::new("staging");
    let (json, report) = (dir.path("s.json"), dir.path("r.md"));
    let out = ramp(&[
        "simulate",
        &staging(),
        "--json",
        &arg(&json),
        "--report",
        &arg(&report),
    ]);
    assert_eq!(code(&out), 0, "stderr: {}", stderr(&out));

    let s = read_json(&json);
    assert_keys(
        &s,
        &[
            "deployment_id",
            "outcome",
            "stages",
            "rollback",
            "rehearsals",
            "sampling",
        ],
        "summary",
    );
    assert_eq!(s["deployment_id"], "phase8-canary-20251006");
    // A plan without flags is drawn aggregated per tick, and the summary says so.
    assert_eq!(s["sampling"]["method"], "aggregated");
    assert_eq!(num(&s["sampling"], "step_s"), 5.0);
    assert_eq!(s["outcome"], "promoted_with_caveats");
    assert!(s["rollback"].is_null(), "rollback: {}", s["rollback"]);

    assert_eq!(decisions(&s), ["proceed", "proceed", "proceed", "monitor"]);
    // The plan to follow ([next]): the production plan's five stages and one run of it,
    // simulated with the same seed.
    let next = &s["next"];
    assert_eq!(next["deployment_id"], "phase8-production", "{next:#}");
    assert_eq!(next["stages"].as_array().map(Vec::len), Some(5), "{next:#}");
    assert_eq!(next["preview"]["seed"], 1, "{next:#}");
    assert_eq!(next["preview"]["stages_run"], 5, "{next:#}");
    assert!(num(&next["preview"], "requests") > 1e7, "{next:#}");
    assert!(
        std::fs::read_to_string(&report)
            .unwrap()
            .contains("## Plan to follow"),
        "the report has no Plan to follow section"
    );
    let plan = [
        (5.0, 3600.0),
        (25.0, 7200.0),
        (50.0, 14400.0),
        (100.0, 86400.0),
    ];
    for (i, (st, (weight, planned))) in stages(&s).iter().zip(plan).enumerate() {
        let what = format!("stage {}", i + 1);
        assert_keys(
            st,
            &[
                "index",
                "weight",
                "planned_duration_s",
                "elapsed_s",
                "decision",
                "confidence",
                "metrics",
                "gates",
                "checkpoints",
            ],
            &what,
        );
        assert_eq!(st["index"].as_u64(), Some(i as u64 + 1), "{what}");
        assert_eq!(num(st, "weight"), weight, "{what}");
        assert_eq!(num(st, "planned_duration_s"), planned, "{what}");
        assert_eq!(num(st, "elapsed_s"), planned, "{what}: ran to its end");
        assert!(st["confidence"].is_string(), "{what}: confidence");
        assert_metrics(&st["metrics"], &format!("{what} metrics"));
        let gates = st["gates"].as_array().expect("gates is an array");
        assert_eq!(gates.len(), 5, "{what}: the five default gates");
        for g in gates {
            assert_gate(g, &format!("{what} gate"));
        }
        let checkpoints = st["checkpoints"].as_array().expect("checkpoints array");
        assert!(!checkpoints.is_empty(), "{what}: no checkpoints");
        for cp in checkpoints {
            assert_metrics(&cp["metrics"], &format!("{what} checkpoint"));
        }
    }
    // Stage 4's caveat is the P99 warn level; nothing failed anywhere.
    let last_gates = stages(&s)[3]["gates"].as_array().unwrap();
    assert!(
        last_gates
            .iter()
            .any(|g| g["metric"] == "p99_ms" && g["status"] == "warn"),
        "stage 4 gates: {last_gates:?}"
    );
    assert!(
        stages(&s)
            .iter()
            .flat_map(|st| st["gates"].as_array().unwrap())
            .all(|g| g["status"] != "fail"),
        "a gate failed"
    );

    let rehearsals = s["rehearsals"].as_array().expect("rehearsals is an array");
    assert_eq!(rehearsals.len(), 1);
    let r = &rehearsals[0];
    assert_keys(r, &["name", "outcome"], "rehearsal");
    assert_recovery(r, "rehearsal");
    assert_eq!(r["name"], "Simulated P95 breach");
    assert_eq!(r["outcome"], "rolled_back");
    assert_eq!(num(r, "fault_onset_s"), 12.0 * 3600.0);
    let total = num(r, "total_recovery_s");
    assert!(0.0 < total && total < 120.0, "total_recovery_s {total}");
    let detect = num(r, "detection_s") - num(r, "fault_onset_s");
    assert!(
        (1.0..=30.0).contains(&detect),
        "detection {detect} s after onset"
    );

    let md = std::fs::read_to_string(&report).expect("the report was written");
    assert!(
        md.starts_with("# "),
        "report title: {}",
        &md[..80.min(md.len())]
    );
    assert!(md.contains("phase8-canary-20251006"));
    let headings: Vec<String> = md
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(str::to_lowercase)
        .collect();
    for section in [
        "executive summary",
        "deployment strategy",
        "stage 1",
        "stage 4",
        "summary against baseline",
        "feature-specific performance",
        "rollback scenarios",
        "decision matrix",
        "final verdict",
    ] {
        assert!(
            headings.iter().any(|h| h.contains(section)),
            "no {section:?} heading in {headings:?}"
        );
    }
    assert!(md.contains("encryption") && md.contains("authentication"));
    assert!(md.to_uppercase().contains("WITH CAVEATS"));

    let text = stdout(&out);
    assert!(text.contains("SLO MONITORING"), "stdout: {text}");
    assert!(text.contains("Progress:"), "stdout: {text}");
    assert!(text.contains("PROCEED") && text.contains("MONITOR"));
    // A panel at each stage end and at each change, a line for every other checkpoint:
    // 4 + 4 + 4 + 24 checkpoints in all, far fewer panels (issue 17: 36 panels were a flood).
    let panels = text.matches("SLO MONITORING").count();
    let lines = text
        .lines()
        .filter(|l| l.starts_with("[T+") && l.contains(" · gates "))
        .count();
    assert_eq!(
        panels + lines,
        36,
        "one panel or line per checkpoint: {text}"
    );
    assert!((4..=12).contains(&panels), "{panels} panels: {text}");
    assert!(
        text.contains("--all-panels"),
        "the lines say how to see every panel"
    );
    let outcome = text
        .find("Outcome: promoted_with_caveats")
        .unwrap_or_else(|| panic!("no outcome line in: {text}"));
    assert!(
        outcome > text.rfind("SLO MONITORING").unwrap(),
        "the outcome line comes after the last panel"
    );
}

#[test]
fn error_spike_in_stage_2_rolls_back_with_exit_3() {
    let dir = TempDir::new("spike");
    let plan = write_plan(&dir, "spike.toml", &[], ERROR_SPIKE);
    let json = dir.path("s.json");
    let out = ramp(&["simulate", &arg(&plan), "-q", "--json", &arg(&json)]);
    assert_eq!(code(&out), 3, "stderr: {}", stderr(&out));

    let text = stdout(&out);
    assert!(!text.contains("SLO MONITORING"), "-q prints panels: {text}");
    assert!(text.contains("Outcome: rolled_back"), "stdout: {text}");

    let s = read_json(&json);
    assert_eq!(s["outcome"], "rolled_back");
    assert_eq!(decisions(&s), ["proceed", "rollback"]);
    let rb = &s["rollback"];
    assert_recovery(rb, "rollback");
    assert_eq!(rb["stage"].as_u64(), Some(2), "rollback: {rb}");
    assert_eq!(num(rb, "fault_onset_s"), 5400.0);
    assert!(num(rb, "detection_s") > 5400.0, "rollback: {rb}");
    assert!(
        rb["reason"].as_str().unwrap().contains("error_rate"),
        "rollback: {rb}"
    );
    assert!(
        stages(&s).iter().all(|st| num(st, "weight") < 100.0),
        "reached 100%"
    );
    assert!(s["rehearsals"].as_array().unwrap().is_empty());
}

#[test]
fn canary_without_traffic_halts_with_exit_4_and_never_promotes() {
    let dir = TempDir::new("notraffic");
    let plan = write_plan(
        &dir,
        "no-traffic.toml",
        &[("rps = 125\n", "rps = 125\ncanary_traffic = \"0%\"\n")],
        "",
    );
    let json = dir.path("s.json");
    let out = ramp(&["simulate", &arg(&plan), "--json", &arg(&json)]);
    assert_eq!(code(&out), 4, "stderr: {}", stderr(&out));
    assert!(stdout(&out).contains("Outcome: halted"));

    let s = read_json(&json);
    assert_eq!(s["outcome"], "halted");
    assert!(s["rollback"].is_null());
    let d = decisions(&s);
    assert!(!d.is_empty());
    assert_eq!(d.last(), Some(&"halt"), "decisions {d:?}");
    assert!(
        d.iter().all(|d| *d != "proceed" && *d != "monitor"),
        "decisions {d:?}"
    );
    assert!(
        stages(&s).iter().all(|st| num(st, "weight") < 100.0),
        "reached 100%"
    );
    assert!(
        stages(&s)
            .iter()
            .flat_map(|st| st["gates"].as_array().unwrap())
            .any(|g| g["scope"] == "canary" && g["status"] == "no_data"),
        "no canary gate reported no_data"
    );
}

// ---------------------------------------------------------------------------------------
// Invalid input: exit 2 with located messages; other failures: exit 1.
// ---------------------------------------------------------------------------------------

/// Errors of `tests/fixtures/invalid-plan.toml` other than its unknown key, as
/// (line, column, text the message must contain).
const SEMANTIC_ERRORS: &[(usize, usize, &str)] = &[
    (9, 30, "gates.p95_ms: warn 600 is not below max 500"),
    (10, 22, "gates.error_rate: max: \"-1%\" is negative"),
    (
        14,
        12,
        "stage 1: duration \"60x\" has unknown unit \"x\"; expected ms, s, m, h or d",
    ),
    (
        17,
        10,
        "stage 2: weight 10 is not greater than the previous stage's 25",
    ),
    (21, 10, "longer than the stage's duration 3m"),
    (21, 10, "stage 3: the last stage's weight is 50"),
];

const UNKNOWN_KEY_LINE: &str = "colour = \"blue\"";
const UNKNOWN_KEY_ERROR: (usize, usize, &str) = (5, 1, "unknown key `colour`");

/// Asserts that `err` has exactly one `file:line:column: error:` line per expected error.
fn assert_located(err: &str, file: &str, expected: &[(usize, usize, &str)]) {
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    for (line, col, text) in expected {
        let prefix = format!("{file}:{line}:{col}: error: ");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&prefix) && l.contains(text)),
            "no `{prefix}…{text}…` in:\n{err}"
        );
    }
    assert_eq!(lines.len(), expected.len(), "stderr:\n{err}");
}

#[test]
fn broken_plan_reports_every_semantic_error_located() {
    // The fixture with its unknown key commented out (same lines and columns), so that the
    // semantic checks are exercised on their own here; the test below adds the unknown key.
    let dir = TempDir::new("broken");
    let text = std::fs::read_to_string(fixture("invalid-plan.toml")).unwrap();
    assert!(text.contains(UNKNOWN_KEY_LINE));
    let plan = dir.path("broken.toml");
    std::fs::write(&plan, text.replace(UNKNOWN_KEY_LINE, "# no unknown key")).unwrap();
    let file = arg(&plan);

    let validate = ramp(&["validate", &file]);
    assert_eq!(code(&validate), 2);
    assert_eq!(stdout(&validate), "");
    assert_located(&stderr(&validate), &file, SEMANTIC_ERRORS);

    let simulate = ramp(&["simulate", &file]);
    assert_eq!(code(&simulate), 2);
    assert_eq!(stdout(&simulate), "");
    assert_eq!(stderr(&simulate), stderr(&validate));
}

#[test]
fn unknown_key_is_reported_located_with_the_expected_keys() {
    let file = arg(&fixture("invalid-plan.toml"));
    for cmd in ["validate", "simulate"] {
        let out = ramp(&[cmd, &file]);
        assert_eq!(code(&out), 2, "{cmd}");
        assert_eq!(stdout(&out), "", "{cmd}");
        let err = stderr(&out);
        let (line, col, text) = UNKNOWN_KEY_ERROR;
        let prefix = format!("{file}:{line}:{col}: error: {text}");
        assert!(
            err.lines().any(|l| l.starts_with(&prefix)
                && l.contains("`id`")
                && l.contains("`environment`")),
            "{cmd}: no `{prefix}` line naming the expected keys in:\n{err}"
        );
    }
}

#[test]
fn broken_plan_reports_unknown_key_and_every_other_error_at_once() {
    let file = arg(&fixture("invalid-plan.toml"));
    let mut expected = vec![UNKNOWN_KEY_ERROR];
    expected.extend_from_slice(SEMANTIC_ERRORS);
    let out = ramp(&["validate", &file]);
    assert_eq!(code(&out), 2);
    assert_located(&stderr(&out), &file, &expected);
}

#[test]
fn validate_accepts_the_examples() {
    for example in [staging(), repo_file("examples/phase8-production.toml")] {
        let out = ramp(&["validate", &example]);
        assert_eq!(code(&out), 0, "{example}: {}", stderr(&out));
        assert!(stdout(&out).contains("ok"), "{}", stdout(&out));
        assert_eq!(stderr(&out), "");
    }
    let out = ramp(&["validate", &staging()]);
    let text = stdout(&out);
    assert!(
        text.contains("phase8-canary-20251006") && text.contains("4 stages"),
        "{text}"
    );
}

#[test]
fn missing_plan_file_exits_2_naming_it() {
    let dir = TempDir::new("missing");
    let missing = arg(&dir.path("no-such-plan.toml"));
    for cmd in ["validate", "simulate"] {
        let out = ramp(&[cmd, &missing]);
        assert_eq!(code(&out), 2, "{cmd}");
        let err = stderr(&out);
        assert!(
            err.contains(&missing) && err.contains("cannot read"),
            "{cmd}: {err}"
        );
    }
}

#[test]
fn bad_arguments_exit_2() {
    let plan = staging();
    for args in [
        vec!["simulate", &plan, "--bogus"],
        vec!["simulate", &plan, "--seed", "abc"],
        vec!["simulate", &plan, "--seed", "-1"],
        vec!["simulate"],
        vec!["validate"],
        vec!["launch", &plan],
        vec![],
    ] {
        let out = ramp(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("error"), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{args:?}");
    }
    let out = ramp(&["simulate", &plan, "--seed", "abc"]);
    assert!(stderr(&out).contains("--seed"), "{}", stderr(&out));
}

#[test]
fn simulate_without_a_simulation_model_exits_2() {
    let dir = TempDir::new("nosim");
    let plan = write_plan(&dir, "no-sim.toml", &[(SIMULATION, "")], "");
    let file = arg(&plan);
    assert_eq!(code(&ramp(&["validate", &file])), 0, "valid without one");

    let out = ramp(&["simulate", &file]);
    assert_eq!(code(&out), 2);
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(
        err.contains(&file) && err.contains("[simulation]"),
        "stderr: {err}"
    );
}

/// An output path that cannot be written is the user's input error: exit 2, said before any
/// work starts (it was exit 1 before issue 17, and still before the work). A missing
/// directory is created (`--report out/report.html` in a fresh clone), so the path that
/// cannot be written here runs through a file.
#[test]
fn unwritable_output_paths_exit_2_before_the_work() {
    let dir = TempDir::new("unwritable");
    let plan = arg(&write_plan(&dir, "plan.toml", &[], ""));
    let nowhere = dir.path("plan.toml").join("no/such/dir");
    for (flag, name) in [("--json", "s.json"), ("--report", "r.md")] {
        let target = arg(&nowhere.join(name));
        let out = ramp(&["simulate", &plan, "-q", flag, &target]);
        assert_eq!(code(&out), 2, "{flag}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(&target), "{flag}: {err}");
        assert_eq!(stdout(&out), "", "{flag}: the simulation ran first");
        // The demo checks its outputs before it starts anything, too.
        let out = ramp(&["demo", "-q", flag, &target]);
        assert_eq!(code(&out), 2, "demo {flag}: {}", stderr(&out));
        assert!(stderr(&out).contains(&target), "demo {flag}");
    }
    // A directory where the file should be.
    let out = ramp(&["simulate", &plan, "-q", "--json", &arg(&dir.0)]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

// ---------------------------------------------------------------------------------------
// Determinism: same seed, same bytes; another seed, same decisions.
// ---------------------------------------------------------------------------------------

struct Run {
    stdout: String,
    json: String,
    report: String,
}

fn run_staging(dir: &TempDir, seed: &str, tag: &str) -> Run {
    let (json, report) = (
        dir.path(&format!("{tag}.json")),
        dir.path(&format!("{tag}.md")),
    );
    let out = ramp(&[
        "simulate",
        &staging(),
        "--seed",
        seed,
        "--json",
        &arg(&json),
        "--report",
        &arg(&report),
    ]);
    assert_eq!(code(&out), 0, "seed {seed}: {}", stderr(&out));
    Run {
        stdout: stdout(&out),
        json: std::fs::read_to_string(json).unwrap(),
        report: std::fs::read_to_string(report).unwrap(),
    }
}

#[test]
fn same_seed_is_byte_identical_and_another_seed_keeps_the_decisions() {
    let dir = TempDir::new("seeds");
    let a = run_staging(&dir, "7", "a");
    let b = run_staging(&dir, "7", "b");
    assert!(a.json == b.json, "seed 7 gave two different JSON summaries");
    assert!(a.report == b.report, "seed 7 gave two different reports");
    assert!(a.stdout == b.stdout, "seed 7 printed two different outputs");

    let c = run_staging(&dir, "8", "c");
    let (sa, sc): (Value, Value) = (
        serde_json::from_str(&a.json).unwrap(),
        serde_json::from_str(&c.json).unwrap(),
    );
    // Not just the `seed` field: the measurements differ.
    assert!(
        sa["stages"] != sc["stages"],
        "seeds 7 and 8 measured the same stages"
    );
    assert!(
        sa["rehearsals"] != sc["rehearsals"],
        "seeds 7 and 8 measured the same rehearsal"
    );
    assert_eq!(sa["outcome"], sc["outcome"]);
    assert_eq!(decisions(&sa), decisions(&sc));
    assert!(
        a.stdout.contains("(sampling: aggregated per 5 s)"),
        "{}",
        a.stdout
    );
    let rehearsal_outcomes = |s: &Value| -> Vec<Value> {
        s["rehearsals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["outcome"].clone())
            .collect()
    };
    assert_eq!(rehearsal_outcomes(&sa), rehearsal_outcomes(&sc));
    // The stage-1 canary's p99 rests on about 22,000 requests (5% of 125 per second for an
    // hour): from seed to seed it moves by about 2.3% (one standard deviation), so two seeds
    // differ by more than 5% about one time in twenty; 10% is over three deviations of the
    // difference.
    for (x, y) in stages(&sa).iter().zip(stages(&sc)) {
        for metric in ["p50_ms", "p95_ms", "p99_ms"] {
            let (p, q) = (num(&x["metrics"], metric), num(&y["metrics"], metric));
            assert!(
                (p - q).abs() <= 0.10 * p,
                "stage {} {metric}: seed 7 {p}, seed 8 {q}",
                x["index"]
            );
        }
    }
}

#[test]
fn help_and_version_exit_0() {
    let out = ramp(&["--help"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    assert!(
        text.contains("validate") && text.contains("simulate"),
        "{text}"
    );

    let out = ramp(&["simulate", "--help"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    for flag in ["--seed", "--report", "--json", "--quiet", "PLAN"] {
        assert!(text.contains(flag), "no {flag} in: {text}");
    }

    let out = ramp(&["validate", "--help"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("PLAN"));

    let out = ramp(&["--version"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).starts_with("ramp "), "{}", stdout(&out));
}

#[test]
fn a_monte_carlo_study_counts_detections_and_false_rollbacks_deterministically() {
    let dir = TempDir::new("study");
    let plan = write_plan(&dir, "spike.toml", &[], ERROR_SPIKE);
    let run = |name: &str| {
        let json = dir.path(name);
        let report = dir.path(&format!("{name}.md"));
        let out = ramp(&[
            "simulate",
            &arg(&plan),
            "--runs",
            "6",
            "--seed",
            "3",
            "-q",
            "--json",
            &arg(&json),
            "--report",
            &arg(&report),
        ]);
        assert_eq!(code(&out), 0, "stderr: {}", stderr(&out));
        assert!(stdout(&out).contains("Monte Carlo study"));
        let md = std::fs::read_to_string(&report).unwrap();
        // Six of six is a share above 61% at 95% confidence, not "100%".
        assert!(md.contains("| rolled_back | 6 | > 60.9% at 95% |"), "{md}");
        assert!(md.contains("Sampling: aggregated per 5 s"), "{md}");
        (std::fs::read_to_string(&json).unwrap(), read_json(&json))
    };
    let (text, s) = run("a.json");
    assert_eq!(s["runs"].as_u64(), Some(6));
    assert_eq!(s["first_seed"].as_u64(), Some(3));
    assert_eq!(num(&s, "unfaulted_rollback_rate"), 0.0);
    assert_eq!(num(&s, "false_rollback_rate"), 0.0);
    assert_eq!(num(&s, "fault_detection_rate"), 1.0);
    // Every rate carries its 95% Wilson interval: 0 of 6 is below 31%.
    let false_rollbacks = &s["false_rollbacks"];
    assert_eq!(false_rollbacks["count"].as_u64(), Some(0));
    assert_eq!(false_rollbacks["runs"].as_u64(), Some(6));
    assert!((num(false_rollbacks, "high") - 0.3903).abs() < 1e-3);
    assert!((num(&s["fault_detections"], "low") - 0.6097).abs() < 1e-3);
    assert_eq!(s["sampling"]["method"], "aggregated");
    let median = num(&s, "median_fault_detection_s");
    assert!(median > 0.0 && median < 300.0, "median detection {median}");
    // Runs are spread over threads, yet the study is the same every time.
    let (again, _) = run("b.json");
    assert_eq!(text, again);
    // A run count out of range is invalid input.
    let out = ramp(&["simulate", &arg(&plan), "--runs", "0"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn a_study_with_a_stopping_rule_stops_at_the_first_look_below_the_target() {
    let dir = TempDir::new("until-ci");
    // A canary identical to stable: no false rollback is expected, and with none the
    // interval's upper end, 3.84 / (n + 3.84), is below 5% from 74 runs on: the first look
    // after that is at 80.
    let plan = write_plan(
        &dir,
        "clean.toml",
        &[(
            "duration = \"120m\"\ncheckpoint = \"30m\"",
            "duration = \"20m\"\ncheckpoint = \"10m\"",
        )],
        "",
    );
    let json = dir.path("s.json");
    let out = ramp(&[
        "simulate",
        &arg(&plan),
        "--runs",
        "300",
        "--until-ci",
        "5%",
        "-q",
        "--json",
        &arg(&json),
    ]);
    assert_eq!(code(&out), 0, "stderr: {}", stderr(&out));
    let s = read_json(&json);
    assert_eq!(s["false_rollbacks"]["count"].as_u64(), Some(0), "{s}");
    assert_eq!(s["runs"].as_u64(), Some(80), "{s}");
    assert_eq!(s["stopping"]["met"], true);
    assert_eq!(s["stopping"]["limit"].as_u64(), Some(300));
    let text = stdout(&out);
    assert!(text.contains("met after 80 runs"), "{text}");
    assert!(text.contains("< 4.6% at 95%"), "{text}");
    // The target must be a rate strictly between 0 and 1, and needs --runs.
    for bad in [
        ["--runs", "10", "--until-ci", "0"],
        ["--runs", "10", "--until-ci", "150%"],
    ] {
        let out = ramp(&["simulate", &arg(&plan), bad[0], bad[1], bad[2], bad[3]]);
        assert_eq!(code(&out), 2, "{bad:?}");
    }
    let out = ramp(&["simulate", &arg(&plan), "--until-ci", "5%"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn each_sampler_is_deterministic_and_the_summary_and_report_say_which_ran() {
    let dir = TempDir::new("samplers");
    let plan = write_plan(&dir, "spike.toml", &[], ERROR_SPIKE);
    let run = |sampler: &str, tag: &str| {
        let (json, report) = (
            dir.path(&format!("{tag}.json")),
            dir.path(&format!("{tag}.md")),
        );
        let out = ramp(&[
            "simulate",
            &arg(&plan),
            "--sampler",
            sampler,
            "-q",
            "--json",
            &arg(&json),
            "--report",
            &arg(&report),
        ]);
        assert_eq!(code(&out), 3, "{sampler}: {}", stderr(&out));
        (
            stdout(&out),
            std::fs::read_to_string(&json).unwrap(),
            std::fs::read_to_string(&report).unwrap(),
        )
    };
    let request = run("request", "r1");
    assert!(
        request == run("request", "r2"),
        "per request, same seed, other bytes"
    );
    let aggregated = run("auto", "a1");
    assert!(
        aggregated == run("auto", "a2"),
        "aggregated, same seed, other bytes"
    );
    // Forcing the default changes only the recorded reason.
    let forced = run("aggregated", "a3");
    let without_sampling = |text: &str| {
        let mut v: Value = serde_json::from_str(text).unwrap();
        v.as_object_mut().unwrap().remove("sampling");
        v
    };
    assert!(without_sampling(&forced.1) == without_sampling(&aggregated.1));
    assert!(
        request.1 != aggregated.1,
        "the samplers agree in distribution, not in bytes"
    );
    assert!(
        request.0.contains("(sampling: per request)"),
        "{}",
        request.0
    );
    let s: Value = serde_json::from_str(&request.1).unwrap();
    assert_eq!(s["sampling"]["method"], "per_request");
    assert!(s["sampling"]["step_s"].is_null());
    assert_eq!(
        s["sampling"]["reason"],
        "set on the command line (--sampler)"
    );
    assert!(
        aggregated
            .2
            .contains("**Sampling:** aggregated per 5 s (chosen automatically"),
        "{}",
        aggregated.2
    );
    // The plan can ask for a sampler too; the command line wins.
    let in_plan = write_plan(
        &dir,
        "in-plan.toml",
        &[("rps = 125\n", "rps = 125\nsampler = \"request\"\n")],
        ERROR_SPIKE,
    );
    let json = dir.path("p.json");
    let out = ramp(&["simulate", &arg(&in_plan), "-q", "--json", &arg(&json)]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_eq!(
        read_json(&json)["sampling"]["reason"],
        "set in the plan (simulation.sampler)"
    );
}

#[test]
fn the_aggregated_sampler_is_refused_where_it_cannot_simulate_and_bad_values_are_located() {
    let dir = TempDir::new("sampler-errors");
    // Flags are counted over simulated users: only the per-request sampler follows them.
    let flags = r#"
[flags.new-checkout]
variants = { on = true, off = false }
default_variant = "off"
on_variant = "on"
follow = "rollout"
"#;
    let plan = write_plan(&dir, "flags.toml", &[], flags);
    let out = ramp(&["simulate", &arg(&plan), "-q"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("(sampling: per request)"),
        "{}",
        stdout(&out)
    );
    let out = ramp(&["simulate", &arg(&plan), "--sampler", "aggregated"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("the aggregated sampler (set on the command line (--sampler)) cannot simulate this plan: its flags are counted over simulated users"),
        "{}",
        stderr(&out)
    );
    // An unknown sampler in the plan is a located plan error.
    let bad = write_plan(
        &dir,
        "bad.toml",
        &[("rps = 125\n", "rps = 125\nsampler = \"fast\"\n")],
        "",
    );
    let out = ramp(&["validate", &arg(&bad)]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains(":30:11: error: simulation.sampler: \"fast\" is not one of \"auto\", \"request\" or \"aggregated\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_rate_whose_counts_would_lose_precision_is_refused_with_the_limit_named() {
    let dir = TempDir::new("huge-rate");
    // Four hours of stages plus an hour at 1e12 requests per second is 1.8e16 requests:
    // beyond 2^53, where a count held in a double is no longer exact.
    let plan = write_plan(&dir, "huge.toml", &[("rps = 125\n", "rps = 1e12\n")], "");
    let out = ramp(&["validate", &arg(&plan)]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains(":29:7: error: simulation.rps: 1000000000000 requests per second over 4h of stages and an hour of rollback and rehearsal could count 1.800e16 requests, above the limit of 2^53 = 9,007,199,254,740,992 requests per simulated run"),
        "{err}"
    );
    assert!(
        err.contains("expected at most 500399958596 requests per second"),
        "{err}"
    );
    let out = ramp(&["simulate", &arg(&plan), "-q"]);
    assert_eq!(code(&out), 2);
    // Just below the limit is accepted.
    let fine = write_plan(&dir, "fine.toml", &[("rps = 125\n", "rps = 5e11\n")], "");
    let out = ramp(&["validate", &arg(&fine)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn ramp_proxy_refuses_an_open_admin_port_without_a_token() {
    let out = ramp(&[
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "0.0.0.0:0",
        "--stable",
        "127.0.0.1:1",
        "--canary",
        "127.0.0.1:2",
    ]);
    assert_eq!(code(&out), 2, "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains("admin_token_file` is required"),
        "stderr: {}",
        stderr(&out)
    );
    let help = ramp(&["proxy", "--help"]);
    assert_eq!(code(&help), 0);
    assert!(stdout(&help).contains("--sticky-header"));
}

/// Issue 12, point 7: a control API token shorter than the proxy's admin token minimum (16
/// characters) is refused with exit code 2 before anything starts. Fails on 63809fb, which
/// served the control API behind a 5-character token.
#[test]
fn a_short_control_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("short.token"), "abcde\n").unwrap();
    let plan = dir.path().join("plan.toml");
    std::fs::write(
        &plan,
        r#"[deployment]
id = "short-token"
service = "svc"
environment = "test"

[router]
admin = "http://127.0.0.1:9"

[control]
token_file = "short.token"

[gates]
window = "5s"
error_rate = { max = "5%" }

[[stages]]
weight = 100
duration = "10s"
"#,
    )
    .unwrap();
    let journal = dir.path().join("j.db");
    let out = ramp(&["run", &arg(&plan), "--journal", &arg(&journal)]);
    assert_eq!(code(&out), 2, "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("short.token"), "{err}");
    assert!(err.contains("5 characters; at least 16"), "{err}");
    assert!(!journal.exists(), "nothing was journaled");
}

/// `[next]` names the plan that follows: a file that is missing or not a plan is an input
/// error before any work, naming both files (exit 2); `[next]` without `plan` is a located
/// plan error; a plan naming itself is refused.
#[test]
fn a_next_plan_that_cannot_be_loaded_is_refused_before_any_work() {
    let dir = TempDir::new("next");
    let plan = write_plan(
        &dir,
        "plan.toml",
        &[],
        "\n[next]\nplan = \"missing.toml\"\n",
    );
    for cmd in ["validate", "simulate"] {
        let out = ramp(&[cmd, &arg(&plan)]);
        assert_eq!(code(&out), 2, "{cmd}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("plan.toml: next.plan = \"missing.toml\"") && err.contains("missing.toml"),
            "{cmd}: {err}"
        );
    }
    std::fs::write(dir.path("bad.toml"), "[deployment]\nid = \"x\"\n").unwrap();
    let plan = write_plan(&dir, "plan2.toml", &[], "\n[next]\nplan = \"bad.toml\"\n");
    let out = ramp(&["validate", &arg(&plan)]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("bad.toml"), "{}", stderr(&out));
    let plan = write_plan(&dir, "plan3.toml", &[], "\n[next]\n");
    let out = ramp(&["validate", &arg(&plan)]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("[next]"), "{}", stderr(&out));
    let plan = write_plan(&dir, "plan4.toml", &[], "\n[next]\nplan = \"plan4.toml\"\n");
    let out = ramp(&["validate", &arg(&plan)]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("names this plan itself"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn run_refuses_a_sqlite_journal_for_a_plan_whose_journal_is_in_etcd() {
    // Nothing is contacted: the refusal comes before etcd, the router or the control API.
    let dir = TempDir::new("journal-and-store");
    let plan = dir.path("plan.toml");
    std::fs::write(
        &plan,
        "[deployment]\nid = \"svc\"\nservice = \"svc\"\nenvironment = \"staging\"\n\n[[stages]]\nweight = 100\nduration = \"10s\"\n\n[router]\nadmin = \"http://127.0.0.1:9\"\n\n[store]\netcd = [\"http://127.0.0.1:9\"]\n",
    )
    .unwrap();
    let file = arg(&plan);
    let out = ramp(&["run", &file, "--journal", "elsewhere.db"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("--journal elsewhere.db"), "{err}");
    assert!(err.contains("[store]"), "{err}");
}
