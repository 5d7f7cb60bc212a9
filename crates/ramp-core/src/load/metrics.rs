//! Stage two for `[metrics]` and `[[gates.query]]`: where a live run reads canary and stable,
//! the Prometheus server it or its query gates read, and the gates on PromQL expressions.
//!
//! Every query is rendered with its placeholders filled in and parsed with PromQL's grammar
//! here, offline, so that a typo is a located plan error at `ramp validate` rather than a
//! failure in the middle of a rollout. What can only be checked against the server (a metric
//! that does not exist, a query that returns several series) is checked by the live run's
//! pre-deployment step, before any weight moves.

use super::raw::{RawMetrics, RawQueryGate};
use super::scalar::{Text, S};
use super::validator::{valid_or_none, Field, Validator};
use crate::plan::{MetricsSource, PrometheusSource, QueryGate};
use crate::promql::{self, Values};
use crate::units::Span;
use std::ops::Range;

/// A Prometheus URL, for messages.
const URL_EXAMPLE: &str = "http://127.0.0.1:9090";

/// The default time one query may take.
const DEFAULT_TIMEOUT: Span = Span(2_000);

/// The longest time one query may take: a reading is due every evaluation.
const MAX_TIMEOUT: Span = Span(30_000);

/// The most failed evaluations in a row a query gate may wait for.
const MAX_CONSECUTIVE: u64 = 100;

/// The longest a query gate's name may be: it labels metrics and status lines.
const MAX_NAME: usize = 64;

/// What `[metrics]` and `[[gates.query]]` come to.
pub(super) struct MetricsPlan {
    /// The source of canary and stable.
    pub(super) source: MetricsSource,
    /// The Prometheus server, when the plan names one.
    pub(super) prometheus: Option<PrometheusSource>,
    /// The query gates.
    pub(super) queries: Vec<QueryGate>,
}

