//! Issue 14: nginx as a router. A real nginx (`/usr/sbin/nginx`) with a configuration
//! generated in the test's directory, listening on a free loopback port, including the
//! upstream file Ramp writes; the demo upstreams behind it count what they serve.

use super::integrity::Upstreams;
use super::support::{free_port, try_http_get, Work};
use ramp_core::plan::NginxRouter;
use ramp_core::{Span, Weight};
use ramp_live::routers::Nginx;
use ramp_live::seams::Router;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The nginx binary.
const NGINX: &str = "/usr/sbin/nginx";

/// nginx in the foreground (`daemon off`), everything in the test's directory; killed on
/// drop.
struct NginxProcess {
    /// The master process.
    child: Option<Child>,
    /// Where it listens.
    listen: SocketAddr,
}

impl NginxProcess {
    /// Writes nginx.conf in `w` (including `upstream.conf`, which must exist) and starts it.
    fn start(w: &Work) -> NginxProcess {
        let dir = w.path("nginx");
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let d = dir.display();
        w.write(
            "nginx/nginx.conf",
            &format!(
                r#"daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    include {d}/upstream.conf;
    server {{
        listen {listen};
        location / {{ proxy_pass http://app; }}
    }}
}}
"#
            ),
        );
        let child = Command::new(NGINX)
            .args(args(w, &[]))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(w.path("nginx/stderr.log")).unwrap())
            .spawn()
            .expect("nginx starts");
        let n = NginxProcess {
            child: Some(child),
            listen,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while try_http_get(listen, "/").is_none() {
            assert!(
                Instant::now() < deadline,
                "nginx did not answer within 10 s: {}",
                std::fs::read_to_string(w.path("nginx/error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        n
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NginxProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// nginx's options for the test's prefix, configuration and error log, then `extra`.
fn args(w: &Work, extra: &[&str]) -> Vec<String> {
    let dir = w.path("nginx");
    let mut a: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    a.extend([
        "-p".into(),
        dir.display().to_string(),
        "-c".into(),
        dir.join("nginx.conf").display().to_string(),
        "-e".into(),
        dir.join("error.log").display().to_string(),
    ]);
    a
}

/// The plan's nginx router for the test's nginx.
fn router_plan(w: &Work, up: &Upstreams, canary: &str) -> NginxRouter {
    let with = |extra: &[&str]| {
        let mut v = vec![NGINX.to_string()];
        v.extend(args(w, extra));
        v
    };
    NginxRouter {
        upstream_file: "nginx/upstream.conf".into(),
        upstream: "app".into(),
        stable: vec![up.stable.to_string()],
        canary: vec![canary.to_string()],
        test: with(&["-t", "-q"]),
        reload: with(&["-s", "reload"]),
        pid_file: Some("nginx/nginx.pid".into()),
        timeout: Span(5000),
    }
}

/// Sends `n` requests through nginx one after another; the canary's share of what the
/// upstreams served meanwhile, percent.
fn share(nginx: &NginxProcess, up: &Upstreams, n: u64) -> f64 {
    let before = (
        up.stable_served.served().requests,
        up.canary_served.served().requests,
    );
    for _ in 0..n {
        let (status, _) = try_http_get(nginx.listen, "/").expect("nginx answers");
        assert_eq!(status, 200);
    }
    let stable = up.stable_served.served().requests - before.0;
    let canary = up.canary_served.served().requests - before.1;
    assert_eq!(stable + canary, n, "every request reached an upstream once");
    100.0 * canary as f64 / n as f64
}

/// Weights are applied and confirmed (the split measured by the upstreams within 2 points),
/// 0 % is `down`, a file nginx's test refuses changes nothing, and a stopped nginx is a clear
/// error.
#[test]
fn nginx_applies_weights_refuses_a_bad_file_and_says_when_it_is_gone() {
    let w = Work::new("nginx");
    let up = Upstreams::start();
    std::fs::create_dir_all(w.path("nginx")).unwrap();
    // The file nginx starts with, as an operator would write it: stable only.
    w.write(
        "nginx/upstream.conf",
        &format!("upstream app {{ server {}; }}\n", up.stable),
    );
    let mut nginx = NginxProcess::start(&w);
    let base = w.path("");
    let router = Nginx::new(&router_plan(&w, &up, &up.canary.to_string()), &base, "d");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A file Ramp never wrote: this deployment's, set by no run.
    let id = rt.block_on(router.identity()).unwrap();
    assert_eq!(id.deployment.as_deref(), Some("d"));
    assert_eq!(id.set_by, None);

    for percent in [20.0, 50.0, 0.0] {
        let weight = Weight::from_percent(percent).unwrap();
        rt.block_on(router.set_weight(weight, "tok:1")).unwrap();
        assert_eq!(
            rt.block_on(router.weight()).unwrap(),
            u32::from(weight.basis_points())
        );
        let measured = share(&nginx, &up, 200);
        assert!(
            (measured - percent).abs() <= 2.0,
            "at {percent} % nginx sent {measured:.1} % to the canary"
        );
        eprintln!("nginx at {percent} %: {measured:.1} % of 200 requests to the canary");
    }
    let file = std::fs::read_to_string(w.path("nginx/upstream.conf")).unwrap();
    assert!(
        file.contains(&format!("server {} down;", up.canary)),
        "{file}"
    );
    let id = rt.block_on(router.identity()).unwrap();
    assert_eq!(id.set_by.as_deref(), Some("tok:1"));

    // 40 % to a server nginx refuses (no such port): the test fails, the old file stays,
    // traffic is untouched.
    rt.block_on(router.set_weight(Weight::from_percent(30.0).unwrap(), "tok:2"))
        .unwrap();
    let good = std::fs::read_to_string(w.path("nginx/upstream.conf")).unwrap();
    let bad = Nginx::new(&router_plan(&w, &up, "127.0.0.1:99999"), &base, "d");
    let e = rt
        .block_on(bad.set_weight(Weight::from_percent(40.0).unwrap(), "tok:3"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("nginx refused the new upstream file") && e.contains("invalid port"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_to_string(w.path("nginx/upstream.conf")).unwrap(),
        good
    );
    let measured = share(&nginx, &up, 200);
    assert!((measured - 30.0).abs() <= 2.0, "{measured}");

    // nginx gone: every call says so.
    nginx.kill();
    let e = rt
        .block_on(router.set_weight(Weight::from_percent(50.0).unwrap(), "tok:4"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nginx is not running"), "{e}");
    let e = rt.block_on(router.identity()).unwrap_err().to_string();
    assert!(e.contains("nginx is not running"), "{e}");
    let e = rt
        .block_on(router.add_fault(&ramp_live::source::FaultRequest {
            cohort: "canary".into(),
            fraction: 1.0,
            add_latency_ms: None,
            abort_status: Some(503),
            duration_s: 1.0,
        }))
        .unwrap_err()
        .to_string();
    assert!(e.contains("rehearse through a Ramp proxy"), "{e}");
}

/// The canary's weight in the upstream file Ramp owns (its first line), basis points.
fn file_weight(path: std::path::PathBuf) -> impl FnMut() -> Option<u32> + Send + 'static {
    move || {
        let text = std::fs::read_to_string(&path).ok()?;
        let mark = text.lines().next()?.strip_prefix("# ramp: ")?;
        let v: serde_json::Value = serde_json::from_str(mark).ok()?;
        Some(v["weight_bp"].as_u64()? as u32)
    }
}

/// A live rollout through nginx judged from a real Prometheus scraping the upstreams
/// (`[metrics] source = "prometheus"`): an equal canary is promoted with each stage's share
/// as planned, and a canary answering 30 % errors is rolled back in stage 1, marked `down`,
/// after which it serves nothing.
#[test]
fn a_rollout_through_nginx_judged_from_prometheus_promotes_and_rolls_back() {
    use super::shares::{self, assert_stage_shares, run, served_by, STAGES, STAGE_WEIGHTS};
    let started = Instant::now();
    let w = Work::new("nginx-run");
    let up = Upstreams::start();
    std::fs::create_dir_all(w.path("nginx")).unwrap();
    w.write(
        "nginx/upstream.conf",
        &format!("upstream app {{ server {}; }}\n", up.stable),
    );
    let nginx = NginxProcess::start(&w);
    up.load(nginx.listen, 200.0, 0, 47);
    let prom = super::command::prometheus(&up);
    let argv = |extra: &[&str]| {
        let mut v = vec![NGINX.to_string()];
        v.extend(args(&w, extra));
        serde_json::to_string(&v).unwrap()
    };
    let router = format!(
        "kind = \"nginx\"\nupstream_file = \"nginx/upstream.conf\"\nupstream = \"app\"\nstable = [\"{}\"]\ncanary = [\"{}\"]\ntest = {}\nreload = {}\npid_file = \"nginx/nginx.pid\"\ntimeout = \"5s\"\n",
        up.stable,
        up.canary,
        argv(&["-t", "-q"]),
        argv(&["-s", "reload"]),
    );
    let metrics = super::command::metrics(&prom);
    w.write(
        "plan.toml",
        &shares::plan("nginx-test", &router, &metrics, STAGES),
    );
    let file = w.path("nginx/upstream.conf");
    let (code, s, segments, said) = run(&w, "s.json", file_weight(file.clone()), served_by(&up));
    assert_eq!(code, 0, "{said}");
    assert_eq!(s["outcome"], "promoted", "{s:#}");
    let measured = assert_stage_shares(&segments, &STAGE_WEIGHTS, 50.0);
    eprintln!("nginx shares (weight, measured %, requests): {measured:?}");

    up.canary_served.set_regression(0.3, 0.0);
    let (code, s, segments, said) = run(&w, "s2.json", file_weight(file.clone()), served_by(&up));
    assert_eq!(code, 3, "{said}");
    assert_eq!(s["rollback"]["stage"], 1, "{s:#}");
    assert_stage_shares(&segments, &[20.0], 50.0);
    assert_eq!(file_weight(file.clone())(), Some(0));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(&format!("server {} down;", up.canary)),
        "{text}"
    );
    let after = up.canary_served.served().requests;
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        up.canary_served.served().requests,
        after,
        "canary not drained"
    );
    eprintln!("nginx rollout: {:.1} s", started.elapsed().as_secs_f64());
}
