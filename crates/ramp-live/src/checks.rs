//! Pre-deployment checks and hooks: the plan's `[[checks]]` and `[[hooks]]`, run for real.
//!
//! A check passes or the rollout never starts; a hook informs and never changes a decision.
//! Both are probes of the outside world, so everything here is bounded: every probe has a
//! deadline (the child is killed when it passes), at most [`OUTPUT_LIMIT`] bytes of a
//! command's output or of a response body are kept, and nothing panics, whatever the program
//! or the server does. A failure is an outcome with a one-line reason, not an error: the
//! caller journals and logs it either way.
//!
//! Commands are run directly with their argv (never through a shell), in the plan file's
//! directory, with stdin closed; hooks get the event JSON in `RAMP_EVENT`. HTTP is plain
//! `http://` only (the plan loader rejects anything else): a check is a `GET` that must
//! answer its expected status, a hook is a `POST` of the event JSON that must answer 2xx.

use crate::clock;
use bytes::Bytes;
use http::{header, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ramp_core::plan::{Check, Hook, HookAction, Probe};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// The most bytes kept of a command's stdout, of its stderr, or read of a response body: a
/// probe's output only feeds a one-line reason, and a chatty or hostile probe must not fill
/// the controller's memory.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// The most characters of a program's output quoted in a reason, so that a log line stays a
/// line.
pub const DETAIL_CHARS: usize = 200;

/// The environment variable that carries the event JSON to a hook command.
pub const EVENT_ENV: &str = "RAMP_EVENT";

/// The `user-agent` of probe requests, so that a server's log can tell them from traffic.
const USER_AGENT: &str = concat!("ramp/", env!("CARGO_PKG_VERSION"));

/// How long the output of a program that has exited is still read: enough to empty the
/// pipes, short enough that a background process holding them does not delay the outcome.
const DRAIN_GRACE: Duration = Duration::from_millis(250);

/// How long a killed child is waited for before it is left to `kill_on_drop`; a SIGKILLed
/// process is reaped at once, so this only bounds a pathological case.
const REAP_GRACE: Duration = Duration::from_secs(1);

/// The result of one check or hook run, for the journal and the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    /// The check's or hook's name, so that the line says which one it was.
    pub name: String,
    /// Whether it passed: exit 0, the expected status (a check) or a 2xx (a hook).
    pub ok: bool,
    /// What happened, in a few words: "HTTP 200 in 12 ms", "exit 0 in 1.2 s", "timed out
    /// after 2 s", "exit 3: <the last line of stderr, at most 200 characters>".
    pub detail: String,
    /// How long it took, from start to outcome.
    pub elapsed: Duration,
}

/// Runs one pre-deployment check. `base_dir` is the plan file's directory: a command runs
/// there, and a relative program path (`./check.sh`) is found there.
pub async fn run_check(check: &Check, base_dir: &Path) -> ProbeOutcome {
    let started = clock::now();
    let timeout = span_to_duration(check.timeout);
    let (ok, detail) = match &check.probe {
        Probe::Http { url, expect_status } => {
            http_probe(
                Method::GET,
                url,
                None,
                timeout,
                |s| s.as_u16() == *expect_status,
                &expect_status.to_string(),
            )
            .await
        }
        Probe::Command { argv } => run_command(argv, base_dir, None, timeout).await,
    };
    outcome(&check.name, ok, detail, started)
}

/// Runs one hook with the event it is told about (`event_json`, a JSON object): in
/// `RAMP_EVENT` for a command, as the body of a `POST` for a URL. `base_dir` is the plan
/// file's directory, as for [`run_check`].
pub async fn run_hook(hook: &Hook, event_json: &str, base_dir: &Path) -> ProbeOutcome {
    let started = clock::now();
    let timeout = span_to_duration(hook.timeout);
    let (ok, detail) = match &hook.action {
        HookAction::Post { url } => {
            http_probe(
                Method::POST,
                url,
                Some(event_json),
                timeout,
                |s| s.is_success(),
                "2xx",
            )
            .await
        }
        HookAction::Command { argv } => {
            run_command(argv, base_dir, Some((EVENT_ENV, event_json)), timeout).await
        }
    };
    outcome(&hook.name, ok, detail, started)
}

/// Builds the outcome and logs it at debug level (the caller logs the line users see).
fn outcome(name: &str, ok: bool, detail: String, started: Instant) -> ProbeOutcome {
    let elapsed = started.elapsed();
    tracing::debug!(probe = name, ok, detail = %detail, ?elapsed, "probe finished");
    ProbeOutcome {
        name: name.to_string(),
        ok,
        detail,
        elapsed,
    }
}

