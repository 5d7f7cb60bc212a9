//! Broken plans: every error is reported at once, each located at the offending value with
//! what was expected. Each error kind the plan format promises to reject has a test here.

use ramp_core::{load_plan, parse_plan, PlanErrors};
use std::path::Path;

/// The head of a valid plan; tests append stages and sections to it.
const HEAD: &str = "[deployment]\nid = \"d1\"\nservice = \"svc\"\nenvironment = \"staging\"\n";

/// One valid final stage, for tests about other sections (it starts at line 6 after HEAD).
const LAST: &str = "\n[[stages]]\nweight = 100\nduration = \"1h\"\n";

/// Parses text that must be invalid and returns its errors.
fn errors_of(src: &str) -> PlanErrors {
    match parse_plan(src, "plan.toml") {
        Ok(plan) => panic!("expected errors, got a plan: {plan:#?}\n--- plan ---\n{src}"),
        Err(e) => e,
    }
}

/// Asserts exactly these errors, in this order: (line, column, a part of the message).
fn assert_errors(src: &str, expected: &[(usize, usize, &str)]) {
    let errors = errors_of(src);
    let got: Vec<(usize, usize, &str)> = errors
        .0
        .iter()
        .map(|e| (e.line, e.column, e.message.as_str()))
        .collect();
    assert_eq!(
        got.len(),
        expected.len(),
        "wrong number of errors:\n{errors}--- plan ---\n{src}"
    );
    for (g, e) in got.iter().zip(expected) {
        assert_eq!(
            (g.0, g.1),
            (e.0, e.1),
            "wrong place for {:?}:\n{errors}",
            g.2
        );
        assert!(
            g.2.contains(e.2),
            "message {:?} lacks {:?}:\n{errors}",
            g.2,
            e.2
        );
    }
}

#[test]
fn a_plan_with_many_errors_reports_all_of_them_in_file_order() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans/many_errors.toml");
    let src = std::fs::read_to_string(&path).unwrap();
    assert_errors(
        &src,
        &[
            (2, 1, "[deployment]: missing required key `environment`"),
            (3, 6, "deployment.id: \"phase8 canary\" contains ' '"),
            (4, 11, "deployment.service: must not be empty"),
            (7, 10, "baseline.p95_ms: -1 is negative"),
            (8, 14, "baseline.error_rate: \"120%\" is out of range"),
            (11, 18, "gates.evaluate_every: must be longer than 0"),
            (13, 15, "gates.min_samples: expected a whole number of at least 1, found 0.5"),
            (14, 37, "gates.p50_ms: has both max and min"),
            (15, 26, "gates.p95_ms: max: -5 is negative"),
            (16, 38, "gates.p99_ms: warn 1000 is not below max 900; a warn level must be on the safe side of the fail level"),
            (17, 26, "gates.error_rate: max: \"150%\" is above 100%"),
            (18, 18, "gates.throughput_rps: missing a fail level"),
            (18, 39, "scope \"everyone\" is not one of \"canary\", \"stable\" or \"service\""),
            (22, 12, "stage 1: duration: duration \"60 minutes\""),
            (26, 10, "stage 2: weight 20 is not greater than the previous stage's 25; weights must strictly increase"),
            (28, 14, "stage 2: checkpoint 3h is longer than the stage's duration 2h"),
            (29, 38, "stage 2: gates.p95_ms: window 3h is longer than the stage's duration 2h"),
            (32, 10, "stage 3: weight 150 is outside (0, 100]"),
            (32, 10, "stage 3: the 2h window of the p50_ms, p95_ms, p99_ms, error_rate, throughput_rps gates (inherited from [gates]) is longer than the stage's duration 1h"),
            (36, 10, "stage 4: the last stage's weight is 50; the last stage must be 100"),
            (37, 12, "stage 4: duration: duration \"1hr\" has unknown unit \"hr\""),
            (39, 1, "rehearsals: a rehearsal runs in the simulator; expected a [simulation] section"),
            (42, 66, "rehearsal 1: fault: has both add_latency and error_rate"),
        ],
    );
}

