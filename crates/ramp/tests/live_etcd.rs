//! Highly available controllers on etcd, end to end (issue 15): `ramp run` processes of one
//! plan and deployment against a real three-member etcd cluster, Ramp's proxy, demo upstreams
//! and load, all on loopback. One leads and the other stands by; the leader is killed with
//! SIGKILL mid-stage and the standby takes the same run over within the lease and finishes it,
//! no stage repeated. A leader paused past its lease is fenced when it wakes and stands by
//! again. One etcd member killed changes nothing; two make the leader hold (no decision, no
//! weight change) until they are back, when it leads again and finishes the same run. A
//! cluster that cannot be reached stops `ramp run` before anything moves.
//!
//! One etcd cluster serves the whole binary (it takes seconds to start), so the cases run in
//! one test, each with a deployment, directory and rig of its own.

// These tests drive a live system on the real clock: bounding their waits needs it.
#![allow(clippy::disallowed_methods)]

#[allow(dead_code)]
#[path = "live_cli/support.rs"]
mod support;

use ramp_etcd::cluster::LocalCluster;
use serde_json::Value;
use std::time::{Duration, Instant};
use support::{free_port, plan, Controller, Rig, Work, WAIT};

/// The lease of these tests: short, so that a takeover is quick.
const TTL_S: u64 = 3;

/// Three stages (10 % for 6 s, 50 % for 8 s, 100 % for 4 s) on the rig's proxy, journaled in
/// etcd at `endpoints`.
fn ha_plan(admin: std::net::SocketAddr, id: &str, endpoints: &[String]) -> String {
    ha_plan_with(admin, id, endpoints, TTL_S, 1)
}

/// The same with a lease of `ttl_s` and a request timeout of `request_s`.
fn ha_plan_with(
    admin: std::net::SocketAddr,
    id: &str,
    endpoints: &[String],
    ttl_s: u64,
    request_s: u64,
) -> String {
    let list: Vec<String> = endpoints.iter().map(|e| format!("{e:?}")).collect();
    plan(
        admin,
        id,
        &format!(
            r#"
[store]
etcd = [{}]
lease_ttl = "{ttl_s}s"
request_timeout = "{request_s}s"
dial_timeout = "2s"

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
            list.join(", ")
        ),
    )
}

