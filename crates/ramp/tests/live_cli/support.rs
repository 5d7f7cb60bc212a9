//! The rig of the live CLI tests: upstreams, proxy and load in the test process; the `ramp`
//! binary as bounded child processes whose output goes to files.

use ramp_demo::{Behaviour, LoadConfig, Stack};
use serde_json::Value;
use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest any wait of these tests lasts.
pub const WAIT: Duration = Duration::from_secs(60);

/// How long a one-shot command (a verb, status, history, report) may take.
const VERB_LIMIT: Duration = Duration::from_secs(30);

/// How often the waits poll.
const POLL: Duration = Duration::from_millis(200);

/// The binary under test.
pub fn ramp_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ramp")
}

/// A plan for the rig's proxy: `[deployment]`, `[router]`, fast gates (1 s ticks, 3 s
/// windows), then `body` (more gate keys first, then stages, checks, hooks, …).
pub fn plan(admin: SocketAddr, id: &str, body: &str) -> String {
    format!(
        r#"[deployment]
id = "{id}"
service = "svc"
environment = "test"

[router]
admin = "http://{admin}"

[gates]
evaluate_every = "1s"
window = "3s"
min_samples = 10
p99_ms = {{ max = 1000 }}
error_rate = {{ max = "5%" }}
{body}"#
    )
}

/// Two demo upstreams, Ramp's proxy in front of them (starting at weight 0) and open-loop
/// load through it, on their own runtime, all stopped on drop.
pub struct Rig {
    /// The upstreams and the proxy; `None` once dropped (stopped before the runtime).
    stack: Option<Stack>,
    /// The runtime everything runs on; `None` once dropped.
    rt: Option<tokio::runtime::Runtime>,
    /// The stable upstream, to read what it served.
    pub stable: Arc<Behaviour>,
    /// The canary upstream.
    pub canary: Arc<Behaviour>,
    /// The stable upstream's address.
    pub stable_addr: SocketAddr,
    /// The proxy's admin API.
    pub admin: SocketAddr,
}

impl Rig {
    /// Starts the rig with `rps` requests per second of load.
    pub fn start(rps: f64) -> Rig {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let stack = rt.block_on(async {
            let stack = Stack::start(
                Behaviour::new("stable", 5.0, 10.0, 15.0, 0.0).unwrap(),
                Behaviour::new("canary", 5.0, 10.0, 15.0, 0.0).unwrap(),
                |_| {},
            )
            .await
            .expect("the rig's upstreams and proxy");
            let mut load = LoadConfig::new(stack.proxy_addr, rps);
            load.seed = 7;
            tokio::spawn(ramp_demo::run_load(load, stack.stopped()));
            stack
        });
        Rig {
            stable: Arc::clone(&stack.stable),
            canary: Arc::clone(&stack.canary),
            stable_addr: stack.stable_addr,
            admin: stack.admin_addr,
            stack: Some(stack),
            rt: Some(rt),
        }
    }

    /// `GET /weights` of the proxy: `{"canary": 50.0, "stable": 50.0, …}`.
    pub fn weights(&self) -> Value {
        let (status, body) = http_get(self.admin, "/weights");
        assert_eq!(status, 200, "GET /weights: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET /weights: {e}: {body}"))
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        drop(self.stack.take());
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(3));
        }
    }
}

/// A plain HTTP/1.1 GET on loopback: status and body.
fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    try_http_get(addr, path).unwrap_or_else(|| panic!("GET {path} on {addr} failed"))
}

/// A plain HTTP/1.1 GET on loopback: status and body, `None` when the server cannot be
/// reached or answers nothing readable (within 5 s each way).
pub fn try_http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// A loopback port that was free a moment ago, for a child process to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A finished command: exit code and output.
pub struct Out {
    /// Its exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The command line, for messages.
    pub line: String,
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`ramp {}` exited {}\n--- stdout\n{}--- stderr\n{}",
            self.line, self.code, self.stdout, self.stderr
        )
    }
}

/// A test's working directory: the plan, the journal, outputs; the `ramp` commands run in
/// it.
pub struct Work {
    /// The directory, removed on drop.
    dir: tempfile::TempDir,
    /// Numbers the output files of commands.
    n: AtomicUsize,
    /// The token `wait_until` and `status_ok` pass in `RAMP_TOKEN`.
    pub poll_token: Option<String>,
}

impl Work {
    /// A fresh directory.
    pub fn new(label: &str) -> Work {
        let dir = tempfile::Builder::new()
            .prefix(&format!("ramp-live-cli-{label}-"))
            .tempdir()
            .expect("a temporary directory");
        std::fs::create_dir(dir.path().join("io")).unwrap();
        Work {
            dir,
            n: AtomicUsize::new(0),
            poll_token: None,
        }
    }

    /// A path in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file in the directory.
    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    /// Reads a JSON file of the directory.
    pub fn json(&self, name: &str) -> Value {
        let text =
            std::fs::read_to_string(self.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}: {text:?}"))
    }

    /// Starts `ramp args…` in the background; its output goes to files.
    pub fn spawn(&self, label: &str, args: &[&str]) -> Controller {
        self.spawn_with(label, args, &[])
    }

