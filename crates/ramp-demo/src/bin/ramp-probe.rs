//! `ramp-probe`: the pieces of `scripts/bench-propagation.sh`, which measures how long a
//! rollback takes to reach the traffic through each router.
//!
//! - `serve`: a stable and a canary upstream on loopback that answer at once and name
//!   themselves (the `x-ramp-upstream` header and the body), export their own Prometheus
//!   metrics labelled by version (for the routers whose metrics come from Prometheus), and
//!   write the wall-clock arrival time of every request that reaches either to a file;
//! - `load`: steady open-loop traffic through the router under test (`ramp_demo::run_load`,
//!   spread evenly over several targets for a fleet of proxies);
//! - `propagation`: from those arrival times and the controller's rollback decision time, how
//!   long after the decision requests still reached the canary, and the longest time around
//!   the decision in which no request reached either upstream (the measurement's resolution:
//!   a probe that stalled would otherwise read as a fast rollback).
//!
//! Every wait is bounded: `serve` stops when its stop file appears or after `--max-seconds`,
//! `load` after `--seconds`.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use ramp_demo::{run_load_with, LoadConfig, LoadCounters};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// How long before the decision `propagation` looks for canary arrivals by default (a
/// rollback measured while no request reached the canary would say nothing), and how far on
/// either side of it the longest silence of both upstreams is looked for.
const DEFAULT_BEFORE_MS: i64 = 1000;

/// The longest `serve` runs without a stop file, and the longest `load` may be asked to run.
const MAX_SECONDS: u64 = 3600;

/// How often `serve` writes the canary's arrivals to its file and looks for the stop file.
const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// The longest a connection may take to send a request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest request body read before answering.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The upper bounds of the exported latency histogram, in seconds. The upstreams answer at
/// once, so the layout only needs to be valid, not fine.
const BUCKETS_S: [f64; 6] = [0.000_5, 0.001, 0.005, 0.025, 0.1, 1.0];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => parse_serve(&args[1..]).and_then(|o| runtime()?.block_on(serve(o))),
        Some("load") => parse_load(&args[1..]).and_then(|o| runtime()?.block_on(load(o))),
        Some("propagation") => parse_propagation(&args[1..]).and_then(|o| propagation_cmd(&o)),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => Err(Fail::Usage(
            "expected a command: serve, load or propagation".into(),
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail::Usage(m)) => {
            eprintln!("ramp-probe: {m}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Fail::Run(m)) => {
            eprintln!("ramp-probe: {m}");
            ExitCode::from(1)
        }
    }
}

/// The command line, for `--help` and usage errors.
const USAGE: &str = "usage:
  ramp-probe serve --stable ADDR --canary ADDR --arrivals FILE --stop-file FILE [--max-seconds S]
  ramp-probe load --target ADDR [--target ADDR ...] --rps R --seconds S
  ramp-probe propagation --arrivals FILE --decision-ms UNIX_MS [--before-ms MS]";

/// Why a command failed: bad input (exit 2) or a failure while running (exit 1).
#[derive(Debug)]
enum Fail {
    /// The command line is wrong; the message names the option.
    Usage(String),
    /// Something failed while running.
    Run(String),
}

/// A current-thread runtime: each process serves or loads on one thread.
fn runtime() -> Result<tokio::runtime::Runtime, Fail> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Fail::Run(format!("cannot start the runtime: {e}")))
}

/// Wall-clock time in microseconds since the Unix epoch: the canary's arrival times, compared
/// with the millisecond wall-clock time the controller journals with its rollback decision.
#[allow(
    clippy::disallowed_methods,
    reason = "arrival times must be on the same wall clock as the controller's journal; this is the probe's one clock read"
)]
fn unix_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// The options of one command, as `--name value` pairs (a name may repeat).
fn pairs(args: &[String]) -> Result<Vec<(&str, &str)>, Fail> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(name) = it.next() {
        let Some(key) = name.strip_prefix("--") else {
            return Err(Fail::Usage(format!("unexpected argument `{name}`")));
        };
        let Some(value) = it.next() else {
            return Err(Fail::Usage(format!("--{key} needs a value")));
        };
        out.push((key, value.as_str()));
    }
    Ok(out)
}

