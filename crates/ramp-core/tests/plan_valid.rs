//! The staging-like full plan parses into exactly the values the engine and simulator rely on:
//! weights in basis points, durations in milliseconds, merged gates and every default.

use ramp_core::{
    load_plan, parse_plan, Bound, Check, Cohort, Control, FaultEffect, Gate, Hook, HookAction,
    HookEvent, LoadModel, Metric, Plan, PlanTime, Probe, Router, Scope, Span,
};
use std::path::{Path, PathBuf};

/// Reads the fixture through `load_plan`, the path `ramp validate` takes.
fn full() -> Plan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans/valid_full.toml");
    match load_plan(&path) {
        Ok(plan) => plan,
        Err(e) => panic!("valid_full.toml should be valid:\n{e}"),
    }
}

/// A canary gate with the plan's default window and sample count.
fn gate(metric: Metric, bound: Bound, threshold: f64, warn: Option<f64>) -> Gate {
    Gate {
        metric,
        scope: if metric == Metric::ThroughputRps {
            Scope::Service
        } else {
            Scope::Canary
        },
        bound,
        threshold,
        warn,
        window: Span::from_mins(5),
        min_samples: 200,
    }
}

/// Compares floats parsed from percentages, which are not exact.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

/// Compares gate lists with a float tolerance on thresholds.
fn assert_gates(actual: &[Gate], expected: &[Gate]) {
    assert_eq!(actual.len(), expected.len(), "{actual:#?}");
    for (a, e) in actual.iter().zip(expected) {
        assert_eq!((a.metric, a.scope, a.bound), (e.metric, e.scope, e.bound));
        assert!(close(a.threshold, e.threshold), "{a:?} vs {e:?}");
        match (a.warn, e.warn) {
            (None, None) => {}
            (Some(x), Some(y)) => assert!(close(x, y), "{a:?} vs {e:?}"),
            _ => panic!("warn differs: {a:?} vs {e:?}"),
        }
        assert_eq!((a.window, a.min_samples), (e.window, e.min_samples));
    }
}

#[test]
fn deployment_and_baseline_are_read() {
    let plan = full();
    assert_eq!(plan.deployment.id, "phase8-canary-20251006");
    assert_eq!(plan.deployment.service, "phase8");
    assert_eq!(plan.deployment.environment, "staging");
    assert_eq!(
        plan.deployment.start.as_deref(),
        Some("2025-10-06T18:00:00Z")
    );
    assert_eq!(plan.deployment.start_second_of_day, 18 * 3600);
    let b = plan.baseline.expect("baseline");
    assert_eq!(b.p50_ms, Some(145.0));
    assert_eq!(b.p95_ms, Some(385.0));
    assert_eq!(b.p99_ms, Some(720.0));
    assert!(close(b.error_rate.unwrap(), 0.0028));
    assert_eq!(b.throughput_rps, Some(125.0));
}

#[test]
fn stages_have_basis_points_milliseconds_and_checkpoints() {
    let plan = full();
    let got: Vec<(u16, u64, u64)> = plan
        .stages
        .iter()
        .map(|s| (s.weight.basis_points(), s.duration.0, s.checkpoint.0))
        .collect();
    assert_eq!(
        got,
        vec![
            (500, 3_600_000, 900_000),
            (2_500, 7_200_000, 1_800_000),
            (5_000, 14_400_000, 3_600_000),
            (10_000, 86_400_000, 3_600_000),
        ]
    );
    assert_eq!(plan.total_duration(), Span(111_600_000));
    assert_eq!(
        plan.evaluate_every,
        Span::from_secs(5),
        "the default interval"
    );
}

#[test]
fn stage_gates_are_defaults_merged_with_overrides_in_metric_order() {
    let plan = full();
    let defaults = vec![
        gate(Metric::P50Ms, Bound::Max, 200.0, None),
        gate(Metric::P95Ms, Bound::Max, 500.0, None),
        gate(Metric::P99Ms, Bound::Max, 1000.0, None),
        gate(Metric::ErrorRate, Bound::Max, 0.01, None),
        gate(Metric::ThroughputRps, Bound::Min, 50.0, None),
    ];
    assert_gates(&plan.stages[0].gates, &defaults);
    assert_gates(&plan.stages[1].gates, &defaults);
    assert_gates(
        &plan.stages[2].gates,
        &[
            gate(Metric::P50Ms, Bound::Max, 200.0, None),
            gate(Metric::P95Ms, Bound::Max, 450.0, None),
            gate(Metric::P99Ms, Bound::Max, 900.0, None),
            gate(Metric::ErrorRate, Bound::Max, 0.008, None),
            gate(Metric::ThroughputRps, Bound::Min, 50.0, None),
        ],
    );
    assert_gates(
        &plan.stages[3].gates,
        &[
            gate(Metric::P50Ms, Bound::Max, 200.0, None),
            gate(Metric::P95Ms, Bound::Max, 500.0, None),
            gate(Metric::P99Ms, Bound::Max, 900.0, Some(800.0)),
            gate(Metric::ErrorRate, Bound::Max, 0.008, Some(0.005)),
            gate(Metric::ThroughputRps, Bound::Min, 50.0, None),
        ],
    );
}

