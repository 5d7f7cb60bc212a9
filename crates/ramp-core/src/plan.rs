//! The validated plan: what the engine and the simulator run.
//!
//! A plan file is read in two stages (see `crate::load`): raw serde structs that mirror the
//! TOML with `deny_unknown_fields`, then a validation pass that reports every error at once
//! and builds these types. Everything here has already been checked, so consumers never
//! re-validate: weights increase and end at 100 %, windows fit their stages, a `warn` level
//! sits on the safe side of its fail level.

use crate::units::{PlanTime, Span, Weight};
use serde::{Deserialize, Serialize};
use std::fmt;

mod notify;

pub use notify::{Notifier, NotifyEvent, NotifyTarget, UrlSource};

/// A whole validated plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Which deployment this is; it names reports and journal rows.
    pub deployment: Deployment,
    /// Fixed reference numbers, when the plan gives them; otherwise the baseline is measured
    /// from the stable cohort during the rollout.
    pub baseline: Option<Baseline>,
    /// How often the engine evaluates its gates, in plan time. A few seconds, so that a
    /// breach is acted on within seconds instead of at the next checkpoint.
    pub evaluate_every: Span,
    /// The most time a stage may go unobserved (`[gates] max_unobserved`: the metrics source
    /// restarted or could not be read) before the rollout halts, since a decision needs the
    /// stage's planned duration of observed time; `None` when the plan leaves it to the
    /// default, the smaller of 5 minutes and 25 % of each stage's duration
    /// ([`Plan::max_unobserved_of`]).
    pub max_unobserved: Option<Span>,
    /// The stages in order; weights strictly increase and the last is 100 %.
    pub stages: Vec<Stage>,
    /// Anytime-valid canary-versus-stable tests run on every stage's cumulative data (both
    /// off unless `[gates.sequential]` enables them).
    pub sequential: SequentialGates,
    /// Relative gates (`[gates.relative]`): the canary against stable over the same window.
    pub relative: Vec<RelativeGate>,
    /// The canary's SLO for multiwindow burn-rate gates (`[gates.burn_rate] slo = …`), as a
    /// fraction (0.999); `None` when off.
    pub burn_rate_slo: Option<f64>,
    /// Kayenta-style fixed-horizon Mann-Whitney test at each stage end (`[gates.mann_whitney]
    /// alpha = …`), with its α; `None` when off.
    pub mann_whitney: Option<f64>,
    /// The traffic, service and fault model for `ramp simulate`; `None` when the plan has no
    /// `[simulation]` section (it can still be validated and run live).
    pub simulation: Option<Simulation>,
    /// Rollback rehearsals: fault scenarios run on a fork of the simulated rollout.
    pub rehearsals: Vec<Rehearsal>,
    /// Where a live run (`ramp run`) sets weights and reads metrics; `None` when the plan
    /// has no `[router]` section (it can still be simulated).
    pub router: Option<Router>,
    /// The live run's control API (`[control]`).
    pub control: Control,
    /// Pre-deployment checks (`[[checks]]`), run in order before any traffic shifts; one
    /// failure stops the rollout with the canary still at weight 0.
    pub checks: Vec<Check>,
    /// Hooks (`[[hooks]]`) run when a stage starts or ends, on promotion and on rollback.
    pub hooks: Vec<Hook>,
    /// Notifiers (`[[notify]]`): Slack, Teams, webhooks or programs told about stages,
    /// breaches, rollbacks and the end of a live run; never part of a decision.
    pub notify: Vec<Notifier>,
    /// The plan to follow this one (`[next] plan = "…"`, relative to this plan's
    /// directory), so that approvers see what comes after (its stages and a short simulated
    /// preview in the report); the commands that read a plan load it too.
    pub next: Option<std::path::PathBuf>,
    /// Feature flags (`[flags.NAME]`) that a live run serves over OFREP; those that follow
    /// the rollout are on for exactly the stage's share of users and off for everyone after
    /// a rollback. Empty when the plan has none.
    pub flags: ramp_flags::flags::FlagSet,
    /// Where a live run serves the flags (`[ofrep]`).
    pub ofrep: Ofrep,
    /// Where a live run reads canary and stable (`[metrics] source`): the router's own
    /// snapshot, or Prometheus.
    pub metrics: MetricsSource,
    /// The Prometheus server of `[metrics]`, when the plan names one (`url`): required by
    /// `source = "prometheus"` and by query gates, which may also judge a run whose canary
    /// and stable are read from the proxy.
    pub prometheus: Option<PrometheusSource>,
    /// Gates on any PromQL expression (`[[gates.query]]`), judged on every stage of a live
    /// run; a simulation cannot evaluate them and says so.
    pub queries: Vec<QueryGate>,
    /// Named PromQL queries sampled for the report's infrastructure impact
    /// (`[[report.queries]]`): before and during each stage of a live run, from the
    /// Prometheus server of [`Plan::prometheus`]. Never part of a decision; a simulation
    /// cannot sample them and the report then has none.
    pub report_queries: Vec<ReportQuery>,
    /// Where a live run's journal lives (`[store]`): `None` for the local SQLite file, one
    /// controller per deployment; an etcd cluster for several controllers of which one
    /// leads and the others stand by to take over.
    pub store: Option<Store>,
}