/// A loopback address given to `--{key}`.
fn loopback(key: &str, value: &str) -> Result<SocketAddr, Fail> {
    let addr: SocketAddr = value
        .parse()
        .map_err(|_| Fail::Usage(format!("--{key}: `{value}` is not an IP:port address")))?;
    if !addr.ip().is_loopback() {
        return Err(Fail::Usage(format!(
            "--{key}: {addr} is not a loopback address (the probe stays on this machine)"
        )));
    }
    Ok(addr)
}

/// A number given to `--{key}`, within `lo..=hi`.
fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    value: &str,
    lo: T,
    hi: T,
) -> Result<T, Fail> {
    match value.parse::<T>() {
        Ok(v) if v >= lo && v <= hi => Ok(v),
        _ => Err(Fail::Usage(format!(
            "--{key}: `{value}` is not a number from {lo} to {hi}"
        ))),
    }
}

/// The value of a required option.
fn required<T>(key: &str, v: Option<T>) -> Result<T, Fail> {
    v.ok_or_else(|| Fail::Usage(format!("--{key} is required")))
}

/// `serve`'s options.
struct ServeOptions {
    /// Where the stable upstream listens.
    stable: SocketAddr,
    /// Where the canary upstream listens.
    canary: SocketAddr,
    /// The file the canary's arrival times are appended to, one Unix µs per line.
    arrivals: PathBuf,
    /// The file whose appearance stops the upstreams.
    stop_file: PathBuf,
    /// The longest the upstreams run.
    max: Duration,
}

fn parse_serve(args: &[String]) -> Result<ServeOptions, Fail> {
    let (mut stable, mut canary, mut arrivals, mut stop_file, mut max) =
        (None, None, None, None, 900);
    for (k, v) in pairs(args)? {
        match k {
            "stable" => stable = Some(loopback(k, v)?),
            "canary" => canary = Some(loopback(k, v)?),
            "arrivals" => arrivals = Some(PathBuf::from(v)),
            "stop-file" => stop_file = Some(PathBuf::from(v)),
            "max-seconds" => max = number(k, v, 1, MAX_SECONDS)?,
            _ => return Err(Fail::Usage(format!("serve: unknown option --{k}"))),
        }
    }
    Ok(ServeOptions {
        stable: required("stable", stable)?,
        canary: required("canary", canary)?,
        arrivals: required("arrivals", arrivals)?,
        stop_file: required("stop-file", stop_file)?,
        max: Duration::from_secs(max),
    })
}

/// One upstream: its name, what it counted, and (for the canary) the arrivals not yet written.
struct Upstream {
    /// `stable` or `canary`: the `version` label, the header and the body.
    name: &'static str,
    /// Requests answered, other than `/metrics` and `/health`.
    requests: AtomicU64,
    /// Arrival times (Unix µs) not yet written.
    arrivals: Mutex<Vec<i64>>,
}

