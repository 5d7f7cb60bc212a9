//! The HAProxy router and its counters against a real HAProxy (Debian's `/usr/sbin/haproxy`,
//! started here on loopback with its runtime API on a unix socket in a temporary directory,
//! in the foreground, and killed at the end), in front of two demo upstreams.

use ramp_core::plan::{HaproxyRouter as Plan, HaproxySocket};
use ramp_core::{Span, Weight};
use ramp_demo::{serve_upstream, Behaviour};
use ramp_live::routers::haproxy::HaproxyRouter;
use ramp_live::seams::{MetricsSource, Router};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// HAProxy as installed by scripts/bootstrap.sh.
const HAPROXY: &str = "/usr/sbin/haproxy";

/// A HAProxy process, killed when dropped.
struct Haproxy {
    /// The process.
    child: Child,
    /// Its frontend.
    frontend: SocketAddr,
    /// Its temporary directory, holding the configuration and the runtime API's socket.
    dir: tempfile::TempDir,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound, then released for HAProxy to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts HAProxy with backend `app`: server `s1` (stable) and `c1` (canary), at weight 100
/// and 0 as an operator would start it, and waits for its runtime API.
async fn haproxy(stable: SocketAddr, canary: SocketAddr) -> Haproxy {
    let dir = tempfile::tempdir().unwrap();
    let frontend = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let socket = dir.path().join("admin.sock");
    let config = format!(
        "global\n  stats socket {} mode 600 level admin\n\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 10s\n  timeout server 10s\n\nfrontend web\n  bind {frontend}\n  default_backend app\n\nbackend app\n  balance roundrobin\n  server s1 {stable} weight 100\n  server c1 {canary} weight 0\n",
        socket.display()
    );
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(HAPROXY)
        .args(["-db", "-f"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy runs (scripts/bootstrap.sh installs it)");
    for _ in 0..100 {
        if socket.exists() && tokio::net::TcpStream::connect(frontend).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Haproxy {
        child,
        frontend,
        dir,
    }
}

/// A demo upstream answering in about a millisecond, on a free loopback port.
async fn upstream(name: &str) -> (SocketAddr, Arc<Behaviour>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let behaviour = Arc::new(Behaviour::new(name, 1.0, 1.0, 1.0, 0.0).unwrap());
    tokio::spawn(serve_upstream(
        listener,
        Arc::clone(&behaviour),
        std::future::pending(),
    ));
    (addr, behaviour)
}

/// The router of backend `app` with `canary` as its canary servers.
fn router(h: &Haproxy, backend: &str, canary: &[&str]) -> HaproxyRouter {
    let plan = Plan {
        socket: HaproxySocket::Unix("admin.sock".into()),
        backend: backend.into(),
        stable: vec!["s1".into()],
        canary: canary.iter().map(|s| s.to_string()).collect(),
        timeout: Span(2_000),
    };
    HaproxyRouter::new(plan, h.dir.path())
}

#[tokio::test]
async fn haproxy_routes_the_weights_set_and_counts_what_each_side_served() {
    let (stable_addr, stable) = upstream("stable").await;
    let (canary_addr, canary) = upstream("canary").await;
    let h = haproxy(stable_addr, canary_addr).await;
    let r = router(&h, "app", &["c1"]);
    assert_eq!(r.identity().await.unwrap(), Default::default());
    let stats = r.stats();
    for percent in [5.0, 25.0, 0.0] {
        let w = Weight::from_percent(percent).unwrap();
        r.set_weight(w, "run").await.unwrap();
        assert_eq!(r.weight().await.unwrap(), u32::from(w.basis_points()));
        let before = (stable.served().requests, canary.served().requests);
        let counted = stats.read().await.unwrap().counters;
        let n = 400;
        for _ in 0..n {
            let (status, _) = ramp_demo::loopback::get(h.frontend, "/").await.unwrap();
            assert_eq!(status, 200);
        }
        let to_canary = canary.served().requests - before.1;
        let to_stable = stable.served().requests - before.0;
        assert_eq!(to_canary + to_stable, n);
        let share = 100.0 * to_canary as f64 / n as f64;
        assert!(
            (share - percent).abs() <= 2.0,
            "{percent} % set, the canary served {share} %"
        );
        // HAProxy's own counters saw what the upstreams served.
        let now = stats.read().await.unwrap().counters;
        assert_eq!(now.canary.completed - counted.canary.completed, to_canary);
        assert_eq!(now.stable.completed - counted.stable.completed, to_stable);
        assert_eq!(now.epoch, counted.epoch, "one HAProxy process");
        assert_eq!(now.canary.errors, 0);
    }
}

#[tokio::test]
async fn an_unknown_backend_or_server_and_a_missing_socket_are_named() {
    let (stable_addr, _) = upstream("stable").await;
    let (canary_addr, _) = upstream("canary").await;
    let h = haproxy(stable_addr, canary_addr).await;
    let half = Weight::from_percent(50.0).unwrap();
    let e = router(&h, "app", &["c2"])
        .set_weight(half, "run")
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("backend \"app\" has no server \"c2\" (it has s1, c1)"),
        "{e}"
    );
    let e = router(&h, "web2", &["c1"])
        .set_weight(half, "run")
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("backend \"web2\": HAProxy answered: \"Can't find backend.\""),
        "{e}"
    );
    let mut plan_dir = h.dir.path().to_path_buf();
    plan_dir.push("elsewhere");
    let gone = HaproxyRouter::new(
        Plan {
            socket: HaproxySocket::Unix("admin.sock".into()),
            backend: "app".into(),
            stable: vec!["s1".into()],
            canary: vec!["c1".into()],
            timeout: Span(2_000),
        },
        &plan_dir,
    );
    let e = gone.weight().await.unwrap_err().to_string();
    assert!(
        e.contains("elsewhere/admin.sock") && e.contains("cannot connect"),
        "{e}"
    );
}
