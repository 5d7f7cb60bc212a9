//! The raw serde structs that mirror the plan's TOML, one per table.
//!
//! Every key is optional here and every blameable value is spanned, so that stage one can
//! check keys against these structs (`schema` reads their field lists) and stage two can
//! report a missing or wrong value where it belongs. `deny_unknown_fields` is a fallback
//! only: unknown keys are reported and removed by `Validator::check_keys` before the tree is
//! deserialized.

use super::scalar::{Dur, Num, NumOrText, StartValue, Text, TextList, S};
use crate::plan::Metric;
use serde::Deserialize;

/// The whole plan file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlan {
    /// `[deployment]`, required.
    pub(super) deployment: Option<S<RawDeployment>>,
    /// `[baseline]`, optional.
    pub(super) baseline: Option<S<RawBaseline>>,
    /// `[gates]`, the defaults for every stage.
    pub(super) gates: Option<S<RawGates>>,
    /// `[[stages]]`, at least one.
    pub(super) stages: Option<S<Vec<S<RawStage>>>>,
    /// `[simulation]`, optional.
    pub(super) simulation: Option<S<RawSimulation>>,
    /// `[[rehearsals]]`, optional; they need `[simulation]`.
    pub(super) rehearsals: Option<S<Vec<S<RawRehearsal>>>>,
    /// `[router]`, optional; a live run needs it.
    pub(super) router: Option<S<RawRouter>>,
    /// `[control]`, optional.
    pub(super) control: Option<S<RawControl>>,
    /// `[[checks]]`, optional.
    pub(super) checks: Option<S<Vec<S<RawCheck>>>>,
    /// `[[hooks]]`, optional.
    pub(super) hooks: Option<S<Vec<S<RawHook>>>>,
    /// `[flags.NAME]`, optional: ramp-flags' own raw tables, validated by ramp-flags.
    pub(super) flags: Option<S<ramp_flags::flags::raw::RawFlags>>,
    /// `[ofrep]`, optional.
    pub(super) ofrep: Option<S<RawOfrep>>,
    /// `[metrics]`, optional: where a live run reads canary and stable.
    pub(super) metrics: Option<S<RawMetrics>>,
    /// `[[notify]]`, optional: who is told about a live run's events.
    pub(super) notify: Option<S<Vec<S<RawNotify>>>>,
    /// `[next]`, optional: the plan to follow this one (its stages and a simulated preview
    /// go in the report).
    pub(super) next: Option<S<RawNext>>,
    /// `[report]`, optional: what the report adds to the run's own record.
    pub(super) report: Option<S<RawReport>>,
    /// `[store]`, optional: where a live run's journal lives when it is not the local
    /// SQLite file (an etcd cluster, for controllers that take over from each other).
    pub(super) store: Option<S<RawStore>>,
}

/// `[store]`: the etcd cluster that holds the journal and the controllers' election.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    /// The cluster's client URLs; required.
    pub(super) etcd: Option<S<TextList>>,
    /// The key prefix everything of Ramp's lives under.
    pub(super) prefix: Option<S<Text>>,
    /// How long a leader's lease lasts without a keep-alive.
    pub(super) lease_ttl: Option<S<Dur>>,
    /// How long to wait for a connection.
    pub(super) dial_timeout: Option<S<Dur>>,
    /// How long to wait for any one request.
    pub(super) request_timeout: Option<S<Dur>>,
    /// The etcd user, when the cluster has authentication enabled.
    pub(super) user: Option<S<Text>>,
    /// File holding that user's password.
    pub(super) password_file: Option<S<Text>>,
}

/// `[report]`: queries sampled for the report.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReport {
    /// `[[report.queries]]`.
    pub(super) queries: Option<S<Vec<S<RawReportQuery>>>>,
}

/// One `[[report.queries]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReportQuery {
    /// The query's name; required, unique.
    pub(super) name: Option<S<Text>>,
    /// The PromQL expression; required.
    pub(super) query: Option<S<Text>>,
    /// The unit shown next to its numbers.
    pub(super) unit: Option<S<Text>>,
    /// The multiplier applied to every sample; default 1.
    pub(super) scale: Option<S<Num>>,
}