impl Validator<'_> {
    /// `[metrics]` and `[[gates.query]]` together: a Prometheus source and query gates both
    /// need `[metrics].url`. `every` is the engine's evaluation interval (the default of a
    /// query gate's `interval`) and `shortest` the shortest stage (a gate must be evaluated
    /// within every stage).
    pub(super) fn metrics(
        &mut self,
        raw: Option<&S<RawMetrics>>,
        queries: Option<&S<Vec<S<RawQueryGate>>>>,
        (every, shortest): (Option<Span>, Option<Span>),
    ) -> Option<MetricsPlan> {
        let every = every.unwrap_or(Span(5_000));
        let gates = self.query_gates(queries, every, shortest);
        let Some(raw) = raw else {
            if let Some(q) = queries.filter(|q| !q.get_ref().is_empty()) {
                self.error(
                    q.span(),
                    format!("gates.query: query gates read Prometheus, and the plan names no server; add [metrics] url = {URL_EXAMPLE:?}"),
                );
                return None;
            }
            return Some(MetricsPlan {
                source: MetricsSource::Proxy,
                prometheus: None,
                queries: gates?,
            });
        };
        let r = raw.get_ref();
        let source = Field::of(r.source.as_ref(), |v| {
            match self.string(v, "metrics.source")? {
                // "router" says what "proxy" has meant since routers other than Ramp's proxy
                // exist: the router's own counters (a Ramp proxy's or a fleet's `/snapshot`,
                // HAProxy's `show stat`).
                "proxy" | "router" => Some(MetricsSource::Proxy),
                "prometheus" => Some(MetricsSource::Prometheus),
                other => {
                    self.error(
                        v.span(),
                        format!("metrics.source: {other:?} is not a metrics source; expected \"proxy\" or its synonym \"router\" (the router's own counters: a Ramp proxy's /snapshot or HAProxy's show stat; the default) or \"prometheus\""),
                    );
                    None
                }
            }
        });
        let prometheus = self.prometheus(raw, every);
        // An invalid source is reported; the checks below still run as for a Prometheus one,
        // so that every mistake is reported at once.
        let (source, source_ok) = match source {
            Field::Absent => (MetricsSource::Proxy, true),
            Field::Invalid => (MetricsSource::Prometheus, false),
            Field::Valid(s) => (s, true),
        };
        let needs_server =
            source == MetricsSource::Prometheus || queries.is_some_and(|q| !q.get_ref().is_empty());
        if needs_server && r.url.is_none() {
            let why = if source == MetricsSource::Prometheus {
                "source = \"prometheus\" reads it"
            } else {
                "the query gates read it"
            };
            self.missing(
                raw.span(),
                "metrics",
                "url",
                &format!("the Prometheus server's base URL such as {URL_EXAMPLE:?}; {why}"),
            );
            return None;
        }
        if !source_ok {
            return None;
        }
        Some(MetricsPlan {
            source,
            prometheus: prometheus?,
            queries: gates?,
        })
    }

    /// The Prometheus server and templates of `[metrics]`; `None` inside when it names no
    /// `url`.
    fn prometheus(&mut self, raw: &S<RawMetrics>, every: Span) -> Option<Option<PrometheusSource>> {
        let r = raw.get_ref();
        let url = Field::of(r.url.as_ref(), |v| {
            self.http_url(v, "metrics.url", URL_EXAMPLE)
                .map(|u| u.trim_end_matches('/').to_string())
        });
        let token_file = Field::of(r.token_file.as_ref(), |v| {
            self.text(v, "metrics.token_file").map(Into::into)
        });
        let timeout = Field::of(r.timeout.as_ref(), |v| {
            let t = self.positive_duration(v, "metrics.timeout")?;
            if t > MAX_TIMEOUT {
                self.error(
                    v.span(),
                    format!("metrics.timeout: {t} is longer than the {MAX_TIMEOUT} a query may take; a reading is due at every evaluation"),
                );
                return None;
            }
            Some(t)
        });
        let label = |me: &mut Self, v: Option<&S<Text>>, key: &str, default: &str| {
            Field::of(v, |v| {
                let t = me.text(v, &format!("metrics.{key}"))?;
                if t.is_empty() {
                    me.error(
                        v.span(),
                        format!("metrics.{key}: is empty; expected the label value that names the cohort's series (default {default:?})"),
                    );
                    return None;
                }
                Some(t)
            })
        };
        let canary = label(
            self,
            r.canary_label.as_ref(),
            "canary_label",
            promql::DEFAULT_CANARY_LABEL,
        );
        let stable = label(
            self,
            r.stable_label.as_ref(),
            "stable_label",
            promql::DEFAULT_STABLE_LABEL,
        );
        if let (Field::Valid(c), Field::Valid(s), Some(v)) = (&canary, &stable, &r.stable_label) {
            if c == s {
                self.error(
                    v.span(),
                    format!("metrics.stable_label: {s:?} is also canary_label; the two cohorts must be told apart"),
                );
            }
        }
        let mut template = |key: &str, v: Option<&S<Text>>, default: &str| -> Field<String> {
            match v {
                None => Field::Valid(default.to_string()),
                Some(v) => match self.text(v, &format!("metrics.{key}")) {
                    None => Field::Invalid,
                    Some(t) if t.is_empty() && key == "latency_buckets" => Field::Absent,
                    Some(t) if !t.contains("{{cohort}}") => {
                        self.error(
                            v.span(),
                            format!("metrics.{key}: has no {{{{cohort}}}}; without it the canary and the stable version read the same series, and the canary would be judged on the whole service's traffic"),
                        );
                        Field::Invalid
                    }
                    Some(t) => match self.promql(
                        &t,
                        Some("canary"),
                        every,
                        &format!("metrics.{key}"),
                        v.span(),
                    ) {
                        true => Field::Valid(t),
                        false => Field::Invalid,
                    },
                },
            }
        };
        let requests = template("requests", r.requests.as_ref(), promql::DEFAULT_REQUESTS);
        let errors = template("errors", r.errors.as_ref(), promql::DEFAULT_ERRORS);
        let buckets = template(
            "latency_buckets",
            r.latency_buckets.as_ref(),
            promql::DEFAULT_LATENCY_BUCKETS,
        );
        let url = match url {
            Field::Absent => return Some(None),
            Field::Invalid => return None,
            Field::Valid(u) => u,
        };
        Some(Some(PrometheusSource {
            url,
            token_file: optional(token_file)?,
            timeout: valid_or_none(timeout, DEFAULT_TIMEOUT)?,
            canary_label: valid_or_none(canary, promql::DEFAULT_CANARY_LABEL.into())?,
            stable_label: valid_or_none(stable, promql::DEFAULT_STABLE_LABEL.into())?,
            requests: optional(requests)??,
            errors: optional(errors)??,
            latency_buckets: optional(buckets)?,
        }))
    }

    /// Whether `query` renders (known placeholders; `{{cohort}}` only where a cohort is
    /// meant) and parses as PromQL; reports the first problem at `span`.
    pub(super) fn promql(
        &mut self,
        query: &str,
        cohort: Option<&str>,
        every: Span,
        what: &str,
        span: Range<usize>,
    ) -> bool {
        let values = Values {
            cohort,
            deployment: "deployment",
            service: "service",
            environment: "environment",
            interval: every,
        };
        let rendered = match promql::render(query, &values) {
            Ok(r) => r,
            Err(e) => {
                self.error(span, format!("{what}: {e}"));
                return false;
            }
        };
        match promql_parser::parser::parse(&rendered) {
            Ok(_) => true,
            Err(e) => {
                let e = e.lines().next().unwrap_or("").trim().to_string();
                self.error(
                    span,
                    format!("{what}: is not valid PromQL ({e}); the query, placeholders filled in: {rendered:?}"),
                );
                false
            }
        }
    }

    /// `[[gates.query]]`: each gate named uniquely, with a query that parses, a fail level
    /// and a warn level on its safe side.
    fn query_gates(
        &mut self,
        raw: Option<&S<Vec<S<RawQueryGate>>>>,
        every: Span,
        shortest: Option<Span>,
    ) -> Option<Vec<QueryGate>> {
        let Some(raw) = raw else {
            return Some(Vec::new());
        };
        let mut seen = Vec::new();
        let mut ok = true;
        let mut gates = Vec::new();
        for (i, g) in raw.get_ref().iter().enumerate() {
            let n = i + 1;
            let ctx = format!("gates.query {n}");
            match self.query_gate(g, &ctx, (&mut seen, n), (every, shortest)) {
                Some(gate) => gates.push(gate),
                None => ok = false,
            }
        }
        ok.then_some(gates)
    }

    /// One `[[gates.query]]` entry.
    fn query_gate(
        &mut self,
        raw: &S<RawQueryGate>,
        ctx: &str,
        seen: (&mut Vec<(String, usize)>, usize),
        (every, shortest): (Span, Option<Span>),
    ) -> Option<QueryGate> {
        let g = raw.get_ref();
        let name = self.unique_name(
            g.name.as_ref(),
            raw.span(),
            ctx,
            (
                "query gate",
                "the gate's name in status, report and metrics",
            ),
            seen,
        );
        if let (Some(n), Some(v)) = (&name, &g.name) {
            let fine = n.len() <= MAX_NAME
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !fine {
                self.error(
                    v.span(),
                    format!("{ctx}: name {n:?} must be 1 to {MAX_NAME} letters, digits, '_', '-' or '.': it labels the gate's metrics"),
                );
            }
        }
        let query = match &g.query {
            None => {
                self.missing(
                    raw.span(),
                    ctx,
                    "query",
                    "the PromQL expression the gate judges",
                );
                None
            }
            Some(v) => self
                .text(v, &format!("{ctx}: query"))
                .filter(|q| self.promql(q, None, every, &format!("{ctx}: query"), v.span())),
        };
        let level = |me: &mut Self, v: &Option<S<super::scalar::Num>>, key: &str| {
            Field::of(v.as_ref(), |v| me.number(v, &format!("{ctx}: {key}")))
        };
        let max = level(self, &g.max, "max");
        let min = level(self, &g.min, "min");
        let warn = level(self, &g.warn, "warn");
        if !max.present() && !min.present() {
            self.error(
                raw.span(),
                format!("{ctx}: missing a fail level; expected max = … (a ceiling), min = … (a floor), or both"),
            );
        }
        if let (Field::Valid(hi), Field::Valid(lo), Some(v)) = (&max, &min, &g.min) {
            if lo >= hi {
                self.error(v.span(), format!("{ctx}: min {lo} is not below max {hi}"));
            }
        }
        if let (Field::Valid(w), Some(v)) = (&warn, &g.warn) {
            let bad = match (&max, &min) {
                (Field::Valid(hi), _) if w >= hi => Some(format!("is not below max {hi}")),
                (_, Field::Valid(lo)) if w <= lo => Some(format!("is not above min {lo}")),
                (Field::Valid(_), Field::Valid(_)) => Some(
                    "applies to one fail level; a gate with both max and min has no warn level"
                        .to_string(),
                ),
                _ => None,
            };
            if let Some(bad) = bad {
                self.error(
                    v.span(),
                    format!("{ctx}: warn {w} {bad}; a warn level must be on the safe side of the fail level"),
                );
            }
        }
        let interval = Field::of(g.interval.as_ref(), |v| {
            let t = self.positive_duration(v, &format!("{ctx}: interval"))?;
            if let Some(stage) = shortest.filter(|s| t > *s) {
                self.error(
                    v.span(),
                    format!("{ctx}: interval {t} is longer than the shortest stage ({stage}); the gate must be evaluated within every stage, or the stage halts without its data"),
                );
                return None;
            }
            Some(t)
        });
        let consecutive = Field::of(g.consecutive.as_ref(), |v| {
            let n = self.count(v, &format!("{ctx}: consecutive"))?;
            if n > MAX_CONSECUTIVE {
                self.error(
                    v.span(),
                    format!("{ctx}: consecutive {n} is more than {MAX_CONSECUTIVE}; it is how many evaluations in a row beyond the fail level fail the gate"),
                );
                return None;
            }
            u32::try_from(n).ok()
        });
        Some(QueryGate {
            name: name?,
            query: query?,
            max: optional(max)?,
            min: optional(min)?,
            warn: optional(warn)?,
            interval: valid_or_none(interval, every)?,
            consecutive: valid_or_none(consecutive, 1)?,
        })
    }
}