/// The etcd cluster of `[store]`: it holds the journal, so that any controller can resume a
/// run, and the controllers' election, so that only one of them acts at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    /// The cluster members' client URLs (`http://127.0.0.1:2379`): every one is tried, so a
    /// member that is down does not stop the run.
    pub etcd: Vec<String>,
    /// The key prefix (`/ramp` by default), so that one cluster can serve several Ramp
    /// installations and other users.
    pub prefix: String,
    /// How long a leader's lease lasts without a keep-alive: a standby takes over about this
    /// long after the leader dies, and a leader that cannot renew stops acting before it.
    pub lease_ttl: Span,
    /// How long to wait for a connection to the cluster.
    pub dial_timeout: Span,
    /// How long to wait for any one request, so that a cluster without quorum is an error
    /// rather than a hang.
    pub request_timeout: Span,
    /// The etcd user, when the cluster has authentication enabled.
    pub user: Option<String>,
    /// The file holding the user's password, as written (relative to the plan's directory):
    /// a password is never written in a plan.
    pub password_file: Option<std::path::PathBuf>,
}

/// A query sampled for the report (`[[report.queries]]`): CPU, memory, database connections,
/// cache hit rate, anything the service's infrastructure exports, shown next to the rollout
/// so that a reviewer sees what each stage cost, not only whether it passed.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportQuery {
    /// The query's name in the report (unique in the plan).
    pub name: String,
    /// The expression (placeholders as in [`PrometheusSource`]); it must return one number
    /// (a scalar, or one series: wrap several in `sum(…)`).
    pub query: String,
    /// What the number is in, as the report shows it ("cores", "MiB", "%"); free text.
    pub unit: Option<String>,
    /// What every sample is multiplied by before it is recorded (100 for a ratio shown as a
    /// percentage); 1 by default.
    pub scale: f64,
}

/// Where a live run reads its observations of canary and stable (`[metrics] source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricsSource {
    /// The router's own counters (the default; `source = "proxy"` or `"router"`): a Ramp
    /// proxy's exact `/snapshot` (counters and α = 0.5 % latency buckets per cohort, read with
    /// the weight in force), or HAProxy's `show stat` (requests and errors, no latency). The
    /// loader refuses it for routers without counters (nginx, commands).
    #[default]
    Proxy,
    /// The Prometheus server of [`Plan::prometheus`]: the counters and histogram buckets the
    /// service already exports.
    Prometheus,
}

