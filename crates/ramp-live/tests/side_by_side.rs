//! One live rollout judged twice (issue 13): the controller reads canary and stable from a
//! real Prometheus scraping the demo upstreams every second, while this test reads the same
//! traffic from Ramp's proxy's exact `/snapshot` every second and feeds a second engine with
//! the same plan. Both must reach the same decision at every stage, and the same outcome:
//! an equal canary promoted, a regression rolled back in the stage it began in.
//!
//! The shadow engine starts when the proxy first routes to the canary, so its clock trails
//! the controller's by at most one reading; it never moves a weight.

#![allow(
    clippy::disallowed_methods,
    reason = "the test's shadow engine runs on the real clock, as the controller does"
)]

use ramp_core::engine::{Engine, Input, State};
use ramp_core::plan::{MetricsSource, Plan, PrometheusSource};
use ramp_core::summary::Summary;
use ramp_core::{parse_plan, PlanTime};
use ramp_demo::{Behaviour, LoadConfig, Prometheus, ScrapeJob, Stack};
use ramp_live::routers::LiveRouter;
use ramp_live::{ProxyAdmin, RunConfig, RunEnd};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Three short stages, gates with no warn level (a warn would make a stage end `monitor`
/// on noise, which the two readers would not share).
const PLAN: &str = r#"
[deployment]
id = "side-by-side"
service = "svc"
environment = "test"

[gates]
evaluate_every = "1s"
window = "5s"
min_samples = 20
p95_ms = { max = 250 }
error_rate = { max = "5%" }

[[stages]]
weight = 20
duration = "8s"
checkpoint = "4s"

[[stages]]
weight = 50
duration = "8s"
checkpoint = "4s"

[[stages]]
weight = 100
duration = "6s"

[router]
admin = "http://127.0.0.1:1"
"#;

/// Each stage's decision and the outcome, as one line per stage for the log and equality.
fn decisions(s: &Summary) -> Vec<String> {
    let mut lines: Vec<String> = s
        .stages
        .iter()
        .map(|st| {
            format!(
                "stage {}: {}",
                st.index,
                st.decision.map_or("none".into(), |d| d.key().to_string())
            )
        })
        .collect();
    lines.push(format!("outcome: {}", s.outcome.key()));
    lines
}

/// Reads the proxy's `/snapshot` every second from the moment it first routes to the canary,
/// feeding `plan` to an engine of its own, until that engine finishes or `limit` passes.
async fn shadow(admin: ProxyAdmin, plan: Arc<Plan>, limit: Duration) -> Summary {
    let started = Instant::now();
    let mut first = admin.read().await.expect("the proxy answers");
    while first.canary_bp == 0 && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(100)).await;
        first = admin.read().await.expect("the proxy answers");
    }
    let origin = Instant::now();
    let mut engine = Engine::new(plan);
    engine.step(PlanTime(0), Input::Start);
    let mut cursor = first.counters;
    let mut last_ms = 0;
    while !matches!(engine.state(), State::Finished(_)) && started.elapsed() < limit {
        let due = engine.next_tick();
        let wait = due.0.saturating_sub(origin.elapsed().as_millis() as u64);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let now = origin.elapsed().as_millis() as u64;
        let reading = admin.read().await.expect("the proxy answers");
        let input = match reading.counters.gap_since(&cursor) {
            Some(reason) => Input::Gap {
                start_ms: last_ms,
                end_ms: now,
                reason: reason.into(),
            },
            None => Input::Tick(reading.counters.slot_since(&cursor, last_ms, now)),
        };
        engine.step(PlanTime(now), input);
        cursor = reading.counters;
        last_ms = now;
    }
    engine.summary()
}

/// Runs the plan through the controller judging from Prometheus, the shadow judging from
/// the proxy, with `regress` applied to the canary `regress_at` after the start when given.
async fn judged_twice(regress_at: Option<Duration>) -> (Summary, Summary) {
    let stable = Behaviour::new("stable", 20.0, 40.0, 60.0, 0.0).unwrap();
    let canary = Behaviour::new("canary", 20.0, 40.0, 60.0, 0.0).unwrap();
    let stack = Stack::start(stable, canary, |_| {}).await.unwrap();
    let prometheus = Prometheus::start(&[ScrapeJob::new(
        "upstreams",
        &[stack.stable_addr, stack.canary_addr],
    )])
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut load = LoadConfig::new(stack.proxy_addr, 150.0);
    load.seed = 7;
    tokio::spawn(ramp_demo::run_load(load, stack.stopped()));

    let mut plan = parse_plan(PLAN, "side-by-side.toml").unwrap_or_else(|e| panic!("{e}"));
    let from_proxy = Arc::new(plan.clone());
    plan.metrics = MetricsSource::Prometheus;
    plan.prometheus = Some(PrometheusSource::with_defaults(prometheus.url()));
    let admin_url = format!("http://{}", stack.admin_addr);
    let dir = tempfile::tempdir().unwrap();
    let config = RunConfig {
        plan: Arc::new(plan),
        plan_path: "side-by-side.toml".into(),
        plan_text: PLAN.into(),
        base_dir: ".".into(),
        journal: dir.path().join("j.db"),
        router: LiveRouter::Proxy(Box::new(ProxyAdmin::new(&admin_url, None).unwrap())),
        control_listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        control_token: None,
        metrics_token: None,
        rehearsal: None,
        ofrep_listener: None,
        ofrep_token: None,
        halt_on_interrupt: None,
        new_run: false,
        fence: ramp_live::seams::FenceToken::none(),
    };
    let limit = Duration::from_secs(60);
    let shadow = tokio::spawn(shadow(
        ProxyAdmin::new(&admin_url, None).unwrap(),
        from_proxy,
        limit,
    ));
    if let Some(at) = regress_at {
        let canary = Arc::clone(&stack.canary);
        tokio::spawn(async move {
            tokio::time::sleep(at).await;
            canary.set_regression(0.3, 300.0);
        });
    }
    let end = tokio::time::timeout(
        limit,
        ramp_live::run(config, &mut |_| {}, std::future::pending()),
    )
    .await
    .expect("the run ends within its limit")
    .unwrap();
    let RunEnd::Finished { summary, .. } = end else {
        panic!("the run did not finish")
    };
    let from_snapshot = shadow.await.unwrap();
    stack.stop();
    (*summary, from_snapshot)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_and_the_snapshot_agree_on_an_equal_canary_and_on_a_regression() {
    let (prom, snap) = judged_twice(None).await;
    eprintln!(
        "equal canary, judged from Prometheus: {:?}",
        decisions(&prom)
    );
    eprintln!(
        "equal canary, judged from /snapshot:  {:?}",
        decisions(&snap)
    );
    assert_eq!(decisions(&prom), decisions(&snap));
    assert_eq!(prom.outcome.key(), "promoted");

    // The canary regresses 11 s in: in stage 2 for both.
    let (prom, snap) = judged_twice(Some(Duration::from_secs(11))).await;
    eprintln!(
        "regression, judged from Prometheus: {:?} {:?}",
        decisions(&prom),
        prom.rollback.as_ref().map(|r| (r.detection_s, &r.reason))
    );
    eprintln!(
        "regression, judged from /snapshot:  {:?} {:?}",
        decisions(&snap),
        snap.rollback.as_ref().map(|r| (r.detection_s, &r.reason))
    );
    assert_eq!(decisions(&prom), decisions(&snap));
    assert_eq!(prom.outcome.key(), "rolled_back");
    assert_eq!(prom.rollback.as_ref().map(|r| r.stage), Some(2));
}
