//! The rendered queries of one Prometheus source: per cohort, its requests, errors and
//! latency-bucket selectors, rendered once from the plan's templates.

use super::error::PromError;
use ramp_core::plan::{Deployment, PrometheusSource as PlanSource};
use ramp_core::promql::{render, Values};
use ramp_core::Span;

/// One cohort's queries, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CohortQueries {
    /// Its completed requests (raw counter series).
    pub requests: String,
    /// Its failed requests (raw counter series; none until the first failure).
    pub errors: String,
    /// Its latency histogram's `_bucket` series, when the plan reads one.
    pub buckets: Option<String>,
}

/// Both cohorts' queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queries {
    /// The canary's.
    pub canary: CohortQueries,
    /// The stable version's.
    pub stable: CohortQueries,
}

impl Queries {
    /// Renders the plan's templates for both cohorts; an unknown placeholder is an error
    /// naming the key and the placeholder.
    pub fn render(
        source: &PlanSource,
        deployment: &Deployment,
        interval: Span,
    ) -> Result<Queries, PromError> {
        let cohort = |label: &str| -> Result<CohortQueries, PromError> {
            let values = Values::of(deployment, Some(label), interval);
            let one = |key: &'static str, template: &str| {
                render(template, &values).map_err(|e| PromError::Config {
                    url: source.url.clone(),
                    message: format!("[metrics] {key}: {e}"),
                })
            };
            Ok(CohortQueries {
                requests: one("requests", &source.requests)?,
                errors: one("errors", &source.errors)?,
                buckets: source
                    .latency_buckets
                    .as_deref()
                    .map(|t| one("latency_buckets", t))
                    .transpose()?,
            })
        };
        Ok(Queries {
            canary: cohort(&source.canary_label)?,
            stable: cohort(&source.stable_label)?,
        })
    }
}