/// How to read canary and stable from Prometheus (`[metrics] source = "prometheus"`).
///
/// Each query template is PromQL with placeholders (`{{cohort}}`, `{{deployment}}`,
/// `{{service}}`, `{{environment}}`, `{{interval}}`) and must select raw cumulative counter
/// series: Ramp reads them with instant queries at each evaluation and takes the difference
/// of two readings itself, series by series, so that it sees a counter reset of any one
/// series (a restarted pod) and declares the interval unobserved rather than guessing.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusSource {
    /// Base URL of the server's HTTP API: `http://host:port` (a path prefix is allowed).
    pub url: String,
    /// File holding a bearer token sent with every query, as written (relative to the plan
    /// file's directory).
    pub token_file: Option<std::path::PathBuf>,
    /// The most one query may take before the reading is no data.
    pub timeout: Span,
    /// The value `{{cohort}}` takes for the canary (`version="canary"` by default).
    pub canary_label: String,
    /// The value `{{cohort}}` takes for the stable version.
    pub stable_label: String,
    /// Completed requests of one cohort (a counter, e.g. a histogram's `_count`).
    pub requests: String,
    /// Failed requests of one cohort (a counter; no series means no error yet).
    pub errors: String,
    /// The latency histogram's cumulative `_bucket` series of one cohort, in seconds, with
    /// their `le` label; `None` when the service exports no latency histogram (latency gates
    /// then have no data).
    pub latency_buckets: Option<String>,
}

impl PrometheusSource {
    /// The server at `url` read with every default: the cohort labels `canary`/`stable`, the
    /// common `http_request_duration_seconds` templates, a 2 s timeout and no token, as a plan
    /// that names only `url` gets them (and as `ramp demo --metrics prometheus` uses it).
    pub fn with_defaults(url: String) -> PrometheusSource {
        use crate::promql;
        PrometheusSource {
            url,
            token_file: None,
            timeout: Span(2_000),
            canary_label: promql::DEFAULT_CANARY_LABEL.into(),
            stable_label: promql::DEFAULT_STABLE_LABEL.into(),
            requests: promql::DEFAULT_REQUESTS.into(),
            errors: promql::DEFAULT_ERRORS.into(),
            latency_buckets: Some(promql::DEFAULT_LATENCY_BUCKETS.into()),
        }
    }
}

/// A gate on one PromQL expression (`[[gates.query]]`): business metrics and anything else
/// the service exports, judged like Argo Rollouts' analysis metrics, with Ramp's rule that
/// no data is never a pass.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryGate {
    /// The gate's name in status, report and metrics (unique in the plan).
    pub name: String,
    /// The expression (placeholders as in [`PrometheusSource`]); it must return one number.
    pub query: String,
    /// Fail above this value.
    pub max: Option<f64>,
    /// Fail below this value.
    pub min: Option<f64>,
    /// Warn beyond this value (on the same side as `max` or `min`).
    pub warn: Option<f64>,
    /// How often the expression is evaluated.
    pub interval: Span,
    /// Failed evaluations in a row before the gate fails (Argo's `failureLimit + 1`,
    /// Flagger's `threshold`).
    pub consecutive: u32,
}

/// The OFREP server of a live run (`[ofrep]`), started when the plan has flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ofrep {
    /// Address to serve on; flagd's OFREP port on loopback by default, which is where the
    /// OpenFeature providers look first.
    pub listen: std::net::SocketAddr,
    /// File holding the token clients must send, as written (relative to the plan file);
    /// required off loopback.
    pub token_file: Option<std::path::PathBuf>,
}

impl Default for Ofrep {
    fn default() -> Self {
        Ofrep {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8016)),
            token_file: None,
        }
    }
}

