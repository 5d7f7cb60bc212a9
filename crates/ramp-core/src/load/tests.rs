//! Tests of the plan loader as a whole: locating errors, the defaults of a minimal plan, and
//! plans whose errors span several sections.
//!
//! Tests of one section's rules sit with that section; the small valid plan and the helpers
//! that parse a plan which must be valid or invalid are here, shared by all of them.

use super::*;
use crate::plan::{Bound, Metric, Scope};
use crate::units::{Span, Weight};

/// A small valid plan; tests append sections or replace lines.
pub(super) const MINIMAL: &str = r#"[deployment]
id = "d1"
service = "svc"
environment = "staging"

[[stages]]
weight = 100
duration = "1h"
gates.throughput_rps = { min = 1 }
"#;

/// Parses text that must be valid.
pub(super) fn ok(src: &str) -> Plan {
    match parse_plan(src, "t.toml") {
        Ok(p) => p,
        Err(e) => panic!("expected a valid plan, got:\n{e}\n--- plan ---\n{src}"),
    }
}

/// Parses text that must be invalid; returns (line, column, message) triples.
pub(super) fn errs(src: &str) -> Vec<(usize, usize, String)> {
    match parse_plan(src, "t.toml") {
        Ok(_) => panic!("expected errors for:\n{src}"),
        Err(e) => {
            e.0.into_iter()
                .map(|e| (e.line, e.column, e.message))
                .collect()
        }
    }
}

#[test]
fn a_minimal_plan_gets_every_default() {
    let p = ok(MINIMAL);
    assert_eq!(p.evaluate_every, Span::from_secs(5));
    assert_eq!(p.baseline, None);
    assert_eq!(p.simulation, None);
    assert!(p.rehearsals.is_empty());
    assert_eq!(p.stages.len(), 1);
    let s = &p.stages[0];
    assert_eq!(s.weight, Weight::FULL);
    assert_eq!(s.duration, Span::from_mins(60));
    assert_eq!(s.checkpoint, Span::from_mins(15), "a quarter of the stage");
    // Only the stage's own gate, with every default filled in.
    assert_eq!(s.gates.len(), 1);
    let g = &s.gates[0];
    assert_eq!(
        (g.metric, g.scope, g.bound, g.threshold, g.warn),
        (Metric::ThroughputRps, Scope::Service, Bound::Min, 1.0, None)
    );
    assert_eq!((g.window, g.min_samples), (Span::from_mins(5), 100));
    assert_eq!(p.deployment.start, None);
    assert_eq!(p.deployment.start_second_of_day, 0);
}

#[test]
fn numbers_may_be_integers_or_floats() {
    let src = MINIMAL.replace("weight = 100", "weight = 100.0")
        + "[gates]\nmin_samples = 50.0\np95_ms = { max = 450.5 }\np50_ms = { max = 200 }\n";
    let p = ok(&src);
    let g = &p.stages[0].gates;
    assert_eq!(g[0].threshold, 200.0);
    assert_eq!(g[1].threshold, 450.5);
    assert_eq!(g[1].min_samples, 50);
    assert_eq!(p.stages[0].weight.basis_points(), 10_000);
}

#[test]
fn rates_are_percent_strings_or_bare_fractions() {
    let a = ok(&(MINIMAL.to_string() + "[gates]\nerror_rate = { max = \"1%\", warn = 0.005 }\n"));
    let g = &a.stages[0].gates[0];
    assert_eq!(g.metric, Metric::ErrorRate);
    assert!((g.threshold - 0.01).abs() < 1e-12);
    assert_eq!(g.warn, Some(0.005));
    let b = ok(&(MINIMAL.to_string() + "[baseline]\nerror_rate = 0.0028\n"));
    assert_eq!(b.baseline.unwrap().error_rate, Some(0.0028));
}

#[test]
fn a_wrong_type_and_an_unknown_key_are_reported_together() {
    let src = MINIMAL.replace("weight = 100", "weight = \"all\"\ncolour = \"blue\"")
        + "[gates]\np95_ms = { max = 500, warn = 600 }\n";
    let e = errs(&src);
    assert_eq!(
        e,
        [
            (7, 10, "stage 1: weight: expected a number, found the string \"all\"".to_string()),
            (8, 1, "unknown key `colour` in stage 1; expected one of `weight`, `duration`, `checkpoint`, `gates`, `approvals`".to_string()),
            (12, 30, "gates.p95_ms: warn 600 is not below max 500; a warn level must be on the safe side of the fail level".to_string()),
        ]
    );
}