/// An optional key's value: `None` inside when absent, `None` outside when invalid.
fn optional<T>(f: Field<T>) -> Option<Option<T>> {
    match f {
        Field::Absent => Some(None),
        Field::Invalid => None,
        Field::Valid(x) => Some(Some(x)),
    }
}

#[cfg(test)]
mod tests {
    use crate::load::tests::{errs, ok, MINIMAL};
    use crate::plan::MetricsSource;
    use crate::promql;
    use crate::units::Span;

    #[test]
    fn a_plan_without_metrics_reads_the_proxy() {
        let p = ok(MINIMAL);
        assert_eq!(p.metrics, MetricsSource::Proxy);
        assert!(p.prometheus.is_none() && p.queries.is_empty());
    }

    #[test]
    fn a_prometheus_source_gets_the_default_templates() {
        let p = ok(&format!(
            "{MINIMAL}\n[metrics]\nsource = \"prometheus\"\nurl = \"http://127.0.0.1:9090/\"\n"
        ));
        assert_eq!(p.metrics, MetricsSource::Prometheus);
        let s = p.prometheus.expect("a server");
        assert_eq!(s.url, "http://127.0.0.1:9090");
        assert_eq!(s.requests, promql::DEFAULT_REQUESTS);
        assert_eq!(s.errors, promql::DEFAULT_ERRORS);
        assert_eq!(
            s.latency_buckets.as_deref(),
            Some(promql::DEFAULT_LATENCY_BUCKETS)
        );
        assert_eq!(
            (s.canary_label.as_str(), s.stable_label.as_str()),
            ("canary", "stable")
        );
        assert_eq!(s.timeout, Span(2_000));
    }