/// The traffic router of a live run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Router {
    /// A `ramp proxy` that is already running, reached through its admin API
    /// (`[router] admin = "http://127.0.0.1:9901"`). The proxy outlives the controller, so
    /// traffic keeps flowing at the last weight if the controller dies.
    Admin {
        /// Base URL of the admin API: `http://host:port`, no path.
        url: String,
        /// File holding the admin bearer token, as written (relative paths are relative to
        /// the plan file's directory; the binary resolves them).
        token_file: Option<std::path::PathBuf>,
    },
    /// A proxy started inside `ramp run` from a `ramp proxy` configuration file
    /// (`[router] proxy_config = "proxy.toml"`), for single-process set-ups and the demo.
    Embedded {
        /// The proxy configuration file, as written (relative to the plan file's directory).
        config: std::path::PathBuf,
    },
    /// Several running `ramp proxy` processes behind a load balancer (`[router] kind =
    /// "ramp"` with `admin = [URL, …]`): every member gets every weight, and their snapshots
    /// are summed into one slot (histograms merge bucket for bucket).
    Fleet {
        /// Base URLs of the members' admin APIs, `http://host:port`, in plan order.
        members: Vec<String>,
        /// File holding the admin bearer token every member accepts, as written.
        token_file: Option<std::path::PathBuf>,
    },
    /// HAProxy through its runtime API (`[router] kind = "haproxy"`).
    Haproxy(HaproxyRouter),
    /// nginx through an upstream include file and a reload (`[router] kind = "nginx"`).
    Nginx(NginxRouter),
    /// Any other router through commands run without a shell (`[router] kind =
    /// "command"`): the escape hatch for a cloud load balancer's CLI or `kubectl patch`.
    Command(CommandRouter),
    /// The deployment's weight key in etcd (`[router] kind = "etcd"`), which `ramp proxy
    /// --etcd` processes follow: the controller writes the weight once (fenced by its
    /// election when there is one) and confirms it on the members' admin APIs, whose
    /// snapshots are summed for metrics as a fleet's are.
    Etcd(EtcdRouter),
}

/// The weight published in etcd for proxies that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdRouter {
    /// etcd's client URLs, `http://host:port`.
    pub endpoints: Vec<String>,
    /// The key prefix of Ramp's keys (`/ramp` by default), as the proxies use it.
    pub prefix: String,
    /// The following proxies' admin base URLs, in plan order: their snapshots are the metrics
    /// of `[metrics] source = "proxy"`, and each must show a weight before it counts as set.
    /// Empty when the plan reads Prometheus and confirms nothing.
    pub members: Vec<String>,
    /// File holding the admin bearer token every member accepts, as written.
    pub token_file: Option<std::path::PathBuf>,
}

/// Where HAProxy's runtime API listens (`stats socket … level admin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HaproxySocket {
    /// A unix socket path, as written (relative to the plan file's directory).
    Unix(std::path::PathBuf),
    /// A TCP address.
    Tcp(std::net::SocketAddr),
}

/// HAProxy driven through its runtime API: the weight is split over the servers of one
/// backend with `set server BACKEND/SERVER weight N`, confirmed with `show servers state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaproxyRouter {
    /// The runtime API.
    pub socket: HaproxySocket,
    /// The backend holding both versions' servers.
    pub backend: String,
    /// The stable version's servers in that backend.
    pub stable: Vec<String>,
    /// The canary's servers in that backend.
    pub canary: Vec<String>,
    /// The most one runtime-API exchange may take.
    pub timeout: Span,
}

/// nginx driven through an upstream block Ramp owns: written atomically with `weight=` per
/// server (`down` for a drained side), checked with the test command, applied by the reload
/// command, and confirmed once the new worker generation answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxRouter {
    /// The include file holding the `upstream` block, as written (relative to the plan file's
    /// directory); nginx's configuration includes it.
    pub upstream_file: std::path::PathBuf,
    /// The upstream block's name.
    pub upstream: String,
    /// The stable version's servers (`host:port`).
    pub stable: Vec<String>,
    /// The canary's servers (`host:port`).
    pub canary: Vec<String>,
    /// The configuration test, argv (default `nginx -t`).
    pub test: Vec<String>,
    /// The reload, argv (default `nginx -s reload`).
    pub reload: Vec<String>,
    /// nginx's pid file, to confirm the reload took effect; optional.
    pub pid_file: Option<std::path::PathBuf>,
    /// The most the test, the reload and its confirmation may take.
    pub timeout: Span,
}

/// A router driven by commands, each an argv template run without a shell: `{weight}` (the
/// canary's percent), `{weight_bp}` (basis points), `{deployment}` and `{run}` are replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRouter {
    /// Sets the canary's weight; exit 0 means applied.
    pub set_weight: Vec<String>,
    /// Prints the weight in force (percent) on standard output; without it the weight is
    /// taken as the last one set.
    pub get_weight: Option<Vec<String>>,
    /// The most one command may take before it is killed and the call fails.
    pub timeout: Span,
}

