//! Issue 14: a live rollout through a real HAProxy (`/usr/sbin/haproxy`, 2.6), driven by the
//! `ramp` binary with `[router] kind = "haproxy"` and judged on HAProxy's own counters, its
//! runtime API on a unix socket in the test's directory. Load goes through HAProxy's
//! frontend to the demo upstreams, which count what each served.

use super::integrity::Upstreams;
use super::shares::{self, assert_stage_shares, run, served_by, STAGES, STAGE_WEIGHTS};
use super::support::{free_port, try_http_get, Work};
use ramp_core::plan::{HaproxyRouter as Plan, HaproxySocket};
use ramp_core::Span;
use ramp_live::routers::haproxy::HaproxyRouter;
use ramp_live::seams::Router;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// HAProxy as scripts/bootstrap.sh installs it.
const HAPROXY: &str = "/usr/sbin/haproxy";

/// Requests per second sent through HAProxy's frontend.
const RPS: f64 = 200.0;

/// HAProxy in the foreground, its configuration and runtime API socket in `haproxy/` of the
/// test's directory; killed on drop.
struct HaproxyProcess {
    /// The process.
    child: Child,
    /// Its frontend.
    frontend: SocketAddr,
}

impl HaproxyProcess {
    /// Starts HAProxy with backend `app`: `s1` the stable upstream at weight 100 and `c1` the
    /// canary at 0, as an operator would start it, and waits for its frontend and socket.
    fn start(w: &Work, up: &Upstreams) -> HaproxyProcess {
        let dir = w.path("haproxy");
        std::fs::create_dir_all(&dir).unwrap();
        let frontend = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let socket = dir.join("admin.sock");
        let config = format!(
            "global\n  stats socket {} mode 600 level admin\n\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 10s\n  timeout server 10s\n\nfrontend web\n  bind {frontend}\n  default_backend app\n\nbackend app\n  balance roundrobin\n  server s1 {} weight 100\n  server c1 {} weight 0\n",
            socket.display(),
            up.stable,
            up.canary,
        );
        std::fs::write(dir.join("haproxy.cfg"), config).unwrap();
        let child = Command::new(HAPROXY)
            .args(["-db", "-f"])
            .arg(dir.join("haproxy.cfg"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .expect("haproxy runs (scripts/bootstrap.sh installs it)");
        let h = HaproxyProcess { child, frontend };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(socket.exists() && std::net::TcpStream::connect(frontend).is_ok()) {
            assert!(
                Instant::now() < deadline,
                "HAProxy did not start within 10 s: {}",
                std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        h
    }
}

impl Drop for HaproxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `[router]` table of the plans (paths relative to the plan's directory).
const ROUTER: &str = r#"kind = "haproxy"
socket = "haproxy/admin.sock"
backend = "app"
stable = ["s1"]
canary = "c1"
timeout = "2s"
"#;

/// A reader of the backend's canary weight through the runtime API, as the plan's router
/// reads it, for the watcher.
fn weight_reader(w: &Work) -> impl FnMut() -> Option<u32> + Send + 'static {
    let router = HaproxyRouter::new(
        Plan {
            socket: HaproxySocket::Unix("haproxy/admin.sock".into()),
            backend: "app".into(),
            stable: vec!["s1".into()],
            canary: vec!["c1".into()],
            timeout: Span(2_000),
        },
        &w.path(""),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    move || rt.block_on(router.weight()).ok()
}

/// Scrapes the controller's `/metrics` at `control` while the run lasts (at most 40 s): the
/// line counting successful reads of HAProxy's counters, once it is above 0.
fn scrape_source_reads(control: SocketAddr) -> std::thread::JoinHandle<Option<String>> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Some((200, page)) = try_http_get(control, "/metrics") {
                let found = page.lines().find(|l| {
                    l.starts_with("ramp_source_reads_total{source=\"haproxy\",result=\"ok\"}")
                        && !l.ends_with(" 0")
                });
                if let Some(line) = found {
                    return Some(line.to_string());
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        None
    })
}

/// An equal canary is promoted through HAProxy, each stage's share as planned; a canary
/// answering 30 % errors is rolled back in stage 1, HAProxy's weight read back as 0 and the
/// canary upstream served nothing more.
#[test]
fn a_rollout_through_haproxy_promotes_an_equal_canary_and_rolls_back_a_regression() {
    let started = Instant::now();
    let w = Work::new("haproxy-run");
    let up = Upstreams::start();
    let haproxy = HaproxyProcess::start(&w, &up);
    up.load(haproxy.frontend, RPS, 0, 41);
    let control = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let stages = format!("{STAGES}\n[control]\nlisten = \"{control}\"\n");
    w.write(
        "plan.toml",
        &shares::plan("haproxy-test", ROUTER, "", &stages),
    );
    let scraped = scrape_source_reads(control);
    let (code, s, segments, said) = run(&w, "s.json", weight_reader(&w), served_by(&up));
    // The controller's /metrics counted its reads of HAProxy's counters as such.
    let line = scraped.join().unwrap();
    assert!(
        line.is_some(),
        "no ramp_source_reads_total{{source=\"haproxy\",result=\"ok\"}} above 0 on the controller's /metrics during the run\n{said}"
    );
    assert_eq!(code, 0, "{said}");
    assert_eq!(s["outcome"], "promoted", "{s:#}\n{said}");
    let measured = assert_stage_shares(&segments, &STAGE_WEIGHTS, 50.0);
    // HAProxy names no deployment, and that is no reason for a warning about a Ramp proxy's
    // sticky-routing salt.
    assert!(!said.contains("names no deployment"), "{said}");
    assert_eq!(shares::last(&segments).weight_bp, 10_000, "{segments:#?}");
    // HAProxy's counters saw the load: about 200 req/s a stage, no latency.
    for st in s["stages"].as_array().unwrap() {
        let rate = st["metrics_by_scope"]["service"]["requests"]
            .as_f64()
            .unwrap()
            / st["elapsed_s"].as_f64().unwrap();
        assert!(rate > 120.0, "{rate:.0} req/s counted of {RPS}: {st:#}");
    }
    eprintln!("haproxy shares (weight, measured %, requests): {measured:?}");

    // A regression: 30 % of the canary's answers are 500s, which HAProxy counts.
    up.canary_served.set_regression(0.3, 0.0);
    let (code, s, segments, said) = run(&w, "s2.json", weight_reader(&w), served_by(&up));
    assert_eq!(code, 3, "{said}");
    assert_eq!(s["outcome"], "rolled_back", "{s:#}");
    assert_eq!(s["rollback"]["stage"], 1, "{s:#}");
    let reason = s["rollback"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("error_rate"), "{reason}");
    assert_stage_shares(&segments, &[20.0], 50.0);
    // Drained: HAProxy holds weight 0 and the canary gets no new request.
    assert_eq!(weight_reader(&w)(), Some(0));
    assert_eq!(shares::last(&segments).weight_bp, 0, "{segments:#?}");
    let after = up.canary_served.served().requests;
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        up.canary_served.served().requests,
        after,
        "the canary still serves after the rollback"
    );
    eprintln!("haproxy: {:.1} s", started.elapsed().as_secs_f64());
}