#[test]
fn errors_display_as_file_line_column_lines() {
    let errors = errors_of(&format!(
        "{HEAD}\n[[stages]]\nweight = 50\nduration = \"1h\"\n"
    ));
    assert_eq!(
        errors.to_string(),
        "plan.toml:7:10: error: stage 1: the last stage's weight is 50; the last stage must be 100 so that the rollout ends fully promoted\n"
    );
}

#[test]
fn unknown_keys_are_named_with_the_expected_keys() {
    // Top level.
    let e = errors_of(&format!("{HEAD}{LAST}\n[router]\nkind = \"proxy\"\n"));
    assert_eq!((e.0.len(), e.0[0].line, e.0[0].column), (1, 10, 2));
    let m = &e.0[0].message;
    assert!(m.starts_with("unknown key `router`"), "{m}");
    assert!(
        m.contains("`deployment`") && m.contains("`rehearsals`"),
        "{m}"
    );
    // Inside a stage's inline gate table.
    let e = errors_of(&format!(
        "{HEAD}{LAST}gates.p95_ms = {{ max = 450, maxx = 500 }}\n"
    ));
    assert_eq!((e.0.len(), e.0[0].line, e.0[0].column), (1, 9, 29));
    let m = &e.0[0].message;
    assert!(
        m.starts_with("unknown key `maxx`") && m.contains("`warn`"),
        "{m}"
    );
    // A metric that does not exist.
    let e = errors_of(&format!("{HEAD}{LAST}\n[gates]\np90_ms = {{ max = 1 }}\n"));
    assert_eq!((e.0[0].line, e.0[0].column), (11, 1));
    assert!(e.0[0].message.contains("`p95_ms`"), "{}", e.0[0].message);
    // `at` belongs to the rehearsal, not to its fault.
    let e = errors_of(&format!(
        "{HEAD}{LAST}\n[simulation]\nrps = 1\nstable = {{ p50_ms = 1, p95_ms = 2, p99_ms = 3, error_rate = 0 }}\n\n[[rehearsals]]\nname = \"r\"\nat = \"1m\"\nfault = {{ cohort = \"canary\", at = \"1m\", error_rate = \"5%\" }}\n"
    ));
    assert_eq!((e.0[0].line, e.0[0].column), (17, 30));
    assert!(
        e.0[0].message.starts_with("unknown key `at`"),
        "{}",
        e.0[0].message
    );
}

#[test]
fn syntax_and_type_errors_are_located() {
    let e = errors_of("[deployment\nid = \"x\"\n");
    assert_eq!((e.0.len(), e.0[0].line, e.0[0].column), (1, 1, 12));
    let e = errors_of(&format!(
        "{HEAD}\n[[stages]]\nweight = \"5%\"\nduration = \"1h\"\n"
    ));
    assert_eq!((e.0.len(), e.0[0].line, e.0[0].column), (1, 7, 10));
    assert!(
        e.0[0].message.contains("expected a number"),
        "{}",
        e.0[0].message
    );
    let e = errors_of(&format!("{HEAD}id = \"again\"\n{LAST}"));
    assert_eq!((e.0[0].line, e.0[0].column), (5, 1));
    assert!(
        e.0[0].message.contains("duplicate key"),
        "{}",
        e.0[0].message
    );
}