/// The live run's control API (`[control]`): where `ramp status`, `ramp pause` and the other
/// verbs reach the running controller.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Control {
    /// Address to listen on; `None` picks a free loopback port (the journal records it, so
    /// the verbs find it). A non-loopback address requires a token.
    pub listen: Option<std::net::SocketAddr>,
    /// File holding the bearer token, as written (relative to the plan file's directory).
    pub token_file: Option<std::path::PathBuf>,
    /// Environment variable holding the bearer token.
    pub token_env: Option<String>,
}

/// A pre-deployment check (the staging report's checklist): it passes or the rollout never starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What the log line calls it ("Database backup").
    pub name: String,
    /// What is run.
    pub probe: Probe,
    /// How long it may take before it counts as failed.
    pub timeout: Span,
}

/// What a check runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `GET url` must answer `expect_status` (plain `http://` only).
    Http {
        /// The URL to fetch.
        url: String,
        /// The status that counts as healthy (default 200).
        expect_status: u16,
    },
    /// A program run directly (never through a shell) that must exit 0.
    Command {
        /// Program and arguments; the first element is the program.
        argv: Vec<String>,
    },
}

/// A hook: a command or an HTTP POST of a JSON event, run when one of its events happens.
/// Hooks inform; their failure is logged and never changes a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// What the log calls it.
    pub name: String,
    /// The events that run it (at least one).
    pub on: Vec<HookEvent>,
    /// What is run.
    pub action: HookAction,
    /// How long it may take before it is abandoned.
    pub timeout: Span,
}

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookEvent {
    /// A stage began (its weight was set).
    StageStart,
    /// A stage ended with a decision.
    StageEnd,
    /// The rollout finished promoted.
    Promotion,
    /// A rollback was initiated.
    Rollback,
}

/// What a hook runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookAction {
    /// A program run directly (never through a shell), the event JSON in `RAMP_EVENT`.
    Command {
        /// Program and arguments.
        argv: Vec<String>,
    },
    /// `POST url` with the event as a JSON body (plain `http://` only).
    Post {
        /// The URL.
        url: String,
    },
}

/// The identity of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// Unique id, e.g. "phase8-canary-20251006".
    pub id: String,
    /// The service being rolled out.
    pub service: String,
    /// Where it is rolled out ("staging", "production").
    pub environment: String,
    /// Wall-clock start as an RFC 3339 UTC string ("2025-10-06T18:00:00Z"), used only to
    /// label times in reports and to place the daily traffic profile; `None` labels times as
    /// T+offsets and starts the profile at midnight.
    pub start: Option<String>,
    /// Seconds since midnight UTC of `start` (0 when there is no start), pre-computed so that
    /// the simulator can place the daily profile without parsing dates.
    pub start_second_of_day: u32,
}

/// Fixed baseline numbers to compare the canary against.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Baseline {
    /// Median latency in milliseconds.
    pub p50_ms: Option<f64>,
    /// 95th-percentile latency in milliseconds.
    pub p95_ms: Option<f64>,
    /// 99th-percentile latency in milliseconds.
    pub p99_ms: Option<f64>,
    /// Error rate as a fraction (0.0028 for 0.28 %).
    pub error_rate: Option<f64>,
    /// Requests per second of the whole service.
    pub throughput_rps: Option<f64>,
}

impl Baseline {
    /// The baseline value of one metric, if the plan gave it.
    pub fn get(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::P50Ms => self.p50_ms,
            Metric::P95Ms => self.p95_ms,
            Metric::P99Ms => self.p99_ms,
            Metric::ErrorRate => self.error_rate,
            Metric::ThroughputRps => self.throughput_rps,
        }
    }
}

/// One stage of the rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Share of traffic (or users) the canary receives during this stage.
    pub weight: Weight,
    /// How long the stage lasts before its end-of-stage decision.
    pub duration: Span,
    /// How often a checkpoint row is recorded (the columns of the staging report's stage tables).
    pub checkpoint: Span,
    /// The gates in force during this stage: the defaults with this stage's overrides
    /// applied, in the fixed order of `Metric::ALL`.
    pub gates: Vec<Gate>,
    /// People who must approve before this stage starts (`approvals = ["SRE Lead"]`); the
    /// rollout holds at the previous weight until all have (`ramp approve --as NAME`).
    pub approvals: Vec<String>,
}

