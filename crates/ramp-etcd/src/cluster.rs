//! A real etcd cluster on loopback, for tests (this crate's and every crate that uses etcd).
//!
//! Starts `etcd` (Debian's `etcd-server`, installed by scripts/bootstrap.sh) as n member
//! processes on free 127.0.0.1 ports, each with its own data directory under one temporary
//! directory; members can be killed and restarted to test quorum loss; everything is killed
//! and removed on drop. No fake: the tests of fencing and takeover need etcd's own elections,
//! leases and transactions.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One member's process and addresses.
struct Member {
    /// The member's name in the cluster (`m0`, `m1`, …).
    name: String,
    /// Its client URL.
    client: String,
    /// Its peer URL.
    peer: String,
    /// The running process, `None` while killed.
    child: Option<Child>,
}

/// A running cluster; killed and deleted when dropped.
pub struct LocalCluster {
    /// The members, in order.
    members: Vec<Member>,
    /// `m0=http://…,m1=…`: every member's peer URL, as each is started with.
    initial: String,
    /// The temporary directory holding the data directories and logs.
    dir: tempfile::TempDir,
}

/// A free port on 127.0.0.1 (bound then released; the race with another process taking it
/// is accepted in tests).
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl LocalCluster {
    /// Starts `n` members and waits (at most 30 s) until every one answers its health check.
    pub fn start(n: usize) -> std::io::Result<LocalCluster> {
        let dir = tempfile::Builder::new().prefix("ramp-etcd-").tempdir()?;
        let mut members = Vec::with_capacity(n);
        for i in 0..n {
            members.push(Member {
                name: format!("m{i}"),
                client: format!("http://127.0.0.1:{}", free_port()?),
                peer: format!("http://127.0.0.1:{}", free_port()?),
                child: None,
            });
        }
        let initial = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = LocalCluster {
            members,
            initial,
            dir,
        };
        for i in 0..n {
            cluster.spawn(i, "new")?;
        }
        for i in 0..n {
            cluster.wait_healthy(i, Duration::from_secs(30))?;
        }
        Ok(cluster)
    }

    /// The client URLs of every member, for `EtcdConfig::endpoints` and `--etcd`.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client.clone()).collect()
    }

    /// The data and log directory of the cluster.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills member `i` with SIGKILL (its data stays, so it can be restarted).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts a killed member on its data directory and waits until it is healthy.
    pub fn restart(&mut self, i: usize) -> std::io::Result<()> {
        if self.members[i].child.is_none() {
            self.spawn(i, "existing")?;
        }
        self.wait_healthy(i, Duration::from_secs(30))
    }

    /// Restarts every killed member, then waits until each is healthy: after all members were
    /// killed, one member alone has no quorum and never reports itself healthy, so they must
    /// be started together.
    pub fn restart_all(&mut self) -> std::io::Result<()> {
        for i in 0..self.members.len() {
            if self.members[i].child.is_none() {
                self.spawn(i, "existing")?;
            }
        }
        for i in 0..self.members.len() {
            self.wait_healthy(i, Duration::from_secs(30))?;
        }
        Ok(())
    }

    /// Starts member `i`'s process, its output appended to `{name}.log` in the directory.
    fn spawn(&mut self, i: usize, state: &str) -> std::io::Result<()> {
        let m = &self.members[i];
        let data: PathBuf = self.dir.path().join(&m.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{}.log", m.name)))?;
        let child = Command::new("etcd")
            .arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &m.client])
            .args(["--advertise-client-urls", &m.client])
            .args(["--listen-peer-urls", &m.peer])
            .args(["--initial-advertise-peer-urls", &m.peer])
            .args(["--initial-cluster", &self.initial])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", "ramp-test"])
            // Fast elections: a member's loss is noticed in about a second.
            .args(["--heartbeat-interval", "100", "--election-timeout", "1000"])
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot start etcd (apt-get install etcd-server): {e}"),
                )
            })?;
        self.members[i].child = Some(child);
        Ok(())
    }

    /// Waits until member `i` reports itself healthy (`etcdctl endpoint health`).
    fn wait_healthy(&mut self, i: usize, limit: Duration) -> std::io::Result<()> {
        // Counted in tries rather than read from a clock: each try takes at least its pause.
        let tries = limit.as_millis() / 100;
        for _ in 0..tries {
            if let Some(child) = self.members[i].child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    return Err(std::io::Error::other(format!(
                        "etcd member {} exited with {status}; its log is in {}",
                        self.members[i].name,
                        self.dir.path().display()
                    )));
                }
            }
            let ok = Command::new("etcdctl")
                .env("ETCDCTL_API", "3")
                .args(["--endpoints", &self.members[i].client])
                .args(["--dial-timeout", "1s", "--command-timeout", "2s"])
                .args(["endpoint", "health"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(std::io::Error::other(format!(
            "etcd member {} not healthy within {limit:?}",
            self.members[i].name
        )))
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
