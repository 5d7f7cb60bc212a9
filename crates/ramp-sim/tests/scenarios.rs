//! Simulation scenarios as data: every `scenarios/*.toml` is a plan (inline as `[plan]`, or a
//! path as `plan = "…"`) plus the outcome it must produce, checked under fixed seeds by one
//! `check()` helper. Engine decisions are asserted exactly; timings, which depend on the
//! random traffic, within ranges.

use ramp_core::summary::Summary;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A scenario file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    /// What the scenario shows, for failure messages.
    description: String,
    /// Seeds to run; every one must meet the expectations.
    seeds: Vec<u64>,
    /// A plan file relative to the scenario, or an inline plan table.
    plan: toml::Value,
    /// What must come out.
    expect: Expect,
}

/// Expected outcome of a scenario.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// The summary's `outcome`.
    outcome: String,
    /// Every stage's decision, in order.
    decisions: Vec<String>,
    /// `rollback.stage`, when a rollback is expected.
    rollback_stage: Option<usize>,
    /// Bounds on `rollback.detection_s − rollback.fault_onset_s`.
    detection_after_onset_s: Option<[f64; 2]>,
    /// Bounds on `rollback.total_recovery_s`.
    total_recovery_s: Option<[f64; 2]>,
    /// Each rehearsal's outcome, in order.
    rehearsals: Option<Vec<String>>,
    /// Bounds on each rehearsal's detection delay after onset.
    rehearsal_detection_after_onset_s: Option<[f64; 2]>,
    /// Bounds on each rehearsal's total recovery.
    rehearsal_total_recovery_s: Option<[f64; 2]>,
    /// How many flag counts `summary.flags` holds (one per flag per stage that ended), for
    /// plans with flags.
    flag_records: Option<usize>,
    /// Largest gap, in percentage points, allowed between each flag count's on-users share
    /// of the simulated population and the flag's weight.
    flag_on_users_within_pp: Option<f64>,
    /// Per flag key, the weight (percent) each count reports, in stage order: exact, since the
    /// weight in force at a stage's end is the plan's (a stage weight or a schedule step).
    flag_weights: Option<std::collections::BTreeMap<String, Vec<f64>>>,
    /// Each count's on-users equal, exactly, the users of the population whose bucket for the
    /// flag's salt is below the reported weight (every user is seen after each change).
    flag_on_users_exact: Option<bool>,
}

fn within(what: &str, v: Option<f64>, range: Option<[f64; 2]>, errs: &mut Vec<String>) {
    if let Some([lo, hi]) = range {
        match v {
            Some(v) if v >= lo && v <= hi => {}
            other => errs.push(format!("{what} = {other:?}, expected within [{lo}, {hi}]")),
        }
    }
}