/// Canary-versus-stable sequential tests (`[gates.sequential]`). Each is anytime-valid: the
/// chance that it ever rolls back a canary as good as stable, however often it is looked at
/// during a stage, is at most its `alpha`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SequentialGates {
    /// The beta-binomial mixture test on error counts, with its α.
    pub errors: Option<f64>,
    /// The time-uniform DKW test on latency distributions: its α and the practical-effect
    /// floor (relative shifts smaller than this are ignored).
    pub latency: Option<(f64, f64)>,
}

/// A relative gate: the canary's value of a metric at most `max_ratio` times stable's, both
/// over the same sliding window, while stable has traffic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RelativeGate {
    /// A latency quantile or the error rate (throughput is not comparable across cohorts).
    pub metric: Metric,
    /// The largest accepted canary / stable ratio (1.10 for "+10%").
    pub max_ratio: f64,
    /// The sliding window both cohorts are read over.
    pub window: Span,
    /// Each cohort needs at least this many requests in the window to be judged.
    pub min_samples: u64,
}

/// The metrics a gate can judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Median latency, ms.
    P50Ms,
    /// 95th-percentile latency, ms.
    P95Ms,
    /// 99th-percentile latency, ms.
    P99Ms,
    /// Failed requests / requests.
    ErrorRate,
    /// Requests per second.
    ThroughputRps,
}

impl Metric {
    /// Every metric, in the order reports list them.
    pub const ALL: [Metric; 5] = [
        Metric::P50Ms,
        Metric::P95Ms,
        Metric::P99Ms,
        Metric::ErrorRate,
        Metric::ThroughputRps,
    ];

    /// The key used in plan files and JSON ("p95_ms").
    pub fn key(self) -> &'static str {
        match self {
            Metric::P50Ms => "p50_ms",
            Metric::P95Ms => "p95_ms",
            Metric::P99Ms => "p99_ms",
            Metric::ErrorRate => "error_rate",
            Metric::ThroughputRps => "throughput_rps",
        }
    }

    /// The metric named by a plan key.
    pub fn from_key(key: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.key() == key)
    }

    /// The label reports use ("P95 Latency (ms)").
    pub fn label(self) -> &'static str {
        match self {
            Metric::P50Ms => "P50 Latency (ms)",
            Metric::P95Ms => "P95 Latency (ms)",
            Metric::P99Ms => "P99 Latency (ms)",
            Metric::ErrorRate => "Error Rate (%)",
            Metric::ThroughputRps => "Throughput (req/s)",
        }
    }

    /// The quantile a latency metric reads, `None` for the others.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Metric::P50Ms => Some(0.50),
            Metric::P95Ms => Some(0.95),
            Metric::P99Ms => Some(0.99),
            Metric::ErrorRate | Metric::ThroughputRps => None,
        }
    }

    /// Formats a value of this metric for humans: error rates as percentages, latencies
    /// and throughput as plain numbers.
    pub fn format(self, v: f64) -> String {
        match self {
            Metric::ErrorRate => format!("{:.2}%", v * 100.0),
            Metric::P50Ms | Metric::P95Ms | Metric::P99Ms => format!("{v:.0} ms"),
            Metric::ThroughputRps => format!("{v:.1} req/s"),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Whose requests a gate judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Only the new version's requests.
    Canary,
    /// Only the old version's requests.
    Stable,
    /// Every request, whichever version served it.
    Service,
}

impl Scope {
    /// The key used in plan files and JSON.
    pub fn key(self) -> &'static str {
        match self {
            Scope::Canary => "canary",
            Scope::Stable => "stable",
            Scope::Service => "service",
        }
    }
}

/// Which side of the threshold is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// Values above the threshold fail (latency, error rate).
    Max,
    /// Values below the threshold fail (throughput floors).
    Min,
}