impl Upstream {
    /// The Prometheus text exposition of what this upstream answered: the series the default
    /// query templates read (`http_request_duration_seconds` and `http_requests_total`, by
    /// `version`). Every request is answered 200 at once, so every one is in the first bucket.
    fn metrics(&self) -> String {
        let n = self.requests.load(Ordering::Relaxed);
        let v = self.name;
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE http_request_duration_seconds histogram");
        for le in BUCKETS_S {
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{version=\"{v}\",le=\"{le}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "http_request_duration_seconds_bucket{{version=\"{v}\",le=\"+Inf\"}} {n}"
        );
        let _ = writeln!(
            out,
            "http_request_duration_seconds_sum{{version=\"{v}\"}} 0"
        );
        let _ = writeln!(
            out,
            "http_request_duration_seconds_count{{version=\"{v}\"}} {n}"
        );
        let _ = writeln!(out, "# TYPE http_requests_total counter");
        for (code, count) in [("200", n), ("500", 0)] {
            let _ = writeln!(
                out,
                "http_requests_total{{version=\"{v}\",code=\"{code}\"}} {count}"
            );
        }
        out
    }
}

/// Answers one request: the arrival is logged first, then the body is read (bounded) and the
/// upstream names itself.
async fn answer(
    req: Request<Incoming>,
    up: Arc<Upstream>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path();
    let body = match path {
        "/metrics" => Bytes::from(up.metrics()),
        "/health" => Bytes::from_static(b"ok\n"),
        _ => {
            let at = unix_us();
            if let Ok(mut l) = up.arrivals.lock() {
                l.push(at);
            }
            up.requests.fetch_add(1, Ordering::Relaxed);
            let _ = tokio::time::timeout(
                HEADER_READ_TIMEOUT,
                http_body_util::Limited::new(req.into_body(), MAX_BODY_BYTES).collect(),
            )
            .await;
            Bytes::from(format!("{}\n", up.name))
        }
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        ramp_demo::upstream::UPSTREAM_HEADER,
        http::HeaderValue::from_static(up.name),
    );
    Ok(response)
}

/// Accepts connections on `listener` for `up` until the task is dropped.
async fn accept_loop(listener: TcpListener, up: Arc<Upstream>) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let up = up.clone();
        let conn = builder.serve_connection(
            TokioIo::new(stream),
            service_fn(move |req| answer(req, up.clone())),
        );
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

/// Appends the arrivals both upstreams logged since the last call to `file`, one per line
/// (`canary 1760000000123456` or `stable …`), and flushes.
fn write_arrivals(ups: &[&Upstream], file: &mut std::fs::File) -> Result<(), Fail> {
    let mut text = String::new();
    for up in ups {
        let taken = up.arrivals.lock().map(|mut l| std::mem::take(&mut *l));
        let taken = taken.map_err(|_| Fail::Run("the arrival log was poisoned".into()))?;
        for t in taken {
            let _ = writeln!(text, "{} {t}", up.name);
        }
    }
    if text.is_empty() {
        return Ok(());
    }
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| Fail::Run(format!("cannot write the arrivals: {e}")))
}

/// Runs both upstreams until the stop file appears or `max` has passed, writing their
/// arrivals as they come (every [`FLUSH_EVERY`]), so a reader of the file is at most that late.
async fn serve(o: ServeOptions) -> Result<(), Fail> {
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|e| Fail::Run(format!("cannot listen on {addr}: {e}")))
    };
    let (stable_l, canary_l) = (bind(o.stable).await?, bind(o.canary).await?);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&o.arrivals)
        .map_err(|e| Fail::Run(format!("{}: cannot open: {e}", o.arrivals.display())))?;
    let stable = Arc::new(Upstream {
        name: "stable",
        requests: AtomicU64::new(0),
        arrivals: Mutex::new(Vec::new()),
    });
    let canary = Arc::new(Upstream {
        name: "canary",
        requests: AtomicU64::new(0),
        arrivals: Mutex::new(Vec::new()),
    });
    let tasks = [
        tokio::spawn(accept_loop(stable_l, stable.clone())),
        tokio::spawn(accept_loop(canary_l, canary.clone())),
    ];
    eprintln!(
        "ramp-probe: stable on {}, canary on {}, arrivals to {}",
        o.stable,
        o.canary,
        o.arrivals.display()
    );
    let limit = tokio::time::sleep(o.max);
    tokio::pin!(limit);
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    let result = loop {
        tokio::select! {
            () = &mut limit => break write_arrivals(&[&stable, &canary], &mut file),
            _ = tick.tick() => {}
        }
        if let Err(e) = write_arrivals(&[&stable, &canary], &mut file) {
            break Err(e);
        }
        if o.stop_file.exists() {
            break Ok(());
        }
    };
    for t in tasks {
        t.abort();
    }
    eprintln!(
        "ramp-probe: served {} stable and {} canary requests",
        stable.requests.load(Ordering::Relaxed),
        canary.requests.load(Ordering::Relaxed)
    );
    result
}

/// `load`'s options.
struct LoadOptions {
    /// Where requests go: the router, or each member of a fleet.
    targets: Vec<SocketAddr>,
    /// Requests per second in all, split evenly over the targets.
    rps: f64,
    /// How long to send.
    seconds: u64,
}

fn parse_load(args: &[String]) -> Result<LoadOptions, Fail> {
    let (mut targets, mut rps, mut seconds) = (Vec::new(), None, None);
    for (k, v) in pairs(args)? {
        match k {
            "target" => targets.push(loopback(k, v)?),
            "rps" => rps = Some(number(k, v, 1.0, 20_000.0)?),
            "seconds" => seconds = Some(number(k, v, 1, MAX_SECONDS)?),
            _ => return Err(Fail::Usage(format!("load: unknown option --{k}"))),
        }
    }
    if targets.is_empty() {
        return Err(Fail::Usage("--target is required".into()));
    }
    Ok(LoadOptions {
        targets,
        rps: required("rps", rps)?,
        seconds: required("seconds", seconds)?,
    })
}