/// A plan span (milliseconds) as a `Duration`.
fn span_to_duration(span: ramp_core::units::Span) -> Duration {
    Duration::from_millis(span.0)
}

// ---------------------------------------------------------------------------------------
// Commands.
// ---------------------------------------------------------------------------------------

/// The last bytes a pipe produced, at most [`OUTPUT_LIMIT`] of them; shared with the task
/// that reads the pipe, so that what was read is still there when that task is abandoned.
type Tail = Arc<Mutex<Vec<u8>>>;

/// Runs `argv` directly in `base_dir` with stdin closed and an optional extra environment
/// variable, kills it at `timeout`, and says whether it exited 0 and why not.
async fn run_command(
    argv: &[String],
    base_dir: &Path,
    env: Option<(&str, &str)>,
    timeout: Duration,
) -> (bool, String) {
    let ran = run_program(argv, base_dir, env, timeout, 1).await;
    (ran.ok, ran.detail)
}

/// How a program run by [`run_program`] ended.
#[derive(Debug)]
pub(crate) struct Ran {
    /// It exited 0.
    pub(crate) ok: bool,
    /// "exit 0 in 12 ms", or why it failed: the exit code or signal and the last line it
    /// printed on stderr (or stdout), or the timeout, or why it could not start.
    pub(crate) detail: String,
    /// The last [`OUTPUT_LIMIT`] bytes of its standard output, lossily decoded.
    pub(crate) stdout: String,
}

/// Runs `argv` as [`run_command`] does, and also keeps the tail of its standard output for
/// callers that read an answer from it (the command router's `get_weight`). A failure is
/// explained by the last `lines` non-blank lines of its output, joined with " / " (nginx's
/// `[emerg]` line comes before its "test failed").
pub(crate) async fn run_program(
    argv: &[String],
    base_dir: &Path,
    env: Option<(&str, &str)>,
    timeout: Duration,
    lines: usize,
) -> Ran {
    let env: Vec<(&str, &str)> = env.into_iter().collect();
    run_program_with(argv, base_dir, &env, None, timeout, lines).await
}

/// Runs `argv` as [`run_program`] does, with any number of extra environment variables and,
/// when `stdin` is given, those bytes on its standard input (written by a task of their own
/// and closed after, so that a program that does not read them cannot hold the run past
/// its deadline); stdin is closed otherwise.
pub(crate) async fn run_program_with(
    argv: &[String],
    base_dir: &Path,
    env: &[(&str, &str)],
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    lines: usize,
) -> Ran {
    let fail = |detail: String| Ran {
        ok: false,
        detail,
        stdout: String::new(),
    };
    let started = clock::now();
    let deadline = started + timeout;
    let Some((program, args)) = argv.split_first() else {
        return fail("the command is empty".into());
    };
    let mut command = tokio::process::Command::new(program_path(program, base_dir));
    command
        .args(args)
        .current_dir(base_dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return fail(spawn_failure(program, base_dir, &e)),
    };
    // A program that exits without reading its input makes the write fail; that is its
    // business, and its exit status says how it went.
    let feeder = match (child.stdin.take(), stdin) {
        (Some(mut pipe), Some(bytes)) => Some(tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = pipe.write_all(&bytes).await;
            let _ = pipe.shutdown().await;
        })),
        _ => None,
    };
    let stdout: Tail = Arc::default();
    let stderr: Tail = Arc::default();
    let mut readers = [
        child
            .stdout
            .take()
            .map(|pipe| tokio::spawn(read_tail(pipe, Arc::clone(&stdout)))),
        child
            .stderr
            .take()
            .map(|pipe| tokio::spawn(read_tail(pipe, Arc::clone(&stderr)))),
    ];
    /// Aborts the task feeding stdin when the run ends, however it ends.
    struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            if let Some(task) = &self.0 {
                task.abort();
            }
        }
    }
    let _feeder = AbortOnDrop(feeder);
    let status = tokio::time::timeout_at(deadline, child.wait()).await;
    let result = match status {
        Ok(Ok(status)) => {
            // The program has exited, so what it wrote is already in the pipes and the
            // readers reach its end at once; only a background grandchild that inherited
            // the pipes keeps them open, and it must not hold the check, so the readers get
            // a short grace (never past the deadline) and are then abandoned.
            let drained = deadline.min(clock::now() + DRAIN_GRACE);
            for reader in readers.iter_mut().flatten() {
                let _ = tokio::time::timeout_at(drained, reader).await;
            }
            Some(status)
        }
        Ok(Err(e)) => {
            abort_all(&readers);
            return fail(format!("cannot wait for {program:?}: {e}"));
        }
        Err(_) => None,
    };
    abort_all(&readers);
    let Some(status) = result else {
        // Timed out: kill it now rather than when `child` is dropped, and reap it so that
        // no zombie is left behind.
        let _ = child.start_kill();
        let _ = tokio::time::timeout(REAP_GRACE, child.wait()).await;
        return fail(format!("timed out after {}", fmt_duration(timeout)));
    };
    let out =
        String::from_utf8_lossy(&stdout.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    if status.success() {
        return Ran {
            ok: true,
            detail: format!("exit 0 in {}", fmt_duration(started.elapsed())),
            stdout: out,
        };
    }
    let how = match status.code() {
        Some(code) => format!("exit {code}"),
        None => killed_by(&status),
    };
    // The last line of stderr says why, usually; a program that reports on stdout is
    // quoted from there instead.
    let line = last_lines(&stderr, lines).or_else(|| last_lines(&stdout, lines));
    let detail = match line {
        Some(line) => format!("{how}: {line}"),
        None => how,
    };
    Ran {
        ok: false,
        detail,
        stdout: out,
    }
}