/// One gate: a metric of a scope over a window against a threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// What is measured.
    pub metric: Metric,
    /// Whose requests are measured.
    pub scope: Scope,
    /// Whether `threshold` is a ceiling or a floor.
    pub bound: Bound,
    /// The fail level.
    pub threshold: f64,
    /// The softer level: beyond it the gate warns (a caveat, not a rollback). Always on the
    /// safe side of `threshold`.
    pub warn: Option<f64>,
    /// The sliding window the gate is evaluated over, continuously.
    pub window: Span,
    /// Fewer requests than this in the window (or stage) make the result `no_data`.
    pub min_samples: u64,
}

/// The traffic and service model of `[simulation]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulation {
    /// Mean request rate of the whole service, requests per second.
    pub rps: f64,
    /// Optional 24 hourly multipliers of `rps` (hour 0 = midnight UTC); each hour's rate is
    /// `rps × profile[hour]`.
    pub daily_profile: Option<[f64; 24]>,
    /// The stable version's latency quantiles and error rate.
    pub stable: ServiceModel,
    /// The canary's overhead as named features; an unnamed total is one feature called
    /// "canary overhead".
    pub features: Vec<Feature>,
    /// How the canary's overhead grows with its share of traffic, and how much the stable
    /// version slows with it.
    pub load: LoadModel,
    /// Faults in the main timeline (the "what if it breaks" scenarios).
    pub faults: Vec<Fault>,
    /// Share of the canary's intended traffic that actually reaches it: 1 normally, 0 models
    /// a router that never sends the canary anything.
    pub canary_traffic: f64,
    /// Time from the engine's set-weight action to the router applying it.
    pub router_delay: Span,
    /// Simulated users of a plan with flags (`users = N`, default
    /// [`DEFAULT_SIMULATED_USERS`]): every request belongs to one of them, so flags are
    /// counted in distinct users as the OFREP server counts them live. Ignored without flags.
    pub users: u32,
    /// The sampler the plan asks for (`sampler = "request"` or `"aggregated"`); `None`
    /// (`"auto"`, the default) lets the simulator choose: aggregated unless the plan has
    /// flags, whose users are simulated one request at a time. A command-line `--sampler`
    /// overrides it.
    pub sampler: Option<SamplingMethod>,
}

/// How a simulation draws its traffic. Both draw from the same model and agree in
/// distribution (docs/simulation.md, "Sampling"); they differ in cost and in what they can
/// simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplingMethod {
    /// Every request is drawn on its own: routed, timed, failed or not, recorded. Needed for
    /// user populations (flags); costs about 90 ns per request.
    PerRequest,
    /// Per cohort and tick, the request count, the error count and every histogram bucket's
    /// count are drawn directly from the model: the cost grows with the number of buckets,
    /// not of requests.
    Aggregated,
}

impl SamplingMethod {
    /// The value as written in a plan and on the command line: `request` or `aggregated`.
    pub fn key(self) -> &'static str {
        match self {
            SamplingMethod::PerRequest => "request",
            SamplingMethod::Aggregated => "aggregated",
        }
    }
}

/// The most requests one simulated run may count: 2⁵³, beyond which a count held in a 64-bit
/// float (rates, throughput, the random draws of counts) is no longer exact. Validation
/// refuses a `[simulation]` whose peak rate over the plan's stages, plus an hour for
/// rollbacks and rehearsals, could pass it.
pub const MAX_SIMULATED_REQUESTS: f64 = 9_007_199_254_740_992.0;

/// The simulated population when a plan does not set `[simulation] users`: the staging report's log
/// counts "Canary cohort: 2,500 active users" and "phase8_encryption_enabled: 625 users
/// (25%)", so this is its population.
pub const DEFAULT_SIMULATED_USERS: u32 = 2_500;

/// The most simulated users a plan may ask for. Each costs 2 bytes per flag and a bit per
/// stage segment (one per weight or schedule step within a stage), so memory grows with
/// users × flags: ten million users with three flags take about 60 MB, with a hundred flags
/// about 2 GB. Large populations are for few flags.
pub const MAX_SIMULATED_USERS: u32 = 10_000_000;