#[test]
fn simulation_features_and_defaults_are_read() {
    let plan = full();
    let sim = plan.simulation.expect("simulation");
    assert_eq!(sim.rps, 125.0);
    assert_eq!(sim.daily_profile, None);
    assert_eq!(
        (sim.stable.p50_ms, sim.stable.p95_ms, sim.stable.p99_ms),
        (145.0, 385.0, 720.0)
    );
    assert!(close(sim.stable.error_rate, 0.0028));
    let features: Vec<(&str, f64, f64)> = sim
        .features
        .iter()
        .map(|f| (f.name.as_str(), f.latency, f.error_rate))
        .collect();
    let expected = [
        ("encryption", 0.035, 0.0),
        ("analytics persistence", 0.042, 0.0),
        ("gamification", 0.028, 0.0),
        ("authentication", 0.031, 0.0005),
    ];
    assert_eq!(features.len(), expected.len());
    for (f, e) in features.iter().zip(expected) {
        assert_eq!(f.0, e.0);
        assert!(close(f.1, e.1) && close(f.2, e.2), "{f:?} vs {e:?}");
    }
    assert_eq!(sim.load, LoadModel::default());
    assert!(sim.faults.is_empty());
    assert_eq!(sim.canary_traffic, 1.0);
    assert_eq!(sim.router_delay, Span::from_secs(1));
}

#[test]
fn rehearsal_fault_and_defaults_are_read() {
    let plan = full();
    assert_eq!(plan.rehearsals.len(), 1);
    let r = &plan.rehearsals[0];
    assert_eq!(r.name, "Simulated P95 breach");
    assert_eq!(r.fault.cohort, Cohort::Canary);
    assert_eq!(r.fault.at, PlanTime(12 * 3_600_000));
    assert_eq!(r.fault.duration, Some(Span::from_mins(10)));
    assert_eq!(
        r.fault.effect,
        FaultEffect::AddLatency {
            ms: 800.0,
            fraction: 0.5
        }
    );
    assert_eq!(r.target, Span::from_secs(120));
    assert_eq!(r.restore_window, Span::from_secs(10));
    assert!(close(r.restore_tolerance, 0.10));
}

#[test]
fn parse_plan_and_load_plan_agree() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans/valid_full.toml"),
    )
    .unwrap();
    assert_eq!(parse_plan(&text, "valid_full.toml").unwrap(), full());
}

#[test]
fn router_control_checks_hooks_and_approvals_are_read() {
    let plan = full();
    // The admin URL loses its trailing slash so that paths can be appended to it; file paths
    // are kept as written, for the binary to resolve against the plan's directory.
    assert_eq!(
        plan.router,
        Some(Router::Admin {
            url: "http://127.0.0.1:9901".into(),
            token_file: Some(PathBuf::from("admin.token")),
        })
    );
    assert_eq!(
        plan.control,
        Control {
            listen: Some("127.0.0.1:9911".parse().unwrap()),
            token_file: Some(PathBuf::from("control.token")),
            token_env: Some("RAMP_TOKEN".into()),
        }
    );
    assert_eq!(
        plan.checks,
        vec![
            Check {
                name: "API health".into(),
                probe: Probe::Http {
                    url: "http://127.0.0.1:9001/health".into(),
                    expect_status: 200,
                },
                timeout: Span::from_secs(2),
            },
            Check {
                name: "Database backup".into(),
                probe: Probe::Command {
                    argv: vec!["/usr/bin/pg_dump".into(), "-f".into(), "backup.sql".into()],
                },
                timeout: Span::from_mins(5),
            },
        ]
    );
    assert_eq!(
        plan.hooks,
        vec![
            Hook {
                name: "notify".into(),
                on: vec![
                    HookEvent::StageStart,
                    HookEvent::StageEnd,
                    HookEvent::Promotion,
                    HookEvent::Rollback
                ],
                action: HookAction::Post {
                    url: "http://127.0.0.1:9000/events".into()
                },
                timeout: Span::from_secs(5),
            },
            Hook {
                name: "page on rollback".into(),
                on: vec![HookEvent::Rollback],
                action: HookAction::Command {
                    argv: vec!["./page.sh".into(), "--team".into(), "phase8".into()],
                },
                timeout: Span::from_secs(10),
            },
        ]
    );
    let approvals: Vec<&[String]> = plan.stages.iter().map(|s| &s.approvals[..]).collect();
    assert_eq!(
        approvals,
        [
            &[][..],
            &["Engineering Manager".to_string(), "SRE Lead".to_string()][..],
            &[][..],
            &[][..],
        ]
    );
}

