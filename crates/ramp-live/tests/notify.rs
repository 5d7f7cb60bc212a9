//! Notifications on loopback: real live rollouts (demo upstreams, Ramp's proxy, load and the
//! live driver in one process) tell tiny HTTP receivers and a program about their events; the
//! receivers fail, hang or are flooded to show retries, rate limits and drops.

#![allow(
    clippy::disallowed_methods,
    reason = "the tests time the live driver against the real clock"
)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use ramp_core::plan::NotifyEvent;
use ramp_core::summary::{Decision, Outcome};
use ramp_core::{parse_plan, Plan};
use ramp_demo::{Behaviour, LoadConfig, Stack};
use ramp_live::notify::{Note, Notifications, QUEUE};
use ramp_live::{ProxyAdmin, RunConfig, RunEnd};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// A receiver on 127.0.0.1: answers 500 to its first `fail_first` requests, then 200; or,
/// when `hang`, never answers. Keeps every JSON body it accepted.
struct Receiver {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Receiver {
    async fn start(fail_first: usize, hang: bool) -> Receiver {
        Receiver::start_with(fail_first, hang, Duration::ZERO).await
    }

    /// A receiver that answers 200 to everything, each answer `delay` after the request.
    async fn slow(delay: Duration) -> Receiver {
        Receiver::start_with(0, false, delay).await
    }

    async fn start_with(fail_first: usize, hang: bool, delay: Duration) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let (h, b) = (Arc::clone(&hits), Arc::clone(&bodies));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (h, b) = (Arc::clone(&h), Arc::clone(&b));
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (h, b) = (Arc::clone(&h), Arc::clone(&b));
                    async move {
                        let n = h.fetch_add(1, Ordering::SeqCst) + 1;
                        let body = Limited::new(req.into_body(), 1 << 20)
                            .collect()
                            .await
                            .map(|c| c.to_bytes())
                            .unwrap_or_default();
                        if hang {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                        tokio::time::sleep(delay).await;
                        let status = if n <= fail_first {
                            500
                        } else {
                            b.lock()
                                .unwrap()
                                .push(serde_json::from_slice(&body).unwrap());
                            200
                        };
                        let resp = hyper::Response::builder()
                            .status(status)
                            .body(Full::new(Bytes::from_static(b"ok")))
                            .unwrap();
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Receiver { addr, hits, bodies }
    }

    fn url(&self) -> String {
        format!("http://{}/services/T0/B0/secret-token", self.addr)
    }

    fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().unwrap().clone()
    }
}

/// Demo upstreams and the proxy on loopback with load; the canary can be made to regress.
struct Rig {
    _stack: Stack,
    canary: Arc<Behaviour>,
    admin: SocketAddr,
}

impl Rig {
    async fn start(rps: f64) -> Rig {
        let stack = Stack::start(
            Behaviour::new("stable", 5.0, 10.0, 15.0, 0.0).unwrap(),
            Behaviour::new("canary", 5.0, 10.0, 15.0, 0.0).unwrap(),
            |_| {},
        )
        .await
        .unwrap();
        let mut load = LoadConfig::new(stack.proxy_addr, rps);
        load.seed = 11;
        tokio::spawn(ramp_demo::run_load(load, stack.stopped()));
        Rig {
            canary: Arc::clone(&stack.canary),
            admin: stack.admin_addr,
            _stack: stack,
        }
    }