/// Latency quantiles and error rate of one version.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ServiceModel {
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 95th-percentile latency, ms.
    pub p95_ms: f64,
    /// 99th-percentile latency, ms.
    pub p99_ms: f64,
    /// Fraction of requests that fail.
    pub error_rate: f64,
}

/// One feature the canary adds, with what it costs per request at full rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    /// The feature's name, as reports show it.
    pub name: String,
    /// Relative latency overhead (0.035 for "+3.5%").
    pub latency: f64,
    /// Added error rate as a fraction (0.0005 for "+0.05%").
    pub error_rate: f64,
}

/// The load term of the model.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LoadModel {
    /// Part (0–1) of the features' overhead that comes from contention on shared resources
    /// and so scales with the canary's share; the rest is paid at any share. At share `s` the
    /// overhead is `overhead × ((1 − contention) + contention × s)`.
    pub contention: f64,
    /// Relative slowdown of the stable version at canary share 100 %, scaled linearly with
    /// the share (the canary's extra work loading shared dependencies).
    pub stable_latency: f64,
}

/// Which cohort a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cohort {
    /// The new version.
    Canary,
    /// The old version.
    Stable,
}

/// What a fault does to the requests it hits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultEffect {
    /// Adds this many milliseconds of latency to `fraction` of the cohort's requests.
    AddLatency {
        /// Added latency, ms.
        ms: f64,
        /// Share of the cohort's requests hit (0–1).
        fraction: f64,
    },
    /// Makes this share of the cohort's requests fail (on top of its normal errors).
    ErrorRate {
        /// Share of requests that fail (0–1).
        rate: f64,
    },
}

/// A fault injected into the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// The cohort hit.
    pub cohort: Cohort,
    /// When it starts, in plan time.
    pub at: PlanTime,
    /// How long it lasts; `None` means until the end of the run.
    pub duration: Option<Span>,
    /// What it does.
    pub effect: FaultEffect,
}

/// A rollback rehearsal: a fault injected at `fault.at` on a fork of the simulated rollout,
/// measuring onset → detection → rollback → restoration. The main timeline is unaffected.
#[derive(Debug, Clone, PartialEq)]
pub struct Rehearsal {
    /// The rehearsal's name, as reports show it ("Simulated P95 breach").
    pub name: String,
    /// The fault injected; its `at` is where the fork is taken.
    pub fault: Fault,
    /// The longest the rehearsal may take from onset before it counts as not recovered; the
    /// staging report's target is 120 s.
    pub target: Span,
    /// Width of the service-wide window that must be back at the pre-fault reference for the
    /// system to count as restored.
    pub restore_window: Span,
    /// Relative tolerance over the pre-fault reference that still counts as restored.
    pub restore_tolerance: f64,
}

/// The longest a stage may go unobserved when the plan does not say: 5 minutes (or a quarter
/// of a shorter stage's duration, whichever is less).
pub const DEFAULT_MAX_UNOBSERVED: Span = Span(300_000);

impl Plan {
    /// Total planned duration of all stages.
    pub fn total_duration(&self) -> Span {
        Span(self.stages.iter().map(|s| s.duration.0).sum())
    }

    /// The most unobserved time stage `index` (0-based) may have before the rollout halts:
    /// `[gates] max_unobserved` when the plan sets it, else the smaller of 5 minutes and a
    /// quarter of the stage's duration, so a short stage is never mostly guessed and a long
    /// one is not halted by a proxy restart. Zero for an index past the last stage.
    pub fn max_unobserved_of(&self, index: usize) -> Span {
        match (self.max_unobserved, self.stages.get(index)) {
            (Some(limit), _) => limit,
            (None, Some(stage)) => Span(DEFAULT_MAX_UNOBSERVED.0.min(stage.duration.0 / 4)),
            (None, None) => Span(0),
        }
    }

    /// Plan time at which stage `index` starts if no stage ends early.
    pub fn stage_start(&self, index: usize) -> PlanTime {
        PlanTime(self.stages[..index].iter().map(|s| s.duration.0).sum())
    }
}