/// The head of a small valid plan for the live-run sections.
const HEAD: &str = "[deployment]\nid = \"d1\"\nservice = \"svc\"\nenvironment = \"staging\"\n";

/// Parses text that must be valid.
fn parse(src: &str) -> Plan {
    match parse_plan(src, "plan.toml") {
        Ok(plan) => plan,
        Err(e) => panic!("expected a valid plan:\n{e}--- plan ---\n{src}"),
    }
}

/// Fails on 63809fb, where `max_unobserved` was an unknown key: a written limit is read and
/// replaces the default for every stage; without it each stage gets the smaller of 5 minutes
/// and a quarter of its duration.
#[test]
fn max_unobserved_is_read_and_defaults_per_stage() {
    let stages = "\n[[stages]]\nweight = 50\nduration = \"10m\"\n\n[[stages]]\nweight = 100\nduration = \"1h\"\n";
    let written = parse(&format!(
        "{HEAD}\n[gates]\nmax_unobserved = \"90s\"\n{stages}"
    ));
    assert_eq!(written.max_unobserved, Some(Span::from_secs(90)));
    assert_eq!(written.max_unobserved_of(0), Span::from_secs(90));
    assert_eq!(written.max_unobserved_of(1), Span::from_secs(90));
    let default = parse(&format!("{HEAD}{stages}"));
    assert_eq!(default.max_unobserved, None);
    assert_eq!(default.max_unobserved_of(0), Span::from_secs(150));
    assert_eq!(default.max_unobserved_of(1), Span::from_mins(5));
}

#[test]
fn a_plan_without_live_sections_gets_their_defaults() {
    let plan = parse(&format!(
        "{HEAD}\n[[stages]]\nweight = 100\nduration = \"1h\"\n"
    ));
    assert_eq!(plan.router, None);
    assert_eq!(plan.control, Control::default());
    assert!(plan.checks.is_empty() && plan.hooks.is_empty());
    assert!(plan.stages[0].approvals.is_empty());
}

#[test]
fn the_embedded_router_and_the_live_defaults_are_read() {
    let plan = parse(&format!(
        r#"{HEAD}
[[stages]]
weight = 10
duration = "1h"
approvals = ["SRE Lead"]

[[stages]]
weight = 100
duration = "1h"
approvals = "Engineering Manager"

[router]
proxy_config = "conf/proxy.toml"

[control]
listen = "0.0.0.0:9911"
token_env = "_RAMP_TOKEN_2"

[[checks]]
name = "ready"
http = "http://[::1]:9001/ready?deep=1"
expect_status = 204

[[hooks]]
name = "audit"
on = ["promotion", "rollback"]
command = ["/usr/local/bin/audit", ""]
timeout = "1h"
"#
    ));
    // Approvals on the first stage gate the start of the rollout; a single name is a list of one.
    assert_eq!(plan.stages[0].approvals, ["SRE Lead"]);
    assert_eq!(plan.stages[1].approvals, ["Engineering Manager"]);
    assert_eq!(
        plan.router,
        Some(Router::Embedded {
            config: PathBuf::from("conf/proxy.toml")
        })
    );
    // A non-loopback address is accepted with a token.
    assert_eq!(plan.control.listen, Some("0.0.0.0:9911".parse().unwrap()));
    assert_eq!(plan.control.token_env.as_deref(), Some("_RAMP_TOKEN_2"));
    assert_eq!(plan.control.token_file, None);
    assert_eq!(
        plan.checks[0].probe,
        Probe::Http {
            url: "http://[::1]:9001/ready?deep=1".into(),
            expect_status: 204
        }
    );
    assert_eq!(plan.checks[0].timeout, Span::from_secs(10), "the default");
    let hook = &plan.hooks[0];
    assert_eq!(hook.on, [HookEvent::Promotion, HookEvent::Rollback]);
    // An empty argument is a real argument; only the program must be named.
    assert_eq!(
        hook.action,
        HookAction::Command {
            argv: vec!["/usr/local/bin/audit".into(), String::new()]
        }
    );
    assert_eq!(hook.timeout, Span::from_mins(60), "an hour is the limit");
}

#[test]
fn loopback_control_addresses_need_no_token() {
    for listen in [
        "127.0.0.1:9911",
        "127.0.0.2:0",
        "[::1]:9911",
        "[::ffff:127.0.0.1]:9911",
    ] {
        let plan = parse(&format!(
            "{HEAD}\n[[stages]]\nweight = 100\nduration = \"1h\"\n\n[control]\nlisten = \"{listen}\"\n"
        ));
        assert_eq!(plan.control.listen, Some(listen.parse().unwrap()));
    }
}
