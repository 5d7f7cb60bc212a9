//! The Prometheus metrics source against a real Prometheus (Debian's 2.42), scraping a real
//! exporter that this test serves: readings equal what was exported, slots equal the
//! exported increase, resets and churn are gaps, and every failure is a typed error.
//!
//! One server is shared by the tests that run at the same time (each test reads its own
//! series, labelled `test="<name>"`, through the `{{deployment}}` placeholder); it is killed
//! when the last of them drops it.

use ramp_core::plan::{Deployment, PrometheusSource as PlanSource};
use ramp_core::Span;
use ramp_demo::prometheus::{Prometheus, ScrapeJob};
use ramp_live::prometheus::{PromClient, PromError, PrometheusSource};
use ramp_live::seams::MetricsSource;
use ramp_live::source::Counters;
use ramp_stats::Histogram;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One pod's exported histogram and failures.
#[derive(Debug, Clone, Copy, Default)]
struct Pod {
    /// Cumulative bucket counts at `le` 0.05, 0.1 and `+Inf` (the last is `_count`).
    le: [u64; 3],
    /// Its 5xx counter; `None` before its first failure (no series, as real services do).
    errors: Option<u64>,
}

/// What the exporter serves: by test, by `(pod, version)`.
type Exported = Arc<Mutex<BTreeMap<String, BTreeMap<(String, String), Pod>>>>;

/// The shared server and the exporter it scrapes.
struct Env {
    /// The real Prometheus.
    prometheus: Prometheus,
    /// The exporter's values, set by the tests.
    exported: Exported,
    /// Stops the exporter's thread when dropped.
    _stop: std::sync::mpsc::Sender<()>,
}

/// The environment shared by the tests running now.
static SHARED: tokio::sync::Mutex<Weak<Env>> = tokio::sync::Mutex::const_new(Weak::new());

/// The shared environment, started when no running test holds one.
async fn env() -> Arc<Env> {
    let mut shared = SHARED.lock().await;
    if let Some(env) = shared.upgrade() {
        return env;
    }
    let exported = Exported::default();
    let (addr, stop) = exporter(exported.clone());
    let prometheus = Prometheus::start(&[ScrapeJob::new("ramp-test", &[addr])])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let env = Arc::new(Env {
        prometheus,
        exported,
        _stop: stop,
    });
    *shared = Arc::downgrade(&env);
    env
}

