//! End-to-end tests of `ramp run`, `ramp rehearse`, `ramp demo` and the operator verbs on
//! real processes (issue 4).
//!
//! The rig lives in the test process: two demo upstreams, Ramp's proxy in front of them and
//! an open-loop load generator, all on loopback ports the OS picked. The controller under
//! test is the `ramp` binary, a child process: killing it with SIGKILL leaves the proxy
//! routing and the load flowing, which is the point of the data-plane/control-plane split.
//! Every verb is the binary too, finding the controller through the journal.
//!
//! Waits poll `ramp status --json` (or the proxy) and are bounded; every child is killed
//! when a test fails. Each test has its own directory, journal and ports, so they run in
//! parallel.

// These tests drive a live system on the real clock: bounding their waits needs it.
#![allow(clippy::disallowed_methods)]

#[path = "live_cli/support.rs"]
mod support;

#[path = "live_cli/integrity.rs"]
mod integrity;

#[path = "live_cli/prometheus.rs"]
mod prometheus;

#[path = "live_cli/fleet.rs"]
mod fleet;

#[path = "live_cli/fleet_cli.rs"]
mod fleet_cli;

#[path = "live_cli/etcd_cli.rs"]
mod etcd_cli;

#[path = "live_cli/nginx.rs"]
mod nginx;

#[path = "live_cli/shares.rs"]
mod shares;

#[path = "live_cli/haproxy.rs"]
mod haproxy;

#[path = "live_cli/command.rs"]
mod command;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::{plan, Rig, Work, WAIT};

/// Three stages: 10 % for 6 s, 50 % for 8 s, 100 % for 4 s, a checkpoint every 2 s.
fn three_stages(admin: std::net::SocketAddr, id: &str) -> String {
    plan(
        admin,
        id,
        r#"
[[stages]]
weight = 10
duration = "6s"
checkpoint = "2s"

[[stages]]
weight = 50
duration = "8s"
checkpoint = "2s"

[[stages]]
weight = 100
duration = "4s"
checkpoint = "2s"
"#,
    )
}

fn stage_index(v: &Value) -> Option<u64> {
    v["stage"]["index"].as_u64()
}