/// One `[[notify]]` entry: a kind and that kind's keys (`load::notify` says which).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    /// Name; required and unique.
    pub(super) name: Option<S<Text>>,
    /// "slack", "teams", "webhook" or "command"; required.
    pub(super) kind: Option<S<Text>>,
    /// The webhook's URL (https, or http on loopback).
    pub(super) url: Option<S<Text>>,
    /// A file holding the webhook's URL, instead of `url`.
    pub(super) url_file: Option<S<Text>>,
    /// Program and arguments, for `kind = "command"`.
    pub(super) command: Option<S<TextList>>,
    /// The events sent: one name or an array; default every event.
    pub(super) on: Option<S<TextList>>,
    /// Time limit of one attempt; default 5 s.
    pub(super) timeout: Option<S<Dur>>,
    /// Attempts per message; default 3.
    pub(super) attempts: Option<S<Num>>,
    /// Messages per minute at most; default 20.
    pub(super) per_minute: Option<S<Num>>,
    /// A dashboard or report link added to every message.
    pub(super) link: Option<S<Text>>,
}

/// `[metrics]`: the metrics source, and the Prometheus server it or query gates read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    /// "proxy" (the default) or "prometheus".
    pub(super) source: Option<S<Text>>,
    /// The Prometheus server's base URL.
    pub(super) url: Option<S<Text>>,
    /// File holding a bearer token for Prometheus.
    pub(super) token_file: Option<S<Text>>,
    /// The most one query may take.
    pub(super) timeout: Option<S<Dur>>,
    /// `{{cohort}}` for the canary.
    pub(super) canary_label: Option<S<Text>>,
    /// `{{cohort}}` for the stable version.
    pub(super) stable_label: Option<S<Text>>,
    /// The requests template.
    pub(super) requests: Option<S<Text>>,
    /// The errors template.
    pub(super) errors: Option<S<Text>>,
    /// The latency buckets template; "" for none.
    pub(super) latency_buckets: Option<S<Text>>,
}

/// One `[[gates.query]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQueryGate {
    /// The gate's name; required, unique.
    pub(super) name: Option<S<Text>>,
    /// The PromQL expression; required.
    pub(super) query: Option<S<Text>>,
    /// Ceiling fail level.
    pub(super) max: Option<S<Num>>,
    /// Floor fail level.
    pub(super) min: Option<S<Num>>,
    /// Softer level.
    pub(super) warn: Option<S<Num>>,
    /// How often it is evaluated; default `[gates].evaluate_every`.
    pub(super) interval: Option<S<Dur>>,
    /// Failed evaluations in a row before it fails; default 1.
    pub(super) consecutive: Option<S<Num>>,
}

/// `[ofrep]`: where a live run serves its flags.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOfrep {
    /// Socket address to serve OFREP on.
    pub(super) listen: Option<S<Text>>,
    /// File holding the token clients must send.
    pub(super) token_file: Option<S<Text>>,
}

/// `[router]`: a `kind` and that kind's keys (`load::router` says which key belongs to which
/// kind); without `kind`, a Ramp proxy's `admin` or `proxy_config` as before kinds existed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRouter {
    /// "ramp", "haproxy", "nginx", "command" or "etcd"; optional for a Ramp proxy.
    pub(super) kind: Option<S<Text>>,
    /// Base URL of a running `ramp proxy`'s admin API, or a list of them (a fleet).
    pub(super) admin: Option<S<TextList>>,
    /// File holding the admin API's bearer token; only with `admin`.
    pub(super) admin_token_file: Option<S<Text>>,
    /// A `ramp proxy` configuration file to start a proxy in-process from.
    pub(super) proxy_config: Option<S<Text>>,
    /// HAProxy's runtime API: a unix socket path or `host:port`.
    pub(super) socket: Option<S<Text>>,
    /// The HAProxy backend holding both versions' servers.
    pub(super) backend: Option<S<Text>>,
    /// The stable version's servers (HAProxy server names, nginx `host:port`).
    pub(super) stable: Option<S<TextList>>,
    /// The canary's servers.
    pub(super) canary: Option<S<TextList>>,
    /// The most one call to the router may take.
    pub(super) timeout: Option<S<Dur>>,
    /// The nginx include file holding the upstream block.
    pub(super) upstream_file: Option<S<Text>>,
    /// The nginx upstream block's name.
    pub(super) upstream: Option<S<Text>>,
    /// The nginx configuration test, argv.
    pub(super) test: Option<S<TextList>>,
    /// The nginx reload, argv.
    pub(super) reload: Option<S<TextList>>,
    /// nginx's pid file.
    pub(super) pid_file: Option<S<Text>>,
    /// The command that sets the canary's weight, argv.
    pub(super) set_weight: Option<S<TextList>>,
    /// The command that prints the weight in force, argv.
    pub(super) get_weight: Option<S<TextList>>,
    /// etcd's client URLs (`kind = "etcd"`).
    pub(super) endpoints: Option<S<TextList>>,
    /// The key prefix of Ramp's keys in etcd (`kind = "etcd"`, default `/ramp`).
    pub(super) prefix: Option<S<Text>>,
}