/// Sends Poisson arrivals at `rps` in all (split evenly over the targets) for `seconds`, then
/// says what came back.
async fn load(o: LoadOptions) -> Result<(), Fail> {
    let each = o.rps / o.targets.len() as f64;
    let mut runs = tokio::task::JoinSet::new();
    for (i, &target) in o.targets.iter().enumerate() {
        let mut config = LoadConfig::new(target, each);
        config.duration = Some(Duration::from_secs(o.seconds));
        config.timeout = Duration::from_secs(2);
        config.seed = i as u64 + 1;
        config.path = "/probe".into();
        let counters = LoadCounters::new();
        runs.spawn(async move {
            (
                target,
                run_load_with(config, counters, std::future::pending()).await,
            )
        });
    }
    let mut failed = None;
    while let Some(joined) = runs.join_next().await {
        match joined {
            Ok((target, Ok(r))) => eprintln!(
                "ramp-probe: {target}: {} sent, {} answered 2xx, {} failed, {:.0} req/s",
                r.sent,
                r.ok,
                r.failed,
                r.achieved_rps()
            ),
            Ok((target, Err(e))) => failed = Some(format!("{target}: {e}")),
            Err(e) => failed = Some(format!("a load task failed: {e}")),
        }
    }
    failed.map_or(Ok(()), |m| Err(Fail::Run(m)))
}

/// `propagation`'s options.
struct PropagationOptions {
    /// The upstreams' arrival times, `canary|stable UNIX_US` per line.
    arrivals: PathBuf,
    /// The controller's rollback decision, Unix ms.
    decision_ms: i64,
    /// How far before the decision canary traffic must have arrived.
    before_ms: i64,
}

fn parse_propagation(args: &[String]) -> Result<PropagationOptions, Fail> {
    let (mut arrivals, mut decision_ms, mut before_ms) = (None, None, DEFAULT_BEFORE_MS);
    for (k, v) in pairs(args)? {
        match k {
            "arrivals" => arrivals = Some(PathBuf::from(v)),
            "decision-ms" => decision_ms = Some(number(k, v, 1, i64::MAX / 1000)?),
            "before-ms" => before_ms = number(k, v, 1, 3_600_000)?,
            _ => return Err(Fail::Usage(format!("propagation: unknown option --{k}"))),
        }
    }
    Ok(PropagationOptions {
        arrivals: required("arrivals", arrivals)?,
        decision_ms: required("decision-ms", decision_ms)?,
        before_ms,
    })
}

/// How long after a rollback decision requests still reached the canary.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Propagation {
    /// The last arrival at the canary at or after the decision, minus the decision, in ms;
    /// 0 when none arrived after it.
    ms: f64,
    /// Canary arrivals in the `window` before the decision: without any, the router was not
    /// sending to the canary and the measurement says nothing.
    before: usize,
    /// Canary arrivals at or after the decision.
    after: usize,
    /// The longest time, in ms, in which no request arrived at either upstream, within the
    /// `window` on either side of the decision (the decision and the window's ends count as
    /// bounds): the resolution of `ms`, which a stalled probe would otherwise hide.
    max_gap_ms: f64,
}

/// The propagation of a decision at `decision_us` given the upstreams' arrival times (µs, in
/// any order; `true` for the canary), counting the canary's arrivals in the `window_us` before
/// the decision and the longest silence in the `window_us` on either side of it.
fn propagation(decision_us: i64, window_us: i64, arrivals: &[(bool, i64)]) -> Propagation {
    let (from, to) = (decision_us - window_us, decision_us + window_us);
    let canary = arrivals.iter().filter(|a| a.0).map(|a| a.1);
    let before = canary
        .clone()
        .filter(|&t| t >= from && t < decision_us)
        .count();
    let after: Vec<i64> = canary.filter(|&t| t >= decision_us).collect();
    let last = after.iter().copied().max().unwrap_or(decision_us);
    let mut times: Vec<i64> = arrivals
        .iter()
        .map(|a| a.1)
        .filter(|&t| t > from && t < to)
        .chain([from, decision_us, to])
        .collect();
    times.sort_unstable();
    let max_gap = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    Propagation {
        ms: (last - decision_us) as f64 / 1000.0,
        before,
        after: after.len(),
        max_gap_ms: max_gap as f64 / 1000.0,
    }
}

