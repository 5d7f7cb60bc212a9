//! Issue 15: `[router] kind = "etcd"` driven by the `ramp` binary. Two `ramp proxy --etcd`
//! processes follow the deployment's weight key in a real three-member etcd cluster; `ramp
//! run` writes each stage's weight there once and confirms it on both proxies' admin APIs,
//! whose snapshots it sums for the gates. Each stage's share is measured at the upstreams.

use super::integrity::{snapshot, ProxyProcess, Upstreams};
use super::shares;
use super::support::Work;
use ramp_etcd::cluster::LocalCluster;
use std::time::Instant;

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
