//! A real Prometheus server on loopback, started for a demo, a script or a test binary.
//!
//! Ramp's Prometheus integration is tested against the real thing (Debian's `prometheus`
//! 2.42), never a mock: [`Prometheus::start`] writes a configuration that scrapes the given
//! loopback targets every second, starts the server on a free 127.0.0.1 port with its own
//! temporary data directory, and waits until it is ready and has scraped every target once.
//! Dropping the handle kills the process and removes the directory, so a failing test leaves
//! nothing behind.
//!
//! The readiness checks and queries speak plain HTTP/1.0 over a loopback socket
//! ([`crate::loopback::get`]) with a size limit and a deadline on every wait: the launcher must never hang a test run on a server that does not
//! come up.

use crate::clock;
use crate::loopback::get;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long Prometheus may take to become ready and to scrape every target once.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The lines of the server's log quoted when it fails to start.
const LOG_TAIL_LINES: usize = 15;

/// Why a Prometheus server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    /// No `prometheus` executable was found.
    #[error(
        "prometheus not found (looked for $RAMP_PROMETHEUS, /usr/bin/prometheus and `prometheus` on PATH): install it with `apt-get install prometheus` (scripts/bootstrap.sh does)"
    )]
    NotFound,
    /// A target is not on loopback: the demo's servers never scrape anything else.
    #[error("refusing to scrape {target}: only loopback targets are scraped")]
    NonLoopbackTarget {
        /// The refused target.
        target: SocketAddr,
    },
    /// The temporary directory, the configuration or the port could not be set up.
    #[error("cannot prepare prometheus ({what}): {source}")]
    Setup {
        /// What was being prepared.
        what: &'static str,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A query could not be sent, or its answer was not a successful instant vector or
    /// scalar.
    #[error("prometheus query `{query}` failed: {reason}")]
    Query {
        /// The PromQL expression.
        query: String,
        /// What went wrong, as Prometheus or the transport said it.
        reason: String,
    },
    /// The server exited or was not ready (or had not scraped every target) in time.
    #[error("prometheus did not start: {reason}; the end of its log ({log}):\n{tail}")]
    Start {
        /// What was observed.
        reason: String,
        /// The log file, kept for the operator.
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },
}

/// One scrape job: a name (the `job` label) and the loopback addresses it scrapes.
#[derive(Debug, Clone)]
pub struct ScrapeJob {
    /// The job's name, the `job` label of its series.
    pub name: String,
    /// The targets, each scraped at `metrics_path`.
    pub targets: Vec<SocketAddr>,
    /// The path scraped (`/metrics` for the demo upstream, `/metrics` on a proxy's admin
    /// listener).
    pub metrics_path: String,
}

impl ScrapeJob {
    /// A job scraping `/metrics` on each target.
    pub fn new(name: &str, targets: &[SocketAddr]) -> ScrapeJob {
        ScrapeJob {
            name: name.to_string(),
            targets: targets.to_vec(),
            metrics_path: "/metrics".to_string(),
        }
    }
}

/// A running Prometheus server; killed and its data removed when dropped.
#[derive(Debug)]
pub struct Prometheus {
    /// The server process.
    child: Child,
    /// Where it listens.
    addr: SocketAddr,
    /// Its configuration, data and log, removed on drop.
    dir: PathBuf,
}

impl Prometheus {
    /// Starts a server scraping `jobs` every second (rules evaluated every second too) and
    /// waits until it is ready and every target has been scraped successfully once.
    pub async fn start(jobs: &[ScrapeJob]) -> Result<Prometheus, PrometheusError> {
        for job in jobs {
            if let Some(&target) = job.targets.iter().find(|t| !t.ip().is_loopback()) {
                return Err(PrometheusError::NonLoopbackTarget { target });
            }
        }
        let binary = executable().ok_or(PrometheusError::NotFound)?;
        let dir = scratch_dir()?;
        let setup = |what| move |source| PrometheusError::Setup { what, source };
        std::fs::write(dir.join("prometheus.yml"), config(jobs))
            .map_err(setup("writing its configuration"))?;
        let addr = free_port().map_err(setup("finding a free loopback port"))?;
        let log =
            std::fs::File::create(dir.join("prometheus.log")).map_err(setup("creating its log"))?;
        let err_log = log.try_clone().map_err(setup("creating its log"))?;
        let child = Command::new(binary)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(setup("starting the process"))?;
        let mut server = Prometheus { child, addr, dir };
        let targets: usize = jobs.iter().map(|j| j.targets.len()).sum();
        server.wait_ready(targets).await?;
        Ok(server)
    }