    fn spawn_with(&self, label: &str, args: &[&str], env: &[(&str, &str)]) -> Controller {
        let n = self.n.fetch_add(1, Ordering::Relaxed);
        let stdout = self.path(&format!("io/{n}-{label}.out"));
        let stderr = self.path(&format!("io/{n}-{label}.err"));
        let mut cmd = Command::new(ramp_bin());
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("RAMP_TOKEN")
            .env("USER", "tester")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("the ramp binary starts");
        Controller {
            child,
            stdout,
            stderr,
            line: args.join(" "),
            code: None,
        }
    }

    /// Runs `ramp args…` to its end (at most 30 s).
    pub fn ramp(&self, args: &[&str]) -> Out {
        self.ramp_full(args, &[], VERB_LIMIT)
    }

    /// Runs `ramp args…` with extra environment variables.
    pub fn ramp_with(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        self.ramp_full(args, env, VERB_LIMIT)
    }

    /// Runs `ramp args…` to its end, at most `limit`.
    pub fn ramp_timeout(&self, args: &[&str], limit: Duration) -> Out {
        self.ramp_full(args, &[], limit)
    }

    fn ramp_full(&self, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Out {
        let mut c = self.spawn_with("cmd", args, env);
        c.wait(limit);
        c.out()
    }

    /// Runs a verb against `j.db` (`--journal j.db` appended).
    pub fn verb(&self, args: &[&str]) -> Out {
        let mut a = args.to_vec();
        a.extend(["--journal", "j.db"]);
        self.ramp(&a)
    }

    /// `ramp status --json` of `j.db` with the poll token: the view, or the failed command.
    pub fn status(&self) -> Result<Value, Out> {
        let args = ["status", "--json", "--journal", "j.db"];
        let env: Vec<(&str, &str)> = self
            .poll_token
            .as_deref()
            .map(|t| vec![("RAMP_TOKEN", t)])
            .unwrap_or_default();
        let out = self.ramp_full(&args, &env, VERB_LIMIT);
        if out.code != 0 {
            return Err(out);
        }
        serde_json::from_str(&out.stdout).map_err(|_| out)
    }

    /// `ramp status --json`, which must succeed.
    pub fn status_ok(&self) -> Value {
        self.status().unwrap_or_else(|out| panic!("{out}"))
    }

    /// Polls `ramp status --json` until `pred` holds (at most [`WAIT`]); fails at once if
    /// the controller exits meanwhile.
    pub fn wait_until(
        &self,
        ctl: &mut Controller,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + WAIT;
        let mut last;
        loop {
            if !ctl.running() {
                panic!(
                    "waiting for {what}: the controller exited\n{}",
                    ctl.describe()
                );
            }
            match self.status() {
                Ok(v) if pred(&v) => return v,
                Ok(v) => last = format!("{v:#}"),
                Err(out) => last = out.to_string(),
            }
            if Instant::now() > deadline {
                panic!(
                    "waited {WAIT:?} for {what}; last status:\n{last}\n{}",
                    ctl.describe()
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

/// A `ramp` child process, killed (SIGKILL) and reaped on drop if still running.
pub struct Controller {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    line: String,
    code: Option<i32>,
}

impl Controller {
    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        if self.code.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.code = Some(status.code().unwrap_or(-1));
                false
            }
            Ok(None) => true,
            Err(e) => panic!("waiting for `ramp {}`: {e}", self.line),
        }
    }

    /// Waits for the exit (at most `limit`, else kills it and fails); returns the code.
    pub fn wait(&mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        while self.running() {
            if Instant::now() > deadline {
                self.kill9();
                panic!(
                    "`ramp {}` still running after {limit:?}\n{}",
                    self.line,
                    self.describe()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.code.expect("exited")
    }

    /// `kill -9`, then reaps it.
    pub fn kill9(&mut self) {
        if self.running() {
            let _ = self.child.kill();
            let status = self.child.wait().expect("reaped");
            self.code = Some(status.code().unwrap_or(-1));
        }
    }

    /// Sends a signal by name (`STOP`, `CONT`): a paused process, as a busy host or a
    /// debugger pauses one. Only `tests/live_etcd.rs`, which shares this file, uses it.
    #[allow(dead_code)]
    pub fn signal(&mut self, name: &str) {
        if self.running() {
            let status = Command::new("kill")
                .args([&format!("-{name}"), &self.child.id().to_string()])
                .status()
                .expect("kill(1) runs");
            assert!(status.success(), "kill -{name} {}", self.child.id());
        }
    }

    /// SIGTERM, as an init system stops it.
    pub fn terminate(&mut self) {
        if self.running() {
            let status = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status()
                .expect("kill(1) runs");
            assert!(status.success(), "kill -TERM {}", self.child.id());
        }
    }

    /// What it printed so far on standard output.
    pub fn stdout(&self) -> String {
        read(&self.stdout)
    }

    /// Its command line, exit code and output, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "`ramp {}` ({})\n--- stdout\n{}--- stderr\n{}",
            self.line,
            self.code
                .map_or("running".to_string(), |c| format!("exited {c}")),
            read(&self.stdout),
            read(&self.stderr)
        )
    }

    fn out(&self) -> Out {
        Out {
            code: self.code.unwrap_or(-1),
            stdout: read(&self.stdout),
            stderr: read(&self.stderr),
            line: self.line.clone(),
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if self.code.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}