#[test]
fn missing_required_keys_are_located_at_their_table() {
    assert_errors(
        "[[stages]]\nweight = 100\nduration = \"1h\"\n",
        &[(1, 1, "missing required table [deployment]")],
    );
    assert_errors(
        "\n[deployment]\nservice = \"svc\"\n",
        &[
            (1, 1, "missing required [[stages]]"),
            (2, 1, "[deployment]: missing required key `id`"),
            (2, 1, "[deployment]: missing required key `environment`"),
        ],
    );
    assert_errors(
        &format!("{HEAD}\n[[stages]]\ncheckpoint = \"1m\"\n"),
        &[
            (6, 1, "stage 1: missing required key `weight`"),
            (6, 1, "stage 1: missing required key `duration`"),
        ],
    );
    assert_errors(
        &format!("stages = []\n{HEAD}"),
        &[(1, 10, "stages: expected at least one [[stages]] entry")],
    );
}

#[test]
fn weights_must_be_within_0_exclusive_and_100() {
    assert_errors(
        &format!(
            "{HEAD}\n[[stages]]\nweight = 0\nduration = \"1h\"\n\n[[stages]]\nweight = -5\nduration = \"1h\"\n\n[[stages]]\nweight = 0.001\nduration = \"1h\"\n\n[[stages]]\nweight = 100.5\nduration = \"1h\"\n{LAST}"
        ),
        &[
            (7, 10, "stage 1: weight 0 is outside (0, 100]"),
            (11, 10, "stage 2: weight -5 is outside (0, 100]"),
            (15, 10, "stage 3: weight 0.001 is finer than 0.01%"),
            (19, 10, "stage 4: weight 100.5 is outside (0, 100]"),
        ],
    );
}

#[test]
fn weights_must_strictly_increase() {
    assert_errors(
        &format!(
            "{HEAD}\n[[stages]]\nweight = 25\nduration = \"1h\"\n\n[[stages]]\nweight = 25\nduration = \"1h\"\n\n[[stages]]\nweight = 10\nduration = \"1h\"\n{LAST}"
        ),
        &[
            (11, 10, "stage 2: weight 25 is not greater than the previous stage's 25; weights must strictly increase"),
            (15, 10, "stage 3: weight 10 is not greater than the previous stage's 25"),
        ],
    );
}

#[test]
fn the_last_stage_must_be_100() {
    assert_errors(
        &format!("{HEAD}\n[[stages]]\nweight = 5\nduration = \"1h\"\n\n[[stages]]\nweight = 99.99\nduration = \"1h\"\n"),
        &[(11, 10, "stage 2: the last stage's weight is 99.99; the last stage must be 100")],
    );
}

#[test]
fn unparsable_durations_are_reported() {
    assert_errors(
        &format!(
            "{HEAD}\n[gates]\nwindow = \"5 min\"\nevaluate_every = 5\n\n[[stages]]\nweight = 100\nduration = \"\"\ncheckpoint = \"15mins\"\n"
        ),
        &[
            (7, 10, "gates.window: duration \"5 min\" has a number without a unit"),
            (8, 18, "gates.evaluate_every: expected a duration string with a unit such as \"5s\" or \"5m\", found the bare number 5"),
            (12, 12, "stage 1: duration: expected a duration such as"),
            (13, 14, "stage 1: checkpoint: duration \"15mins\" has unknown unit \"mins\""),
        ],
    );
}

#[test]
fn negative_thresholds_are_rejected() {
    assert_errors(
        &format!(
            "{HEAD}{LAST}\n[gates]\np50_ms = {{ max = -1 }}\nthroughput_rps = {{ min = -50 }}\np95_ms = {{ max = 500, warn = -400 }}\nerror_rate = {{ max = \"-1%\" }}\n"
        ),
        &[
            (11, 18, "gates.p50_ms: max: -1 is negative; a gate level must be 0 or more"),
            (12, 26, "gates.throughput_rps: min: -50 is negative"),
            (13, 30, "gates.p95_ms: warn: -400 is negative"),
            (14, 22, "gates.error_rate: max: \"-1%\" is negative"),
        ],
    );
}