/// `[next]`: the plan that follows this one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNext {
    /// Its file, relative to this plan's directory; required.
    pub(super) plan: Option<S<Text>>,
}

/// `[control]`: every key optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawControl {
    /// Socket address of the control API.
    pub(super) listen: Option<S<Text>>,
    /// File holding the control API's bearer token.
    pub(super) token_file: Option<S<Text>>,
    /// Environment variable holding the control API's bearer token.
    pub(super) token_env: Option<S<Text>>,
}

/// One `[[checks]]` entry: exactly one of `http` and `command`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheck {
    /// Name; required and unique.
    pub(super) name: Option<S<Text>>,
    /// URL to GET.
    pub(super) http: Option<S<Text>>,
    /// Status the GET must answer; default 200, only with `http`.
    pub(super) expect_status: Option<S<Num>>,
    /// Program and arguments.
    pub(super) command: Option<S<TextList>>,
    /// Time limit; default 10 s.
    pub(super) timeout: Option<S<Dur>>,
}

/// One `[[hooks]]` entry: exactly one of `post` and `command`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHook {
    /// Name; required and unique.
    pub(super) name: Option<S<Text>>,
    /// The events that run it: one name or an array; required.
    pub(super) on: Option<S<TextList>>,
    /// URL to POST the event to.
    pub(super) post: Option<S<Text>>,
    /// Program and arguments.
    pub(super) command: Option<S<TextList>>,
    /// Time limit; default 10 s.
    pub(super) timeout: Option<S<Dur>>,
}

/// `[deployment]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeployment {
    /// The deployment id; required.
    pub(super) id: Option<S<Text>>,
    /// The service; required.
    pub(super) service: Option<S<Text>>,
    /// The environment; required.
    pub(super) environment: Option<S<Text>>,
    /// The wall-clock start; optional.
    pub(super) start: Option<S<StartValue>>,
}

/// `[baseline]`: every key optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBaseline {
    /// Median latency, ms.
    pub(super) p50_ms: Option<S<Num>>,
    /// 95th-percentile latency, ms.
    pub(super) p95_ms: Option<S<Num>>,
    /// 99th-percentile latency, ms.
    pub(super) p99_ms: Option<S<Num>>,
    /// Error rate, a rate.
    pub(super) error_rate: Option<S<NumOrText>>,
    /// Service throughput, requests per second.
    pub(super) throughput_rps: Option<S<Num>>,
}

/// `[gates]`: evaluation settings and the default gate of each metric.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGates {
    /// How often gates are evaluated; default 5 s.
    pub(super) evaluate_every: Option<S<Dur>>,
    /// The most unobserved time a stage may have; default the smaller of 5 min and 25 % of
    /// the stage.
    pub(super) max_unobserved: Option<S<Dur>>,
    /// Default window of every gate; default 5 min.
    pub(super) window: Option<S<Dur>>,
    /// Default minimum sample count of every gate; default 100.
    pub(super) min_samples: Option<S<Num>>,
    /// Default P50 gate.
    pub(super) p50_ms: Option<S<RawGate>>,
    /// Default P95 gate.
    pub(super) p95_ms: Option<S<RawGate>>,
    /// Default P99 gate.
    pub(super) p99_ms: Option<S<RawGate>>,
    /// Default error-rate gate.
    pub(super) error_rate: Option<S<RawGate>>,
    /// Default throughput gate.
    pub(super) throughput_rps: Option<S<RawGate>>,
    /// Canary-versus-stable sequential tests.
    pub(super) sequential: Option<S<RawSequential>>,
    /// Relative gates by metric.
    pub(super) relative: Option<S<RawRelative>>,
    /// Multiwindow burn-rate gates.
    pub(super) burn_rate: Option<S<RawBurnRate>>,
    /// The fixed-horizon Mann-Whitney test at stage ends.
    pub(super) mann_whitney: Option<S<RawMannWhitney>>,
    /// `[[gates.query]]`: gates on PromQL expressions.
    pub(super) query: Option<S<Vec<S<RawQueryGate>>>>,
}