    async fn config(&self, plan: &str, dir: &Path) -> RunConfig {
        RunConfig {
            plan: Arc::new(parse(plan)),
            plan_path: "test.toml".into(),
            plan_text: plan.into(),
            base_dir: dir.to_path_buf(),
            journal: dir.join("j.db"),
            router: ProxyAdmin::new(&format!("http://{}", self.admin), None)
                .unwrap()
                .into(),
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

/// The `notification` events of a run, as JSON.
fn notifications(journal: &Path, run_id: i64) -> Vec<serde_json::Value> {
    let j = ramp_store::Journal::open(journal).unwrap();
    j.events(run_id, 0)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "notification")
        .map(|e| serde_json::from_str(&e.body).unwrap())
        .collect()
}

const GATES: &str = r#"
[deployment]
id = "checkout"
service = "svc"
environment = "test"

[gates]
evaluate_every = "1s"
window = "2s"
min_samples = 10
p99_ms = { max = 1000 }
error_rate = { max = "5%" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_is_told_to_slack_a_flaky_webhook_and_a_program() {
    let rig = Rig::start(100.0).await;
    let slack = Receiver::start(0, false).await;
    let flaky = Receiver::start(2, false).await;
    let dir = tempfile::tempdir().unwrap();
    // The Slack URL comes from a file, as a secret would.
    std::fs::write(dir.path().join("slack.url"), format!("{}\n", slack.url())).unwrap();
    let out = dir.path().join("page.json");
    let plan = format!(
        r#"{GATES}
[[stages]]
weight = 25
duration = "60s"
checkpoint = "10s"

[[stages]]
weight = 100
duration = "10s"

[[notify]]
name = "ops channel"
kind = "slack"
url_file = "slack.url"
link = "https://grafana.example.com/d/checkout"

[[notify]]
name = "flaky"
kind = "webhook"
url = "{flaky}"
on = ["rollback"]
timeout = "2s"

[[notify]]
name = "pager"
kind = "command"
command = ["sh", "-c", "cat > \"$1\" && printf '%s|%s|%s' \"$RAMP_NOTIFY_EVENT\" \"$RAMP_NOTIFY_STAGE\" \"$RAMP_NOTIFY_TEXT\" > \"$1.env\"", "page", "{out}"]
on = "rollback"
"#,
        flaky = flaky.url(),
        out = out.display()
    );
    let config = rig.config(&plan, dir.path()).await;
    let canary = Arc::clone(&rig.canary);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(4)).await;
        canary.set_regression(0.3, 0.0);
    });
    let mut lines = Vec::new();
    let mut on = |p: ramp_live::Progress<'_>| {
        if let ramp_live::Progress::Line(_, l) = p {
            lines.push(l)
        }
    };
    let end = ramp_live::run(config, &mut on, std::future::pending())
        .await
        .unwrap();
    let RunEnd::Finished { summary, run_id } = end else {
        panic!("not finished")
    };
    assert_eq!(summary.outcome, Outcome::RolledBack);
    let reason = summary.rollback.as_ref().unwrap().reason.clone();
    assert!(
        reason.contains("error_rate") && reason.contains('%'),
        "{reason}"
    );

    // Slack got the rollback as one sentence naming the deployment, the stage, its weight
    // and the failing number, with blocks and the link.
    let bodies = slack.bodies();
    let rollback = bodies
        .iter()
        .find(|b| b["text"].as_str().unwrap().contains("rolled back"))
        .unwrap_or_else(|| panic!("no rollback message in {bodies:#?}"));
    let text = rollback["text"].as_str().unwrap();
    let sentence = text
        .strip_suffix(" <https://grafana.example.com/d/checkout|Dashboard>")
        .unwrap_or_else(|| panic!("no link at the end of {text:?}"));
    assert!(
        sentence.starts_with("checkout: rolled back at stage 1 of 2 (25 %) after "),
        "{sentence}"
    );
    assert!(
        sentence.contains(reason.trim_end_matches('.')),
        "{sentence}\nvs {reason}"
    );
    assert!(
        sentence.ends_with("; the canary is being drained (weight 0 %)."),
        "{sentence}"
    );
    assert!(
        !sentence.trim_end_matches('.').contains(". "),
        "more than one sentence: {sentence}"
    );
    assert_eq!(rollback["blocks"][0]["type"], "section");
    assert_eq!(rollback["blocks"][0]["text"]["text"], sentence);
    // It was told of the first stage's start before, and of the end after.
    let texts: Vec<&str> = bodies.iter().map(|b| b["text"].as_str().unwrap()).collect();
    assert!(
        texts[0].starts_with(
            "checkout: stage 1 of 2 started: the canary takes 25 % of traffic for 1 min."
        ),
        "{texts:#?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("checkout: finished rolled back at stage 1 of 2 (25 %)")),
        "{texts:#?}"
    );