/// Waits (at most `limit`) until the controller's output contains `text`; fails at once if it
/// exits meanwhile.
fn wait_for_line(ctl: &mut Controller, text: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if ctl.stdout().contains(text) {
            return started.elapsed();
        }
        assert!(
            ctl.running(),
            "waiting for {text:?}: the controller exited\n{}",
            ctl.describe()
        );
        assert!(
            started.elapsed() < limit,
            "no {text:?} within {limit:?}\n{}",
            ctl.describe()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (at most [`WAIT`]) until the proxy's canary weight is `percent`.
fn wait_for_weight(rig: &Rig, ctl: &mut Controller, percent: f64) {
    let started = Instant::now();
    while rig.weights()["canary"].as_f64() != Some(percent) {
        assert!(ctl.running(), "the controller exited\n{}", ctl.describe());
        assert!(
            started.elapsed() < WAIT,
            "no {percent} % within {WAIT:?}\n{}",
            ctl.describe()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn controllers_on_etcd_stand_by_take_over_and_refuse_an_unreachable_cluster() {
    let mut cluster = LocalCluster::start(3).expect("a three-member etcd cluster");
    an_unreachable_cluster_stops_the_run_before_anything_moves();
    a_standby_takes_over_a_killed_leaders_run(&cluster.endpoints());
    a_paused_leader_is_fenced_when_it_wakes(&cluster.endpoints());
    a_rollout_goes_on_when_an_etcd_member_dies(&mut cluster);
    a_rollout_holds_without_quorum_and_goes_on_when_it_returns(&mut cluster);
}

fn an_unreachable_cluster_stops_the_run_before_anything_moves() {
    let rig = Rig::start(20.0);
    let w = Work::new("etcd-down");
    let dead = format!("http://127.0.0.1:{}", free_port());
    w.write(
        "plan.toml",
        &ha_plan(rig.admin, "etcd-down", std::slice::from_ref(&dead)),
    );
    let started = Instant::now();
    let out = w.ramp(&["run", "plan.toml"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains(&dead),
        "the error names the endpoints: {out}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "{out}");
    let weights = rig.weights();
    assert_eq!(weights["canary"].as_f64(), Some(0.0), "{weights}");
    assert!(
        weights["set_by"].is_null(),
        "nothing was sent to the proxy: {weights}"
    );
}

fn a_standby_takes_over_a_killed_leaders_run(endpoints: &[String]) {
    let rig = Rig::start(100.0);
    let w = Work::new("etcd-takeover");
    w.write("plan.toml", &ha_plan(rig.admin, "takeover", endpoints));
    let mut a = w.spawn("a", &["run", "plan.toml", "--json", "a.json"]);
    wait_for_line(&mut a, "leader: this controller leads takeover", WAIT);
    let mut b = w.spawn(
        "b",
        &["run", "plan.toml", "--json", "b.json", "--report", "b.md"],
    );
    wait_for_line(&mut b, "standby: pid", WAIT);
    assert!(b.stdout().contains("leads takeover"), "{}", b.describe());

    // `ramp status` reads the journal in etcd and names the leader and the standby (the
    // standby's line comes as it sends its campaign, so its key may take a moment).
    let etcd = endpoints.join(",");
    let on_etcd = ["--etcd", etcd.as_str(), "--deployment", "takeover"];
    let asked = Instant::now();
    let status = loop {
        let status = w.ramp(&[&["status", "--json"][..], &on_etcd[..]].concat());
        assert_eq!(status.code, 0, "{status}");
        if status.stdout.matches("\"standby\"").count() == 1
            || asked.elapsed() > Duration::from_secs(5)
        {
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let view: Value = serde_json::from_str(&status.stdout).expect("status JSON");
    assert_eq!(view["run_id"], 1, "{view:#}");
    let controllers = view["controllers"].as_array().expect("controllers");
    assert_eq!(controllers.len(), 2, "{view:#}");
    assert_eq!(controllers[0]["role"], "leader", "{view:#}");
    assert_eq!(controllers[1]["role"], "standby", "{view:#}");
    let leader = controllers[0]["who"].as_str().expect("who");
    assert!(
        b.stdout()
            .contains(&format!("standby: {leader} leads takeover")),
        "{leader}\n{}",
        b.describe()
    );

    // A third controller joins while run 1 is under way: once run 1 is over it must end with
    // that run's outcome, not start a second rollout of the plan.
    let mut c = w.spawn("c", &["run", "plan.toml", "--json", "c.json"]);
    wait_for_line(&mut c, "standby: pid", WAIT);

    // Kill the leader 2 s into stage 2 (50 %).
    wait_for_weight(&rig, &mut a, 50.0);
    std::thread::sleep(Duration::from_secs(2));
    a.kill9();
    let killed = Instant::now();

    // The standby takes the same run over within the lease and 5 s.
    let limit = Duration::from_secs(TTL_S + 5);
    let took = wait_for_line(&mut b, "Took over run 1 as its leader", limit);
    eprintln!(
        "takeover: {:.2} s after the leader's SIGKILL (lease {TTL_S} s)",
        took.as_secs_f64()
    );
    wait_for_line(&mut b, "Resumed run 1 of takeover", WAIT);
    // It restored the engine from the snapshot journaled in etcd at stage 2's start (or a
    // later checkpoint) and replayed only the inputs after it.
    assert!(
        b.stdout().contains("from the snapshot at stage 2's"),
        "{}",
        b.describe()
    );
    let downtime = killed.elapsed().as_secs_f64();
    let code = b.wait(WAIT);
    assert_eq!(code, 0, "{}", b.describe());

    let s: Value = w.json("b.json");
    assert_eq!(s["outcome"], "promoted", "{s:#}");
    let indexes: Vec<u64> = s["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|st| st["index"].as_u64().expect("index"))
        .collect();
    assert_eq!(
        indexes,
        vec![1, 2, 3],
        "no stage repeated or skipped: {s:#}"
    );
    // The third controller leads once b resigns, finds run 1 finished and ends with it.
    assert_eq!(c.wait(WAIT), 0, "{}", c.describe());
    assert!(
        !c.stdout().contains("Stage 1/3"),
        "c started another rollout\n{}",
        c.describe()
    );
    let c_summary: Value = w.json("c.json");
    assert_eq!(c_summary["outcome"], "promoted", "{c_summary:#}");
    // Stage 2 went on where it was: restarted, it would have lasted the 2 s before the kill,
    // the takeover and 8 s more.
    let stage2 = s["stages"][1]["elapsed_s"].as_f64().expect("elapsed");
    assert!(
        stage2 >= 8.0 && stage2 < 2.0 + downtime + 8.0 - 1.0,
        "stage 2 lasted {stage2} s; 2 s before the kill, {downtime:.1} s to the takeover"
    );
    let timeline = s["timeline"].to_string();
    assert!(timeline.contains("Controller takeover"), "{s:#}");
    let report = std::fs::read_to_string(w.path("b.md")).expect("the report");
    assert!(report.contains("Controller takeover"), "{report}");
    // `ramp history` and `ramp report` read the same run from etcd.
    let history = w.ramp(&[&["history", "--json"][..], &on_etcd[..]].concat());
    assert_eq!(history.code, 0, "{history}");
    let runs: Value = serde_json::from_str(&history.stdout).expect("history JSON");
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs:#}");
    assert_eq!(runs[0]["outcome"], "promoted", "{runs:#}");
    let again = w.ramp(&[&["report", "1"][..], &on_etcd[..]].concat());
    assert_eq!(again.code, 0, "{again}");
    assert!(again.stdout.contains("Controller takeover"), "{again}");
    // The killed leader wrote no summary; the proxy ends at 100 % set by the run.
    // (`ramp run` opens its outputs at start, so the file exists, empty.)
    let a_json = std::fs::read_to_string(w.path("a.json")).unwrap_or_default();
    assert!(a_json.is_empty(), "{a_json}");
    assert_eq!(rig.weights()["canary"].as_f64(), Some(100.0));
}

fn a_paused_leader_is_fenced_when_it_wakes(endpoints: &[String]) {
    let rig = Rig::start(100.0);
    let w = Work::new("etcd-paused");
    w.write("plan.toml", &ha_plan(rig.admin, "paused", endpoints));
    let mut a = w.spawn("a", &["run", "plan.toml"]);
    wait_for_line(&mut a, "leader: this controller leads paused", WAIT);
    let mut b = w.spawn("b", &["run", "plan.toml", "--json", "b.json"]);
    wait_for_line(&mut b, "standby: pid", WAIT);

    // Pause the leader 2 s into stage 2, long past its lease: the standby takes over and,
    // its stage 2 over, moves the canary to 100 %.
    wait_for_weight(&rig, &mut a, 50.0);
    std::thread::sleep(Duration::from_secs(2));
    a.signal("STOP");
    wait_for_line(
        &mut b,
        "Took over run 1 as its leader",
        Duration::from_secs(TTL_S + 5),
    );
    wait_for_weight(&rig, &mut b, 100.0);

    // Woken, the old leader finds it lost its lease (or its next journal write is refused by
    // etcd) and stops without sending a weight: the canary stays at 100 %. It goes back to
    // standing by, and once the new leader has finished the run it reports that run's outcome.
    a.signal("CONT");
    let woke = Instant::now();
    while woke.elapsed() < Duration::from_secs(3) {
        let weights = rig.weights();
        assert_eq!(weights["canary"].as_f64(), Some(100.0), "{weights}");
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for_line(&mut a, "Lost leadership of paused", WAIT);
    assert_eq!(b.wait(WAIT), 0, "{}", b.describe());
    let s: Value = w.json("b.json");
    assert_eq!(s["outcome"], "promoted", "{s:#}");
    let code = a.wait(WAIT);
    assert_eq!(code, 0, "{}", a.describe());
    assert!(
        a.stdout()
            .contains("Holding: no decision and no weight change"),
        "{}",
        a.describe()
    );
    assert_eq!(rig.weights()["canary"].as_f64(), Some(100.0));
}

/// Two of the three members die while stage 2 runs: the leader cannot write its journal or
/// renew its lease, so it holds (says why, decides nothing, leaves the weight) for longer than
/// the stage had left; once the members are back it leads again and finishes the same run.
fn a_rollout_holds_without_quorum_and_goes_on_when_it_returns(cluster: &mut LocalCluster) {
    let rig = Rig::start(100.0);
    let w = Work::new("etcd-quorum");
    w.write(
        "plan.toml",
        &ha_plan_with(rig.admin, "quorum", &cluster.endpoints(), TTL_S, 1),
    );
    let mut a = w.spawn(
        "a",
        &["run", "plan.toml", "--json", "a.json", "--report", "a.md"],
    );
    wait_for_line(&mut a, "leader: this controller leads quorum", WAIT);
    wait_for_weight(&rig, &mut a, 50.0);
    std::thread::sleep(Duration::from_secs(1));
    cluster.kill(1);
    cluster.kill(2);
    wait_for_line(
        &mut a,
        "Holding: no decision and no weight change",
        Duration::from_secs(TTL_S + 10),
    );
    // Held past the 7 s stage 2 had left: still at 50 %, the controller still running.
    let held = Instant::now();
    while held.elapsed() < Duration::from_secs(10) {
        let weights = rig.weights();
        assert_eq!(weights["canary"].as_f64(), Some(50.0), "{weights}");
        assert!(a.running(), "{}", a.describe());
        std::thread::sleep(Duration::from_millis(200));
    }
    let restarting = Instant::now();
    cluster.restart(1).expect("member 1 comes back");
    cluster.restart(2).expect("member 2 comes back");
    wait_for_line(
        &mut a,
        "Took over run 1 as its leader",
        Duration::from_secs(30),
    );
    eprintln!(
        "quorum: led again {:.2} s after the two members were started again (lease {TTL_S} s)",
        restarting.elapsed().as_secs_f64()
    );
    let code = a.wait(WAIT);
    assert_eq!(code, 0, "{}", a.describe());
    let s: Value = w.json("a.json");
    assert_eq!(s["outcome"], "promoted", "{s:#}");
    let indexes: Vec<u64> = s["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|st| st["index"].as_u64().expect("index"))
        .collect();
    assert_eq!(indexes, vec![1, 2, 3], "no stage repeated: {s:#}");
    assert_eq!(rig.weights()["canary"].as_f64(), Some(100.0));
}

fn a_rollout_goes_on_when_an_etcd_member_dies(cluster: &mut LocalCluster) {
    let rig = Rig::start(100.0);
    let w = Work::new("etcd-member");
    // A request timeout that rides out a raft leader election (about a second when the member
    // killed was etcd's leader), as docs/live.md recommends: with 1 s a journal write could
    // time out while the cluster elected its new leader.
    w.write(
        "plan.toml",
        &ha_plan_with(rig.admin, "member", &cluster.endpoints(), 10, 5),
    );
    let mut a = w.spawn("a", &["run", "plan.toml", "--json", "a.json"]);
    wait_for_weight(&rig, &mut a, 10.0);
    cluster.kill(0);
    let code = a.wait(WAIT);
    assert_eq!(code, 0, "{}", a.describe());
    let s: Value = w.json("a.json");
    assert_eq!(s["outcome"], "promoted", "{s:#}");
    cluster.restart(0).expect("the member comes back");
}