#[test]
fn error_rate_thresholds_above_100_percent_are_rejected() {
    assert_errors(
        &format!(
            "{HEAD}{LAST}gates.error_rate = {{ max = 5 }}\n\n[gates]\nerror_rate = {{ max = \"1%\", warn = \"100.5%\" }}\n"
        ),
        &[
            (9, 28, "stage 1: gates.error_rate: max: 5 (= 500%) is above 100%"),
            (12, 35, "gates.error_rate: warn: \"100.5%\" is above 100%"),
        ],
    );
}

#[test]
fn a_warn_level_must_be_on_the_safe_side() {
    assert_errors(
        &format!(
            "{HEAD}{LAST}gates.error_rate = {{ max = \"0.8%\", warn = \"0.8%\" }}\ngates.p99_ms = {{ warn = 1200 }}\n\n[gates]\np99_ms = {{ max = 1000 }}\nthroughput_rps = {{ min = 50, warn = 40 }}\n"
        ),
        &[
            (9, 43, "stage 1: gates.error_rate: warn 0.8% is not below max 0.8%"),
            (10, 25, "stage 1: gates.p99_ms: warn 1200 is not below max 1000 (from [gates])"),
            (14, 37, "gates.throughput_rps: warn 40 is not above min 50; a warn level must be on the safe side of the fail level"),
        ],
    );
}

#[test]
fn a_window_longer_than_its_stage_is_rejected() {
    assert_errors(
        &format!(
            "{HEAD}\n[gates]\nwindow = \"30m\"\np95_ms = {{ max = 500 }}\np99_ms = {{ max = 900, window = \"2h\" }}\n\n[[stages]]\nweight = 10\nduration = \"20m\"\ngates.p95_ms = {{ max = 400, window = \"25m\" }}\n\n[[stages]]\nweight = 100\nduration = \"1h\"\n"
        ),
        &[
            // Stage 1: its own window is blamed where written; the inherited one at the weight.
            (12, 10, "stage 1: the 2h window of the p99_ms gate (inherited from [gates]) is longer than the stage's duration 20m"),
            (14, 38, "stage 1: gates.p95_ms: window 25m is longer than the stage's duration 20m"),
            (17, 10, "stage 2: the 2h window of the p99_ms gate (inherited from [gates]) is longer than the stage's duration 1h"),
        ],
    );
}

#[test]
fn evaluate_every_must_not_exceed_a_window() {
    // Written interval: blamed once, naming the shortest window.
    assert_errors(
        &format!("{HEAD}{LAST}\n[gates]\nevaluate_every = \"1m\"\np95_ms = {{ max = 500, window = \"30s\" }}\n"),
        &[(11, 18, "gates.evaluate_every 1m is longer than the 30s window of stage 1's p95_ms gate")],
    );
    // Default interval: the short window is blamed.
    assert_errors(
        &format!("{HEAD}{LAST}\n[gates]\nwindow = \"2s\"\np95_ms = {{ max = 500 }}\n"),
        &[(11, 10, "window 2s (used by stage 1's p95_ms gate) is shorter than evaluate_every (5s by default)")],
    );
}

#[test]
fn a_gate_needs_exactly_one_of_max_and_min() {
    assert_errors(
        &format!(
            "{HEAD}{LAST}gates.p50_ms = {{ warn = 100 }}\ngates.p95_ms = {{ max = 1, min = 0 }}\n\n[gates]\np99_ms = {{ warn = 800 }}\n"
        ),
        &[
            (9, 16, "stage 1: gates.p50_ms: [gates] has no p50_ms gate to inherit a fail level from; expected max or min here"),
            (10, 33, "stage 1: gates.p95_ms: has both max and min"),
            (13, 10, "gates.p99_ms: missing a fail level; expected max = … (a ceiling) or min = … (a floor)"),
        ],
    );
}