/// The program to execute: a relative path with a directory part (`./check.sh`,
/// `bin/check`) is taken relative to `base_dir`, since where the child's working directory
/// applies to it is platform-specific; a bare name is looked up on `PATH`.
fn program_path(program: &str, base_dir: &Path) -> PathBuf {
    let path = Path::new(program);
    let has_dir = path.parent().is_some_and(|p| !p.as_os_str().is_empty());
    if path.is_relative() && has_dir {
        base_dir.join(path)
    } else {
        path.to_path_buf()
    }
}

/// Why a program could not be started, in a few words.
fn spawn_failure(program: &str, base_dir: &Path, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound if !base_dir.is_dir() => format!(
            "cannot start {program:?}: the working directory {} does not exist",
            base_dir.display()
        ),
        std::io::ErrorKind::NotFound => format!("cannot start {program:?}: program not found"),
        std::io::ErrorKind::PermissionDenied => {
            format!("cannot start {program:?}: permission denied")
        }
        _ => format!("cannot start {program:?}: {e}"),
    }
}

/// How a process that has no exit code ended.
#[cfg(unix)]
fn killed_by(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(signal) => format!("killed by signal {signal}"),
        None => "ended without an exit code".into(),
    }
}

/// How a process that has no exit code ended.
#[cfg(not(unix))]
fn killed_by(_status: &std::process::ExitStatus) -> String {
    "ended without an exit code".into()
}

/// Stops the pipe readers; their tails keep what they read.
fn abort_all(readers: &[Option<tokio::task::JoinHandle<()>>]) {
    for reader in readers.iter().flatten() {
        reader.abort();
    }
}

/// Reads a pipe to its end, keeping only its last [`OUTPUT_LIMIT`] bytes in `tail`: the
/// pipe is drained (so the child never blocks on a full pipe) but memory stays bounded.
async fn read_tail(mut pipe: impl AsyncRead + Unpin, tail: Tail) {
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // A poisoned lock only means another reader panicked mid-append; the bytes are
        // still bytes.
        let mut kept = tail.lock().unwrap_or_else(|e| e.into_inner());
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > OUTPUT_LIMIT {
            let excess = kept.len() - OUTPUT_LIMIT;
            kept.drain(..excess);
        }
    }
}

/// The last non-blank line of an output tail, with control characters replaced and cut to
/// [`DETAIL_CHARS`] characters; `None` when there is none.
#[cfg(test)]
fn last_line(tail: &Tail) -> Option<String> {
    last_lines(tail, 1)
}

/// The last `n` non-blank lines of an output tail in order, joined with " / ", each with
/// control characters replaced and cut to [`DETAIL_CHARS`] characters; `None` when there is
/// none.
fn last_lines(tail: &Tail, n: usize) -> Option<String> {
    let kept = tail.lock().unwrap_or_else(|e| e.into_inner());
    let text = String::from_utf8_lossy(&kept);
    let mut picked: Vec<String> = text
        .lines()
        .rev()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(n.max(1))
        .map(|line| {
            let clean: String = line
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            truncate(&clean, DETAIL_CHARS)
        })
        .collect();
    picked.reverse();
    (!picked.is_empty()).then(|| picked.join(" / "))
}

/// At most `max` characters of `text`, with "…" when it was cut.
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

// ---------------------------------------------------------------------------------------
// HTTP.
// ---------------------------------------------------------------------------------------

