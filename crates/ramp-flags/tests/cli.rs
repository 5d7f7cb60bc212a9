//! `ramp flags serve`'s options and run loop, as a binary would drive them.

#![allow(
    clippy::disallowed_methods,
    reason = "tests time real servers and deadlines with tokio's clock"
)]

mod common;

use clap::Parser;
use ramp_flags::cli::{prepare, run, Args};
use ramp_flags::FlagsError;
use std::path::PathBuf;
use std::time::Duration;

/// What a binary's subcommand looks like.
#[derive(Parser)]
struct Cmd {
    /// The flags server's options, flattened as `ramp flags serve` would.
    #[command(flatten)]
    args: Args,
}

/// A scratch directory for this test process, removed by the caller.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ramp-flags-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Parses `serve ARGV…`.
fn parse(argv: &[&str]) -> Args {
    Cmd::try_parse_from(std::iter::once("serve").chain(argv.iter().copied()))
        .expect("valid arguments")
        .args
}

#[test]
fn options_are_checked_before_anything_is_bound() {
    let dir = scratch("prepare");
    let flags = dir.join("flags.toml");
    std::fs::write(&flags, common::FLAGS).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, "  s3cr3t\n").unwrap();
    let f = flags.to_str().unwrap();
    let t = token.to_str().unwrap();

    let p = prepare(&parse(&[
        "--flags",
        f,
        "--token-file",
        t,
        "--rate-limit",
        "50",
        "--weight",
        "12.5",
    ]))
    .expect("valid options");
    assert_eq!(p.listen.to_string(), "127.0.0.1:8016");
    assert!(p.options.token.is_some());
    assert_eq!(
        p.options.rate_limit.map(|l| (l.rate(), l.burst())),
        Some((50.0, 50))
    );
    assert_eq!(p.state.rollout_weight_bp(), Some(1250));

    let err = |argv: &[&str]| prepare(&parse(argv)).unwrap_err();
    let e = err(&["--flags", f, "--listen", "localhost"]);
    assert!(
        matches!(e, FlagsError::Listen(_)) && e.is_invalid_input(),
        "{e}"
    );
    let e = err(&["--flags", f, "--weight", "150"]);
    assert!(matches!(e, FlagsError::Weight(_)), "{e}");
    let e = err(&["--flags", f, "--rate-limit", "0"]);
    assert!(matches!(e, FlagsError::RateLimit(_)), "{e}");
    // Statistics: on by default over 5 minutes, bounded, and can be switched off.
    let stats = p.options.stats.as_ref().expect("statistics on by default");
    let window = stats.flag_stats().config();
    assert_eq!(
        (window.window(), window.exact_cap()),
        (Duration::from_secs(300), 100_000)
    );
    let off = prepare(&parse(&["--flags", f, "--no-stats"])).expect("valid options");
    assert!(off.options.stats.is_none());
    let on = prepare(&parse(&[
        "--flags",
        f,
        "--stats-window",
        "60",
        "--stats-exact-cap",
        "500",
    ]))
    .expect("valid options");
    let window = on.options.stats.as_ref().unwrap().flag_stats().config();
    assert_eq!(
        (window.window(), window.exact_cap()),
        (Duration::from_secs(60), 500)
    );
    for argv in [
        ["--stats-window", "2"],
        ["--stats-window", "90000"],
        ["--stats-exact-cap", "0"],
    ] {
        let e = err(&["--flags", f, argv[0], argv[1]]);
        assert!(
            matches!(e, FlagsError::Stats(_)) && e.is_invalid_input(),
            "{e}"
        );
    }
    let e = err(&[
        "--flags",
        f,
        "--token-file",
        dir.join("none").to_str().unwrap(),
    ]);
    assert!(matches!(e, FlagsError::TokenFile { .. }), "{e}");
    std::fs::write(&token, "two words\n").unwrap();
    let e = err(&["--flags", f, "--token-file", t]);
    assert!(e.to_string().contains("visible ASCII"), "{e}");
    std::fs::write(&token, "\n").unwrap();
    let e = err(&["--flags", f, "--token-file", t]);
    assert!(e.to_string().ends_with("the token is empty"), "{e}");

    std::fs::write(
        &flags,
        "[flags.x]\nvariants = { a = 1 }\ndefault_variant = \"b\"\nweight = 5\n",
    )
    .unwrap();
    let e = err(&["--flags", f]);
    assert!(e.is_invalid_input());
    assert_eq!(
        e.to_string(),
        format!(
            "invalid flags file:\n{f}:3:19: error: flags.x.default_variant: no variant is named \"b\"; the variants are `a`\n{f}:4:10: error: flags.x: a rollout needs `on_variant`, the variant served to users inside it"
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn run_serves_until_shutdown() {
    let dir = scratch("run");
    let flags = dir.join("flags.toml");
    std::fs::write(&flags, common::FLAGS).unwrap();
    // Find a free port, then let `run` bind it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let args = parse(&["--flags", flags.to_str().unwrap(), "--listen", &listen]);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        run(&args, async move {
            let _ = rx.await;
        })
        .await
    });
    // Wait until it answers.
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(&listen).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(up, "the server listens on {listen}");
    // The port is taken: a second server reports it.
    let args2 = parse(&["--flags", flags.to_str().unwrap(), "--listen", &listen]);
    let e = run(&args2, async {}).await.unwrap_err();
    assert!(
        matches!(e, FlagsError::Bind { .. }) && !e.is_invalid_input(),
        "{e}"
    );
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("run returns after shutdown")
        .unwrap()
        .expect("run ends cleanly");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One OFREP evaluation over a plain HTTP/1.1 connection; returns the response body.
async fn evaluate(addr: &str, flag: &str, key: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = format!(r#"{{"context":{{"targetingKey":"{key}"}}}}"#);
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /ofrep/v1/evaluate/flags/{flag} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string()
}

#[tokio::test]
async fn run_moves_scheduled_flags_on_the_time_since_it_started() {
    let dir = scratch("schedule");
    let flags = dir.join("flags.toml");
    std::fs::write(
        &flags,
        r#"
[flags.slow]
variants = { on = true, off = false }
default_variant = "off"
on_variant = "on"
schedule = [ { after = "0s", weight = 0 }, { after = "1500ms", weight = 100 } ]
"#,
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let args = parse(&["--flags", flags.to_str().unwrap(), "--listen", &listen]);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        run(&args, async move {
            let _ = rx.await;
        })
        .await
    });
    // Off at first (0 % from the start), then on for everyone once 1.5 s have passed since
    // the server started: nobody but `run` publishes the time.
    let started = tokio::time::Instant::now();
    let mut seen_off = false;
    loop {
        let body = match tokio::net::TcpStream::connect(&listen).await {
            Ok(_) => evaluate(&listen, "slow", "user-1").await,
            Err(_) => String::new(),
        };
        if body.contains(r#""value":false,"reason":"STATIC""#) {
            seen_off = true;
        }
        if body.contains(r#""value":true,"reason":"STATIC""#) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never turned on: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen_off, "the schedule started at 0 %");
    assert!(started.elapsed() >= Duration::from_millis(1_400));
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("run returns after shutdown")
        .unwrap()
        .expect("run ends cleanly");
    std::fs::remove_dir_all(&dir).unwrap();
}