#[test]
fn a_checkpoint_longer_than_its_stage_is_rejected() {
    assert_errors(
        &format!("{HEAD}\n[[stages]]\nweight = 100\nduration = \"1h\"\ncheckpoint = \"61m\"\n"),
        &[(
            9,
            14,
            "stage 1: checkpoint 61m is longer than the stage's duration 1h",
        )],
    );
    assert_errors(
        &format!("{HEAD}\n[[stages]]\nweight = 100\nduration = \"1h\"\ncheckpoint = \"0s\"\n"),
        &[(9, 14, "stage 1: checkpoint: must be longer than 0")],
    );
}

#[test]
fn bad_simulation_values_are_all_reported() {
    let src = format!(
        r#"{HEAD}{LAST}
[simulation]
rps = 0
daily_profile = [1, 1, -1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
stable = {{ p50_ms = 150, p95_ms = 140, p99_ms = 720, error_rate = "100%" }}
features = [
  {{ name = "a", latency = "-95%" }},
  {{ name = "a", error_rate = "-0.1%" }},
  {{ name = " " }},
]
overhead = {{ latency = "+1%" }}
load = {{ contention = 1.5, stable_latency = "-2%" }}
canary_traffic = "110%"
router_delay = "soon"
"#
    );
    assert_errors(
        &src,
        &[
            (11, 7, "simulation.rps: 0 is not above 0"),
            (12, 24, "simulation.daily_profile hour 2: -1 is negative"),
            (13, 35, "simulation.stable: p95_ms 140 is not above p50_ms 150; expected 0 < p50_ms < p95_ms < p99_ms"),
            (13, 67, "simulation.stable.error_rate: \"100%\" is out of range; expected a rate of at least 0% and below 100%"),
            (19, 12, "simulation: overhead and features are both given"),
            (20, 23, "simulation.load.contention: 1.5 (= 150%) is out of range; expected a share between 0 and 1"),
            (20, 45, "simulation.load.stable_latency: \"-2%\" is out of range"),
            (21, 18, "simulation.canary_traffic: \"110%\" is out of range"),
            (22, 16, "simulation.router_delay: expected a duration such as"),
        ],
    );
    // The features are checked on their own when there is no overhead.
    let src = src.replace("overhead = { latency = \"+1%\" }\n", "");
    let errors = errors_of(&src);
    let features: Vec<String> = errors
        .0
        .iter()
        .filter(|e| e.message.starts_with("simulation feature"))
        .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
        .collect();
    assert_eq!(features.len(), 4, "{errors}");
    assert!(features[0].starts_with("15:27: simulation feature 1.latency: \"-95%\" is out of range; expected a relative change above -90%"), "{features:?}");
    assert!(
        features[1]
            .starts_with("16:12: simulation feature 2: name \"a\" is already used by feature 1"),
        "{features:?}"
    );
    assert!(
        features[2]
            .starts_with("16:30: simulation feature 2.error_rate: \"-0.1%\" is out of range"),
        "{features:?}"
    );
    assert!(
        features[3].starts_with("17:12: simulation feature 3: name: must not be empty"),
        "{features:?}"
    );
}

#[test]
fn simulation_needs_rps_and_a_stable_model() {
    assert_errors(
        &format!("{HEAD}{LAST}\n[simulation]\nstable = {{ p50_ms = 1, p95_ms = 2 }}\ndaily_profile = [1, 2]\n"),
        &[
            (10, 1, "[simulation]: missing required key `rps`"),
            (11, 10, "simulation.stable: missing required key `p99_ms`"),
            (11, 10, "simulation.stable: missing required key `error_rate`"),
            (12, 17, "simulation.daily_profile: has 2 values; expected exactly 24"),
        ],
    );
}

#[test]
fn faults_are_checked() {
    let src = format!(
        r#"{HEAD}{LAST}
[simulation]
rps = 10
stable = {{ p50_ms = 1, p95_ms = 2, p99_ms = 3, error_rate = 0 }}

[[simulation.faults]]
cohort = "everyone"
at = "2h"
add_latency = "100ms"
fraction = 0

[[simulation.faults]]
cohort = "canary"
at = "10m"
error_rate = "3%"
fraction = 0.5

[[simulation.faults]]
at = "10m"
duration = "0s"

[[simulation.faults]]
cohort = "stable"
at = "1h"
error_rate = "0%"
"#
    );
    assert_errors(
        &src,
        &[
            (15, 10, "simulation fault 1: cohort \"everyone\" is not one of \"canary\" or \"stable\""),
            (16, 6, "simulation fault 1: at 2h is not before the end of the plan (1h of stages)"),
            (18, 12, "simulation fault 1: fraction: 0 (= 0%) is out of range"),
            (24, 12, "simulation fault 2: fraction applies only to add_latency"),
            (26, 1, "simulation fault 3: missing required key `cohort`"),
            (26, 1, "simulation fault 3: has no effect; expected add_latency"),
            (28, 12, "simulation fault 3: duration: must be longer than 0"),
            (32, 6, "simulation fault 4: at 1h is not before the end of the plan"),
            (33, 14, "simulation fault 4: error_rate: \"0%\" is out of range; expected a rate above 0% and at most 100%"),
        ],
    );
}

#[test]
fn rehearsals_need_a_simulation_section() {
    assert_errors(
        &format!(
            "{HEAD}{LAST}\n[[rehearsals]]\nname = \"r\"\nat = \"30m\"\nfault = {{ cohort = \"canary\", error_rate = \"5%\" }}\n"
        ),
        &[(10, 1, "rehearsals: a rehearsal runs in the simulator; expected a [simulation] section")],
    );
}

#[test]
fn rehearsals_are_checked() {
    let src = format!(
        r#"{HEAD}{LAST}
[simulation]
rps = 10
stable = {{ p50_ms = 1, p95_ms = 2, p99_ms = 3, error_rate = 0 }}

[[rehearsals]]
name = "breach"
at = "61m"
fault = {{ cohort = "canary", add_latency = "800ms" }}
restore_tolerance = 0

[[rehearsals]]
name = "breach"
at = "30m"
target = "0s"

[[rehearsals]]
fault = {{ cohort = "canary", add_latency = "fast" }}
"#
    );
    assert_errors(
        &src,
        &[
            (16, 6, "rehearsal 1: at 61m is not before the end of the plan (1h of stages)"),
            (18, 21, "rehearsal 1: restore_tolerance: 0 (= 0%) is out of range; expected a rate above 0%"),
            (20, 1, "rehearsal 2: missing required key `fault`"),
            (21, 8, "rehearsal 2: name \"breach\" is already used by rehearsal 1"),
            (23, 10, "rehearsal 2: target: must be longer than 0"),
            (25, 1, "rehearsal 3: missing required key `name`"),
            (25, 1, "rehearsal 3: missing required key `at`"),
            (26, 44, "rehearsal 3: fault: add_latency: expected a duration such as"),
        ],
    );
}

#[test]
fn an_unreadable_file_is_one_error_at_1_1() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans/does-not-exist.toml");
    let e = load_plan(&path).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!((e.0[0].line, e.0[0].column), (1, 1));
    assert!(e.0[0].file.ends_with("does-not-exist.toml"));
    assert!(
        e.0[0].message.starts_with("cannot read the plan file: "),
        "{}",
        e.0[0].message
    );
    assert!(
        e.0[0].message.contains("No such file"),
        "{}",
        e.0[0].message
    );
}

#[test]
fn a_file_that_is_not_utf8_is_located_at_the_bad_byte() {
    let dir = std::env::temp_dir().join(format!("ramp-plan-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("latin1.toml");
    std::fs::write(&path, b"[deployment]\nid = \"caf\xe9\"\n").unwrap();
    let e = load_plan(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(e.0.len(), 1);
    assert_eq!((e.0[0].line, e.0[0].column), (2, 10));
    assert!(
        e.0[0].message.contains("not valid UTF-8"),
        "{}",
        e.0[0].message
    );
}