/// `[gates.burn_rate]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBurnRate {
    /// The SLO ("99.9%" or 0.999).
    pub(super) slo: Option<S<NumOrText>>,
}

/// `[gates.mann_whitney]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMannWhitney {
    /// The test's level.
    pub(super) alpha: Option<S<NumOrText>>,
}

/// `[gates.relative]`: canary against stable over the same window, by metric.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRelative {
    /// P50 ratio gate.
    pub(super) p50_ms: Option<S<RawRelativeGate>>,
    /// P95 ratio gate.
    pub(super) p95_ms: Option<S<RawRelativeGate>>,
    /// P99 ratio gate.
    pub(super) p99_ms: Option<S<RawRelativeGate>>,
    /// Error-rate ratio gate.
    pub(super) error_rate: Option<S<RawRelativeGate>>,
}

/// One relative gate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRelativeGate {
    /// The largest canary / stable ratio: "+10%", "1.5x" or a number (1.1).
    pub(super) max: Option<S<NumOrText>>,
    /// Window overriding `[gates].window`.
    pub(super) window: Option<S<Dur>>,
    /// Sample count (per cohort) overriding `[gates].min_samples`.
    pub(super) min_samples: Option<S<Num>>,
}

/// `[gates.sequential]`: which sequential tests run, each with its settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSequential {
    /// The error-count test.
    pub(super) errors: Option<S<RawSequentialTest>>,
    /// The latency-distribution test.
    pub(super) latency: Option<S<RawSequentialTest>>,
}

/// One sequential test's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSequentialTest {
    /// The false-rollback budget of the test per stage.
    pub(super) alpha: Option<S<NumOrText>>,
    /// The practical-effect floor (latency only).
    pub(super) floor: Option<S<NumOrText>>,
}

impl RawGates {
    /// The default gate table of one metric.
    pub(super) fn gate(&self, metric: Metric) -> Option<&S<RawGate>> {
        match metric {
            Metric::P50Ms => self.p50_ms.as_ref(),
            Metric::P95Ms => self.p95_ms.as_ref(),
            Metric::P99Ms => self.p99_ms.as_ref(),
            Metric::ErrorRate => self.error_rate.as_ref(),
            Metric::ThroughputRps => self.throughput_rps.as_ref(),
        }
    }
}

/// A stage's `gates` table: overrides by metric name only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStageGates {
    /// P50 override.
    pub(super) p50_ms: Option<S<RawGate>>,
    /// P95 override.
    pub(super) p95_ms: Option<S<RawGate>>,
    /// P99 override.
    pub(super) p99_ms: Option<S<RawGate>>,
    /// Error-rate override.
    pub(super) error_rate: Option<S<RawGate>>,
    /// Throughput override.
    pub(super) throughput_rps: Option<S<RawGate>>,
}

impl RawStageGates {
    /// The override table of one metric.
    pub(super) fn gate(&self, metric: Metric) -> Option<&S<RawGate>> {
        match metric {
            Metric::P50Ms => self.p50_ms.as_ref(),
            Metric::P95Ms => self.p95_ms.as_ref(),
            Metric::P99Ms => self.p99_ms.as_ref(),
            Metric::ErrorRate => self.error_rate.as_ref(),
            Metric::ThroughputRps => self.throughput_rps.as_ref(),
        }
    }
}

/// One gate table, default or override.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGate {
    /// Ceiling fail level.
    pub(super) max: Option<S<NumOrText>>,
    /// Floor fail level.
    pub(super) min: Option<S<NumOrText>>,
    /// Softer level.
    pub(super) warn: Option<S<NumOrText>>,
    /// "canary", "stable" or "service".
    pub(super) scope: Option<S<Text>>,
    /// Window overriding `[gates].window`.
    pub(super) window: Option<S<Dur>>,
    /// Sample count overriding `[gates].min_samples`.
    pub(super) min_samples: Option<S<Num>>,
}

/// One `[[stages]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStage {
    /// Canary share in percent; required.
    pub(super) weight: Option<S<Num>>,
    /// Stage length; required.
    pub(super) duration: Option<S<Dur>>,
    /// Checkpoint interval; default a quarter of the duration.
    pub(super) checkpoint: Option<S<Dur>>,
    /// Per-stage gate overrides.
    pub(super) gates: Option<S<RawStageGates>>,
    /// People who must approve before the stage starts.
    pub(super) approvals: Option<S<TextList>>,
}