    #[test]
    fn query_gates_are_read_with_their_defaults_and_need_a_server() {
        let gate = "\n[[gates.query]]\nname = \"checkout\"\nquery = 'sum(rate(demo_checkouts_total{outcome=\"success\"}[{{interval}}])) / sum(rate(demo_checkouts_total[{{interval}}]))'\nmin = 0.95\n";
        let e = errs(&format!("{MINIMAL}{gate}"));
        assert!(
            e.iter()
                .any(|(_, _, m)| m.contains("query gates read Prometheus")),
            "{e:?}"
        );
        let p = ok(&format!(
            "{MINIMAL}\n[metrics]\nurl = \"http://127.0.0.1:9090\"\n{gate}"
        ));
        assert_eq!(
            p.metrics,
            MetricsSource::Proxy,
            "query gates alone keep the proxy source"
        );
        let q = &p.queries[0];
        assert_eq!(
            (q.name.as_str(), q.min, q.max, q.consecutive),
            ("checkout", Some(0.95), None, 1)
        );
        assert_eq!(
            q.interval,
            Span(5_000),
            "the evaluation interval by default"
        );
    }

    #[test]
    fn every_mistake_in_metrics_and_query_gates_is_reported_at_once() {
        let src = format!(
            "{MINIMAL}\n[metrics]\nsource = \"graphite\"\nurl = \"ftp://x\"\nrequests = 'sum(x{{version=\"{{{{cohort}}}}\"}}'\nerrors = 'x{{{{cohort}}}}{{{{pod}}}}'\ntimeout = \"5m\"\n\n[[gates.query]]\nname = \"a b\"\nquery = 'rate(x[{{{{interval}}}}]'\nmax = 1\nwarn = 2\n\n[[gates.query]]\nname = \"c\"\nquery = 'x{{version=\"{{{{cohort}}}}\"}}'\nconsecutive = 0\n"
        );
        let e = errs(&src);
        let all = e
            .iter()
            .map(|(_, _, m)| m.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        for needle in [
            "metrics.source: \"graphite\" is not a metrics source",
            "metrics.url:",
            "metrics.requests: is not valid PromQL",
            "metrics.errors:",
            "pod",
            "metrics.timeout:",
            "gates.query 1: name \"a b\"",
            "gates.query 1: query: is not valid PromQL",
            "gates.query 1: warn 2 is not below max 1",
            "gates.query 2: query:",
            "cohort",
            "gates.query 2: missing a fail level",
            "gates.query 2: consecutive:",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn a_template_without_its_cohort_and_a_gate_slower_than_a_stage_are_refused() {
        let src = format!(
            "{MINIMAL}\n[metrics]\nsource = \"prometheus\"\nurl = \"http://127.0.0.1:9090\"\nrequests = 'http_requests_total'\n\n[[gates.query]]\nname = \"q\"\nquery = 'up'\nmin = 1\ninterval = \"2h\"\n"
        );
        let e = errs(&src);
        let all = e
            .iter()
            .map(|(_, _, m)| m.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(all.contains("metrics.requests: has no {{cohort}}"), "{all}");
        assert!(
            all.contains(
                "gates.query 1: interval 120 min is longer than the shortest stage (60 min)"
            ),
            "{all}"
        );
    }
}
