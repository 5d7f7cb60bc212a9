//! The live dashboard as a person sees it: `ramp demo` prints its address first thing, and a
//! real headless Chromium loads it while the demo's rollout runs. The test reads the page
//! Chromium built (its DOM after the page's script drew it from `GET /dashboard.json`) and
//! looks for what a person would: the stage and the weight, a row per gate with its
//! sentence, and a chart with a point per checkpoint.

// A test bounds its waits on the machine's clock.
#![allow(clippy::disallowed_methods)]

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::{chromium, dump_dom};
use common::{arg, TempDir};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The demo, killed when the test ends however it ends.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` from `addr` (host:port), one request on its own connection: the body of a
/// 200, else what went wrong. Bounded: five seconds to connect and to read.
fn get(addr: &str, path: &str) -> Result<String, String> {
    let sock = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let mut stream = TcpStream::connect_timeout(&sock, Duration::from_secs(5))
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut answer = String::new();
    stream
        .take(4 << 20)
        .read_to_string(&mut answer)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    match answer.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_string()),
        _ => Err(format!("GET {path}: {answer}")),
    }
}

/// The checkpoints with a canary p99 in a dashboard document: the points of its chart.
fn p99_points(v: &Value) -> usize {
    v["history"]["checkpoints"].as_array().map_or(0, |c| {
        c.iter().filter(|p| p["canary_p99_ms"].is_number()).count()
    })
}

/// The `points` of the polyline of `series` in the chart titled `title`, counted.
#[track_caller]
fn polyline_points(dom: &str, title: &str, series: &str) -> usize {
    let at = dom
        .find(&format!("<title>{title}</title>"))
        .unwrap_or_else(|| panic!("no chart titled {title:?}:\n{dom}"));
    let chart = &dom[at..at + dom[at..].find("</svg>").expect("the chart's svg ends")];
    let line = chart
        .split("<polyline")
        .skip(1)
        .find(|l| l.contains(&format!("data-series=\"{series}\"")))
        .unwrap_or_else(|| panic!("no {series} line in {chart}"));
    let points = line
        .split("points=\"")
        .nth(1)
        .and_then(|p| p.split('"').next())
        .expect("a polyline has points");
    points.split_whitespace().count()
}

#[test]
fn the_demo_prints_its_dashboard_first_and_chromium_shows_the_rollout_live() {
    let Some(chromium) = chromium() else { return };
    let dir = TempDir::new("dashboard");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ramp"))
        .args(["demo", "--journal", &arg(&dir.path("demo.db"))])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ramp demo starts");
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let _demo = Demo(child);
    let mut first = String::new();
    out.read_line(&mut first).expect("the demo's first line");
    // The rest is read (and dropped) so that the demo never blocks on a full pipe.
    std::thread::spawn(move || for _ in out.lines() {});
    let addr = first
        .strip_prefix("Dashboard: http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("the demo's first line is not its dashboard: {first:?}"))
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{first}");

    // Once two checkpoints are in (the demo checks every 5 s), with a bound on a hang.
    let started = Instant::now();
    let before = loop {
        let doc = get(&addr, "/dashboard.json")
            .ok()
            .and_then(|b| serde_json::from_str::<Value>(&b).ok());
        if let Some(v) = doc.filter(|v| p99_points(v) >= 2 && v["state"] == "running") {
            break v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the demo's dashboard never showed two checkpoints"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let page = get(&addr, "/").unwrap_or_else(|e| panic!("{e}"));
    assert!(page.contains("<title>Ramp dashboard</title>"));

    let url = format!("http://{addr}/");
    // The virtual time budget lets the page's script fetch the document and draw it.
    let dom = dump_dom(
        &chromium,
        &url,
        &dir.path("chromium-profile"),
        &["--virtual-time-budget=3000"],
    );
    let after = get(&addr, "/dashboard.json").unwrap_or_else(|e| panic!("{e}"));
    let after: Value = serde_json::from_str(&after).expect("JSON");

    // The stage and the weight, as of some moment between the two documents.
    let seen = |v: &Value| {
        let s = &v["stage"];
        // JavaScript prints 5.0 as "5", as Rust does.
        let weight = s["weight"].as_f64().unwrap_or(f64::NAN);
        format!("Stage {} of {} at {weight} %", s["index"], s["of"])
    };
    assert!(
        dom.contains(&seen(&before)) || dom.contains(&seen(&after)),
        "neither {:?} nor {:?} in\n{dom}",
        seen(&before),
        seen(&after)
    );
    assert!(dom.contains("canary weight"), "{dom}");
    // A row per gate, each with its sentence (the numbers move from second to second, so
    // a sentence is known by its metric and scope, its first two words).
    let gates = after["gates"].as_array().expect("gates");
    assert!(!gates.is_empty(), "{after:#}");
    assert_eq!(
        dom.matches("<tr class=\"gate\">").count(),
        gates.len(),
        "{dom}"
    );
    for g in gates {
        let text = g["explanation"].as_str().unwrap();
        let head: Vec<&str> = text.split_whitespace().take(2).collect();
        assert!(dom.contains(&head.join(" ")), "no {head:?} in\n{dom}");
    }
    // A point per checkpoint in the p99 chart, canary and stable alike.
    let drawn = polyline_points(
        &dom,
        "p99 latency at each checkpoint, milliseconds",
        "canary",
    );
    assert!(
        (p99_points(&before)..=p99_points(&after)).contains(&drawn),
        "{drawn} points drawn; the documents had {} then {}",
        p99_points(&before),
        p99_points(&after)
    );
    assert_eq!(
        polyline_points(
            &dom,
            "p99 latency at each checkpoint, milliseconds",
            "stable"
        ),
        drawn
    );
    // The buttons are there and, with no control token configured, usable while it runs.
    for verb in ["pause", "abort"] {
        let tag = dom
            .split("<button")
            .map(|b| b.split('>').next().unwrap_or_default())
            .find(|b| b.contains(&format!("id=\"{verb}\"")))
            .unwrap_or_else(|| panic!("no {verb} button in\n{dom}"));
        assert!(!tag.contains("disabled"), "{verb}: {tag}");
    }
}
