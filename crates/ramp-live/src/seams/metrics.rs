//! The metrics-source seam: one reading of cumulative per-cohort counters.
//!
//! A slot for the engine is the difference of two readings ([`Counters::slot_since`]), so a
//! source only has to say what its counters are now; the driver journals each reading as the
//! cursor of the slot it ended, which is what makes a resumed run count the time it was down
//! exactly once. A source whose counters are cumulative (a proxy's `/snapshot`, Prometheus
//! counters and histogram buckets) fits as it is.

use crate::source::{Counters, ProxyAdmin, SourceError};
use std::future::Future;

/// One reading of a metrics source.
#[derive(Debug, Clone)]
pub struct Reading {
    /// Both cohorts' cumulative counters at the reading.
    pub counters: Counters,
    /// The canary weight (basis points) in force when the counters were read, when the source
    /// also knows it (a Ramp proxy's snapshot does); otherwise the driver asks the router.
    pub canary_bp: Option<u32>,
}

/// Where a live run's observations come from.
pub trait MetricsSource: Send + Sync {
    /// Reads the cumulative counters now. An error holds the rollout (no data is never a
    /// pass) and is retried.
    fn read(&self) -> impl Future<Output = Result<Reading, SourceError>> + Send;

    /// What the source is called in the driver's sentences ("the proxy", "Prometheus"), so
    /// that a line saying it could not be read names what could not be.
    fn noun(&self) -> &'static str;

    /// What the last successful reading lacked, if anything, in one sentence: a query that
    /// returned no series counts nothing (which no gate passes on), and status and the
    /// journal say which, so a misspelt metric is told from a canary that has served
    /// nothing yet. `None` for a source whose readings are complete or fail.
    fn incomplete(&self) -> Option<String> {
        None
    }
}

/// A Ramp proxy's exact `/snapshot`: counters and the weight it applied, in one call.
impl MetricsSource for ProxyAdmin {
    fn noun(&self) -> &'static str {
        "the proxy"
    }

    async fn read(&self) -> Result<Reading, SourceError> {
        let reading = ProxyAdmin::read(self).await?;
        Ok(Reading {
            counters: reading.counters,
            canary_bp: Some(reading.canary_bp),
        })
    }
}