/// Serves the text exposition of `exported` on a loopback port, from a thread of its own (so
/// it outlives the runtime of the test that started it) until the sender is dropped.
fn exporter(exported: Exported) -> (SocketAddr, std::sync::mpsc::Sender<()>) {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
            tx.send(listener.local_addr().expect("an address")).expect("sent");
            loop {
                if matches!(stopped.try_recv(), Err(std::sync::mpsc::TryRecvError::Disconnected)) {
                    return;
                }
                let Ok(Ok((mut stream, _))) =
                    tokio::time::timeout(Duration::from_millis(200), listener.accept()).await
                else {
                    continue;
                };
                let body = exposition(&exported.lock().expect("not poisoned"));
                tokio::spawn(async move {
                    let mut head = [0u8; 4096];
                    let _ = stream.read(&mut head).await;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
    });
    (rx.recv().expect("the exporter's address"), stop)
}

/// The text exposition of every test's pods: a histogram family and a 5xx counter family.
fn exposition(exported: &BTreeMap<String, BTreeMap<(String, String), Pod>>) -> String {
    let mut out = String::from("# TYPE http_request_duration_seconds histogram\n");
    let pods = || {
        exported.iter().flat_map(|(test, pods)| {
            pods.iter().map(move |((pod, version), p)| {
                (
                    format!(r#"test="{test}",pod="{pod}",version="{version}""#),
                    p,
                )
            })
        })
    };
    for (labels, p) in pods() {
        for (le, count) in ["0.05", "0.1", "+Inf"].iter().zip(p.le) {
            let _ = writeln!(
                out,
                r#"http_request_duration_seconds_bucket{{{labels},le="{le}"}} {count}"#
            );
        }
        let _ = writeln!(
            out,
            "http_request_duration_seconds_sum{{{labels}}} {}",
            p.le[2] as f64 * 0.03
        );
        let _ = writeln!(
            out,
            "http_request_duration_seconds_count{{{labels}}} {}",
            p.le[2]
        );
    }
    out.push_str("# TYPE http_requests_total counter\n");
    for (labels, p) in pods() {
        if let Some(errors) = p.errors {
            let _ = writeln!(
                out,
                r#"http_requests_total{{{labels},code="503"}} {errors}"#
            );
        }
    }
    out
}

impl Env {
    /// Sets (or with `None` removes) one pod of `test`.
    fn set(&self, test: &str, pod: &str, version: &str, value: Option<Pod>) {
        let mut exported = self.exported.lock().expect("not poisoned");
        let pods = exported.entry(test.to_string()).or_default();
        let key = (pod.to_string(), version.to_string());
        match value {
            Some(p) => pods.insert(key, p),
            None => pods.remove(&key),
        };
    }

    /// Exports two canary pods of 10 requests and a stable pod of 5 for `test`.
    fn two_canaries_and_a_stable(&self, test: &str) -> (Pod, Pod, Pod) {
        let (a, b, s) = (pod(10, 0, 0, None), pod(10, 0, 0, None), pod(5, 0, 0, None));
        self.set(test, "a", "canary", Some(a));
        self.set(test, "b", "canary", Some(b));
        self.set(test, "s", "stable", Some(s));
        (a, b, s)
    }

    /// A source reading `test`'s series.
    fn source(&self, test: &str, buckets: bool) -> PrometheusSource {
        plan_source(
            &self.prometheus.url(),
            test,
            buckets,
            Duration::from_secs(2),
        )
    }
}

/// A source reading `test`'s series from `url`.
fn plan_source(url: &str, test: &str, buckets: bool, timeout: Duration) -> PrometheusSource {
    let plan = PlanSource {
        url: url.to_string(),
        token_file: None,
        timeout: Span(u64::try_from(timeout.as_millis()).expect("small")),
        canary_label: "canary".into(),
        stable_label: "stable".into(),
        requests: r#"http_request_duration_seconds_count{version="{{cohort}}",test="{{deployment}}"}"#.into(),
        errors: r#"http_requests_total{version="{{cohort}}",test="{{deployment}}",code=~"5.."}"#.into(),
        latency_buckets: buckets.then(|| {
            r#"http_request_duration_seconds_bucket{version="{{cohort}}",test="{{deployment}}"}"#.into()
        }),
    };
    let deployment = Deployment {
        id: test.to_string(),
        service: "checkout".into(),
        environment: "test".into(),
        start: None,
        start_second_of_day: 0,
    };
    PrometheusSource::new(&plan, &deployment, Span(1000), None).unwrap_or_else(|e| panic!("{e}"))
}

/// `(completed, errors, buckets)` of one cohort's pods, as the source must read them.
fn expected(pods: &[Pod]) -> (u64, u64, Vec<(u32, u64)>) {
    let sum = |f: &dyn Fn(&Pod) -> u64| pods.iter().map(f).sum::<u64>();
    let at = |ms: f64| u32::try_from(Histogram::index_of(ms)).expect("small");
    let buckets = [
        (0, sum(&|p| p.le[0])),
        (at(50.0), sum(&|p| p.le[1] - p.le[0])),
        (at(100.0), sum(&|p| p.le[2] - p.le[1])),
    ];
    (
        sum(&|p| p.le[2]),
        sum(&|p| p.errors.unwrap_or(0)),
        buckets.into_iter().filter(|b| b.1 > 0).collect(),
    )
}

/// Reads until the counters are `canary` and `stable` (Prometheus scrapes every second),
/// for at most 10 s; `buckets` when the source reads the histogram.
async fn until(
    source: &PrometheusSource,
    canary: &[Pod],
    stable: &[Pod],
    buckets: bool,
) -> Counters {
    let cohort = |pods: &[Pod]| {
        let (completed, errors, mut b) = expected(pods);
        if !buckets {
            b.clear();
        }
        (completed, errors, b)
    };
    let want = (cohort(canary), cohort(stable));
    let mut last = String::new();
    for _ in 0..50 {
        match source.read_counters().await {
            Ok(c) => {
                let got = (
                    (
                        c.canary.completed,
                        c.canary.errors,
                        c.canary.buckets.clone(),
                    ),
                    (
                        c.stable.completed,
                        c.stable.errors,
                        c.stable.buckets.clone(),
                    ),
                );
                if got == want {
                    return c;
                }
                last = format!("{got:?}");
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the source never read {want:?}; last: {last}");
}

/// A pod that served `fast` requests under 50 ms, `mid` under 100 ms and `slow` above.
fn pod(fast: u64, mid: u64, slow: u64, errors: Option<u64>) -> Pod {
    Pod {
        le: [fast, fast + mid, fast + mid + slow],
        errors,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_is_what_was_exported_and_a_slot_is_the_increase() {
    let env = env().await;
    let t = "slot";
    let (a0, b0, s0) = (
        pod(10, 5, 1, None),
        pod(7, 0, 2, Some(1)),
        pod(20, 3, 0, None),
    );
    env.set(t, "a", "canary", Some(a0));
    env.set(t, "b", "canary", Some(b0));
    env.set(t, "s", "stable", Some(s0));
    let source = env.source(t, true);
    let first = until(&source, &[a0, b0], &[s0], true).await;
    assert_eq!(first.canary.coarse_bounds_us, Some(vec![50_000, 100_000]));
    // Pod a fails for the first time: its 5xx series appears, which is no gap.
    let (a1, b1, s1) = (
        pod(14, 6, 1, Some(2)),
        pod(9, 1, 2, Some(1)),
        pod(25, 3, 1, None),
    );
    env.set(t, "a", "canary", Some(a1));
    env.set(t, "b", "canary", Some(b1));
    env.set(t, "s", "stable", Some(s1));
    let second = until(&source, &[a1, b1], &[s1], true).await;
    assert_eq!(second.gap_since(&first), None, "one stream of counts");
    let slot = second.slot_since(&first, 1000, 2000);
    assert_eq!((slot.canary.requests, slot.canary.errors), (5 + 3, 2));
    assert_eq!((slot.stable.requests, slot.stable.errors), (6, 0));
    let at = |ms: f64| Histogram::index_of(ms);
    assert_eq!(slot.canary.latency.buckets(), vec![(0, 6), (at(50.0), 2)]);
    assert_eq!(slot.stable.latency.buckets(), vec![(0, 5), (at(100.0), 1)]);
    assert_eq!(slot.canary.coarse_bounds_us, Some(vec![50_000, 100_000]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_of_one_pod_is_a_gap_even_when_the_sum_goes_up() {
    let env = env().await;
    let t = "reset";
    let (a0, b0, s0) = env.two_canaries_and_a_stable(t);
    let source = env.source(t, true);
    let before = until(&source, &[a0, b0], &[s0], true).await;
    // Pod a restarted (its counters began again) while b served more: the sum went up.
    let (a1, b1) = (pod(2, 0, 0, None), pod(30, 0, 0, None));
    env.set(t, "a", "canary", Some(a1));
    env.set(t, "b", "canary", Some(b1));
    let after = until(&source, &[a1, b1], &[s0], true).await;
    assert!(after.canary.completed > before.canary.completed);
    assert_ne!(after.epoch, before.epoch);
    assert!(
        after
            .gap_since(&before)
            .is_some_and(|r| r.contains("reset")),
        "{:?}",
        after.gap_since(&before)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_disappears_is_a_gap() {
    let env = env().await;
    let t = "gone";
    let (a0, b0, s0) = env.two_canaries_and_a_stable(t);
    // Without a histogram: requests come from the `_count` series alone.
    let source = env.source(t, false);
    let before = until(&source, &[a0, b0], &[s0], false).await;
    env.set(t, "b", "canary", None);
    let a1 = pod(25, 0, 0, None);
    env.set(t, "a", "canary", Some(a1));
    let after = until(&source, &[a1], &[s0], false).await;
    assert_ne!(after.epoch, before.epoch);
    assert!(after.gap_since(&before).is_some());
}

/// A cohort without series (a canary that served nothing yet: most client libraries export a
/// labelled series only after its first request) counts nothing, which no gate passes on;
/// its first series counts from zero, in the same stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cohort_without_series_counts_nothing_and_its_first_series_counts_from_zero() {
    let env = env().await;
    let t = "empty";
    let s0 = pod(5, 0, 0, None);
    env.set(t, "s", "stable", Some(s0));
    let source = env.source(t, false);
    let before = until(&source, &[], &[s0], false).await;
    assert_eq!(before.canary.completed, 0);
    // Status and the journal say which query had nothing, while it has nothing.
    let said = MetricsSource::incomplete(&source).expect("the empty query is named");
    assert!(
        said.starts_with("no series for canary: `") && said.contains("version=\"canary\""),
        "{said}"
    );
    let c0 = pod(7, 0, 0, None);
    env.set(t, "c", "canary", Some(c0));
    let after = until(&source, &[c0], &[s0], false).await;
    assert_eq!(MetricsSource::incomplete(&source), None);
    assert!(after.gap_since(&before).is_none(), "a new series is no gap");
    assert_eq!(after.slot_since(&before, 0, 1).canary.requests, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_syntax_error_is_bad_data_and_the_check_refuses_it() {
    let env = env().await;
    let client = PromClient::new(&env.prometheus.url(), None, Duration::from_secs(2)).unwrap();
    let e = client.query("sum(rate(up[1m])", 0).await.unwrap_err();
    assert!(e.is_bad_query(), "{e}");
    let mut plan = PlanSource {
        url: env.prometheus.url(),
        token_file: None,
        timeout: Span(2000),
        canary_label: "canary".into(),
        stable_label: "stable".into(),
        requests: r#"up{job="ramp-test"}"#.into(),
        errors: r#"rate(up[{{interval}}]"#.into(),
        latency_buckets: None,
    };
    let deployment = Deployment {
        id: "check".into(),
        service: "checkout".into(),
        environment: "test".into(),
        start: None,
        start_second_of_day: 0,
    };
    let source = PrometheusSource::new(&plan, &deployment, Span(1000), None).unwrap();
    let e = source.check().await.unwrap_err();
    assert!(
        e.is_bad_query() && e.to_string().contains("rate(up[1s]"),
        "{e}"
    );
    // Well-formed queries pass the check; a cohort with no series yet is a problem reported,
    // not a refusal.
    plan.errors = r#"up{job="ramp-test",version="{{cohort}}"}"#.into();
    let source = PrometheusSource::new(&plan, &deployment, Span(1000), None).unwrap();
    let problems = source.check().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(problems.is_empty(), "{problems:?}");
    plan.requests = r#"up{job="no-such-job",version="{{cohort}}"}"#.into();
    let source = PrometheusSource::new(&plan, &deployment, Span(1000), None).unwrap();
    let problems = source.check().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems
        .iter()
        .all(|p| matches!(p, PromError::Empty { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scalar_query_needs_exactly_one_series() {
    let env = env().await;
    let t = "scalar";
    env.set(t, "a", "canary", Some(pod(3, 0, 0, None)));
    env.set(t, "b", "canary", Some(pod(4, 0, 0, None)));
    let client = PromClient::new(&env.prometheus.url(), None, Duration::from_secs(2)).unwrap();
    let sum = r#"sum(http_request_duration_seconds_count{test="scalar"})"#;
    let mut value = None;
    for _ in 0..50 {
        value = client.scalar(sum, ramp_live::clock::unix_ms()).await.ok();
        if value == Some(7.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(value, Some(7.0), "the sum over both pods");
    let now = ramp_live::clock::unix_ms();
    let several = r#"http_request_duration_seconds_count{test="scalar"}"#;
    let e = client.scalar(several, now).await.unwrap_err();
    assert!(matches!(e, PromError::Several { count: 2, .. }), "{e}");
    let none = r#"http_request_duration_seconds_count{test="no-such-test"}"#;
    let e = client.scalar(none, now).await.unwrap_err();
    assert!(matches!(e, PromError::Empty { .. }), "{e}");
    assert_eq!(
        client.scalar("scalar(vector(0.5))", now).await.unwrap(),
        0.5
    );
    let e = client.scalar("0/0", now).await.unwrap_err();
    assert!(matches!(e, PromError::BadValue { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_or_silent_server_is_an_error() {
    // A port nothing listens on: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let source = plan_source(&format!("http://{addr}"), "x", true, Duration::from_secs(2));
    let e = source.read_counters().await.unwrap_err();
    assert!(matches!(e, PromError::Unreachable { .. }), "{e}");
    // A server that accepts and never answers: the plan's timeout ends the wait.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let source = plan_source(
        &format!("http://{addr}"),
        "x",
        true,
        Duration::from_millis(300),
    );
    let e = source.read_counters().await.unwrap_err();
    assert!(matches!(e, PromError::Timeout { .. }), "{e}");
    held.abort();
}