/// Sends one request (connection included, within `timeout`), reads at most
/// [`OUTPUT_LIMIT`] bytes of the response body in what is left of it, and judges the status
/// with `good`; `expected` names the good statuses for the reason.
async fn http_probe(
    method: Method,
    url: &str,
    body: Option<&str>,
    timeout: Duration,
    good: impl Fn(StatusCode) -> bool,
    expected: &str,
) -> (bool, String) {
    let started = clock::now();
    let deadline = started + timeout;
    let uri: Uri = match url.parse() {
        Ok(uri) => uri,
        Err(e) => return (false, format!("invalid URL {url:?}: {e}")),
    };
    if uri.scheme_str() != Some("http") || uri.authority().is_none() {
        return (
            false,
            format!("invalid URL {url:?}: only http://host[:port]/path is supported"),
        );
    }
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::USER_AGENT, USER_AGENT);
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let payload = Full::new(Bytes::from(body.unwrap_or_default().to_owned()));
    let request = match request.body(payload) {
        Ok(request) => request,
        Err(e) => return (false, format!("cannot build the request: {e}")),
    };
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(timeout));
    // One probe, one connection: nothing is pooled, so no idle connection outlives it.
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector);
    let response = match tokio::time::timeout_at(deadline, client.request(request)).await {
        Err(_) => return (false, format!("timed out after {}", fmt_duration(timeout))),
        Ok(Err(e)) => return (false, transport_failure(&e)),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    let elapsed = started.elapsed();
    // The status decides. The body is read (bounded, in the time that is left) only so that
    // the exchange ends cleanly, then dropped; a server that stalls it changes nothing.
    let mut body = response.into_body();
    let _ = tokio::time::timeout_at(deadline, async {
        let mut read = 0usize;
        while read < OUTPUT_LIMIT {
            match body.frame().await {
                Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
                Some(Err(_)) | None => break,
            }
        }
    })
    .await;
    let code = status.as_u16();
    if good(status) {
        (true, format!("HTTP {code} in {}", fmt_duration(elapsed)))
    } else {
        (
            false,
            format!(
                "HTTP {code} (expected {expected}) in {}",
                fmt_duration(elapsed)
            ),
        )
    }
}

/// Why a request got no response, in a few words: the innermost cause ("Connection refused
/// (os error 111)") with what was being done.
fn transport_failure(e: &hyper_util::client::legacy::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let what = if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    format!("{what}: {cause}")
}

// ---------------------------------------------------------------------------------------
// Formatting.
// ---------------------------------------------------------------------------------------

/// A duration for people: "12 ms", "2 s", "1.2 s", "5 min", "2 min 5 s".
fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        if ms.is_multiple_of(1_000) {
            format!("{} s", ms / 1_000)
        } else {
            format!("{:.1} s", d.as_secs_f64())
        }
    } else {
        let secs = d.as_secs();
        match (secs / 60, secs % 60) {
            (m, 0) => format!("{m} min"),
            (m, s) => format!("{m} min {s} s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(fmt_duration(Duration::from_millis(12)), "12 ms");
        assert_eq!(fmt_duration(Duration::from_millis(1_234)), "1.2 s");
        assert_eq!(fmt_duration(Duration::from_secs(2)), "2 s");
        assert_eq!(fmt_duration(Duration::from_secs(300)), "5 min");
        assert_eq!(fmt_duration(Duration::from_secs(125)), "2 min 5 s");
    }

    #[test]
    fn the_last_line_is_clean_and_short() {
        let tail: Tail = Arc::new(Mutex::new(b"first\nsecond\x1b[31m red\r\n\n  \n".to_vec()));
        assert_eq!(last_line(&tail).as_deref(), Some("second [31m red"));
        let long = "é".repeat(300);
        let tail: Tail = Arc::new(Mutex::new(long.clone().into_bytes()));
        let line = last_line(&tail).unwrap();
        assert_eq!(
            line.chars().count(),
            DETAIL_CHARS + 1,
            "200 characters and …"
        );
        assert!(line.ends_with('…'));
        let empty: Tail = Arc::new(Mutex::new(b" \n\n".to_vec()));
        assert_eq!(last_line(&empty), None);
    }

    #[test]
    fn relative_programs_with_a_directory_are_found_in_the_base_dir() {
        let base = Path::new("/plans");
        assert_eq!(
            program_path("./check.sh", base),
            Path::new("/plans/./check.sh")
        );
        assert_eq!(
            program_path("bin/check", base),
            Path::new("/plans/bin/check")
        );
        assert_eq!(program_path("pg_dump", base), Path::new("pg_dump"));
        assert_eq!(
            program_path("/usr/bin/pg_dump", base),
            Path::new("/usr/bin/pg_dump")
        );
    }
}