/// Runs one scenario under each of its seeds and returns what did not match.
fn check(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let sc: Scenario = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let plan = match &sc.plan {
        toml::Value::String(rel) => {
            let p = path.parent().unwrap().join(rel);
            ramp_core::load_plan(&p).unwrap_or_else(|e| panic!("{e}"))
        }
        toml::Value::Table(t) => {
            let src = toml::to_string(t).unwrap();
            ramp_core::parse_plan(&src, &format!("{}#plan", path.display()))
                .unwrap_or_else(|e| panic!("{e}"))
        }
        other => panic!(
            "{}: plan must be a path or a table, not {other}",
            path.display()
        ),
    };
    let plan = Arc::new(plan);
    let mut errs = Vec::new();
    for &seed in &sc.seeds {
        let s: Summary = ramp_sim::simulate(Arc::clone(&plan), seed, &mut |_| {}).unwrap();
        let mut e = Vec::new();
        let e_ = &mut e;
        if s.outcome.key() != sc.expect.outcome {
            e_.push(format!(
                "outcome {} != {}",
                s.outcome.key(),
                sc.expect.outcome
            ));
        }
        let decisions: Vec<String> = s
            .stages
            .iter()
            .map(|st| st.decision.map(|d| d.key().to_string()).unwrap_or_default())
            .collect();
        if decisions != sc.expect.decisions {
            e_.push(format!(
                "decisions {decisions:?} != {:?}",
                sc.expect.decisions
            ));
        }
        if let Some(stage) = sc.expect.rollback_stage {
            let got = s.rollback.as_ref().map(|r| r.stage);
            if got != Some(stage) {
                e_.push(format!("rollback stage {got:?} != {stage}"));
            }
        }
        let rb = s.rollback.as_ref();
        within(
            "detection after onset",
            rb.and_then(|r| r.fault_onset_s.map(|o| r.detection_s - o)),
            sc.expect.detection_after_onset_s,
            e_,
        );
        within(
            "total recovery",
            rb.and_then(|r| r.total_recovery_s),
            sc.expect.total_recovery_s,
            e_,
        );
        if let Some(want) = &sc.expect.rehearsals {
            let got: Vec<&str> = s.rehearsals.iter().map(|r| r.outcome.key()).collect();
            if got != want.iter().map(String::as_str).collect::<Vec<_>>() {
                e_.push(format!("rehearsals {got:?} != {want:?}"));
            }
        }
        for r in &s.rehearsals {
            within(
                "rehearsal detection after onset",
                r.detection_s.map(|d| d - r.fault_onset_s),
                sc.expect.rehearsal_detection_after_onset_s,
                e_,
            );
            within(
                "rehearsal total recovery",
                r.total_recovery_s,
                sc.expect.rehearsal_total_recovery_s,
                e_,
            );
        }
        if let Some(n) = sc.expect.flag_records {
            if s.flags.len() != n {
                e_.push(format!("{} flag counts != {n}", s.flags.len()));
            }
        }
        let users = plan
            .simulation
            .as_ref()
            .map_or(ramp_sim::DEFAULT_POPULATION, |sim| sim.users);
        if let Some(want) = &sc.expect.flag_weights {
            for (key, weights) in want {
                let got: Vec<f64> = s
                    .flags
                    .iter()
                    .filter(|f| &f.key == key)
                    .map(|f| f.weight)
                    .collect();
                if &got != weights {
                    e_.push(format!("flag {key} weights {got:?} != {weights:?}"));
                }
            }
        }
        if sc.expect.flag_on_users_exact == Some(true) {
            for f in &s.flags {
                let salt = plan.flags.get(&f.key).map_or("", |fl| fl.salt());
                let bp = (f.weight * 100.0).round() as u32;
                let inside = (0..users)
                    .filter(|&n| {
                        ramp_flags::in_rollout(
                            salt.as_bytes(),
                            ramp_sim::targeting_key(n).as_bytes(),
                            bp,
                        )
                    })
                    .count() as u64;
                if f.on_users != inside {
                    e_.push(format!(
                        "stage {} flag {}: on for {} users, but {inside} of {users} are below {}%",
                        f.stage, f.key, f.on_users, f.weight
                    ));
                }
            }
        }
        if let Some(pp) = sc.expect.flag_on_users_within_pp {
            let population = f64::from(users);
            for f in &s.flags {
                let share = f.on_users as f64 / population * 100.0;
                if (share - f.weight).abs() > pp {
                    e_.push(format!(
                        "stage {} flag {}: on for {} users ({share:.1}%), weight {}%",
                        f.stage, f.key, f.on_users, f.weight
                    ));
                }
            }
        }
        for x in e {
            errs.push(format!("{} (seed {seed}): {x}", path.display()));
        }
    }
    if !errs.is_empty() {
        errs.insert(0, format!("{}: {}", path.display(), sc.description));
    }
    errs
}

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_scenario_meets_its_expectations() {
    let files = scenario_files();
    assert!(files.len() >= 7, "scenarios/ holds {} files", files.len());
    let mut failures = Vec::new();
    for f in &files {
        failures.extend(check(f));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
