//! Checks and hooks against real programs and small HTTP servers on 127.0.0.1: each outcome
//! says what happened, every probe ends by its deadline, and nothing panics.

#![allow(
    clippy::disallowed_methods,
    reason = "tests time real servers and deadlines with tokio's clock"
)]
#![cfg(unix)]

use ramp_core::{Check, Hook, HookAction, HookEvent, Probe, Span};
use ramp_live::checks::{run_check, run_hook, ProbeOutcome};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A fresh empty directory for one test, standing in for the plan file's directory.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ramp-checks-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A check probing `url` for `expect_status`.
fn http_check(url: String, expect_status: u16, timeout_ms: u64) -> Check {
    Check {
        name: "API health".into(),
        probe: Probe::Http { url, expect_status },
        timeout: Span(timeout_ms),
    }
}

/// A check running `argv`.
fn command_check(argv: &[&str], timeout_ms: u64) -> Check {
    Check {
        name: "command".into(),
        probe: Probe::Command {
            argv: argv.iter().map(|a| a.to_string()).collect(),
        },
        timeout: Span(timeout_ms),
    }
}

/// A request as a test server saw it: the head (request line and headers) and the body.
struct Seen {
    /// Request line and headers, as text.
    head: String,
    /// The body, `content-length` bytes of it.
    body: Vec<u8>,
}

/// Reads one HTTP/1.1 request (head, then a `content-length` body) from `stream`.
async fn read_request(stream: &mut TcpStream) -> Option<Seen> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = data[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    Some(Seen { head, body })
}

/// Serves every request with `status` (such as "200 OK") and a small body, and reports each
/// request it saw on the returned channel.
async fn serve(status: &'static str) -> (SocketAddr, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Some(seen) = read_request(&mut stream).await {
                    let _ = tx.send(seen);
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello"
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                }
            });
        }
    });
    (addr, rx)
}

/// Accepts connections and never answers them.
async fn serve_silence() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

/// Asserts a failed outcome whose detail contains `part`.
fn assert_failed(o: &ProbeOutcome, part: &str) {
    assert!(!o.ok, "{o:?}");
    assert!(o.detail.contains(part), "{:?} lacks {part:?}", o.detail);
}

#[tokio::test]
async fn an_http_check_passes_on_the_expected_status() {
    let (addr, mut seen) = serve("200 OK").await;
    let check = http_check(format!("http://{addr}/health"), 200, 2_000);
    let o = run_check(&check, Path::new(".")).await;
    assert!(o.ok, "{o:?}");
    assert_eq!(o.name, "API health");
    assert!(
        o.detail.starts_with("HTTP 200 in ") && o.detail.ends_with(" ms"),
        "{}",
        o.detail
    );
    let request = seen.recv().await.unwrap();
    assert!(
        request.head.starts_with("GET /health HTTP/1.1\r\n"),
        "{}",
        request.head
    );
}

#[tokio::test]
async fn an_http_check_fails_on_another_status() {
    let (addr, _seen) = serve("503 Service Unavailable").await;
    let o = run_check(
        &http_check(format!("http://{addr}/health"), 200, 2_000),
        Path::new("."),
    )
    .await;
    assert_failed(&o, "HTTP 503 (expected 200) in ");
    // A check may expect something other than 200.
    let o = run_check(
        &http_check(format!("http://{addr}/health"), 503, 2_000),
        Path::new("."),
    )
    .await;
    assert!(o.ok, "{o:?}");
}

#[tokio::test]
async fn an_http_check_times_out_on_a_server_that_never_answers() {
    let addr = serve_silence().await;
    let started = Instant::now();
    let o = run_check(
        &http_check(format!("http://{addr}/health"), 200, 300),
        Path::new("."),
    )
    .await;
    assert_failed(&o, "timed out after 300 ms");
    assert!(started.elapsed() < Duration::from_secs(1), "{o:?}");
    assert!(o.elapsed >= Duration::from_millis(300), "{o:?}");
}

#[tokio::test]
async fn an_http_check_fails_when_the_connection_is_refused() {
    // A port that was just free: nothing listens on it any more.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let o = run_check(
        &http_check(format!("http://{addr}/health"), 200, 2_000),
        Path::new("."),
    )
    .await;
    assert_failed(&o, "cannot connect");
    assert!(o.detail.to_lowercase().contains("refused"), "{}", o.detail);
}

