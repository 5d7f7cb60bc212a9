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
    infrastructure_is_what_prometheus_saw(&s);
    // The journaled run's report has the section, with the query that had no data shown
    // as dashes and counted.
    let report = w.ramp(&["report", "1", "--journal", "d.db"]);
    assert_eq!(report.code, 0, "{report}");
    let md = &report.stdout;
    assert!(md.contains("## Infrastructure impact"), "{md}");
    assert!(md.contains("| Canary share | 2 (25%) |"), "{md}");
    assert!(
        md.contains("| DB connections | 4 (100%) | – | – | – | – |"),
        "{md}"
    );
}

/// The demo's report queries, as the summary records them: the requests both upstreams
/// served (the demo's 100 req/s), the canary's share of them (before a stage: the previous
/// stage's weight; during it: its own), and a query whose series does not exist, which is
/// missing in every sample and never a number.
fn infrastructure_is_what_prometheus_saw(s: &Value) {
    let rows = s["infrastructure"]
        .as_array()
        .unwrap_or_else(|| panic!("no infrastructure in the summary: {s:#}"));
    let row = |name: &str, stage: u64| {
        rows.iter()
            .find(|r| r["name"] == name && r["stage"] == stage)
            .unwrap_or_else(|| panic!("no row for {name} in stage {stage}: {rows:#?}"))
    };
    let weights = [5.0, 25.0, 50.0, 100.0];
    assert_eq!(rows.len(), 3 * weights.len(), "{rows:#?}");
    for (i, w) in weights.iter().enumerate() {
        let stage = i as u64 + 1;
        let req = row("Requests", stage);
        assert_eq!(req["unit"], "req/s", "{req:#}");
        let source = req["source"].as_str().unwrap_or("");
        assert!(source.starts_with("127.0.0.1:"), "{req:#}");
        let mean = req["during_mean"].as_f64().unwrap_or(f64::NAN);
        assert!((60.0..=140.0).contains(&mean), "{req:#}");
        assert!(
            req["during_max"].as_f64().unwrap_or(f64::NAN) >= mean,
            "{req:#}"
        );
        // At least the sample before the stage and one during it were asked.
        let asked = req["samples"].as_u64().unwrap_or(0) + req["missing"].as_u64().unwrap_or(0);
        assert!(asked >= 2, "{req:#}");
        let share = row("Canary share", stage);
        assert_eq!(share["unit"], "%", "{share:#}");
        let during = share["during_max"].as_f64().unwrap_or(f64::NAN);
        assert!(
            (during - w).abs() <= 10.0,
            "stage {stage} at {w}%: the canary's share during it was {during}%: {share:#}"
        );
        if i > 0 {
            // Sampled at the instant the stage started: the share of the stage before.
            let before = share["before"].as_f64().unwrap_or(f64::NAN);
            let previous = weights[i - 1];
            assert!(
                (before - previous).abs() <= 10.0,
                "stage {stage}: the share before it was {before}%, not about {previous}%: {share:#}"
            );
        }
        let db = row("DB connections", stage);
        assert!(
            db["before"].is_null() && db["during_mean"].is_null() && db["during_max"].is_null(),
            "{db:#}"
        );
        assert_eq!(db["samples"], 0, "{db:#}");
        assert!(db["missing"].as_u64().unwrap_or(0) >= 2, "{db:#}");
    }
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
