//! Live runs on loopback: real demo upstreams, Ramp's proxy, open-loop load and the live
//! driver, in one process (the binary's tests cover `kill -9` and the CLI verbs).

#![allow(
    clippy::disallowed_methods,
    reason = "the tests time the live driver against the real clock"
)]

use ramp_core::summary::{Decision, Outcome};
use ramp_core::{parse_plan, Plan, Weight};
use ramp_demo::{Behaviour, LoadConfig, Stack};
use ramp_live::{ProxyAdmin, RunConfig, RunEnd};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Two upstreams, the proxy and load, all on loopback, stopped on drop of `stop`.
struct Rig {
    /// The upstreams and the proxy; dropping it stops them and the load.
    _stack: Stack,
    /// The canary upstream, to make it regress.
    canary: Arc<Behaviour>,
    /// The proxy's admin API.
    admin: SocketAddr,
}

impl Rig {
    async fn start(rps: f64) -> Rig {
        Rig::start_for(rps, None).await
    }

    /// A rig whose proxy names `deployment` (none: the proxy's default).
    async fn start_for(rps: f64, deployment: Option<&str>) -> Rig {
        let stack = Stack::start(
            Behaviour::new("stable", 5.0, 10.0, 15.0, 0.0).unwrap(),
            Behaviour::new("canary", 5.0, 10.0, 15.0, 0.0).unwrap(),
            |config| {
                if let Some(id) = deployment {
                    config.deployment_id = id.into();
                }
            },
        )
        .await
        .unwrap();
        let mut load = LoadConfig::new(stack.proxy_addr, rps);
        load.seed = 7;
        tokio::spawn(ramp_demo::run_load(load, stack.stopped()));
        Rig {
            canary: Arc::clone(&stack.canary),
            admin: stack.admin_addr,
            _stack: stack,
        }
    }

    fn proxy(&self) -> ProxyAdmin {
        ProxyAdmin::new(&format!("http://{}", self.admin), None).unwrap()
    }

    async fn config(&self, plan: &str, journal: &std::path::Path) -> RunConfig {
        RunConfig {
            plan: Arc::new(parse(plan)),
            plan_path: "test.toml".into(),
            plan_text: plan.into(),
            base_dir: ".".into(),
            journal: journal.to_path_buf(),
            router: self.proxy().into(),
            control_listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            control_token: None,
            metrics_token: None,
            rehearsal: None,
            ofrep_listener: None,
            ofrep_token: None,
            halt_on_interrupt: None,
            new_run: false,
            fence: ramp_live::seams::FenceToken::none(),
        }
    }
}