/// Reads the arrivals file: `canary UNIX_US` or `stable UNIX_US` per line; anything else is
/// an error naming the line.
fn read_arrivals(path: &Path) -> Result<Vec<(bool, i64)>, Fail> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Fail::Usage(format!("{}: cannot read: {e}", path.display())))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let bad = || {
                Fail::Usage(format!(
                    "{}:{}: `{l}` is not `canary` or `stable` and a time in Unix microseconds",
                    path.display(),
                    i + 1
                ))
            };
            let (name, t) = l.trim().split_once(' ').ok_or_else(bad)?;
            let t = t.trim().parse::<i64>().map_err(|_| bad())?;
            match name {
                "canary" => Ok((true, t)),
                "stable" => Ok((false, t)),
                _ => Err(bad()),
            }
        })
        .collect()
}

/// Prints `propagation_ms=… before=… after=…` for the script; refuses a measurement with no
/// canary traffic before the decision (exit 1), which would read as an instant rollback.
fn propagation_cmd(o: &PropagationOptions) -> Result<(), Fail> {
    let arrivals = read_arrivals(&o.arrivals)?;
    let p = propagation(o.decision_ms * 1000, o.before_ms * 1000, &arrivals);
    println!(
        "propagation_ms={:.1} before={} after={} max_gap_ms={:.1}",
        p.ms, p.before, p.after, p.max_gap_ms
    );
    if p.before == 0 {
        return Err(Fail::Run(format!(
            "no request reached the canary in the {} ms before the decision: nothing was measured",
            o.before_ms
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Canary arrivals at these offsets (µs) from `d`.
    fn canary(d: i64, offsets: &[i64]) -> Vec<(bool, i64)> {
        offsets.iter().map(|o| (true, d + o)).collect()
    }

    #[test]
    fn propagation_is_the_last_canary_arrival_after_the_decision() {
        // Decision at 10 s; canary arrivals before it and two after (the later one counts),
        // a stable arrival later still, all out of order.
        let d = 10_000_000;
        let mut a = canary(d, &[-900_000, 37_250, -5_000, 2_000, -2_000_000]);
        a.push((false, d + 60_000));
        let p = propagation(d, 1_000_000, &a);
        assert_eq!((p.ms, p.before, p.after), (37.25, 2, 2));
        // The longest silence within a second of the decision: from the stable arrival at
        // +60 ms to the window's end at +1 s.
        assert_eq!(p.max_gap_ms, 940.0);
    }

    #[test]
    fn no_canary_arrival_after_the_decision_is_zero_and_one_at_it_counts() {
        let d = 5_000_000;
        let p = propagation(d, 1_000_000, &canary(d, &[-10, -500_000]));
        assert_eq!((p.ms, p.before, p.after), (0.0, 2, 0));
        let p = propagation(d, 1_000_000, &canary(d, &[0]));
        assert_eq!((p.ms, p.before, p.after), (0.0, 0, 1));
    }

    #[test]
    fn arrivals_outside_the_window_are_not_traffic_before_the_decision() {
        let d = 5_000_000;
        let p = propagation(d, 1_000, &canary(d, &[-1_001, 4_000]));
        assert_eq!((p.ms, p.before, p.after), (4.0, 0, 1));
    }

    #[test]
    fn a_stalled_probe_shows_as_a_long_silence() {
        // Steady arrivals every 2 ms up to the decision, then nothing for 300 ms: no canary
        // arrival after the decision, but the silence says the 0 is not a measurement.
        let d = 50_000_000;
        let mut a: Vec<(bool, i64)> = (1..=500).map(|i| (i % 2 == 0, d - 2_000 * i)).collect();
        a.push((false, d + 300_000));
        let p = propagation(d, 1_000_000, &a);
        assert_eq!((p.ms, p.after), (0.0, 0));
        assert_eq!(p.max_gap_ms, 700.0);
        a.extend((1..=350).map(|i| (false, d + 300_000 + 2_000 * i)));
        assert_eq!(propagation(d, 1_000_000, &a).max_gap_ms, 300.0);
    }

    #[test]
    fn a_bad_arrivals_line_is_named() {
        let dir = std::env::temp_dir().join(format!("ramp-probe-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("arrivals");
        std::fs::write(&f, "canary 12\n\nstable 13x\n").unwrap();
        match read_arrivals(&f) {
            Err(Fail::Usage(m)) => assert!(
                m.ends_with(
                    ":3: `stable 13x` is not `canary` or `stable` and a time in Unix microseconds"
                ),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        std::fs::write(&f, "canary 12\nstable 13\n").unwrap();
        assert_eq!(read_arrivals(&f).unwrap(), vec![(true, 12), (false, 13)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
