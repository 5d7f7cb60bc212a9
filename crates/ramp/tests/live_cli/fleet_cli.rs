//! Issue 14: a fleet of Ramp proxies as a user names it, `[router] admin = [three URLs]`,
//! driven by the `ramp` binary: the rollout, each stage's share, and what each member served
//! per stage in the summary and the reports, a controller killed mid-stage included.

use super::fleet::FleetRig;
use super::shares;
use super::support::{Work, WAIT};
use serde_json::Value;
use std::time::Instant;

/// The plan's `[router]` table naming the rig's members.
fn router(rig: &FleetRig) -> String {
    let admins: Vec<String> = rig
        .members
        .iter()
        .map(|m| format!("\"http://{}\"", m.admin))
        .collect();
    format!("admin = [{}]", admins.join(", "))
}

/// The fleet as a user names it: `ramp run` with `[router] admin = [three URLs]` promotes an
/// equal canary, every member at 100 % at the end and each stage's share as planned.
#[test]
fn ramp_run_drives_a_fleet_named_in_the_plan() {
    let started = Instant::now();
    let w = Work::new("fleet-cli");
    let rig = FleetRig::start(&w, "fleet-cli");
    w.write(
        "plan.toml",
        &shares::plan("fleet-cli", &router(&rig), "", shares::STAGES),
    );
    let members: Vec<std::net::SocketAddr> = rig.members.iter().map(|m| m.admin).collect();
    // The fleet's weight when every member holds the same one; while they differ (the
    // members are set one after another), a weight no stage has, so that the requests of
    // the change count in no stage.
    let weight = move || {
        let all: Option<Vec<u64>> = members
            .iter()
            .map(|&a| super::integrity::snapshot(a)?["weights"]["canary_bp"].as_u64())
            .collect();
        let all = all?;
        Some(if all.windows(2).all(|p| p[0] == p[1]) {
            all[0] as u32
        } else {
            u32::MAX
        })
    };
    let (code, s, segments, said) = shares::run(&w, "s.json", weight, rig.served_by_upstreams());
    assert_eq!(code, 0, "{said}");
    assert_eq!(s["outcome"], "promoted", "{s:#}");
    assert_eq!(rig.weights(), vec![10_000; 3]);
    let measured = shares::assert_stage_shares(&segments, &shares::STAGE_WEIGHTS, 50.0);
    let per_member = assert_members_served_a_third_each(&s, &rig);
    // The journaled report says the same, in Markdown and in HTML.
    let md = w.ramp(&["report", "1", "--journal", "j.db"]);
    assert_eq!(md.code, 0, "{md}");
    let html = w.ramp(&["report", "1", "--journal", "j.db", "--out", "r.html"]);
    assert_eq!(html.code, 0, "{html}");
    let page = std::fs::read_to_string(w.path("r.html")).unwrap();
    for m in &rig.members {
        let url = format!("http://{}", m.admin);
        assert_eq!(md.stdout.matches(&format!("| {url} | ")).count(), 3, "{md}");
        assert_eq!(
            page.matches(&format!("<td>{url}</td>")).count(),
            3,
            "{page}"
        );
    }
    eprintln!(
        "fleet through the CLI: {:.1} s, shares {measured:?}, each member's share of each stage {per_member:?}",
        started.elapsed().as_secs_f64()
    );
}

/// Every stage of the summary names the three members in plan order, each having served
/// about a third of the fleet's requests (the load is 100 req/s to each), and together what
/// the stage counted; each member's share of each stage, percent.
fn assert_members_served_a_third_each(s: &Value, rig: &FleetRig) -> Vec<Vec<f64>> {
    let mut shares = Vec::new();
    for st in s["stages"].as_array().unwrap() {
        let members = st["members"].as_array().unwrap_or_else(|| panic!("{st:#}"));
        let urls: Vec<&str> = members.iter().map(|m| m["url"].as_str().unwrap()).collect();
        let expected: Vec<String> = rig
            .members
            .iter()
            .map(|m| format!("http://{}", m.admin))
            .collect();
        assert_eq!(urls, expected, "{st:#}");
        let requests: Vec<u64> = members
            .iter()
            .map(|m| m["requests"].as_u64().unwrap())
            .collect();
        let total: u64 = requests.iter().sum();
        let counted = st["metrics_by_scope"]["service"]["requests"]
            .as_u64()
            .unwrap();
        assert!(
            total.abs_diff(counted) * 20 <= counted,
            "the members served {total} in all, the stage counted {counted}: {st:#}"
        );
        let each: Vec<f64> = requests
            .iter()
            .map(|&r| 100.0 * r as f64 / total.max(1) as f64)
            .collect();
        assert!(
            each.iter().all(|p| (25.0..=42.0).contains(p)),
            "each member should serve about a third: {each:?} of {total}; {st:#}"
        );
        assert!(members.iter().all(|m| m["errors"] == 0), "{st:#}");
        shares.push(each);
    }
    shares
}

/// A controller killed with SIGKILL 3 s into stage 2 and started again still reports what
/// each member served in stage 2, counted from the stage's start (journaled) to its end: the
/// members kept counting meanwhile.
#[test]
fn a_resumed_fleet_run_still_reports_each_members_stage() {
    let w = Work::new("fleet-cli-kill9");
    let rig = FleetRig::start(&w, "fleet-kill9");
    w.write(
        "plan.toml",
        &shares::plan("fleet-kill9", &router(&rig), "", shares::STAGES),
    );
    let args = ["run", "plan.toml", "--journal", "j.db", "--json", "s.json"];
    let mut first = w.spawn("first", &args);
    w.wait_until(&mut first, "stage 2, 3 s in", |v| {
        v["stage"]["index"] == 2 && v["stage"]["elapsed_s"].as_f64().unwrap_or(0.0) >= 3.0
    });
    first.kill9();
    let mut second = w.spawn("second", &args);
    assert_eq!(second.wait(WAIT), 0, "{}", second.describe());
    assert!(
        second.stdout().contains("Resumed run 1"),
        "{}",
        second.describe()
    );
    let s = w.json("s.json");
    assert_eq!(s["outcome"], "promoted", "{s:#}");
    let per_member = assert_members_served_a_third_each(&s, &rig);
    eprintln!("fleet resumed mid-stage: each member's share of each stage {per_member:?}");
}
