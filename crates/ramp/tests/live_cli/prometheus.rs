//! Issue 13: `ramp demo --metrics prometheus` judges the rollout from a real Prometheus
//! scraping the demo upstreams every second (the proxy only routes), with a query gate on the
//! upstreams' checkout success rate. It promotes an equal canary, rolls back a regression
//! within 10 s of Prometheus seeing it, and rolls back a canary whose checkouts fail while
//! every request still succeeds, which only the query gate sees.
//!
//! The demo breaks its canary 22 s after it starts, which is at most T+22 s of plan time (the
//! run's clock starts a little later); Prometheus sees it at its next scrape, within a second.

use super::support::Work;
use serde_json::Value;
use std::time::Duration;

/// When the demo breaks its canary, at the latest, in plan time (s).
const BREAK_AT_S: f64 = 22.0;

/// The most a scrape can lag behind what an upstream served (the scrape interval, s).
const SCRAPE_S: f64 = 1.0;

/// Runs `ramp demo --metrics prometheus` with `extra` flags; its exit code, summary, output
/// and working directory (its journal is `d.db`).
fn demo(label: &str, extra: &[&str]) -> (i32, Value, String, Work) {
    let w = Work::new(label);
    let mut args = vec![
        "demo",
        "--metrics",
        "prometheus",
        "-q",
        "--journal",
        "d.db",
        "--json",
        "d.json",
    ];
    args.extend_from_slice(extra);
    let out = w.ramp_timeout(&args, Duration::from_secs(120));
    let text = format!("{out}");
    assert!(
        out.code == 0 || out.code == 3,
        "the demo ended with {}: {text}",
        out.code
    );
    (out.code, w.json("d.json"), text, w)
}

/// The query gate's record in each stage the run reached.
fn checkout_gates(s: &Value) -> Vec<Value> {
    s["stages"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .filter_map(|st| st["queries"].as_array()?.first().cloned())
        .collect()
}

#[test]
fn the_demo_judged_from_prometheus_promotes_an_equal_canary() {
    let (code, s, out, w) = demo("prom-equal", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        matches!(
            s["outcome"].as_str(),
            Some("promoted" | "promoted_with_caveats")
        ),
        "{s:#}"
    );
    // Every stage judged the checkout gate on data, and it passed.
    let gates = checkout_gates(&s);
    assert_eq!(gates.len(), 4, "{s:#}");
    for g in &gates {
        assert_eq!(g["name"], "checkout_success", "{g:#}");
        assert_eq!(g["status"], "pass", "{g:#}");
        assert!(g["evaluations"].as_u64().unwrap_or(0) >= 5, "{g:#}");
    }
    // The latency gates state the bucket bounds the upstreams' histogram has.
    let stage1 = &s["stages"][0]["gates"];
    let p99 = stage1
        .as_array()
        .and_then(|g| g.iter().find(|g| g["metric"] == "p99_ms"))
        .expect("a p99 gate");
    let bucket = &p99["bucket"];
    assert!(
        bucket["lower_ms"].as_f64().unwrap() < bucket["upper_ms"].as_f64().unwrap(),
        "{p99:#}"
    );
}

#[test]
fn the_demo_judged_from_prometheus_rolls_back_a_regression_within_ten_seconds() {
    let (code, s, out, _) = demo("prom-break", &["--break"]);
    assert_eq!(code, 3, "{out}");
    assert_eq!(s["rollback"]["stage"], 2, "{s:#}");
    let detection = s["rollback"]["detection_s"]
        .as_f64()
        .expect("detection time");
    assert!(
        detection <= BREAK_AT_S + SCRAPE_S + 10.0,
        "detected at T+{detection:.1} s, more than 10 s after Prometheus could see the regression (T+{} s)",
        BREAK_AT_S + SCRAPE_S
    );
}

#[test]
fn a_query_gate_on_checkouts_rolls_back_a_canary_that_breaks_them() {
    let (code, s, out, _) = demo("prom-checkout", &["--break-checkout"]);
    assert_eq!(code, 3, "{out}");
    let reason = s["rollback"]["reason"].as_str().unwrap_or("");
    assert!(
        reason.starts_with("query checkout_success is ")
            && reason.contains("3 evaluations in a row"),
        "{reason}"
    );
    let detection = s["rollback"]["detection_s"]
        .as_f64()
        .expect("detection time");
    assert!(
        detection > BREAK_AT_S - 1.0,
        "rolled back before the break: {s:#}"
    );
    assert!(
        detection <= BREAK_AT_S + SCRAPE_S + 10.0,
        "detected at T+{detection:.1} s: {s:#}"
    );
    // Nothing else was wrong: every other gate of the stage passed its windows.
    let failed: Vec<&Value> = s["stages"][1]["gates"]
        .as_array()
        .map(|g| g.iter().filter(|g| g["status"] == "fail").collect())
        .unwrap_or_default();
    assert!(failed.is_empty(), "{failed:#?}");
}