    // The flaky webhook failed twice, then took Ramp's own JSON; the journal says so.
    assert_eq!(flaky.hits.load(Ordering::SeqCst), 3);
    let got = flaky.bodies();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["event"], "rollback");
    assert_eq!(got[0]["deployment"], "checkout");
    assert_eq!(got[0]["stage"], 1);
    assert_eq!(got[0]["weight_percent"], 25.0);
    assert!(
        got[0]["numbers"]["observed"].as_f64().unwrap() > 0.05,
        "{}",
        got[0]
    );
    assert_eq!(got[0]["numbers"]["fail_level"], 0.05);
    let events = notifications(&dir.path().join("j.db"), run_id);
    let flaky_event = events
        .iter()
        .find(|e| e["notifier"] == "flaky")
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(flaky_event["result"], "delivered");
    assert_eq!(flaky_event["attempts"], 3);
    assert_eq!(flaky_event["detail"], "delivered after 3 attempts");
    // Every message Slack got is journaled delivered; the URL's secret is nowhere.
    let to_slack = events
        .iter()
        .filter(|e| e["notifier"] == "ops channel" && e["result"] == "delivered");
    assert_eq!(to_slack.count(), bodies.len());
    let all = format!("{events:?}{lines:?}");
    assert!(!all.contains("secret-token"), "a URL's path was logged");
    assert!(
        lines
            .iter()
            .any(|l| l == "✓ notify flaky (webhook, rollback): delivered after 3 attempts"),
        "{lines:#?}"
    );

    // The program got the JSON on stdin and the fields in its environment.
    let stdin: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(stdin["event"], "rollback");
    let env = std::fs::read_to_string(format!("{}.env", out.display())).unwrap();
    assert!(
        env.starts_with("rollback|1|checkout: rolled back at stage 1"),
        "{env}"
    );
    assert!(events
        .iter()
        .any(|e| e["notifier"] == "pager" && e["result"] == "delivered"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_target_drops_with_a_note_and_never_delays_a_decision() {
    let rig = Rig::start(100.0).await;
    // A receiver that never answers: every attempt runs into its deadline.
    let stuck = Receiver::start(0, true).await;
    let dir = tempfile::tempdir().unwrap();
    let mut plan = GATES.to_string();
    for w in [10, 25, 40, 60, 80, 100] {
        plan.push_str(&format!("\n[[stages]]\nweight = {w}\nduration = \"2s\"\n"));
    }
    plan.push_str(&format!(
        "\n[[notify]]\nname = \"stuck\"\nkind = \"webhook\"\nurl = \"{}\"\ntimeout = \"1s\"\nattempts = 2\nper_minute = 2\n",
        stuck.url()
    ));
    let config = rig.config(&plan, dir.path()).await;
    let started = Instant::now();
    let end = ramp_live::run(config, &mut |_| {}, std::future::pending())
        .await
        .unwrap();
    let RunEnd::Finished { summary, run_id } = end else {
        panic!("not finished")
    };
    assert_eq!(summary.outcome, Outcome::Promoted, "{:#?}", summary.stages);
    // Every stage was decided on time, whatever the receiver did: 2 s each, plus one
    // evaluation interval to notice the end and a second of slack for a loaded machine
    // (waiting on the receiver would have cost 3 s per note: two 1 s attempts and a 1 s
    // backoff).
    for s in &summary.stages {
        assert_eq!(s.decision, Some(Decision::Proceed));
        assert!(
            s.elapsed_s <= 3.1,
            "stage {} took {} s",
            s.index,
            s.elapsed_s
        );
    }
    let events = notifications(&dir.path().join("j.db"), run_id);
    let count = |result: &str| events.iter().filter(|e| e["result"] == result).count();
    // Two notes a minute: the first two were tried (and failed against the stuck receiver),
    // the rest dropped by the rate limit, each with its note in the journal.
    assert_eq!(count("failed"), 2, "{events:#?}");
    assert!(count("dropped") >= 10, "{events:#?}");
    assert!(events.iter().filter(|e| e["result"] == "dropped").all(
        |e| e["detail"] == "dropped: rate limit: more than 2 messages a minute to this target"
    ));
    assert_eq!(stuck.hits.load(Ordering::SeqCst), 4, "2 notes × 2 attempts");
    // The run's end waited only for those attempts, not for the receiver.
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offering_to_a_full_queue_drops_at_once() {
    let stuck = Receiver::start(0, true).await;
    let plan = parse(&format!(
        "{GATES}\n[[stages]]\nweight = 100\nduration = \"1m\"\n\n[[notify]]\nname = \"stuck\"\nkind = \"slack\"\nurl = \"{}\"\ntimeout = \"30s\"\nattempts = 1\n",
        stuck.url()
    ));
    let (mut n, _results) = Notifications::start(&plan.notify, Path::new(".")).unwrap();
    let note = Note {
        event: NotifyEvent::Breach,
        deployment: "checkout".into(),
        run_id: 1,
        stage: Some(1),
        stages: 1,
        weight_percent: Some(100.0),
        gate: None,
        numbers: Default::default(),
        sentence: "checkout: breach.".into(),
        t_s: 1.0,
        unix_ms: 0,
        rehearsal: false,
    };
    let started = Instant::now();
    let mut dropped = 0;
    for _ in 0..10_000 {
        dropped += n.offer(note.clone()).len();
    }
    let took = started.elapsed();
    // The queue holds QUEUE notes and the task one more at most; everything else is dropped
    // at once, counted, and the offering never waited on the receiver.
    assert!(n.pending() <= QUEUE + 1, "{} pending", n.pending());
    assert_eq!(dropped + n.pending(), 10_000);
    assert_eq!(n.dropped(), dropped as u64);
    assert!(took < Duration::from_secs(2), "offering took {took:?}");
    assert!(n.abandon() <= QUEUE + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_does_not_tell_again_what_it_told_before() {
    let rig = Rig::start(100.0).await;
    let slack = Receiver::start(0, false).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = format!(
        "{GATES}\n[[stages]]\nweight = 20\nduration = \"4s\"\n\n[[stages]]\nweight = 100\nduration = \"2s\"\n\n[[notify]]\nname = \"ops\"\nkind = \"slack\"\nurl = \"{}\"\non = [\"stage_started\", \"finished\"]\n",
        slack.url()
    );
    // Interrupted 2.5 s into stage 1, after its start was told.
    let config = rig.config(&plan, dir.path()).await;
    let end = ramp_live::run(
        config,
        &mut |_| {},
        tokio::time::sleep(Duration::from_millis(2500)),
    )
    .await
    .unwrap();
    assert!(
        matches!(end, RunEnd::Interrupted { run_id: Some(_) }),
        "{end:?}"
    );
    // Resumed: the journal's inputs are replayed, not carried out, so stage 1's start is
    // not told again; stage 2's start and the end are.
    let config = rig.config(&plan, dir.path()).await;
    let end = ramp_live::run(config, &mut |_| {}, std::future::pending())
        .await
        .unwrap();
    let RunEnd::Finished { summary, .. } = end else {
        panic!("not finished")
    };
    assert_eq!(summary.outcome, Outcome::Promoted);
    let texts: Vec<String> = slack
        .bodies()
        .iter()
        .map(|b| b["text"].as_str().unwrap().to_string())
        .collect();
    let told = |prefix: &str| texts.iter().filter(|t| t.starts_with(prefix)).count();
    assert_eq!(told("checkout: stage 1 of 2 started"), 1, "{texts:#?}");
    assert_eq!(told("checkout: stage 2 of 2 started"), 1, "{texts:#?}");
    assert_eq!(told("checkout: promoted after"), 1, "{texts:#?}");
    assert_eq!(texts.len(), 3, "{texts:#?}");
}

/// A delivery still in flight when the run is interrupted is waited for (bounded) and its
/// result journaled, as at the end of a run: the journal never loses what was told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_in_flight_at_an_interrupt_is_journaled() {
    let rig = Rig::start(100.0).await;
    let slack = Receiver::slow(Duration::from_millis(1500)).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = format!(
        "{GATES}\n[[stages]]\nweight = 20\nduration = \"30s\"\n\n[[stages]]\nweight = 100\nduration = \"2s\"\n\n[[notify]]\nname = \"ops\"\nkind = \"slack\"\nurl = \"{}\"\non = [\"stage_started\"]\n",
        slack.url()
    );
    // Interrupted 0.5 s in: stage 1's start was offered at once, and the receiver answers
    // 1.5 s after it is asked.
    let config = rig.config(&plan, dir.path()).await;
    let end = ramp_live::run(
        config,
        &mut |_| {},
        tokio::time::sleep(Duration::from_millis(500)),
    )
    .await
    .unwrap();
    let RunEnd::Interrupted {
        run_id: Some(run_id),
    } = end
    else {
        panic!("{end:?}")
    };
    let told = notifications(&dir.path().join("j.db"), run_id);
    assert_eq!(told.len(), 1, "{told:#?}");
    assert_eq!(told[0]["result"], "delivered", "{told:#?}");
    assert_eq!(slack.bodies().len(), 1);
}