    /// The server's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Evaluates the PromQL instant query `promql` at `at` (Unix seconds; `None`: now) and
    /// returns its samples, so scripts and tests read Prometheus' own answer (for instance
    /// `histogram_quantile`) rather than recomputing it. A scalar result is one sample
    /// without labels; an empty vector is an empty list, which callers must treat as missing
    /// data, never as a pass.
    pub async fn query(
        &self,
        promql: &str,
        at: Option<f64>,
    ) -> Result<Vec<QuerySample>, PrometheusError> {
        let failed = |reason: String| PrometheusError::Query {
            query: promql.to_string(),
            reason,
        };
        let mut path = format!("/api/v1/query?query={}", url_encode(promql));
        if let Some(t) = at {
            let _ = write!(path, "&time={t:.3}");
        }
        let (status, body) = get(self.addr, &path).await.map_err(failed)?;
        parse_query_answer(&body).map_err(|e| failed(format!("HTTP {status}: {e}")))
    }

    /// Waits until `/-/ready` answers 200 and `targets` targets report `"health":"up"`.
    async fn wait_ready(&mut self, targets: usize) -> Result<(), PrometheusError> {
        let deadline = clock::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.start_error(format!("it exited with {status}")));
            }
            let last = match get(self.addr, "/-/ready").await {
                Ok((200, _)) => match get(self.addr, "/api/v1/targets?state=active").await {
                    Ok((200, body)) => {
                        let up = body.matches("\"health\":\"up\"").count();
                        if up >= targets {
                            return Ok(());
                        }
                        format!("{up} of {targets} targets up")
                    }
                    Ok((status, _)) => format!("/api/v1/targets answered {status}"),
                    Err(e) => e,
                },
                Ok((status, _)) => format!("/-/ready answered {status}"),
                Err(e) => e,
            };
            if clock::now() >= deadline {
                return Err(self.start_error(format!(
                    "not ready after {} s ({last})",
                    START_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A start failure with the end of the log, which says why.
    fn start_error(&self, reason: String) -> PrometheusError {
        let log = self.dir.join("prometheus.log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
        PrometheusError::Start { reason, log, tail }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One sample of a query's answer: the series' labels and its value (NaN and ±Inf as
/// Prometheus gave them).
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySample {
    /// The series' labels (empty for a scalar or an aggregate without `by`).
    pub labels: std::collections::BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// Reads an `/api/v1/query` answer: a successful vector or scalar, or the error it states.
fn parse_query_answer(body: &str) -> Result<Vec<QuerySample>, String> {
    let answer: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("not JSON ({e}): {body:.200}"))?;
    if answer["status"] != "success" {
        return Err(format!(
            "{}: {}",
            answer["errorType"].as_str().unwrap_or("error"),
            answer["error"].as_str().unwrap_or("no reason given")
        ));
    }
    let value_of = |pair: &serde_json::Value| -> Result<f64, String> {
        let text = pair[1].as_str().ok_or("a sample without a value")?;
        match text {
            "+Inf" => Ok(f64::INFINITY),
            "-Inf" => Ok(f64::NEG_INFINITY),
            other => other
                .parse()
                .map_err(|_| format!("a sample value that is not a number: {other}")),
        }
    };
    let data = &answer["data"];
    match data["resultType"].as_str() {
        Some("scalar") => Ok(vec![QuerySample {
            labels: Default::default(),
            value: value_of(&data["result"])?,
        }]),
        Some("vector") => data["result"]
            .as_array()
            .ok_or("a vector without a result list")?
            .iter()
            .map(|sample| {
                let labels = sample["metric"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(QuerySample {
                    labels,
                    value: value_of(&sample["value"])?,
                })
            })
            .collect(),
        other => Err(format!("an unexpected result type {other:?}")),
    }
}

/// Percent-encodes a query parameter: every byte but RFC 3986's unreserved characters.
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The first `name` on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// The executable to run: `$RAMP_PROMETHEUS`, Debian's path, or the first on `PATH`.
fn executable() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("RAMP_PROMETHEUS") {
        return Some(PathBuf::from(path));
    }
    let debian = Path::new("/usr/bin/prometheus");
    if debian.is_file() {
        return Some(debian.to_path_buf());
    }
    on_path("prometheus")
}

/// A new private directory under the system's temporary directory.
fn scratch_dir() -> Result<PathBuf, PrometheusError> {
    let base = std::env::temp_dir();
    for attempt in 0..100u32 {
        let dir = base.join(format!("ramp-prometheus-{}-{attempt}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(PrometheusError::Setup {
                    what: "creating its directory",
                    source,
                })
            }
        }
    }
    Err(PrometheusError::Setup {
        what: "creating its directory",
        source: std::io::Error::other("100 candidate names were taken"),
    })
}

/// A loopback port free now (the kernel picks it; it is released for Prometheus to bind).
fn free_port() -> std::io::Result<SocketAddr> {
    StdListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()
}

/// The configuration: every job scraped every second, with a timeout under the interval.
fn config(jobs: &[ScrapeJob]) -> String {
    let mut text = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\nscrape_configs:\n",
    );
    for job in jobs {
        let targets: Vec<String> = job.targets.iter().map(|t| format!("'{t}'")).collect();
        let _ = write!(
            text,
            "  - job_name: '{}'\n    metrics_path: '{}'\n    static_configs:\n      - targets: [{}]\n",
            job.name,
            job.metrics_path,
            targets.join(", ")
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_scrapes_every_target_every_second() {
        let a: SocketAddr = "127.0.0.1:9001".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:9002".parse().unwrap();
        let text = config(&[ScrapeJob::new("upstreams", &[a, b])]);
        assert!(text.contains("scrape_interval: 1s"), "{text}");
        assert!(text.contains("job_name: 'upstreams'"), "{text}");
        assert!(
            text.contains("targets: ['127.0.0.1:9001', '127.0.0.1:9002']"),
            "{text}"
        );
    }

    #[test]
    fn query_answers_are_read_and_errors_named() {
        let vector = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"version":"canary"},"value":[1.5,"0.72"]},{"metric":{},"value":[1.5,"+Inf"]}]}}"#;
        let samples = parse_query_answer(vector).expect("a vector");
        assert_eq!(samples[0].labels["version"], "canary");
        assert_eq!(samples[0].value, 0.72);
        assert_eq!(samples[1].value, f64::INFINITY);
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"NaN"]}}"#;
        assert!(parse_query_answer(scalar).expect("a scalar")[0]
            .value
            .is_nan());
        let error = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert_eq!(
            parse_query_answer(error).unwrap_err(),
            "bad_data: parse error"
        );
        assert!(parse_query_answer("<html>").is_err());
        assert_eq!(
            url_encode("a{b=\"c\"}[1m] "),
            "a%7Bb%3D%22c%22%7D%5B1m%5D%20"
        );
    }

    #[tokio::test]
    async fn a_target_off_loopback_is_refused_before_anything_starts() {
        let far: SocketAddr = "192.0.2.1:9090".parse().unwrap();
        let err = Prometheus::start(&[ScrapeJob::new("far", &[far])])
            .await
            .unwrap_err();
        assert!(
            matches!(err, PrometheusError::NonLoopbackTarget { target } if target == far),
            "{err}"
        );
    }
}