fn parse(text: &str) -> Plan {
    parse_plan(text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

const GATES: &str = r#"
[deployment]
id = "live-test"
service = "svc"
environment = "test"

[gates]
evaluate_every = "1s"
window = "3s"
min_samples = 10
p99_ms = { max = 1000 }
error_rate = { max = "5%" }
"#;

/// Gates that only a broken canary fails: for tests of ordering (schedules, approvals) rather
/// than of verdicts, so that a CPU-starved machine's latency does not end their run early
/// (a run of the schedule test under a load average of 16 on two cores rolled back on p99).
const LENIENT_GATES: &str = r#"
[deployment]
id = "live-test"
service = "svc"
environment = "test"

[gates]
evaluate_every = "1s"
window = "3s"
min_samples = 10
p99_ms = { max = 30000 }
error_rate = { max = "50%" }
"#;

fn three_stages() -> String {
    format!(
        r#"{GATES}
[[stages]]
weight = 10
duration = "4s"
checkpoint = "2s"

[[stages]]
weight = 50
duration = "4s"
checkpoint = "2s"

[[stages]]
weight = 100
duration = "3s"
checkpoint = "3s"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_canary_is_promoted_through_every_stage() {
    let rig = Rig::start_for(100.0, Some("live-test")).await;
    let dir = tempfile::tempdir().unwrap();
    let config = rig.config(&three_stages(), &dir.path().join("j.db")).await;
    let mut lines = Vec::new();
    let mut on = |p: ramp_live::Progress<'_>| {
        if let ramp_live::Progress::Line(_, l) = p {
            lines.push(l)
        }
    };
    let end = ramp_live::run(config, &mut on, std::future::pending())
        .await
        .unwrap();
    let RunEnd::Finished { summary, .. } = end else {
        panic!("not finished")
    };
    assert_eq!(summary.outcome, Outcome::Promoted, "{:#?}", summary.stages);
    assert_eq!(summary.mode, "live");
    let decisions: Vec<_> = summary.stages.iter().map(|s| s.decision).collect();
    assert_eq!(decisions, vec![Some(Decision::Proceed); 3]);
    // About 11 s at 100 req/s went through the proxy and were measured.
    assert!(
        (800..=1400).contains(&summary.totals.requests),
        "{} requests",
        summary.totals.requests
    );
    for (st, checkpoints) in summary.stages.iter().zip([2, 2, 1]) {
        assert_eq!(st.checkpoints.len(), checkpoints, "stage {}", st.index);
    }
    assert_eq!(rig.proxy().read().await.unwrap().canary_bp, 10_000);
    // The proxy serves this plan's deployment: no warning about its identity.
    assert!(
        !lines.iter().any(|l| l.contains("names no deployment")),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_cannot_be_resumed_is_halted_and_recorded_finished_when_interrupted() {
    let rig = Rig::start(50.0).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.db");
    let mut config = rig.config(&three_stages(), &journal).await;
    config.halt_on_interrupt = Some("the demo was interrupted".into());
    let end = ramp_live::run(
        config,
        &mut |_| {},
        tokio::time::sleep(Duration::from_millis(1500)),
    )
    .await
    .unwrap();
    let RunEnd::Finished { summary, run_id } = end else {
        panic!("left open: {end:?}")
    };
    assert_eq!(summary.outcome, Outcome::Halted);
    assert!(
        summary
            .timeline
            .iter()
            .any(|e| e.message.contains("the demo was interrupted")),
        "{:#?}",
        summary.timeline
    );
    let j = ramp_store::Journal::open(&journal).unwrap();
    let run = j.run(run_id).unwrap().unwrap();
    assert_eq!(run.status, ramp_store::RunStatus::Finished);
    assert_eq!(run.outcome.as_deref(), Some("halted"));
    assert!(j.active_run("live-test").unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_of_another_deployment_is_refused_before_anything_is_sent_to_it() {
    let rig = Rig::start_for(50.0, Some("payments")).await;
    rig.proxy()
        .set_weight(Weight::from_percent(40.0).unwrap(), None)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = rig.config(&three_stages(), &dir.path().join("j.db")).await;
    let err = ramp_live::run(config, &mut |_| {}, std::future::pending())
        .await
        .expect_err("a proxy of another deployment");
    assert!(
        matches!(&err, ramp_live::LiveError::WrongProxy { proxy, plan, .. }
            if proxy == "payments" && plan == "live-test"),
        "{err}"
    );
    assert!(
        err.to_string().contains("deployment_id = \"live-test\""),
        "{err}"
    );
    // Its weight is untouched: not even the weight 0 a fresh run sets before its checks.
    assert_eq!(rig.proxy().read().await.unwrap().canary_bp, 4_000);

    // A proxy that names no deployment is driven, with a warning.
    let unnamed = Rig::start(50.0).await;
    let config = unnamed
        .config(&three_stages(), &dir.path().join("k.db"))
        .await;
    let mut lines = Vec::new();
    let mut on = |p: ramp_live::Progress<'_>| {
        if let ramp_live::Progress::Line(_, l) = p {
            lines.push(l)
        }
    };
    let end = ramp_live::run(
        config,
        &mut on,
        tokio::time::sleep(Duration::from_millis(1500)),
    )
    .await
    .unwrap();
    assert!(matches!(end, RunEnd::Interrupted { .. }));
    assert!(
        lines.iter().any(|l| l.contains("names no deployment")),
        "{lines:#?}"
    );
    assert_eq!(unnamed.proxy().read().await.unwrap().canary_bp, 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_that_starts_failing_is_rolled_back_within_seconds() {
    let rig = Rig::start(100.0).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = format!(
        r#"{GATES}
[[stages]]
weight = 25
duration = "60s"
checkpoint = "10s"

[[stages]]
weight = 100
duration = "10s"
"#
    );
    let config = rig.config(&plan, &dir.path().join("j.db")).await;
    let canary = Arc::clone(&rig.canary);
    let proxy = rig.proxy();
    // Break the canary 4 s in, then time how long until the proxy routes nothing to it.
    let watcher = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(4)).await;
        canary.set_regression(1.0, 0.0);
        let broke = Instant::now();
        loop {
            if proxy.read().await.unwrap().canary_bp == 0 {
                return broke.elapsed();
            }
            assert!(
                broke.elapsed() < Duration::from_secs(30),
                "never rolled back"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let end = ramp_live::run(config, &mut |_| {}, std::future::pending())
        .await
        .unwrap();
    let RunEnd::Finished { summary, .. } = end else {
        panic!("not finished")
    };
    assert_eq!(summary.outcome, Outcome::RolledBack);
    let rb = summary.rollback.as_ref().unwrap();
    assert_eq!(rb.stage, 1);
    assert!(rb.reason.contains("error_rate"), "{}", rb.reason);
    let took = watcher.await.unwrap();
    assert!(took < Duration::from_secs(5), "weight 0 after {took:?}");
}

/// The wall clock, in Unix ms, as the journal's events record it.
fn unix_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    i64::try_from(since.unwrap().as_millis()).unwrap()
}

/// The journal's rollback decision time, which `scripts/bench-propagation.sh` measures
/// rollback propagation from, is written at the decision: after the canary broke, and before
/// the router is asked to drain the canary. Journaled after acting, it would make every
/// router's propagation look shorter than it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollback_decision_time_is_journaled_before_the_router_is_asked_to_drain() {
    let rig = Rig::start(100.0).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = format!(
        r#"{GATES}
[[stages]]
weight = 25
duration = "60s"
checkpoint = "10s"

[[stages]]
weight = 100
duration = "10s"
"#
    );
    let drained_at = Arc::new(std::sync::Mutex::new(Vec::new()));
    let unblocked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let relay = admin_relay(rig.admin, unblocked, Some(Arc::clone(&drained_at))).await;
    let journal = dir.path().join("j.db");
    let mut config = rig.config(&plan, &journal).await;
    config.router = ProxyAdmin::new(&format!("http://{relay}"), None)
        .unwrap()
        .into();
    let canary = Arc::clone(&rig.canary);
    let breaker = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let broke = unix_ms();
        canary.set_regression(1.0, 0.0);
        broke
    });
    let end = ramp_live::run(config, &mut |_| {}, std::future::pending())
        .await
        .unwrap();
    let RunEnd::Finished { run_id, summary } = end else {
        panic!("not finished")
    };
    assert_eq!(summary.outcome, Outcome::RolledBack);
    let broke = breaker.await.unwrap();
    let events = ramp_store::Journal::open(&journal)
        .unwrap()
        .events(run_id, 0)
        .unwrap();
    let decided = events
        .iter()
        .find(|e| e.kind == "rollback_initiated")
        .expect("a rollback_initiated event")
        .unix_ms;
    // The first request to drain the canary after it broke (a run may also set 0 % before
    // its first stage).
    let drained = drained_at
        .lock()
        .unwrap()
        .iter()
        .copied()
        .find(|&t| t >= broke)
        .expect("the canary was drained through the relay");
    assert!(
        broke <= decided && decided <= drained,
        "broke at {broke}, decided at {decided}, drain asked at {drained}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_resumes_its_stage_with_the_time_already_spent() {
    let rig = Rig::start(100.0).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.db");
    let plan = three_stages();

    // Interrupt 6 s in: in stage 2 (10 % for 4 s, then 50 %).
    let config = rig.config(&plan, &journal).await;
    let end = ramp_live::run(
        config,
        &mut |_| {},
        tokio::time::sleep(Duration::from_secs(6)),
    )
    .await
    .unwrap();
    assert!(matches!(end, RunEnd::Interrupted { .. }));
    // The proxy keeps routing at the last weight while no controller runs.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rig.proxy().read().await.unwrap().canary_bp, 5_000);

    let config = rig.config(&plan, &journal).await;
    let mut lines = Vec::new();
    let mut on = |p: ramp_live::Progress<'_>| {
        if let ramp_live::Progress::Line(_, l) = p {
            lines.push(l)
        }
    };
    let resumed_at = Instant::now();
    let end = ramp_live::run(config, &mut on, std::future::pending())
        .await
        .unwrap();
    let RunEnd::Finished { summary, run_id } = end else {
        panic!("not finished")
    };
    assert_eq!(run_id, 1, "the same run continued");
    assert!(
        lines.iter().any(|l| l.starts_with("Resumed run 1")),
        "{lines:?}"
    );
    assert_eq!(summary.outcome, Outcome::Promoted);
    let indexes: Vec<usize> = summary.stages.iter().map(|s| s.index).collect();
    assert_eq!(indexes, vec![1, 2, 3], "no stage repeated or skipped");
    // Stage 2 had ~2 s before the interruption and ~1 s of downtime: the resumed part is
    // shorter than a whole stage, and stage 2 still lasted its planned 4 s.
    let stage2 = &summary.stages[1];
    assert!(
        stage2.elapsed_s >= 4.0 && stage2.elapsed_s < 6.0,
        "{}",
        stage2.elapsed_s
    );
    assert_eq!(stage2.checkpoints.len(), 2, "no checkpoint lost");
    assert!(
        resumed_at.elapsed() < Duration::from_secs(7),
        "resumed mid-stage instead of restarting it: {:?}",
        resumed_at.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_rehearsal_times_detection_rollback_and_restoration() {
    let rig = Rig::start(125.0).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = format!(
        r#"{GATES}
p95_ms = {{ max = 500 }}

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
fault = {{ cohort = "canary", fraction = 0.5, add_latency = "800ms", duration = "60s" }}
target = "30s"
restore_window = "1s"
restore_tolerance = 0.5

[router]
admin = "http://127.0.0.1:1"
"#
    );
    let mut config = rig.config(&plan, &dir.path().join("j.db")).await;
    config.rehearsal = Some(config.plan.rehearsals[0].clone());
    let end = ramp_live::run(config, &mut |_| {}, std::future::pending())
        .await
        .unwrap();
    let RunEnd::Finished { summary, .. } = end else {
        panic!("not finished")
    };
    assert_eq!(summary.outcome, Outcome::RolledBack);
    assert_eq!(summary.mode, "rehearsal");
    let r = &summary.rehearsals[0];
    assert_eq!(r.outcome.key(), "rolled_back", "{r:#?}");
    assert_eq!(r.fault, "+800 ms on 50% of canary requests");
    let onset = r.fault_onset_s;
    let (det, rb, rest, total) = (
        r.detection_s.unwrap(),
        r.rollback_s.unwrap(),
        r.restoration_s.unwrap(),
        r.total_recovery_s.unwrap(),
    );
    assert!((5.0..7.0).contains(&onset), "onset {onset}");
    assert!(onset < det && det <= rb && rb <= rest, "{r:#?}");
    assert!((total - (rest - onset)).abs() < 1e-9);
    assert!(total < 30.0, "{r:#?}");
    assert!(r.reference.p95_ms.unwrap() < 100.0, "{r:#?}");
    // The proxy routes nothing to the canary afterwards.
    assert_eq!(rig.proxy().read().await.unwrap().canary_bp, 0);
}

/// A real OpenFeature client (the Rust SDK with its OFREP provider) of the server at `base`.
async fn openfeature_client(base: String) -> open_feature::Client {
    named_openfeature_client(base, "live-rollout").await
}

/// The same, registered under `name`, so that tests running at once do not replace each
/// other's provider.
async fn named_openfeature_client(base: String, name: &str) -> open_feature::Client {
    let provider = open_feature_ofrep::OfrepProvider::new(open_feature_ofrep::OfrepOptions {
        base_url: base,
        headers: reqwest::header::HeaderMap::new(),
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    })
    .await
    .expect("an OFREP provider");
    let mut api = open_feature::OpenFeature::singleton_mut().await;
    api.set_named_provider(name, provider).await;
    api.create_named_client(name)
}

/// The value of a boolean flag for `key`, as the application's client sees it.
async fn flag_on(client: &open_feature::Client, flag: &str, key: &str) -> bool {
    let ctx = open_feature::EvaluationContext::default().with_targeting_key(key);
    client
        .get_bool_value(flag, Some(&ctx), None)
        .await
        .unwrap_or_else(|e| panic!("{flag} for {key}: {e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_follow_the_rollout_monotonically_and_a_rollback_turns_them_off() {
    let rig = Rig::start(100.0).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = format!(
        r#"{GATES}
[[stages]]
weight = 10
duration = "4s"

[[stages]]
weight = 50
duration = "4s"

[[stages]]
weight = 100
duration = "60s"

[flags.checkout_v2]
variants = {{ on = true, off = false }}
default_variant = "off"
on_variant = "on"
follow = "rollout"
"#
    );
    let mut config = rig.config(&plan, &dir.path().join("j.db")).await;
    let ofrep = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = openfeature_client(format!("http://{}", ofrep.local_addr().unwrap())).await;
    config.ofrep_listener = Some(ofrep);
    let canary = Arc::clone(&rig.canary);
    let proxy = rig.proxy();
    let watcher = tokio::spawn(async move {
        // (weight in basis points, keys on) at each look, until everyone was on and then off.
        let mut looks: Vec<(u32, Vec<usize>)> = Vec::new();
        let mut broke = false;
        for _ in 0..200 {
            let weight = proxy.read().await.unwrap().canary_bp;
            let mut on = Vec::new();
            for k in 0..100 {
                if flag_on(&api, "checkout_v2", &format!("user-{k}")).await {
                    on.push(k);
                }
            }
            let all = on.len() == 100;
            looks.push((weight, on));
            if all && !broke {
                // Everyone is in: now the canary fails and is rolled back.
                canary.set_regression(1.0, 0.0);
                broke = true;
            }
            if broke && looks.last().unwrap().1.is_empty() {
                return looks;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        panic!("the flags never went all on and then all off: {looks:?}");
    });
    let end = ramp_live::run(config, &mut |_| {}, std::future::pending())
        .await
        .unwrap();
    let RunEnd::Finished { summary, .. } = end else {
        panic!("not finished")
    };
    assert_eq!(summary.outcome, Outcome::RolledBack);
    let looks = watcher.await.unwrap();
    // Until the rollback, a key that was on stays on (the set only grows with the weight).
    let peak = looks.iter().position(|(_, on)| on.len() == 100).unwrap();
    for pair in looks[..=peak].windows(2) {
        let (before, after) = (&pair[0].1, &pair[1].1);
        assert!(
            before.iter().all(|k| after.contains(k)),
            "a key turned off while the rollout grew: {before:?} then {after:?}"
        );
    }
    // Each stage's share of the 100 keys is near its weight (binomial: within 3 sd).
    for (share, bp) in [(0.10_f64, 1_000), (0.50, 5_000)] {
        if let Some((_, on)) = looks.iter().find(|(w, _)| *w == bp) {
            let sd = (100.0 * share * (1.0 - share)).sqrt();
            assert!(
                (on.len() as f64 - 100.0 * share).abs() <= 3.0 * sd + 1.0,
                "{} keys on at {bp} bp",
                on.len()
            );
        }
    }
    assert!(
        looks.last().unwrap().1.is_empty(),
        "everyone is off after the rollback"
    );
    // The report's flag statistics: distinct users per stage, from the OFREP server.
    let rows: Vec<(usize, f64, u64)> = summary
        .flags
        .iter()
        .map(|f| (f.stage, f.weight, f.on_users))
        .collect();
    assert_eq!(
        rows.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
        vec![(1, 10.0), (2, 50.0), (3, 100.0)],
        "{rows:?}"
    );
    assert!(rows.windows(2).all(|w| w[0].2 <= w[1].2), "{rows:?}");
    assert_eq!(rows[2].2, 100, "every polled user was on at 100%");
    assert!(summary
        .flags
        .iter()
        .all(|f| f.key == "checkout_v2" && f.exact));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequential_test_judges_a_live_canary_against_stable_and_explains_itself() {
    let rig = Rig::start(100.0).await;
    let dir = tempfile::tempdir().unwrap();
    // The threshold gate is far too loose to fire: only the canary-versus-stable test can.
    let plan = r#"
[deployment]
id = "live-sequential"
service = "svc"
environment = "test"

[gates]
evaluate_every = "1s"
window = "5s"
min_samples = 10
error_rate = { max = "60%" }
sequential.errors = { alpha = 0.01 }

[[stages]]
weight = 50
duration = "60s"

[[stages]]
weight = 100
duration = "5s"
"#;
    let mut config = rig.config(plan, &dir.path().join("j.db")).await;
    config.control_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let control = config.control_listener.local_addr().unwrap();
    let canary = Arc::clone(&rig.canary);
    // 20% of the canary's requests fail from the start; stable's never do.
    canary.set_regression(0.2, 0.0);
    let status = tokio::spawn(async move {
        // While it runs, the status explains the test in a sentence.
        let api = ramp_live::http::ApiClient::new(
            &format!("http://{control}"),
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if let Ok((code, body)) = api.call(http::Method::GET, "/status", None).await {
                if code == 200 {
                    let v: ramp_live::StatusView = serde_json::from_slice(&body).unwrap();
                    if let Some(t) = v.tests.iter().find(|t| t.test == "sequential_errors") {
                        return Some(t.explanation.clone());
                    }
                }
            }
        }
        None
    });
    let end = ramp_live::run(config, &mut |_| {}, std::future::pending())
        .await
        .unwrap();
    let RunEnd::Finished { summary, .. } = end else {
        panic!("not finished")
    };
    assert_eq!(summary.outcome, Outcome::RolledBack);
    let reason = &summary.rollback.as_ref().unwrap().reason;
    assert!(reason.starts_with("sequential errors test"), "{reason}");
    assert!(
        summary.totals.duration_s < 30.0,
        "{}",
        summary.totals.duration_s
    );
    let explanation = status
        .await
        .unwrap()
        .expect("status showed the sequential test");
    assert!(explanation.contains("canary"), "{explanation}");
}

/// Which of `user-0` … `user-99` the flag `key` is on for, as the application's client sees it.
async fn keys_on(client: &open_feature::Client, key: &str) -> Vec<usize> {
    let mut on = Vec::new();
    for k in 0..100 {
        if flag_on(client, key, &format!("user-{k}")).await {
            on.push(k);
        }
    }
    on
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_flag_moves_on_its_own_clock_survives_a_resume_and_a_rollback_turns_it_off() {
    let rig = Rig::start(100.0).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.db");
    // The rollout stays at 10 % while the flag's own schedule climbs 10 → 50 → 100 %.
    let plan = format!(
        r#"{GATES}
[[stages]]
weight = 10
duration = "60s"

[[stages]]
weight = 100
duration = "10s"

[flags.slow_release]
variants = {{ on = true, off = false }}
default_variant = "off"
on_variant = "on"
schedule = [ {{ after = "0s", weight = 10 }}, {{ after = "2s", weight = 50 }}, {{ after = "4s", weight = 100 }} ]
"#
    );

    // First run: interrupted 3 s in, with the schedule at 50 % (as if killed).
    let mut config = rig.config(&plan, &journal).await;
    config.ofrep_listener = Some(TcpListener::bind("127.0.0.1:0").await.unwrap());
    let end = ramp_live::run(
        config,
        &mut |_| {},
        tokio::time::sleep(Duration::from_secs(3)),
    )
    .await
    .unwrap();
    assert!(matches!(end, RunEnd::Interrupted { .. }));

    // The resumed run continues the schedule from the journaled start: at 50 % or more at
    // once, not back at 10 %; then everyone is on while the rollout is still at 10 %; then
    // the canary fails, the rollout rolls back and the flag is off for everyone.
    let mut config = rig.config(&plan, &journal).await;
    let ofrep = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = named_openfeature_client(
        format!("http://{}", ofrep.local_addr().unwrap()),
        "live-schedule",
    )
    .await;
    config.ofrep_listener = Some(ofrep);
    let canary = Arc::clone(&rig.canary);
    let proxy = rig.proxy();
    let watcher = tokio::spawn(async move {
        let mut looks: Vec<(u32, Vec<usize>)> = Vec::new();
        let mut broke = false;
        for _ in 0..200 {
            let weight = proxy.read().await.unwrap().canary_bp;
            let on = keys_on(&api, "slow_release").await;
            let all = on.len() == 100;
            looks.push((weight, on));
            if all && !broke {
                canary.set_regression(1.0, 0.0);
                broke = true;
            }
            if broke && looks.last().unwrap().1.is_empty() {
                return looks;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("the scheduled flag never went all on and then all off: {looks:?}");
    });
    let end = ramp_live::run(config, &mut |_| {}, std::future::pending())
        .await
        .unwrap();
    let RunEnd::Finished { summary, run_id } = end else {
        panic!("not finished")
    };
    assert_eq!(run_id, 1, "the same run continued");
    assert_eq!(summary.outcome, Outcome::RolledBack);
    assert_eq!(summary.rollback.as_ref().unwrap().stage, 1);
    let looks = watcher.await.unwrap();
    let counts: Vec<(u32, usize)> = looks.iter().map(|(w, on)| (*w, on.len())).collect();
    // The first answer with anyone on is the schedule's 50 % step or later (binomial over
    // 100 keys: 10 % would give about 10).
    let first = looks.iter().find(|(_, on)| !on.is_empty()).unwrap();
    assert!(first.1.len() > 25, "restarted the schedule? {counts:?}");
    // Up to everyone, a key that was on stays on.
    let peak = looks.iter().position(|(_, on)| on.len() == 100).unwrap();
    for pair in looks[..=peak].windows(2) {
        let (before, after) = (&pair[0].1, &pair[1].1);
        assert!(
            before.iter().all(|k| after.contains(k)),
            "a key turned off while the schedule grew: {counts:?}"
        );
    }
    // Everyone on while the proxy still sent only 10 % to the canary: the schedule, not the
    // rollout, moved the flag.
    assert_eq!(looks[peak].0, 1_000, "{counts:?}");
    assert!(looks.last().unwrap().1.is_empty(), "{counts:?}");
    // The report's row: stage 1 ended by the rollback, with the flag at its schedule's 100 %.
    let rows: Vec<(usize, &str, f64)> = summary
        .flags
        .iter()
        .map(|f| (f.stage, f.key.as_str(), f.weight))
        .collect();
    assert_eq!(rows, vec![(1, "slow_release", 100.0)]);
}

/// A relay in front of the proxy's admin API that answers `PUT /weights` with 503 while
/// `block` is set and forwards everything else to the real proxy: a proxy that cannot take a
/// weight for a while, with the rest of the rig real. When `drained_at` is given, the relay
/// appends to it the wall-clock time (Unix ms) at which each `PUT /weights` setting the
/// canary to 0 reached it, before forwarding it.
async fn admin_relay(
    admin: SocketAddr,
    block: Arc<std::sync::atomic::AtomicBool>,
    drained_at: Option<Arc<std::sync::Mutex<Vec<i64>>>>,
) -> SocketAddr {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let client = client.clone();
            let block = Arc::clone(&block);
            let drained_at = drained_at.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let client = client.clone();
                        let block = Arc::clone(&block);
                        let drained_at = drained_at.clone();
                        async move {
                            if req.method() == http::Method::PUT
                                && req.uri().path() == "/weights"
                                && block.load(std::sync::atomic::Ordering::SeqCst)
                            {
                                let mut r =
                                    http::Response::new(Full::new(Bytes::from_static(b"blocked")));
                                *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                                return Ok::<_, std::convert::Infallible>(r);
                            }
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            if let Some(at) = &drained_at {
                                let canary = serde_json::from_slice::<serde_json::Value>(&body)
                                    .ok()
                                    .and_then(|v| v["canary"].as_f64());
                                if parts.method == http::Method::PUT
                                    && parts.uri.path() == "/weights"
                                    && canary == Some(0.0)
                                {
                                    at.lock().unwrap().push(unix_ms());
                                }
                            }
                            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                            let mut out = http::Request::builder()
                                .method(parts.method)
                                .uri(format!("http://{admin}{path}"));
                            for (k, v) in &parts.headers {
                                if k != http::header::HOST {
                                    out = out.header(k, v);
                                }
                            }
                            let resp = client
                                .request(out.body(Full::new(body)).unwrap())
                                .await
                                .unwrap();
                            let (parts, body) = resp.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            Ok(http::Response::from_parts(parts, Full::new(body)))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_waits_for_the_first_stage_that_waits_for_approval() {
    let rig = Rig::start(50.0).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = format!(
        r#"{LENIENT_GATES}
[[stages]]
weight = 10
duration = "60s"
approvals = ["SRE Lead"]

[[stages]]
weight = 100
duration = "10s"

[flags.slow_release]
variants = {{ on = true, off = false }}
default_variant = "off"
on_variant = "on"
schedule = [ {{ after = "0s", weight = 0 }}, {{ after = "2s", weight = 100 }} ]
"#
    );
    let mut config = rig.config(&plan, &dir.path().join("j.db")).await;
    let control = config.control_listener.local_addr().unwrap();
    let ofrep = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = named_openfeature_client(
        format!("http://{}", ofrep.local_addr().unwrap()),
        "live-approval-schedule",
    )
    .await;
    config.ofrep_listener = Some(ofrep);
    let (done, stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = tokio::spawn(async move {
        // Stage 1 waits for its approver for longer than the schedule takes to reach 100 %:
        // no stage runs, so the schedule has not started and nobody has the flag.
        let until = Instant::now() + Duration::from_millis(3500);
        while Instant::now() < until {
            let on = keys_on(&api, "slow_release").await;
            assert!(on.is_empty(), "the schedule ran before any stage: {on:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let client = ramp_live::http::ApiClient::new(
            &format!("http://{control}"),
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        let (status, body) = client
            .call(
                http::Method::POST,
                "/approve",
                Some(r#"{"who":"SRE Lead","reason":"test"}"#.into()),
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        // The first stage starts, and the schedule with it: 0 % first, then everyone at 2 s.
        let started = Instant::now();
        assert!(keys_on(&api, "slow_release").await.len() < 100);
        loop {
            if keys_on(&api, "slow_release").await.len() == 100 {
                break;
            }
            // Only a bound on a hang: the ordering is what the test checks (nobody before
            // the approval, 0 % at first, everyone no sooner than the 2 s step). On a loaded
            // 2-core CI machine, with ten other live rollouts running beside this one, the
            // approval, the first stage's weight and the step once took more than 8 s.
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the schedule never reached 100 %"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(started.elapsed() >= Duration::from_millis(1500));
        let _ = done.send(());
    });
    let mut lines = Vec::new();
    let end = ramp_live::run(
        config,
        &mut |p| {
            if let ramp_live::Progress::Line(_, text) = p {
                lines.push(text);
            }
        },
        async move {
            let _ = stopped.await;
        },
    )
    .await
    .unwrap();
    if let RunEnd::Finished { summary, .. } = &end {
        panic!(
            "the run ended before the schedule was checked: {:?} {:?}\n{}",
            summary.outcome,
            summary.rollback,
            lines.join("\n")
        );
    }
    watcher.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followed_flags_never_lead_the_proxy_toward_more_exposure() {
    let rig = Rig::start(100.0).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = format!(
        r#"{GATES}
[[stages]]
weight = 10
duration = "60s"

[[stages]]
weight = 100
duration = "10s"

[flags.checkout_v2]
variants = {{ on = true, off = false }}
default_variant = "off"
on_variant = "on"
follow = "rollout"
"#
    );
    let block = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let relay = admin_relay(rig.admin, Arc::clone(&block), None).await;
    let mut config = rig.config(&plan, &dir.path().join("j.db")).await;
    config.router = ProxyAdmin::new(&format!("http://{relay}"), None)
        .unwrap()
        .into();
    let ofrep = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = named_openfeature_client(
        format!("http://{}", ofrep.local_addr().unwrap()),
        "live-lead",
    )
    .await;
    config.ofrep_listener = Some(ofrep);
    let proxy = rig.proxy();
    let (done, stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = tokio::spawn(async move {
        // The rollout starts (10 %) while the proxy refuses every weight: it stays at 0 %, and
        // so must the flag, for everyone.
        let until = Instant::now() + Duration::from_secs(4);
        let mut looks = 0;
        while Instant::now() < until {
            assert_eq!(proxy.read().await.unwrap().canary_bp, 0);
            let on = keys_on(&api, "checkout_v2").await;
            assert!(on.is_empty(), "the flag led the proxy: {on:?} on at 0 %");
            looks += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(looks >= 5, "only {looks} looks");
        // Once the proxy takes the weight, the flag follows: exactly the keys bucketed in
        // at 10 %.
        block.store(false, std::sync::atomic::Ordering::SeqCst);
        let want: Vec<usize> = (0..100)
            .filter(|k| {
                ramp_flags::in_rollout(b"checkout_v2", format!("user-{k}").as_bytes(), 1_000)
            })
            .collect();
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            let weight = proxy.read().await.unwrap().canary_bp;
            let on = keys_on(&api, "checkout_v2").await;
            if weight == 1_000 && on == want {
                break;
            }
            assert!(
                Instant::now() < until,
                "never caught up: {weight} bp, {on:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The proxy drops to 0 % on its own (restarted without a state file, changed by
        // hand) while it refuses the controller's weight again: the flag comes down to it
        // at the next reading, and stays there.
        block.store(true, std::sync::atomic::Ordering::SeqCst);
        proxy.set_weight(Weight::ZERO, None).await.unwrap();
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let on = keys_on(&api, "checkout_v2").await;
            if on.is_empty() {
                break;
            }
            assert!(
                Instant::now() < until,
                "the flag stayed ahead of the proxy at 0 %: {on:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(proxy.read().await.unwrap().canary_bp, 0);
        let on = keys_on(&api, "checkout_v2").await;
        assert!(on.is_empty(), "the flag led the proxy again: {on:?}");
        let _ = done.send(());
    });
    let end = ramp_live::run(config, &mut |_| {}, async move {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    assert!(matches!(end, RunEnd::Interrupted { .. }));
    watcher.await.unwrap();
}

/// A router that holds another weight than the stage's (here the proxy's weight is set back
/// to 1 % by hand every 50 ms, as a failed set or a person would leave it) serves traffic at
/// a share the stage does not plan: that time is unobserved, never judged as the stage's,
/// so the stage is not promoted on it; past `max_unobserved` the rollout halts. On the old
/// code every such reading was a slot of the 50 % stage (0 s unobserved): the stage was
/// judged on traffic routed at 1 %.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_at_another_weight_than_the_stages_is_unobserved_not_judged() {
    let rig = Rig::start_for(100.0, Some("live-test")).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = format!(
        r#"{LENIENT_GATES}
[[stages]]
weight = 50
duration = "6s"
checkpoint = "3s"

[[stages]]
weight = 100
duration = "3s"
"#
    );
    let config = rig.config(&plan, &dir.path().join("j.db")).await;
    let saboteur = rig.proxy();
    let hand = tokio::spawn(async move {
        loop {
            let _ = saboteur
                .set_weight(Weight::from_percent(1.0).unwrap(), None)
                .await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let end = ramp_live::run(
        config,
        &mut |_| {},
        tokio::time::sleep(Duration::from_secs(40)),
    )
    .await
    .unwrap();
    hand.abort();
    let RunEnd::Finished { summary, .. } = end else {
        panic!("the run did not finish within 40 s")
    };
    assert_eq!(summary.outcome, Outcome::Halted, "{:#?}", summary.stages);
    let stage = &summary.stages[0];
    assert!(stage.unobserved_s > 1.0, "{stage:#?}");
    let said = summary
        .timeline
        .iter()
        .map(|e| e.message.as_str())
        .chain(stage.reasons.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        said.contains("routed 1% to the canary, not the stage's 50%"),
        "{said}"
    );
}

/// The journal of run 1 cut back to the instant a controller died after journaling input
/// `seq` and before journaling any of its decisions: later inputs and every event from the
/// input's first on are deleted, and so is an engine snapshot covering the input (snapshots
/// are journaled after a step's decisions; only a run's latest is kept, so the run is then
/// replayed from its start). (The metrics cursor stays the last reading's, so the first
/// slot after the resume misses the deleted slots' requests: good enough for what these tests
/// check, the decisions' events.)
fn crash_after_input(journal: &std::path::Path, seq: i64) {
    let db = rusqlite::Connection::open(journal).unwrap();
    let first_event: i64 = db
        .query_row(
            "SELECT min(seq) FROM events WHERE run_id = 1 AND json_extract(body, '$.input_seq') = ?1",
            [seq],
            |r| r.get(0),
        )
        .unwrap();
    db.execute("DELETE FROM inputs WHERE run_id = 1 AND seq > ?1", [seq])
        .unwrap();
    db.execute(
        "DELETE FROM events WHERE run_id = 1 AND seq >= ?1",
        [first_event],
    )
    .unwrap();
    db.execute(
        "DELETE FROM snapshots WHERE run_id = 1 AND after_seq >= ?1",
        [seq],
    )
    .unwrap();
}

/// The `(kind, input_seq)` of run 1's engine events, in journal order.
fn decision_events(journal: &std::path::Path) -> Vec<(String, i64)> {
    let db = rusqlite::Connection::open(journal).unwrap();
    let mut q = db
        .prepare("SELECT kind, json_extract(body, '$.input_seq') FROM events WHERE run_id = 1 AND json_extract(body, '$.input_seq') IS NOT NULL ORDER BY seq")
        .unwrap();
    q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_lost_in_a_crash_after_their_input_are_journaled_on_resume() {
    let rig = Rig::start(100.0).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.db");
    let plan = three_stages();
    // Interrupted 6 s in, in stage 2; then cut back to just after the input that ended
    // stage 1, before its decisions (stage 1 promoted, stage 2 started) were journaled.
    let config = rig.config(&plan, &journal).await;
    let end = ramp_live::run(
        config,
        &mut |_| {},
        tokio::time::sleep(Duration::from_secs(6)),
    )
    .await
    .unwrap();
    assert!(matches!(end, RunEnd::Interrupted { .. }));
    let before = decision_events(&journal);
    let ended_stage_1 = before
        .iter()
        .find(|(kind, _)| kind == "stage_decided")
        .map(|(_, seq)| *seq)
        .expect("stage 1 was decided");
    let decided: Vec<&str> = before
        .iter()
        .filter(|(_, seq)| *seq == ended_stage_1)
        .map(|(kind, _)| kind.as_str())
        .collect();
    crash_after_input(&journal, ended_stage_1);
    assert!(decision_events(&journal)
        .iter()
        .all(|(_, seq)| *seq < ended_stage_1));

    let config = rig.config(&plan, &journal).await;
    let end = ramp_live::run(config, &mut |_| {}, std::future::pending())
        .await
        .unwrap();
    let RunEnd::Finished { summary, .. } = end else {
        panic!("not finished")
    };
    assert_eq!(summary.outcome, Outcome::Promoted);
    // The resumed controller journaled the decisions the dead one had not, as their input's.
    let after = decision_events(&journal);
    let again: Vec<&str> = after
        .iter()
        .filter(|(_, seq)| *seq == ended_stage_1)
        .map(|(kind, _)| kind.as_str())
        .collect();
    assert_eq!(again, decided, "{after:?}");
}