#[tokio::test]
async fn a_url_the_loader_would_reject_is_a_failure_not_a_panic() {
    for url in ["https://127.0.0.1:1/", "not a url", "http:///x"] {
        let o = run_check(&http_check(url.into(), 200, 500), Path::new(".")).await;
        assert_failed(&o, "invalid URL");
    }
}

#[tokio::test]
async fn a_command_check_passes_on_exit_0_in_the_plan_directory() {
    let dir = scratch("exit0");
    std::fs::write(dir.join("marker"), "").unwrap();
    let o = run_check(&command_check(&["test", "-f", "marker"], 5_000), &dir).await;
    assert!(o.ok, "{o:?}");
    assert!(o.detail.starts_with("exit 0 in "), "{}", o.detail);
    // A relative program path is found in the plan's directory too.
    std::fs::write(dir.join("check.sh"), "#!/bin/sh\nexit 0\n").unwrap();
    let o = run_check(&command_check(&["sh", "./check.sh"], 5_000), &dir).await;
    assert!(o.ok, "{o:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_failing_command_reports_its_exit_code_and_last_stderr_line() {
    let o = run_check(
        &command_check(
            &[
                "sh",
                "-c",
                "echo progress; echo 'pg_dump: starting' >&2; echo 'pg_dump: disk full' >&2; exit 3",
            ],
            5_000,
        ),
        Path::new("."),
    )
    .await;
    assert!(!o.ok);
    assert_eq!(o.detail, "exit 3: pg_dump: disk full");
    // Without stderr, the last line of stdout; without either, the code alone.
    let o = run_check(
        &command_check(&["sh", "-c", "echo 'on stdout'; exit 2"], 5_000),
        Path::new("."),
    )
    .await;
    assert_eq!(o.detail, "exit 2: on stdout");
    let o = run_check(&command_check(&["false"], 5_000), Path::new(".")).await;
    assert_eq!(o.detail, "exit 1");
}

#[tokio::test]
async fn a_long_stderr_line_is_cut_and_huge_output_is_bounded() {
    let o = run_check(
        &command_check(
            &[
                "sh",
                "-c",
                // 8 MB on stderr (far beyond what is kept), then one very long last line.
                "yes 'noise' | head -c 8000000 >&2; echo >&2; printf '%0500d\\n' 7 >&2; exit 4",
            ],
            10_000,
        ),
        Path::new("."),
    )
    .await;
    assert!(!o.ok);
    let line = o.detail.strip_prefix("exit 4: ").unwrap();
    assert_eq!(line.chars().count(), 201, "200 characters and an ellipsis");
    assert!(line.starts_with("0000") && line.ends_with('…'), "{line}");
}

#[tokio::test]
async fn a_command_that_overruns_its_timeout_is_killed() {
    let dir = scratch("timeout");
    let started = Instant::now();
    let o = run_check(
        &command_check(&["sh", "-c", "echo $$ > pid; exec sleep 30"], 200),
        &dir,
    )
    .await;
    assert_failed(&o, "timed out after 200 ms");
    assert!(started.elapsed() < Duration::from_millis(900), "{o:?}");
    // The process is gone (killed and reaped), not left sleeping.
    let pid = std::fs::read_to_string(dir.join("pid")).unwrap();
    let proc_dir = PathBuf::from(format!("/proc/{}", pid.trim()));
    if Path::new("/proc/self").exists() {
        assert!(!proc_dir.exists(), "process {} still exists", pid.trim());
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_background_process_holding_the_output_does_not_hold_the_check() {
    let started = Instant::now();
    let o = run_check(
        &command_check(&["sh", "-c", "sleep 2 & echo started"], 5_000),
        Path::new("."),
    )
    .await;
    assert!(o.ok, "{o:?}");
    assert!(started.elapsed() < Duration::from_secs(1), "{o:?}");
}

#[tokio::test]
async fn a_missing_program_is_reported() {
    let o = run_check(
        &command_check(&["ramp-no-such-program", "x"], 1_000),
        Path::new("."),
    )
    .await;
    assert_failed(
        &o,
        "cannot start \"ramp-no-such-program\": program not found",
    );
    let o = run_check(
        &command_check(&["/nonexistent/bin/check"], 1_000),
        Path::new("."),
    )
    .await;
    assert_failed(&o, "program not found");
    let o = run_check(
        &command_check(&["true"], 1_000),
        Path::new("/nonexistent/plan/dir"),
    )
    .await;
    assert_failed(
        &o,
        "the working directory /nonexistent/plan/dir does not exist",
    );
    let o = run_check(&command_check(&[], 1_000), Path::new(".")).await;
    assert_failed(&o, "the command is empty");
}

/// The event a hook is told about in these tests.
const EVENT: &str = r#"{"event":"stage_start","stage":2,"weight":25,"note":"it's \"quoted\""}"#;

#[tokio::test]
async fn a_hook_command_gets_the_event_in_ramp_event() {
    let dir = scratch("hook-env");
    let hook = Hook {
        name: "record".into(),
        on: vec![HookEvent::StageStart],
        action: HookAction::Command {
            argv: ["sh", "-c", "printf %s \"$RAMP_EVENT\" > event.json"]
                .map(String::from)
                .to_vec(),
        },
        timeout: Span(5_000),
    };
    let o = run_hook(&hook, EVENT, &dir).await;
    assert!(o.ok, "{o:?}");
    assert_eq!(o.name, "record");
    assert_eq!(
        std::fs::read_to_string(dir.join("event.json")).unwrap(),
        EVENT
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_hook_post_delivers_the_event_as_json() {
    let (addr, mut seen) = serve("204 No Content").await;
    let hook = Hook {
        name: "notify".into(),
        on: vec![HookEvent::Rollback],
        action: HookAction::Post {
            url: format!("http://{addr}/events?source=ramp"),
        },
        timeout: Span(2_000),
    };
    let o = run_hook(&hook, EVENT, Path::new(".")).await;
    assert!(o.ok, "{o:?}");
    assert!(o.detail.starts_with("HTTP 204 in "), "{}", o.detail);
    let request = seen.recv().await.unwrap();
    let head = request.head.to_lowercase();
    assert!(
        head.starts_with("post /events?source=ramp http/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.contains("content-type: application/json\r\n"),
        "{head}"
    );
    assert_eq!(String::from_utf8(request.body).unwrap(), EVENT);
}

#[tokio::test]
async fn a_hook_post_that_is_not_answered_2xx_fails() {
    let (addr, _seen) = serve("500 Internal Server Error").await;
    let hook = Hook {
        name: "notify".into(),
        on: vec![HookEvent::Promotion],
        action: HookAction::Post {
            url: format!("http://{addr}/events"),
        },
        timeout: Span(2_000),
    };
    let o = run_hook(&hook, EVENT, Path::new(".")).await;
    assert_failed(&o, "HTTP 500 (expected 2xx) in ");
}

#[test]
fn every_url_the_plan_loader_accepts_is_a_usable_http_uri() {
    let urls = [
        "http://127.0.0.1:9001/health",
        "HTTP://Example.COM/Health",
        "http://[::1]:9001/ready?deep=1&x=%20",
        "http://svc_internal-1.example:80/a/b;c=d/~e!$'()*+,=:@",
        "http://h",
        "http://h/?",
    ];
    let checks: String = urls
        .iter()
        .enumerate()
        .map(|(i, url)| format!("[[checks]]\nname = \"c{i}\"\nhttp = \"{url}\"\n"))
        .collect();
    let plan = ramp_core::parse_plan(
        &format!("[deployment]\nid = \"d\"\nservice = \"s\"\nenvironment = \"e\"\n\n[[stages]]\nweight = 100\nduration = \"1h\"\n\n{checks}"),
        "plan.toml",
    )
    .unwrap();
    for check in &plan.checks {
        let Probe::Http { url, .. } = &check.probe else {
            unreachable!()
        };
        let uri: http::Uri = url.parse().unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(uri.scheme_str(), Some("http"), "{url}");
        assert!(uri.authority().is_some(), "{url}");
    }
}
