//! Issue 14: the command router driving a real router. `[router] kind = "command"` whose
//! `set_weight` is `curl` putting the weight to a real `ramp proxy`'s admin API and whose
//! `get_weight` reads it back (`curl … | jq .canary`), judged from a real Prometheus scraping
//! the demo upstreams (commands have no counters). Load goes through the proxy, and the
//! upstreams count what each served.

use super::integrity::{snapshot, ProxyProcess, Upstreams};
use super::shares::{self, assert_stage_shares, run, served_by, STAGES, STAGE_WEIGHTS};
use super::support::Work;
use ramp_demo::{Prometheus, ScrapeJob};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Requests per second sent through the proxy.
const RPS: f64 = 200.0;

/// A Prometheus scraping both upstreams every second; killed on drop.
pub fn prometheus(up: &Upstreams) -> Prometheus {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(Prometheus::start(&[ScrapeJob::new(
        "upstreams",
        &[up.stable, up.canary],
    )]))
    .expect("prometheus starts (scripts/bootstrap.sh installs it)")
}

/// The `[metrics]` table reading `prometheus` with the default templates.
pub fn metrics(prometheus: &Prometheus) -> String {
    format!(
        "[metrics]\nsource = \"prometheus\"\nurl = \"{}\"\n",
        prometheus.url()
    )
}

/// The `[router]` table: curl to the proxy's admin API, without a shell for `set_weight`.
fn router(admin: SocketAddr) -> String {
    format!(
        r#"kind = "command"
set_weight = ["curl", "-fsS", "--max-time", "2", "-X", "PUT", "-H", "content-type: application/json",
  "-d", '{{"canary": {{weight}}, "run": "{{run}}"}}', "http://{admin}/weights"]
get_weight = ["sh", "-c", "curl -fsS --max-time 2 http://{admin}/weights | jq -e .canary"]
timeout = "3s"
"#
    )
}

/// The proxy's canary weight, basis points, for the watcher.
fn weight_reader(admin: SocketAddr) -> impl FnMut() -> Option<u32> + Send + 'static {
    move || Some(snapshot(admin)?["weights"]["canary_bp"].as_u64()? as u32)
}

/// Promoted through curl, each stage's share as planned; a regression rolled back with the
/// proxy drained to 0 by the same command; then a `set_weight` that hangs is killed at its
/// timeout every time and the rollout holds, saying why, until it halts with the canary
/// never exposed.
#[test]
fn a_command_router_drives_a_real_proxy_and_a_hanging_command_is_killed() {
    let started = Instant::now();
    let w = Work::new("command-run");
    let up = Upstreams::start();
    let proxy = ProxyProcess::start(&w, &up, "command-test", "proxy");
    up.load(proxy.listen, RPS, 0, 43);
    let prom = prometheus(&up);
    let plan = shares::plan(
        "command-test",
        &router(proxy.admin),
        &metrics(&prom),
        STAGES,
    );
    w.write("plan.toml", &plan);

    let (code, s, segments, said) = run(&w, "s.json", weight_reader(proxy.admin), served_by(&up));
    assert_eq!(code, 0, "{said}");
    assert_eq!(s["outcome"], "promoted", "{s:#}");
    let measured = assert_stage_shares(&segments, &STAGE_WEIGHTS, 50.0);
    // The weights were set by the run (curl passed `{run}` along).
    let weights = proxy.snapshot()["weights"].clone();
    assert_eq!(weights["canary_bp"], 10_000, "{weights:#}");
    assert!(weights["set_by"].is_string(), "{weights:#}");
    eprintln!("command router shares (weight, measured %, requests): {measured:?}");

    up.canary_served.set_regression(0.3, 0.0);
    let (code, s, segments, said) = run(&w, "s2.json", weight_reader(proxy.admin), served_by(&up));
    assert_eq!(code, 3, "{said}");
    assert_eq!(s["rollback"]["stage"], 1, "{s:#}");
    assert_stage_shares(&segments, &[20.0], 50.0);
    assert_eq!(weight_reader(proxy.admin)(), Some(0));
    let after = up.canary_served.served().requests;
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        up.canary_served.served().requests,
        after,
        "canary not drained"
    );
    up.canary_served.clear_regression();

    // A set_weight that hangs (it records its pid, then sleeps for a minute).
    let hang = r#"kind = "command"
set_weight = ["sh", "-c", "echo $$ >> hung.pids; exec sleep 60"]
timeout = "500ms"
"#;
    let stages = "max_unobserved = \"4s\"\n".to_string() + STAGES;
    w.write(
        "plan.toml",
        &shares::plan("command-hang", hang, &metrics(&prom), &stages),
    );
    let t0 = Instant::now();
    let (code, s, _, said) = run(&w, "s3.json", weight_reader(proxy.admin), served_by(&up));
    let took = t0.elapsed();
    assert_eq!(code, 4, "{said}");
    assert_eq!(s["outcome"], "halted", "{s:#}\n{said}");
    assert!(
        said.contains("Could not set the weight to 20% (attempt 1)")
            && said.contains("timed out after 500 ms"),
        "{said}"
    );
    // The halt names what could not be read: the command router, asked for the weight in
    // force, not "the proxy" nor Prometheus (which answered).
    let reason = s["stages"][0]["reasons"].to_string();
    assert!(
        reason.contains("the command router could not be read (command router (sh): no weight set by this controller yet"),
        "{reason}"
    );
    // Commands name no deployment, and that is no reason for a warning about a Ramp proxy's
    // sticky-routing salt.
    assert!(!said.contains("names no deployment"), "{said}");
    // The final weight is tried one more round of five attempts, not ten rounds (some 37 s
    // more with this 500 ms timeout, eight minutes with the default 10 s): about 12 s in all.
    assert!(
        took < Duration::from_secs(25),
        "the halted run took {took:?} to end\n{said}"
    );
    // Every attempt was killed at its timeout: none of the sleeps outlived the run.
    let pids = std::fs::read_to_string(w.path("hung.pids")).unwrap_or_default();
    assert!(pids.lines().count() >= 2, "{pids:?}\n{said}");
    for pid in pids.lines() {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "set_weight's process {pid} outlived its timeout"
        );
    }
    // The canary was never exposed: the proxy stayed at 0.
    assert_eq!(weight_reader(proxy.admin)(), Some(0));
    assert_eq!(up.canary_served.served().requests, after);
    eprintln!(
        "command router: {:.1} s (the hanging run {:.1} s)",
        started.elapsed().as_secs_f64(),
        took.as_secs_f64()
    );
}
