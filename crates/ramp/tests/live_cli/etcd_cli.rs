//! Issue 15: `[router] kind = "etcd"` driven by the `ramp` binary. Two `ramp proxy --etcd`
//! processes follow the deployment's weight key in a real three-member etcd cluster; `ramp
//! run` writes each stage's weight there once and confirms it on both proxies' admin APIs,
//! whose snapshots it sums for the gates. Each stage's share is measured at the upstreams.

use super::integrity::{snapshot, ProxyProcess, Upstreams};
use super::shares;
use super::support::{Controller, Work};
use ramp_etcd::cluster::LocalCluster;
use std::time::{Duration, Instant};

/// Requests per second sent to each proxy.
const RPS_EACH: f64 = 100.0;

#[test]
fn ramp_run_promotes_through_proxies_that_follow_etcd() {
    let started = Instant::now();
    let cluster = LocalCluster::start(3).expect("a local etcd cluster");
    let w = Work::new("etcd-cli");
    let up = Upstreams::start();
    let etcd = vec!["--etcd".to_string(), cluster.endpoints().join(",")];
    let members: Vec<ProxyProcess> = (0..2)
        .map(|i| ProxyProcess::start_with(&w, &up, "etcd-cli", &format!("member{i}"), &etcd))
        .collect();
    for (i, m) in members.iter().enumerate() {
        up.load(m.listen, RPS_EACH, 0, 40 + i as u64);
    }
    let quoted = |items: Vec<String>| {
        items
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let router = format!(
        "kind = \"etcd\"\nendpoints = [{}]\nadmin = [{}]",
        quoted(cluster.endpoints()),
        quoted(
            members
                .iter()
                .map(|m| format!("http://{}", m.admin))
                .collect()
        )
    );
    w.write(
        "plan.toml",
        &shares::plan("etcd-cli", &router, "", shares::STAGES),
    );
    let admins: Vec<std::net::SocketAddr> = members.iter().map(|m| m.admin).collect();
    // Both proxies' weight when they agree; while they differ (each applies the key on its
    // own watch), a weight no stage has, so that the change's requests count in no stage.
    let weight = move || {
        let all: Option<Vec<u64>> = admins
            .iter()
            .map(|&a| snapshot(a)?["weights"]["canary_bp"].as_u64())
            .collect();
        let all = all?;
        Some(if all.windows(2).all(|p| p[0] == p[1]) {
            all[0] as u32
        } else {
            u32::MAX
        })
    };
    let (code, s, segments, said) = shares::run(&w, "s.json", weight, shares::served_by(&up));
    assert_eq!(code, 0, "{said}");
    assert_eq!(s["outcome"], "promoted", "{s:#}");
    for m in &members {
        let weights = &m.snapshot()["weights"];
        assert_eq!(weights["canary_bp"], 10_000, "{weights}");
        assert_eq!(weights["source"], "etcd", "{weights}");
    }
    let measured = shares::assert_stage_shares(&segments, &shares::STAGE_WEIGHTS, 50.0);
    eprintln!(
        "etcd router through the CLI: {:.1} s, shares {measured:?}",
        started.elapsed().as_secs_f64()
    );
}

/// Waits (at most 60 s) until every proxy shows `bp` for the canary, failing at once if the
/// controller exits meanwhile.
fn wait_for_followers(admins: &[std::net::SocketAddr], bp: u64, ctl: &mut Controller) {
    let started = Instant::now();
    while !admins
        .iter()
        .all(|&a| snapshot(a).is_some_and(|s| s["weights"]["canary_bp"].as_u64() == Some(bp)))
    {
        assert!(ctl.running(), "the controller exited\n{}", ctl.describe());
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the followers never showed {bp} bp\n{}",
            ctl.describe()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The fencing token a controller printed when it won the election.
fn token_of(ctl: &Controller) -> u64 {
    let out = ctl.stdout();
    let at = out.find("(fencing token ").expect("a leader line") + "(fencing token ".len();
    out[at..]
        .split(')')
        .next()
        .and_then(|t| t.parse().ok())
        .expect("a token")
}

#[test]
fn controllers_on_etcd_drive_followers_of_etcd_through_a_takeover() {
    // The whole HA set-up at once: the journal and the election in etcd ([store]), the
    // weight written to etcd ([router] kind = "etcd", its cluster taken from [store]) and two
    // proxies following it. The leader is killed with SIGKILL in stage 2; the standby takes
    // the run over and its fenced weight writes reach both followers.
    let cluster = LocalCluster::start(3).expect("a local etcd cluster");
    let w = Work::new("etcd-ha-cli");
    let up = Upstreams::start();
    let etcd = vec!["--etcd".to_string(), cluster.endpoints().join(",")];
    let members: Vec<ProxyProcess> = (0..2)
        .map(|i| ProxyProcess::start_with(&w, &up, "etcd-ha", &format!("member{i}"), &etcd))
        .collect();
    for (i, m) in members.iter().enumerate() {
        up.load(m.listen, RPS_EACH, 0, 60 + i as u64);
    }
    let admins: Vec<std::net::SocketAddr> = members.iter().map(|m| m.admin).collect();
    let list = |items: Vec<String>| {
        items
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let router = format!(
        "kind = \"etcd\"\nadmin = [{}]",
        list(admins.iter().map(|a| format!("http://{a}")).collect())
    );
    let store = format!(
        "\n[store]\netcd = [{}]\nlease_ttl = \"4s\"\nrequest_timeout = \"2s\"\ndial_timeout = \"2s\"\n",
        list(cluster.endpoints())
    );
    w.write(
        "plan.toml",
        &shares::plan("etcd-ha", &router, &store, shares::STAGES),
    );
    let mut a = w.spawn("a", &["run", "plan.toml"]);
    wait_for_followers(&admins, 2_000, &mut a);
    let mut b = w.spawn("b", &["run", "plan.toml", "--json", "b.json"]);
    let started = Instant::now();
    while !b.stdout().contains("standby: pid") {
        assert!(
            b.running() && started.elapsed() < Duration::from_secs(30),
            "{}",
            b.describe()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for_followers(&admins, 5_000, &mut a);
    let old = token_of(&a);
    std::thread::sleep(Duration::from_secs(2));
    a.kill9();
    assert_eq!(b.wait(Duration::from_secs(90)), 0, "{}", b.describe());
    assert!(b.stdout().contains("Took over run 1"), "{}", b.describe());
    let new = token_of(&b);
    assert!(
        new > old,
        "the new leader's token {new} is newer than {old}"
    );
    let s: serde_json::Value = w.json("b.json");
    assert_eq!(s["outcome"], "promoted", "{s:#}");
    let indexes: Vec<u64> = s["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|st| st["index"].as_u64().expect("index"))
        .collect();
    assert_eq!(indexes, vec![1, 2, 3], "no stage repeated: {s:#}");
    for m in &members {
        let weights = &m.snapshot()["weights"];
        assert_eq!(weights["canary_bp"], 10_000, "{weights}");
        assert_eq!(
            weights["fence"], new,
            "set under the new leader's fence: {weights}"
        );
    }
}
