//! `GET /metrics` of the controller (on the control API of a real live run: demo upstreams,
//! Ramp's proxy and load on loopback) and of the OFREP server, each page linted by the real
//! `promtool check metrics`, and their values checked to move as the run moves.

#![allow(
    clippy::disallowed_methods,
    reason = "the tests time the live driver against the real clock"
)]

use http::{Method, StatusCode};
use ramp_core::parse_plan;
use ramp_demo::promtool::check_metrics;
use ramp_demo::{Behaviour, LoadConfig, Stack};
use ramp_flags::flags::{parse_flags_file, FlagState};
use ramp_flags::ofrep::{ApiToken, RateLimit, ServeOptions};
use ramp_live::http::ApiClient;
use ramp_live::{ProxyAdmin, RunConfig, RunEnd};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// The token the tests configure: at least 16 characters, as the CLI requires.
const TOKEN: &str = "metrics-token-0123456789";

/// The value of the series written exactly as `series` (name and labels) on `page`.
fn value(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `GET path` with `auth` as the `Authorization` header, if any; status and body.
async fn get(base: &str, path: &str, auth: Option<&str>) -> (StatusCode, String) {
    let mut client = ApiClient::new(base, None, Duration::from_secs(5)).unwrap();
    if let Some(a) = auth {
        client = client.with_header(http::header::AUTHORIZATION, a.parse().unwrap());
    }
    let (status, body) = client.call(Method::GET, path, None).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// Lints `page` with promtool, failing the test with promtool's words.
fn lint(page: &str) {
    if let Err(e) = check_metrics(page) {
        panic!("{e}\n--- the page ---\n{page}");
    }
}

/// Two stages (25 % for 4 s, then 50 %) and a rehearsal whose fault lands in the second: a
/// stage change, then a rollback whose detection delay the controller can measure.
const PLAN: &str = r#"
[deployment]
id = "metrics-test"
service = "svc"
environment = "test"

[gates]
evaluate_every = "1s"
window = "3s"
min_samples = 10
p95_ms = { max = 500 }
error_rate = { max = "5%" }

[[stages]]
weight = 25
duration = "4s"
checkpoint = "2s"

[[stages]]
weight = 50
duration = "60s"
checkpoint = "10s"

[[stages]]
weight = 100
duration = "10s"

[[rehearsals]]
name = "P95 breach"
at = "7s"
fault = { cohort = "canary", fraction = 0.5, add_latency = "800ms", duration = "60s" }
target = "30s"
restore_window = "1s"
restore_tolerance = 0.5

[router]
admin = "http://127.0.0.1:1"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controllers_metrics_follow_a_live_run_through_a_stage_change_and_a_rollback() {
    let healthy = || Behaviour::new("b", 5.0, 10.0, 15.0, 0.0).unwrap();
    let stack = Stack::start(healthy(), healthy(), |_| {}).await.unwrap();
    let mut load = LoadConfig::new(stack.proxy_addr, 125.0);
    load.seed = 11;
    tokio::spawn(ramp_demo::run_load(load, stack.stopped()));
    let dir = tempfile::tempdir().unwrap();
    let plan = Arc::new(parse_plan(PLAN, "test.toml").unwrap_or_else(|e| panic!("{e}")));
    let control_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", control_listener.local_addr().unwrap());
    let config = RunConfig {
        rehearsal: Some(plan.rehearsals[0].clone()),
        plan,
        plan_path: "test.toml".into(),
        plan_text: PLAN.into(),
        base_dir: ".".into(),
        journal: dir.path().join("j.db"),
        router: ProxyAdmin::new(&format!("http://{}", stack.admin_addr), None)
            .unwrap()
            .into(),
        control_listener,
        control_token: None,
        metrics_token: Some(TOKEN.into()),
        ofrep_listener: None,
        ofrep_token: None,
        halt_on_interrupt: None,
        new_run: false,
        fence: ramp_live::seams::FenceToken::none(),
    };
    // Scrape every 200 ms while the run goes on, keeping the pages that matter.
    let scraper = tokio::spawn(async move {
        let auth = format!("bearer {TOKEN}");
        let (mut stage1, mut stage2, mut rolled_back) = (None, None, None);
        let mut dashboard = None;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(40) {
            let (status, page) = get(&base, "/metrics", Some(&auth)).await;
            if status != StatusCode::OK {
                break; // The run ended and its control API with it.
            }
            let state = |s: &str| value(&page, &format!("ramp_rollout_state{{state=\"{s}\"}}"));
            if state("running") == Some(1.0) && value(&page, "ramp_stage") == Some(1.0) {
                stage1.get_or_insert(page.clone());
            }
            if state("running") == Some(1.0) && value(&page, "ramp_stage") == Some(2.0) {
                if stage2.is_none() {
                    dashboard = Some((
                        get(&base, "/", None).await,
                        get(&base, "/dashboard.json", None).await.0,
                        get(&base, "/dashboard.json", Some(&auth)).await,
                    ));
                }
                stage2 = Some(page.clone());
            }
            if state("rolled_back") == Some(1.0) {
                // The token is refused when wrong or missing, before anything is rendered.
                let wrong = get(&base, "/metrics", Some("Bearer wrong-token-0123456789")).await;
                let none = get(&base, "/metrics", None).await;
                rolled_back = Some((page, wrong.0, none.0));
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        (stage1, stage2, rolled_back, dashboard)
    });
    let end = ramp_live::run(config, &mut |_| {}, std::future::pending())
        .await
        .unwrap();
    let RunEnd::Finished { summary, .. } = end else {
        panic!("not finished")
    };
    let (stage1, stage2, rolled_back, dashboard) = scraper.await.unwrap();
    // The dashboard's page is open; its data is as protected as the metrics.
    let ((page_status, page), open, (data_status, data)) =
        dashboard.expect("the dashboard read during stage 2");
    assert_eq!(page_status, StatusCode::OK);
    assert!(page.contains("<title>Ramp dashboard</title>"), "{page}");
    assert_eq!(open, StatusCode::UNAUTHORIZED);
    assert_eq!(data_status, StatusCode::OK, "{data}");
    let data: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(data["stage"]["index"], 2, "{data:#}");
    let history = &data["history"];
    assert_eq!(history["plan"].as_array().unwrap().len(), 3, "{data:#}");
    assert_eq!(history["stages"].as_array().unwrap().len(), 2, "{data:#}");
    assert_eq!(history["stages"][0]["decision"], "proceed", "{data:#}");
    // Stage 1 (4 s, a checkpoint every 2 s) left two checkpoints; each names its stage.
    let checkpoints = history["checkpoints"].as_array().unwrap();
    assert!(
        checkpoints.iter().filter(|c| c["stage"] == 1).count() == 2,
        "{data:#}"
    );
    assert_eq!(history["actions_need_token"], false, "{data:#}");
    let stage1 = stage1.expect("a page during stage 1");
    let stage2 = stage2.expect("a page during stage 2");
    let (last, wrong, none) = rolled_back.expect("a page after the rollback");
    for page in [&stage1, &stage2, &last] {
        lint(page);
    }
    assert_eq!(wrong, StatusCode::UNAUTHORIZED);
    assert_eq!(none, StatusCode::UNAUTHORIZED);

    // The weight moves with the stage.
    assert_eq!(value(&stage1, "ramp_target_weight_ratio"), Some(0.25));
    assert_eq!(value(&stage2, "ramp_target_weight_ratio"), Some(0.5));
    assert_eq!(value(&stage2, "ramp_stage_weight_ratio"), Some(0.5));
    assert_eq!(value(&stage2, "ramp_stages"), Some(3.0));
    assert_eq!(
        value(&stage2, "ramp_decisions_total{decision=\"proceed\"}"),
        Some(1.0)
    );
    let gate = "{gate=\"p95_ms\",scope=\"canary\",stage=\"2\",status=\"pass\"}";
    assert_eq!(
        value(&stage2, &format!("ramp_gate_status{gate}")),
        Some(1.0)
    );
    // Source reads are counted and timed, one a second or so.
    let reads = |p: &str| value(p, "ramp_source_reads_total{source=\"proxy\",result=\"ok\"}");
    let (r1, r2) = (reads(&stage1).unwrap(), reads(&stage2).unwrap());
    assert!(r1 >= 1.0 && r2 > r1, "reads {r1} then {r2}");
    let timed = "ramp_source_read_duration_seconds_count{source=\"proxy\"}";
    assert!(value(&stage2, timed).unwrap() >= r2);
    assert!(value(&stage2, "ramp_journal_writes_total").unwrap() > 0.0);
    assert_eq!(value(&stage2, "ramp_journal_write_errors_total"), Some(0.0));

    // The rollback is counted with the delay from the fault's onset to its detection, the
    // same delay the summary records.
    assert_eq!(value(&last, "ramp_target_weight_ratio"), Some(0.0));
    assert_eq!(value(&last, "ramp_rollbacks_total"), Some(1.0));
    assert_eq!(
        value(&last, "ramp_decisions_total{decision=\"rollback\"}"),
        Some(1.0)
    );
    let fail = "{gate=\"p95_ms\",scope=\"canary\",stage=\"2\",status=\"fail\"}";
    assert_eq!(value(&last, &format!("ramp_gate_status{fail}")), Some(1.0));
    let delay = value(&last, "ramp_last_rollback_detection_seconds").expect("a delay");
    let r = &summary.rehearsals[0];
    let expected = r.detection_s.unwrap() - r.fault_onset_s;
    assert!((delay - expected).abs() < 1e-6, "{delay} vs {expected}");
    assert!(delay > 0.0 && delay < 10.0, "{delay}");
}

/// The flags the OFREP test serves: one following a rollout, one static.
const FLAGS: &str = r##"
[flags.new_checkout]
variants = { on = true, off = false }
default_variant = "off"
on_variant = "on"
weight = 50

[flags.banner]
variants = { red = "#f00", blue = "#00f" }
default_variant = "red"
"##;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ofrep_servers_metrics_count_evaluations_errors_and_refusals() {
    let flags = parse_flags_file(FLAGS, "flags.toml").unwrap();
    let state = Arc::new(FlagState::new(flags));
    let options = ServeOptions {
        token: Some(ApiToken::new(TOKEN).unwrap()),
        rate_limit: Some(RateLimit::new(1.0, 30).unwrap()),
        ..ServeOptions::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ramp_flags::ofrep::serve(listener, state, options, async {
        let _ = stopped.await;
    }));
    let client = ApiClient::new(&base, Some(TOKEN.into()), Duration::from_secs(5)).unwrap();
    let eval = |path: &str, body: &str| {
        let (client, path, body) = (client.clone(), path.to_string(), body.to_string());
        async move {
            client
                .call(Method::POST, &path, Some(body))
                .await
                .unwrap()
                .0
        }
    };
    let single = "/ofrep/v1/evaluate/flags/new_checkout";
    for u in 0..10 {
        let ctx = format!(r#"{{"context":{{"targetingKey":"user-{u}"}}}}"#);
        assert_eq!(eval(single, &ctx).await, StatusCode::OK);
    }
    let ctx = r#"{"context":{"targetingKey":"user-1"}}"#;
    assert_eq!(eval("/ofrep/v1/evaluate/flags", ctx).await, StatusCode::OK);
    assert_eq!(
        eval("/ofrep/v1/evaluate/flags/nope", ctx).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        eval(single, r#"{"context":{}}"#).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(eval(single, "not json").await, StatusCode::BAD_REQUEST);
    // The burst of 30 is used up: the rest are refused with 429.
    let mut limited = 0;
    for _ in 0..30 {
        if eval(single, ctx).await == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert!(limited > 0);
    let (status, _) = get(&base, "/metrics", Some("Bearer wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The scrape is not rate limited, although the clients are.
    let (status, page) = get(&base, "/metrics", Some(&format!("BEARER {TOKEN}"))).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    lint(&page);

    let on = value(&page, "ramp_flags_evaluations_total{flag=\"new_checkout\",variant=\"on\",reason=\"TARGETING_MATCH\"}").unwrap_or(0.0);
    let off = value(&page, "ramp_flags_evaluations_total{flag=\"new_checkout\",variant=\"off\",reason=\"TARGETING_MATCH\"}").unwrap_or(0.0);
    // Ten single evaluations, one bulk and the successful ones among the 30 after them.
    let served = value(
        &page,
        "ramp_flags_requests_total{endpoint=\"single\",code=\"200\"}",
    )
    .unwrap();
    assert_eq!(on + off, served + 1.0, "{page}");
    let banner = "ramp_flags_evaluations_total{flag=\"banner\",variant=\"red\",reason=\"STATIC\"}";
    assert_eq!(value(&page, banner), Some(1.0));
    for (code, n) in [
        ("FLAG_NOT_FOUND", 1.0),
        ("TARGETING_KEY_MISSING", 1.0),
        ("INVALID_CONTEXT", 1.0),
    ] {
        let series = format!("ramp_flags_evaluation_errors_total{{code=\"{code}\"}}");
        assert_eq!(value(&page, &series), Some(n), "{code}");
    }
    assert_eq!(
        value(&page, "ramp_flags_rate_limited_total"),
        Some(f64::from(limited))
    );
    assert_eq!(
        value(
            &page,
            "ramp_flags_requests_total{endpoint=\"metrics\",code=\"401\"}"
        ),
        Some(1.0)
    );
    let timed = "ramp_flags_request_duration_seconds_count{endpoint=\"single\"}";
    assert!(value(&page, timed).unwrap() >= served);
    assert!(!page.contains("user-"), "a targeting key is never a label");
    let _ = stop.send(());
    server.await.unwrap();
}
