//! [`PrometheusSource`]: a live run's canary and stable counters, read from Prometheus.
//!
//! Each reading evaluates, at one evaluation `time`, every cohort's requests, errors and
//! latency-bucket queries, and sums the raw counter series itself; the driver subtracts two
//! readings into a slot. Why not `increase()`: Prometheus extrapolates `increase()` to the
//! range's edges and, across a counter reset, counts the new value as the increase, so it
//! neither gives the exact difference between two readings nor says that part of an interval
//! was lost. Summing raw series and remembering each one ([`super::series`]) gives exact
//! differences and turns every reset into a gap.

use super::client::PromClient;
use super::error::PromError;
use super::histogram::coarse;
use super::parse::{series_name, QueryResult, Sample};
use super::series::{Memory, Observed, Role};
use super::templates::{CohortQueries, Queries};
use crate::clock;
use crate::seams::{MetricsSource, Reading};
use crate::source::{CohortCounters, Counters, SourceError};
use ramp_core::plan::{Deployment, PrometheusSource as PlanSource};
use ramp_core::Span;
use std::sync::Mutex;
use std::time::Duration;

/// The largest counter value read exactly: beyond 2^53 a float no longer counts by one.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

/// Reads canary and stable from a Prometheus server (`[metrics] source = "prometheus"`).
#[derive(Debug)]
pub struct PrometheusSource {
    /// The query API.
    client: PromClient,
    /// The rendered queries.
    queries: Queries,
    /// Each series' last value, for resets and churn; empty at every controller start.
    memory: Mutex<Memory>,
    /// The queries of the last reading that returned no series, for [`MetricsSource::incomplete`].
    empty: Mutex<Vec<String>>,
}

/// Which cohort a query is for, in series identities.
#[derive(Debug, Clone, Copy)]
enum Cohort {
    /// The canary.
    Canary,
    /// The stable version.
    Stable,
}

impl Cohort {
    /// Its name in series identities.
    fn name(self) -> &'static str {
        match self {
            Cohort::Canary => "canary",
            Cohort::Stable => "stable",
        }
    }
}

/// The answers of one cohort's queries.
struct Answers {
    /// To the requests query.
    requests: QueryResult,
    /// To the errors query.
    errors: QueryResult,
    /// To the latency-bucket query, when there is one.
    buckets: Option<QueryResult>,
}

impl PrometheusSource {
    /// A source for the plan's `[metrics]` (`source`), rendering its templates with the
    /// plan's `deployment` and evaluation `interval`, and sending `token` (read by the caller
    /// from `token_file`) with every query.
    pub fn new(
        source: &PlanSource,
        deployment: &Deployment,
        interval: Span,
        token: Option<String>,
    ) -> Result<PrometheusSource, PromError> {
        let timeout = Duration::from_millis(source.timeout.0);
        Ok(PrometheusSource {
            client: PromClient::new(&source.url, token, timeout)?,
            queries: Queries::render(source, deployment, interval)?,
            memory: Mutex::new(Memory::default()),
            empty: Mutex::new(Vec::new()),
        })
    }

    /// The query client, for query gates ([`PromClient::scalar`]) on the same server.
    pub fn client(&self) -> &PromClient {
        &self.client
    }

    /// The rendered queries, for status and messages.
    pub fn queries(&self) -> &Queries {
        &self.queries
    }

    /// Reads both cohorts' cumulative counters now.
    pub async fn read_counters(&self) -> Result<Counters, PromError> {
        let time_ms = clock::unix_ms();
        let (canary, stable) = tokio::try_join!(
            self.ask(&self.queries.canary, time_ms),
            self.ask(&self.queries.stable, time_ms)
        )?;
        let empty: Vec<String> = [
            (&self.queries.canary, &canary, "canary"),
            (&self.queries.stable, &stable, "stable"),
        ]
        .into_iter()
        .filter(|(_, a, _)| matches!(&a.requests, QueryResult::Vector(v) if v.is_empty()))
        .map(|(q, _, name)| format!("{name}: `{}`", q.requests))
        .collect();
        *self
            .empty
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = empty;
        let mut observed = Vec::new();
        let canary = cohort(&self.queries.canary, Cohort::Canary, canary, &mut observed)?;
        let stable = cohort(&self.queries.stable, Cohort::Stable, stable, &mut observed)?;
        let epoch = self
            .memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .observe(&observed);
        Ok(Counters {
            epoch: Some(epoch),
            stable,
            canary,
        })
    }