/// `[simulation]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSimulation {
    /// Mean request rate; required.
    pub(super) rps: Option<S<Num>>,
    /// 24 hourly multipliers; optional.
    pub(super) daily_profile: Option<S<Vec<S<Num>>>>,
    /// The stable version's model; required.
    pub(super) stable: Option<S<RawServiceModel>>,
    /// Named canary overheads.
    pub(super) features: Option<S<Vec<S<RawFeature>>>>,
    /// One unnamed canary overhead (alternative to `features`).
    pub(super) overhead: Option<S<RawOverhead>>,
    /// The load term.
    pub(super) load: Option<S<RawLoad>>,
    /// Share of the canary's traffic that reaches it; default 1.
    pub(super) canary_traffic: Option<S<NumOrText>>,
    /// Router delay; default 1 s.
    pub(super) router_delay: Option<S<Dur>>,
    /// Faults in the main timeline.
    pub(super) faults: Option<S<Vec<S<RawFault>>>>,
    /// Simulated users of a plan with flags; default 2,500.
    pub(super) users: Option<S<Num>>,
    /// `"auto"` (default), `"request"` or `"aggregated"`.
    pub(super) sampler: Option<S<Text>>,
}

/// `simulation.stable`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServiceModel {
    /// Median latency, ms; required.
    pub(super) p50_ms: Option<S<Num>>,
    /// 95th-percentile latency, ms; required.
    pub(super) p95_ms: Option<S<Num>>,
    /// 99th-percentile latency, ms; required.
    pub(super) p99_ms: Option<S<Num>>,
    /// Error rate; required.
    pub(super) error_rate: Option<S<NumOrText>>,
}

/// One entry of `simulation.features`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeature {
    /// The feature's name; required.
    pub(super) name: Option<S<Text>>,
    /// Relative latency overhead; default 0.
    pub(super) latency: Option<S<NumOrText>>,
    /// Added error rate; default 0.
    pub(super) error_rate: Option<S<NumOrText>>,
}

/// `simulation.overhead`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOverhead {
    /// Relative latency overhead; default 0.
    pub(super) latency: Option<S<NumOrText>>,
    /// Added error rate; default 0.
    pub(super) error_rate: Option<S<NumOrText>>,
}

/// `simulation.load`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLoad {
    /// Contention share, 0–1; default 0.
    pub(super) contention: Option<S<NumOrText>>,
    /// Stable slowdown at full canary share; default 0.
    pub(super) stable_latency: Option<S<NumOrText>>,
}

/// One `[[simulation.faults]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFault {
    /// "canary" or "stable"; required.
    pub(super) cohort: Option<S<Text>>,
    /// Start in plan time; required.
    pub(super) at: Option<S<Dur>>,
    /// Length; absent means until the end.
    pub(super) duration: Option<S<Dur>>,
    /// Added latency.
    pub(super) add_latency: Option<S<Dur>>,
    /// Share of requests hit by added latency; default 1.
    pub(super) fraction: Option<S<NumOrText>>,
    /// Forced error rate.
    pub(super) error_rate: Option<S<NumOrText>>,
}

/// A rehearsal's `fault`: a simulation fault without `at` (the rehearsal's `at` places it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRehearsalFault {
    /// "canary" or "stable"; required.
    pub(super) cohort: Option<S<Text>>,
    /// Length; absent means until the end.
    pub(super) duration: Option<S<Dur>>,
    /// Added latency.
    pub(super) add_latency: Option<S<Dur>>,
    /// Share of requests hit by added latency; default 1.
    pub(super) fraction: Option<S<NumOrText>>,
    /// Forced error rate.
    pub(super) error_rate: Option<S<NumOrText>>,
}

/// One `[[rehearsals]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRehearsal {
    /// Name; required and unique.
    pub(super) name: Option<S<Text>>,
    /// Plan time of the fault; required.
    pub(super) at: Option<S<Dur>>,
    /// The fault; required.
    pub(super) fault: Option<S<RawRehearsalFault>>,
    /// Recovery target; default 120 s.
    pub(super) target: Option<S<Dur>>,
    /// Restoration window; default 10 s.
    pub(super) restore_window: Option<S<Dur>>,
    /// Restoration tolerance; default 10 %.
    pub(super) restore_tolerance: Option<S<NumOrText>>,
}