fn recent_text(v: &Value) -> String {
    v["recent"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["message"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// Issue 4: "kill -9 the controller mid-stage, restart it, and the rollout continues from
/// the journal — same stage, time already spent counted, no checkpoint lost — while the
/// proxy kept routing at the last weight."
#[test]
fn a_controller_killed_with_sigkill_resumes_from_the_journal() {
    let started = Instant::now();
    let rig = Rig::start(100.0);
    let w = Work::new("kill9");
    w.write("plan.toml", &three_stages(rig.admin, "kill9-test"));
    let args = ["run", "plan.toml", "--journal", "j.db", "--json", "s.json"];
    let mut first = w.spawn("first", &args);

    // Kill it 3 s into stage 2 (50 %).
    let before = w.wait_until(&mut first, "stage 2, 3 s in", |v| {
        stage_index(v) == Some(2) && v["stage"]["elapsed_s"].as_f64().unwrap_or(0.0) >= 3.0
    });
    let pre_kill_elapsed = before["stage"]["elapsed_s"].as_f64().unwrap();
    let t_kill_plan = before["t_s"].as_f64().unwrap();
    first.kill9();
    let killed_at = Instant::now();

    // The data plane does not care: the weight stays at 50 % and traffic keeps flowing to
    // both versions.
    let served_before = rig.canary.served().requests;
    while killed_at.elapsed() < Duration::from_secs(3) {
        let weights = rig.weights();
        assert_eq!(weights["canary"].as_f64(), Some(50.0), "{weights}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let served_meanwhile = rig.canary.served().requests - served_before;
    assert!(
        served_meanwhile >= 60,
        "the canary served {served_meanwhile} requests in 3 s at 50 % of 100 req/s"
    );

    // The verbs say the controller is gone (exit 1: not the user's fault), and how to
    // resume it, while still showing what the journal knows.
    let st = w.ramp(&["status", "--journal", "j.db", "--json"]);
    assert_eq!(st.code, 1, "{st}");
    assert!(st.stderr.contains("is not reachable"), "{st}");
    assert!(st.stderr.contains("kill9-test"), "{st}");
    assert!(st.stderr.contains("ramp run plan.toml"), "{st}");
    let journal_view: Value =
        serde_json::from_str(&st.stdout).unwrap_or_else(|e| panic!("{e}: {st}"));
    assert_eq!(journal_view["state"], "running", "{journal_view:#}");
    let pause = w.ramp(&["pause", "--journal", "j.db"]);
    assert_eq!(pause.code, 1, "{pause}");
    assert!(pause.stderr.contains("is not reachable"), "{pause}");

    // A different plan for the same deployment and journal is refused while the run is
    // unfinished: the journal replays inputs against the plan they were fed to.
    w.write(
        "changed.toml",
        &three_stages(rig.admin, "kill9-test").replace("duration = \"4s\"", "duration = \"5s\""),
    );
    let changed = w.ramp(&["run", "changed.toml", "--journal", "j.db"]);
    assert_eq!(changed.code, 2, "{changed}");
    assert!(
        changed.stderr.contains("with a different plan"),
        "{changed}"
    );

    // The same command again resumes the same run.
    let mut second = w.spawn("second", &args);
    w.wait_until(&mut second, "the resumed controller answering", |v| {
        v["state"] == "running" || v["state"] == "finished"
    });
    let downtime = killed_at.elapsed().as_secs_f64();
    let code = second.wait(WAIT);
    let out = second.stdout();
    assert_eq!(code, 0, "{}", second.describe());
    assert!(out.contains("Resumed run 1 of kill9-test"), "{out}");
    assert!(!first.stdout().contains("Resumed"), "{}", first.stdout());

    let s = w.json("s.json");
    assert_eq!(s["outcome"], "promoted", "{s:#}");
    let indexes: Vec<u64> = s["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, vec![1, 2, 3], "no stage repeated or skipped");
    for st in s["stages"].as_array().unwrap() {
        assert_eq!(st["decision"], "proceed", "{st:#}");
    }
    // Stage 2 lasted its planned 8 s, counting the time before the kill and the downtime:
    // a restarted stage would have lasted pre-kill + downtime + 8 s.
    let stage2 = &s["stages"][1];
    let elapsed = stage2["elapsed_s"].as_f64().unwrap();
    let expected = (pre_kill_elapsed + downtime).max(8.0);
    assert!(
        elapsed >= 8.0 && elapsed <= expected + 2.5,
        "stage 2 lasted {elapsed} s; planned 8 s, {pre_kill_elapsed:.1} s before the kill, {downtime:.1} s down"
    );
    // Its checkpoints: the one recorded before the kill survived the replay, they follow
    // each other, the last closes the stage, and together they hold every request of the
    // stage, the downtime's included (the proxy kept counting).
    let cps = stage2["checkpoints"].as_array().unwrap();
    let t: Vec<f64> = cps.iter().map(|c| c["t_s"].as_f64().unwrap()).collect();
    assert!(t.len() >= 3, "stage 2 checkpoints at {t:?}");
    assert!(
        t[0] <= t_kill_plan + 0.5,
        "no checkpoint before the kill at {t_kill_plan}: {t:?}"
    );
    assert!(t.windows(2).all(|p| p[0] < p[1]), "{t:?}");
    let stage_end = stage2["started_s"].as_f64().unwrap() + elapsed;
    assert!(
        (t[t.len() - 1] - stage_end).abs() < 0.01,
        "{t:?} vs end {stage_end}"
    );
    let service_requests = |v: &Value| {
        v["metrics_by_scope"]["service"]["requests"]
            .as_u64()
            .unwrap()
    };
    let in_checkpoints: u64 = cps.iter().map(service_requests).sum();
    assert_eq!(
        in_checkpoints,
        service_requests(stage2),
        "checkpoints vs stage"
    );
    let rate = service_requests(stage2) as f64 / elapsed;
    assert!(
        (80.0..=125.0).contains(&rate),
        "stage 2 measured {rate:.1} req/s of the 100 sent: downtime traffic lost or doubled"
    );

    // One run in the journal, finished; its report is the live one.
    let h = w.ramp(&["history", "--journal", "j.db", "--json"]);
    assert_eq!(h.code, 0, "{h}");
    let runs: Value = serde_json::from_str(&h.stdout).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["deployment_id"], "kill9-test");
    assert_eq!(runs[0]["status"], "finished");
    assert_eq!(runs[0]["outcome"], "promoted");
    let r = w.ramp(&["report", "1", "--journal", "j.db"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("Live"), "{}", r.stdout);
    assert_eq!(rig.weights()["canary"].as_f64(), Some(100.0));
    eprintln!(
        "kill -9: {:.1} s (stage 2 {elapsed:.1} s, {downtime:.1} s down)",
        started.elapsed().as_secs_f64()
    );
}

/// Issue 4: one controller per deployment and journal; a second is refused (exit 2) and
/// disturbs nothing. Ends with `ramp promote --full`.
#[test]
fn a_second_controller_on_the_same_deployment_is_refused() {
    let started = Instant::now();
    let rig = Rig::start(100.0);
    let w = Work::new("second");
    w.write(
        "plan.toml",
        &plan(
            rig.admin,
            "second-test",
            r#"
[[stages]]
weight = 20
duration = "60s"
checkpoint = "10s"

[[stages]]
weight = 100
duration = "60s"
"#,
        ),
    );
    let mut first = w.spawn(
        "first",
        &["run", "plan.toml", "--journal", "j.db", "--json", "s.json"],
    );
    let v = w.wait_until(&mut first, "stage 1", |v| stage_index(v) == Some(1));
    assert_eq!(v["run_id"].as_i64(), Some(1), "{v:#}");

    let second = w.ramp(&["run", "plan.toml", "--journal", "j.db", "--json", "s2.json"]);
    assert_eq!(second.code, 2, "{second}");
    assert!(
        second
            .stderr
            .contains("already being run by another controller"),
        "{second}"
    );
    assert!(second.stderr.contains("second-test"), "{second}");
    assert!(first.running(), "{}", first.describe());
    // The first controller still owns the run and answers.
    let v = w.status_ok();
    assert_eq!(stage_index(&v), Some(1), "{v:#}");
    assert_eq!(v["run_id"], 1);
    assert_eq!(rig.weights()["canary"].as_f64(), Some(20.0));

    // SIGTERM: the controller stops (exit 1, "interrupted"), the proxy keeps the weight, and
    // the same command resumes the run.
    first.terminate();
    assert_eq!(first.wait(WAIT), 1, "{}", first.describe());
    assert!(
        first.describe().contains("interrupted"),
        "{}",
        first.describe()
    );
    assert_eq!(rig.weights()["canary"].as_f64(), Some(20.0));
    let mut first = w.spawn(
        "resumed",
        &["run", "plan.toml", "--journal", "j.db", "--json", "s.json"],
    );
    let v = w.wait_until(&mut first, "the resumed run", |v| stage_index(v) == Some(1));
    assert_eq!(v["run_id"], 1, "{v:#}");
    assert!(
        first.stdout().contains("Resumed run 1"),
        "{}",
        first.describe()
    );

    // promote --full: straight to 100 % and promoted.
    let p = w.ramp(&[
        "promote",
        "--full",
        "--journal",
        "j.db",
        "--as",
        "rel-eng",
        "--reason",
        "ship it",
    ]);
    assert_eq!(p.code, 0, "{p}");
    assert_eq!(first.wait(WAIT), 0, "{}", first.describe());
    let s = w.json("s.json");
    assert_eq!(s["outcome"], "promoted", "{s:#}");
    assert_eq!(s["stages"].as_array().unwrap().len(), 1, "{s:#}");
    assert_eq!(rig.weights()["canary"].as_f64(), Some(100.0));
    let h = w.ramp(&["history", "--journal", "j.db", "--json"]);
    let runs: Value = serde_json::from_str(&h.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs:#}");
    eprintln!(
        "second controller: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Issue 4: every control verb through the CLI against a running rollout: pause holds the
/// stage past its end, approvals gate the next stage by name, promote and abort act at once,
/// and the journaled report names every operator and reason.
#[test]
fn every_control_verb_acts_on_a_running_rollout() {
    let started = Instant::now();
    let rig = Rig::start(100.0);
    let w = Work::new("verbs");
    w.write(
        "plan.toml",
        &plan(
            rig.admin,
            "verbs-test",
            r#"
[[stages]]
weight = 10
duration = "5s"
checkpoint = "5s"

[[stages]]
weight = 30
duration = "60s"
checkpoint = "10s"
approvals = ["SRE Lead", "Product Owner"]

[[stages]]
weight = 60
duration = "60s"
checkpoint = "10s"

[[stages]]
weight = 100
duration = "10s"
approvals = ["SRE Lead"]

[[hooks]]
name = "event log"
on = ["stage_start", "rollback"]
command = ["sh", "-c", "printf '%s\n' \"$RAMP_EVENT\" >> hooks.log"]
timeout = "5s"
"#,
        ),
    );
    let mut run = w.spawn(
        "run",
        &["run", "plan.toml", "--journal", "j.db", "--json", "s.json"],
    );
    w.wait_until(&mut run, "stage 1", |v| stage_index(v) == Some(1));

    // Pause: the stage does not end while paused, even past its planned end.
    let p = w.verb(&["pause", "--as", "alice", "--reason", "checking dashboards"]);
    assert_eq!(p.code, 0, "{p}");
    assert!(p.stdout.contains("PAUSED"), "{p}");
    let v = w.status_ok();
    let paused = v["paused"].as_str().unwrap_or_default();
    assert!(
        paused.contains("alice") && paused.contains("checking dashboards"),
        "{v:#}"
    );
    assert!(
        v["stage"]["elapsed_s"].as_f64().unwrap() < 5.0,
        "paused too late: {v:#}"
    );
    let again = w.verb(&["pause", "--as", "alice"]);
    assert_eq!(again.code, 2, "{again}");
    assert!(again.stderr.contains("already paused"), "{again}");
    let v = w.wait_until(&mut run, "stage 1 past its planned end", |v| {
        v["stage"]["elapsed_s"].as_f64().unwrap_or(0.0) >= 7.0
    });
    assert_eq!(stage_index(&v), Some(1), "{v:#}");
    assert!(v["paused"].is_string(), "{v:#}");
    assert!(
        !recent_text(&v).contains("Stage 1 passed"),
        "the stage ended while paused: {v:#}"
    );
    assert_eq!(rig.weights()["canary"].as_f64(), Some(10.0));

    // Resume: the stage ends at the next tick and waits for its approvers.
    let r = w.verb(&["resume", "--as", "alice", "--reason", "dashboards fine"]);
    assert_eq!(r.code, 0, "{r}");
    let v = w.wait_until(&mut run, "stage 1 ended, waiting for approvals", |v| {
        recent_text(v).contains("waits for approval")
    });
    assert_eq!(stage_index(&v), Some(1), "{v:#}");
    assert!(v["paused"].is_null(), "{v:#}");
    assert_eq!(v["awaiting"]["stage"], 2, "{v:#}");
    assert_eq!(
        v["awaiting"]["missing"],
        serde_json::json!(["SRE Lead", "Product Owner"]),
        "{v:#}"
    );
    assert_eq!(v["weight"].as_f64(), Some(10.0), "{v:#}");
    let text = w.verb(&["status"]);
    assert!(
        text.stdout
            .contains("waits for approval from: SRE Lead, Product Owner"),
        "{text}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        rig.weights()["canary"].as_f64(),
        Some(10.0),
        "moved on without approvals"
    );

    // Promote is refused while approvals are missing; so is a name the plan does not list.
    let p = w.verb(&["promote", "--as", "bob"]);
    assert_eq!(p.code, 2, "{p}");
    assert!(
        p.stderr
            .contains("needs approval from SRE Lead, Product Owner"),
        "{p}"
    );
    let p = w.verb(&["approve", "--as", "Intern"]);
    assert_eq!(p.code, 2, "{p}");
    assert!(p.stderr.contains("Intern is not an approver"), "{p}");
    let p = w.verb(&["approve"]);
    assert_eq!(p.code, 2, "{p}");
    assert!(p.stderr.contains("--as NAME"), "{p}");

    let a = w.verb(&[
        "approve",
        "--as",
        "SRE Lead",
        "--reason",
        "error budget healthy",
    ]);
    assert_eq!(a.code, 0, "{a}");
    let v = w.status_ok();
    assert_eq!(
        v["awaiting"]["missing"],
        serde_json::json!(["Product Owner"]),
        "{v:#}"
    );
    assert_eq!(stage_index(&v), Some(1), "{v:#}");
    let a = w.verb(&[
        "approve",
        "--as",
        "Product Owner",
        "--reason",
        "release notes ready",
    ]);
    assert_eq!(a.code, 0, "{a}");
    let v = w.wait_until(&mut run, "stage 2", |v| stage_index(v) == Some(2));
    assert_eq!(v["weight"].as_f64(), Some(30.0), "{v:#}");
    assert!(v["awaiting"].is_null(), "{v:#}");
    assert_eq!(rig.weights()["canary"].as_f64(), Some(30.0));

    // Promote: stage 3 at once (the weight is set before the verb returns).
    let p = w.verb(&["promote", "--as", "bob", "--reason", "canary looks good"]);
    assert_eq!(p.code, 0, "{p}");
    assert!(p.stdout.contains("Stage 3/4"), "{p}");
    assert_eq!(rig.weights()["canary"].as_f64(), Some(60.0));
    assert_eq!(stage_index(&w.status_ok()), Some(3));

    // Promote --full is refused while a later stage lacks approvals, and an approver can
    // approve that stage ahead of time; a stage already passed is refused by name.
    let p = w.verb(&["promote", "--full", "--as", "bob"]);
    assert_eq!(p.code, 2, "{p}");
    assert!(
        p.stderr.contains(
            "stage 4 needs approval from SRE Lead first (ramp approve --as NAME --stage 4)"
        ),
        "{p}"
    );
    let a = w.verb(&["approve", "--as", "SRE Lead", "--stage", "2"]);
    assert_eq!(a.code, 2, "{a}");
    assert!(a.stderr.contains("stage 2 is not still to come"), "{a}");
    let a = w.verb(&["approve", "--as", "SRE Lead", "--stage", "4"]);
    assert_eq!(a.code, 0, "{a}");
    let v = w.status_ok();
    assert!(v["awaiting"].is_null(), "{v:#}");
    assert_eq!(stage_index(&v), Some(3), "{v:#}");

    // Abort: rolled back, exit 3, nothing to the canary.
    let a = w.verb(&["abort", "--as", "carol", "--reason", "abort drill"]);
    assert_eq!(a.code, 0, "{a}");
    assert_eq!(run.wait(WAIT), 3, "{}", run.describe());
    assert_eq!(rig.weights()["canary"].as_f64(), Some(0.0));
    let s = w.json("s.json");
    assert_eq!(s["outcome"], "rolled_back", "{s:#}");
    assert_eq!(s["rollback"]["stage"], 3, "{s:#}");
    let reason = s["rollback"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("carol") && reason.contains("abort drill"),
        "{reason}"
    );

    // The approvals are on record in the order given: both for stage 2, and the one for
    // stage 4 given ahead of time.
    let approvals = s["approvals"].as_array().expect("approvals in the summary");
    let given: Vec<(&str, &str, u64)> = approvals
        .iter()
        .map(|a| {
            (
                a["who"].as_str().unwrap(),
                a["reason"].as_str().unwrap(),
                a["stage"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        given,
        [
            ("SRE Lead", "error budget healthy", 2),
            ("Product Owner", "release notes ready", 2),
            ("SRE Lead", "", 4)
        ],
        "{s:#}"
    );

    // Verbs on a finished run are refused; status shows the outcome from the journal.
    let p = w.verb(&["pause", "--as", "alice"]);
    assert_eq!(p.code, 2, "{p}");
    assert!(p.stderr.contains("already finished"), "{p}");
    let v = w.status_ok();
    assert_eq!(v["state"], "finished", "{v:#}");
    assert_eq!(v["outcome"], "rolled_back", "{v:#}");

    // The journaled report's timeline names each operator and reason.
    let report = w.verb(&["report", "1"]);
    assert_eq!(report.code, 0, "{report}");
    assert!(
        report.stdout.contains("## Approvals")
            && report.stdout.contains("| SRE Lead |")
            && report.stdout.contains("| release notes ready |"),
        "{report}"
    );
    for needle in [
        "alice",
        "checking dashboards",
        "dashboards fine",
        "SRE Lead",
        "error budget healthy",
        "Product Owner",
        "release notes ready",
        "bob",
        "canary looks good",
        "carol",
        "abort drill",
    ] {
        assert!(
            report.stdout.contains(needle),
            "the report lacks {needle:?}:\n{}",
            report.stdout
        );
    }
    assert!(
        !report.stdout.contains("Intern"),
        "a refused action was journaled"
    );

    // The hooks ran for each stage start and for the rollback, with the event in RAMP_EVENT.
    let log = std::fs::read_to_string(w.path("hooks.log")).unwrap_or_default();
    let events: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["stage_start", "stage_start", "stage_start", "rollback"],
        "{log}"
    );
    assert!(
        events.iter().all(|e| e["deployment_id"] == "verbs-test"),
        "{log}"
    );
    eprintln!("verbs: {:.1} s", started.elapsed().as_secs_f64());
}

/// Issue 4: the control API requires its token when the plan configures one; a wrong token
/// gets 401 (exit 2) and changes nothing.
#[test]
fn a_wrong_token_is_refused_and_changes_nothing() {
    let started = Instant::now();
    let rig = Rig::start(100.0);
    let mut w = Work::new("token");
    w.write("control.token", "s3cret-right-token\n");
    w.write("wrong.token", "not-the-token\n");
    w.write(
        "plan.toml",
        &plan(
            rig.admin,
            "token-test",
            r#"
[control]
token_file = "control.token"

[[stages]]
weight = 10
duration = "60s"
checkpoint = "10s"

[[stages]]
weight = 100
duration = "60s"
"#,
        ),
    );
    w.poll_token = Some("s3cret-right-token".into());
    let mut run = w.spawn("run", &["run", "plan.toml", "--journal", "j.db"]);
    w.wait_until(&mut run, "stage 1", |v| stage_index(v) == Some(1));

    let p = w.verb(&[
        "pause",
        "--token-file",
        "wrong.token",
        "--as",
        "mallory",
        "--reason",
        "evil",
    ]);
    assert_eq!(p.code, 2, "{p}");
    assert!(p.stderr.contains("refused the token"), "{p}");
    let p = w.verb(&["abort", "--as", "mallory"]);
    assert_eq!(p.code, 2, "no token at all: {p}");
    assert!(p.stderr.contains("token"), "{p}");
    let s = w.verb(&["status", "--json"]);
    assert_eq!(s.code, 2, "status without a token: {s}");

    let v = w.status_ok();
    assert!(v["paused"].is_null(), "{v:#}");
    assert_eq!(v["state"], "running", "{v:#}");
    assert!(!recent_text(&v).contains("mallory"), "{v:#}");
    assert_eq!(rig.weights()["canary"].as_f64(), Some(10.0));

    let p = w.verb(&["pause", "--token-file", "control.token", "--as", "alice"]);
    assert_eq!(p.code, 0, "{p}");
    assert!(w.status_ok()["paused"].is_string());

    // A pause is journaled like any input: a controller killed while paused comes back
    // paused (and with its token).
    run.kill9();
    let mut run = w.spawn("resumed", &["run", "plan.toml", "--journal", "j.db"]);
    let v = w.wait_until(&mut run, "the resumed controller", |v| {
        v["state"] == "running"
    });
    assert!(
        v["paused"].as_str().unwrap_or_default().contains("alice"),
        "{v:#}"
    );
    assert_eq!(stage_index(&v), Some(1), "{v:#}");
    assert_eq!(rig.weights()["canary"].as_f64(), Some(10.0));
    assert!(
        run.stdout().contains("Resumed run 1 of token-test"),
        "{}",
        run.describe()
    );
    let a = w.ramp_with(
        &[
            "abort",
            "--journal",
            "j.db",
            "--as",
            "alice",
            "--reason",
            "done",
        ],
        &[("RAMP_TOKEN", "s3cret-right-token")],
    );
    assert_eq!(a.code, 0, "{a}");
    assert_eq!(run.wait(WAIT), 3, "{}", run.describe());
    let report = w.verb(&["report", "1"]);
    assert!(!report.stdout.contains("mallory"), "{}", report.stdout);
    eprintln!("token: {:.1} s", started.elapsed().as_secs_f64());
}

/// Issue 4: a failing pre-deployment check stops the rollout before any user reaches the
/// canary: exit 4, weight 0, not one request served by the canary.
#[test]
fn a_failing_pre_deployment_check_keeps_the_canary_at_zero() {
    let started = Instant::now();
    let rig = Rig::start(100.0);
    let w = Work::new("checks");
    let stages = r#"
[[stages]]
weight = 50
duration = "10s"

[[stages]]
weight = 100
duration = "10s"
"#;
    // A command check that fails, after an http check that passes.
    w.write(
        "plan.toml",
        &plan(
            rig.admin,
            "checks-test",
            &format!(
                r#"
[[checks]]
name = "Stable health"
http = "http://{}/health"

[[checks]]
name = "DB migration check"
command = ["false"]
{stages}"#,
                rig.stable_addr
            ),
        ),
    );
    // An http check against a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    w.write(
        "plan2.toml",
        &plan(
            rig.admin,
            "checks-test-2",
            &format!(
                r#"
[[checks]]
name = "Payments API health"
http = "http://{closed_addr}/health"
timeout = "2s"
{stages}"#
            ),
        ),
    );
    std::thread::sleep(Duration::from_millis(500));
    for (plan_file, check, json) in [
        ("plan.toml", "DB migration check", "s.json"),
        ("plan2.toml", "Payments API health", "s2.json"),
    ] {
        let out = w.ramp_timeout(
            &["run", plan_file, "--journal", "j.db", "--json", json],
            Duration::from_secs(30),
        );
        assert_eq!(out.code, 4, "{out}");
        assert!(
            out.stdout
                .lines()
                .any(|l| l.contains(&format!("✗ {check}"))),
            "{out}"
        );
        if plan_file == "plan.toml" {
            assert!(out.stdout.contains("✓ Stable health"), "{out}");
        }
        let s = w.json(json);
        assert_eq!(s["outcome"], "halted", "{s:#}");
        assert_eq!(s["stages"].as_array().map(Vec::len), Some(0), "{s:#}");
        // The checklist: every check that ran, the failed one last, with its time.
        let checks = s["checks"].as_array().expect("checks in the summary");
        let last = checks.last().expect("a check ran");
        assert_eq!(last["name"], check, "{s:#}");
        assert_eq!(last["ok"], false, "{s:#}");
        assert!(last["elapsed_s"].as_f64().is_some(), "{s:#}");
        assert!(
            checks[..checks.len() - 1].iter().all(|c| c["ok"] == true),
            "{s:#}"
        );
        assert!(s["rollback"].is_null());
        let timeline = s["timeline"].to_string();
        assert!(
            timeline.contains(check) && timeline.contains("no traffic was shifted"),
            "{timeline}"
        );
    }
    // The load kept flowing, all of it to the stable version.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(rig.weights()["canary"].as_f64(), Some(0.0));
    assert_eq!(rig.canary.served().requests, 0, "{:?}", rig.canary.served());
    assert!(
        rig.stable.served().requests >= 50,
        "{:?}",
        rig.stable.served()
    );
    assert!(
        rig.stable.served().health >= 1,
        "the http check did not reach the stable upstream"
    );
    eprintln!("checks: {:.1} s", started.elapsed().as_secs_f64());
}

/// Issue 4: `ramp rehearse` injects the rehearsal's fault through the proxy, the gates catch
/// it, the rollback happens and the restoration is timed, within the target.
#[test]
fn a_live_rehearsal_is_caught_rolled_back_and_timed() {
    let started = Instant::now();
    let rig = Rig::start(125.0);
    let w = Work::new("rehearse");
    w.write(
        "plan.toml",
        &plan(
            rig.admin,
            "rehearse-test",
            r#"p95_ms = { max = 500 }

[[stages]]
weight = 50
duration = "60s"
checkpoint = "10s"

[[stages]]
weight = 100
duration = "10s"

[[rehearsals]]
name = "Simulated P95 breach"
at = "5s"
fault = { cohort = "canary", fraction = 0.5, add_latency = "800ms", duration = "60s" }
target = "30s"
# Restored: service-wide p95 and p99 over 5 s within 50 % of the 5 s before the fault. The
# default 10 % is within the tail noise of a debug build on a shared 2-core machine (p99
# 16 ms), which is not what this test is about; an 800 ms fault is far outside 50 %.
restore_window = "5s"
restore_tolerance = "50%"
"#,
        ),
    );
    let out = w.ramp_timeout(
        &[
            "rehearse",
            "plan.toml",
            "--journal",
            "j.db",
            "--json",
            "r.json",
        ],
        Duration::from_secs(90),
    );
    assert_eq!(out.code, 0, "{out}");
    let s = w.json("r.json");
    assert_eq!(s["outcome"], "rolled_back", "{s:#}");
    let r = &s["rehearsals"][0];
    assert_eq!(r["name"], "Simulated P95 breach", "{r:#}");
    assert_eq!(r["outcome"], "rolled_back", "{r:#}");
    let f = |k: &str| {
        r[k].as_f64()
            .unwrap_or_else(|| panic!("{k} missing: {r:#}"))
    };
    let (onset, det, rb, rest, total) = (
        f("fault_onset_s"),
        f("detection_s"),
        f("rollback_s"),
        f("restoration_s"),
        f("total_recovery_s"),
    );
    assert!((5.0..8.0).contains(&onset), "{r:#}");
    assert!(onset < det && det <= rb && rb <= rest, "{r:#}");
    assert!((total - (rest - onset)).abs() < 1e-6, "{r:#}");
    assert!(total < 30.0, "{r:#}");
    assert!(r["reason"].as_str().unwrap().contains("p95"), "{r:#}");
    assert_eq!(rig.weights()["canary"].as_f64(), Some(0.0));
    eprintln!(
        "rehearse: {:.1} s (detected {:.1} s after onset, recovered in {total:.1} s)",
        started.elapsed().as_secs_f64(),
        det - onset
    );
}

/// Issue 4: `ramp demo --break` needs nothing installed and shows an automatic rollback in
/// stage 2.
#[test]
fn the_demo_breaks_and_rolls_back_in_stage_two() {
    let started = Instant::now();
    let w = Work::new("demo");
    let out = w.ramp_timeout(
        &[
            "demo",
            "--break",
            "-q",
            "--journal",
            "d.db",
            "--json",
            "d.json",
        ],
        Duration::from_secs(90),
    );
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stdout.contains("rolled_back"), "{out}");
    let s = w.json("d.json");
    assert_eq!(s["outcome"], "rolled_back", "{s:#}");
    assert_eq!(s["rollback"]["stage"], 2, "{s:#}");
    assert_eq!(s["mode"], "live", "{s:#}");
    let h = w.ramp(&["history", "--journal", "d.db", "--json"]);
    let runs: Value = serde_json::from_str(&h.stdout).unwrap_or_else(|e| panic!("{e}: {h}"));
    assert_eq!(runs[0]["status"], "finished", "{runs:#}");
    assert_eq!(runs[0]["outcome"], "rolled_back", "{runs:#}");
    eprintln!("demo: {:.1} s", started.elapsed().as_secs_f64());
}

/// A verb acts on the rollout of the journal it was given, never on another one: the
/// control address a journal records outlives its controller, and once that controller is
/// dead the port may belong to another rollout's controller.
#[test]
fn a_verb_never_reaches_another_rollouts_controller() {
    let rig = Rig::start(100.0);
    let stages = r#"
[[stages]]
weight = 10
duration = "60s"
checkpoint = "10s"

[[stages]]
weight = 100
duration = "60s"
"#;
    let a = Work::new("identity-a");
    a.write("plan.toml", &plan(rig.admin, "identity-a", stages));
    let mut run_a = a.spawn("a", &["run", "plan.toml", "--journal", "j.db"]);
    a.wait_until(&mut run_a, "A in stage 1", |v| stage_index(v) == Some(1));
    let out = run_a.stdout();
    let addr = out
        .split("control API at http://")
        .nth(1)
        .and_then(|rest| rest.split([' ', ',', '\n']).next())
        .unwrap_or_else(|| panic!("no control address in {out}"))
        .to_string();
    run_a.kill9();

    // Another deployment's controller, with its own journal, now listens on that address.
    let b = Work::new("identity-b");
    let plan_b = plan(rig.admin, "identity-b", stages).replace(
        "[gates]",
        &format!("[control]\nlisten = \"{addr}\"\n\n[gates]"),
    );
    b.write("plan.toml", &plan_b);
    // B takes over the proxy A's run left at 10 %: deliberately, since B's journal does not
    // hold the run that set its weights (issue 12).
    let mut run_b = b.spawn("b", &["run", "plan.toml", "--journal", "j.db", "--new-run"]);
    b.wait_until(&mut run_b, "B in stage 1", |v| stage_index(v) == Some(1));

    // An operator pauses A (through A's journal): B must not be paused, and the operator
    // must learn that A's controller is gone.
    let p = a.verb(&["pause", "--as", "alice", "--reason", "meant for A"]);
    let v = b.status_ok();
    assert!(
        v["paused"].is_null(),
        "`ramp pause --journal A` paused deployment identity-b: {}\n{v:#}",
        v["paused"]
    );
    assert_ne!(p.code, 0, "{p}");
    match a.status() {
        Ok(view) => assert_eq!(
            view["deployment_id"], "identity-a",
            "`ramp status --journal A` shows another deployment: {view:#}"
        ),
        Err(out) => assert_eq!(out.code, 1, "{out}"),
    }
}

/// Issue 16: the plan to follow (`[next]`) is in the report of a live run re-rendered from
/// the journal (`ramp report N`), as it is in the report `ramp run --report` writes.
#[test]
fn a_journaled_report_shows_the_plan_to_follow() {
    let rig = Rig::start(100.0);
    let w = Work::new("next");
    let production = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/phase8-production.toml"
    );
    std::fs::copy(production, w.path("production.toml")).unwrap();
    w.write(
        "plan.toml",
        &plan(
            rig.admin,
            "next-test",
            r#"
[[stages]]
weight = 50
duration = "3s"
checkpoint = "1s"

[[stages]]
weight = 100
duration = "3s"
checkpoint = "1s"

[next]
plan = "production.toml"
"#,
        ),
    );
    let run = w.ramp_timeout(
        &["run", "plan.toml", "--journal", "j.db", "--json", "s.json"],
        Duration::from_secs(60),
    );
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        w.json("s.json")["next"]["deployment_id"],
        "phase8-production"
    );
    let report = w.ramp(&["report", "1", "--journal", "j.db", "--json", "r.json"]);
    assert_eq!(report.code, 0, "{report}");
    assert!(report.stdout.contains("## Plan to follow"), "{report}");
    let next = &w.json("r.json")["next"];
    assert_eq!(next["deployment_id"], "phase8-production", "{next:#}");
    assert_eq!(next["preview"]["stages_run"], 5, "{next:#}");
}