    /// The pre-deployment check: every query once for both cohorts. `Err` when a query is
    /// not valid PromQL ([`PromError::BadData`], reported first whatever else failed) or the
    /// server cannot answer: the run must not start. `Ok` with the data problems found (no
    /// series yet, a value that is not a count, buckets that are not a histogram), which a
    /// canary that has served nothing yet may well have; an empty list when all is well.
    pub async fn check(&self) -> Result<Vec<PromError>, PromError> {
        let time_ms = clock::unix_ms();
        let mut problems = Vec::new();
        let mut fatal: Option<PromError> = None;
        for (queries, which) in [
            (&self.queries.canary, Cohort::Canary),
            (&self.queries.stable, Cohort::Stable),
        ] {
            let answers = match self.ask(queries, time_ms).await {
                Ok(a) => a,
                Err(e) => {
                    // Which query failed first is not known from `ask`; ask each alone so
                    // that a bad query is named even when another one also fails.
                    for q in [
                        Some(&queries.requests),
                        Some(&queries.errors),
                        queries.buckets.as_ref(),
                    ]
                    .into_iter()
                    .flatten()
                    {
                        if let Err(e) = self.client.query(q, time_ms).await {
                            if e.is_bad_query() || fatal.is_none() {
                                fatal = Some(e);
                            }
                        }
                    }
                    fatal.get_or_insert(e);
                    continue;
                }
            };
            // No series counts nothing, which is no error, but worth saying at the start: a
            // misspelled metric looks the same as a canary that has served nothing yet.
            if matches!(&answers.requests, QueryResult::Vector(v) if v.is_empty()) {
                problems.push(PromError::Empty {
                    query: queries.requests.clone(),
                });
            }
            if let Err(e) = cohort(queries, which, answers, &mut Vec::new()) {
                problems.push(e);
            }
        }
        match fatal {
            Some(e) => Err(e),
            None => Ok(problems),
        }
    }

    /// One cohort's queries, at once, at `time_ms`.
    async fn ask(&self, queries: &CohortQueries, time_ms: i64) -> Result<Answers, PromError> {
        let buckets = async {
            match &queries.buckets {
                Some(q) => self.client.query(q, time_ms).await.map(Some),
                None => Ok(None),
            }
        };
        let (requests, errors, buckets) = tokio::try_join!(
            self.client.query(&queries.requests, time_ms),
            self.client.query(&queries.errors, time_ms),
            buckets
        )?;
        Ok(Answers {
            requests,
            errors,
            buckets,
        })
    }
}

impl MetricsSource for PrometheusSource {
    fn noun(&self) -> &'static str {
        "Prometheus"
    }

    async fn read(&self) -> Result<Reading, SourceError> {
        Ok(Reading {
            counters: self.read_counters().await?,
            // The router applies the weight; Prometheus does not know it.
            canary_bp: None,
        })
    }

    fn incomplete(&self) -> Option<String> {
        let empty = self
            .empty
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (!empty.is_empty()).then(|| {
            format!(
                "no series for {}: counted as no requests, so its gates have no data until it has some",
                empty.join(" and ")
            )
        })
    }
}

/// One cohort's counters from its answers, each series noted in `observed`.
fn cohort(
    queries: &CohortQueries,
    which: Cohort,
    answers: Answers,
    observed: &mut Vec<Observed>,
) -> Result<CohortCounters, PromError> {
    // No series counts nothing: most client libraries export a cohort's series only after
    // its first request, and a canary at 0 % has none yet. Nothing counted is never a pass
    // (a gate with fewer than its `min_samples` requests has no data), and the series that
    // appears later changes the epoch, so the interval it appears in is a gap, not a slot.
    let requests = counters(&queries.requests, answers.requests)?;
    let errors = counters(&queries.errors, answers.errors)?;
    let mut note = |kind: &str, role: Role, series: &[(Sample, u64)]| {
        observed.extend(series.iter().map(|(s, value)| Observed {
            key: format!("{}/{kind}/{}", which.name(), series_name(&s.labels)),
            role,
            value: *value,
        }));
    };
    note("requests", Role::Defining, &requests);
    note("errors", Role::Failures, &errors);
    let sum = |series: &[(Sample, u64)]| {
        series
            .iter()
            .fold(0u64, |total, (_, v)| total.saturating_add(*v))
    };
    let mut counts = CohortCounters {
        completed: sum(&requests),
        errors: sum(&errors),
        ..CohortCounters::default()
    };
    if let (Some(query), Some(answer)) = (&queries.buckets, answers.buckets) {
        let buckets = counters(query, answer)?;
        note("buckets", Role::Defining, &buckets);
        if !buckets.is_empty() {
            let labelled: Vec<_> = buckets.iter().map(|(s, v)| (&s.labels, *v)).collect();
            let histogram = coarse(query, &labelled)?;
            counts.buckets = histogram.buckets;
            counts.coarse_bounds_us = Some(histogram.bounds_us);
        }
    }
    Ok(counts)
}

/// The counter series of one answer with their values rounded.
fn counters(query: &str, answer: QueryResult) -> Result<Vec<(Sample, u64)>, PromError> {
    let samples = match answer {
        QueryResult::Vector(samples) => samples,
        QueryResult::Scalar { .. } => {
            return Err(PromError::NotVector {
                query: query.to_string(),
                found: "scalar (counters are read series by series)".into(),
            })
        }
    };
    samples
        .into_iter()
        .map(|s| {
            let value = counter_value(query, &s)?;
            Ok((s, value))
        })
        .collect()
}

/// A counter sample's value as a count: NaN, infinities, negatives and values beyond exact
/// float counting are errors (no data), never clamped.
fn counter_value(query: &str, sample: &Sample) -> Result<u64, PromError> {
    let v = sample.value;
    let why = if v.is_nan() {
        "not a number"
    } else if v.is_infinite() {
        "infinite"
    } else if v < 0.0 {
        "negative, which a counter never is"
    } else if v > MAX_EXACT {
        "beyond 2^53, where a float no longer counts by one"
    } else {
        return Ok(v.round() as u64);
    };
    Err(PromError::BadValue {
        query: query.to_string(),
        series: series_name(&sample.labels),
        value: sample.text.clone(),
        why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::parse::parse;

    /// A recorded vector answer with one series per `(labels, value)`.
    fn answer(series: &[(&str, &str)]) -> QueryResult {
        let result: Vec<String> = series
            .iter()
            .map(|(labels, value)| {
                format!(r#"{{"metric":{{{labels}}},"value":[1700000000.5,"{value}"]}}"#)
            })
            .collect();
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            result.join(",")
        );
        parse("q", 200, body.as_bytes()).unwrap()
    }

    fn queries(buckets: bool) -> CohortQueries {
        CohortQueries {
            requests: "requests".into(),
            errors: "errors".into(),
            buckets: buckets.then(|| "buckets".into()),
        }
    }

    #[test]
    fn counters_are_summed_over_series_and_buckets_become_a_coarse_histogram() {
        let answers = Answers {
            requests: answer(&[(r#""pod":"a""#, "6"), (r#""pod":"b""#, "4.0000001")]),
            errors: answer(&[(r#""pod":"a","code":"503""#, "2")]),
            buckets: Some(answer(&[
                (r#""pod":"a","le":"0.1""#, "5"),
                (r#""pod":"a","le":"+Inf""#, "6"),
                (r#""pod":"b","le":"0.1""#, "4"),
                (r#""pod":"b","le":"+Inf""#, "4"),
            ])),
        };
        let mut observed = Vec::new();
        let c = cohort(&queries(true), Cohort::Canary, answers, &mut observed).unwrap();
        assert_eq!((c.completed, c.errors), (10, 2));
        let at_100ms = ramp_stats::Histogram::index_of(100.0) as u32;
        assert_eq!(c.buckets, vec![(0, 9), (at_100ms, 1)]);
        assert_eq!(c.coarse_bounds_us, Some(vec![100_000]));
        assert_eq!(observed.len(), 2 + 1 + 4, "every series is remembered");
        // A slot from zero: requests from the histogram, bounds carried to the engine.
        let slot = Counters {
            canary: c,
            ..Counters::default()
        }
        .slot_since(&Counters::default(), 0, 1000);
        assert_eq!((slot.canary.requests, slot.canary.errors), (10, 2));
        assert_eq!(slot.canary.coarse_bounds_us, Some(vec![100_000]));
    }

    #[test]
    fn no_error_series_is_zero_errors_but_no_request_series_is_no_data() {
        let answers = Answers {
            requests: answer(&[(r#""pod":"a""#, "3")]),
            errors: answer(&[]),
            buckets: None,
        };
        let c = cohort(&queries(false), Cohort::Stable, answers, &mut Vec::new()).unwrap();
        assert_eq!((c.completed, c.errors, &c.coarse_bounds_us), (3, 0, &None));
        // Without a histogram, a slot's requests are the difference of `completed`.
        let then = Counters::default();
        let now = Counters {
            stable: c,
            ..Counters::default()
        };
        assert_eq!(now.slot_since(&then, 0, 1).stable.requests, 3);
        let empty = Answers {
            requests: answer(&[]),
            errors: answer(&[]),
            buckets: Some(answer(&[])),
        };
        let none = cohort(&queries(true), Cohort::Stable, empty, &mut Vec::new()).unwrap();
        assert_eq!(
            (
                none.completed,
                none.errors,
                none.buckets.len(),
                none.coarse_bounds_us
            ),
            (0, 0, 0, None),
            "no series counts nothing"
        );
    }

    #[test]
    fn values_that_are_not_counts_are_no_data() {
        for bad in ["NaN", "+Inf", "-Inf", "-1", "1e300"] {
            let answers = Answers {
                requests: answer(&[(r#""pod":"a""#, "3")]),
                errors: answer(&[(r#""pod":"a""#, bad)]),
                buckets: None,
            };
            let e = cohort(&queries(false), Cohort::Canary, answers, &mut Vec::new()).unwrap_err();
            assert!(
                matches!(&e, PromError::BadValue { value, .. } if value == bad),
                "{bad}: {e}"
            );
        }
        let scalar = parse(
            "q",
            200,
            br#"{"status":"success","data":{"resultType":"scalar","result":[1,"3"]}}"#,
        )
        .unwrap();
        let answers = Answers {
            requests: scalar,
            errors: answer(&[]),
            buckets: None,
        };
        let e = cohort(&queries(false), Cohort::Canary, answers, &mut Vec::new()).unwrap_err();
        assert!(matches!(e, PromError::NotVector { .. }), "{e}");
    }
}
