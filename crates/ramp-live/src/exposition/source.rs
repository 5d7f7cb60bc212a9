//! Every read of a run's metrics source, counted and timed, whatever the source: the driver
//! reads through [`Instrumented`], which wraps the source `driver::run` picked.

use super::ControllerMetrics;
use crate::clock;
use crate::seams::{MetricsSource, Reading};
use crate::source::SourceError;
use std::sync::Arc;

/// The kind of metrics source, the `source` label of `ramp_source_reads_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A Ramp proxy's exact `/snapshot`.
    Proxy,
    /// A Prometheus server's query API.
    Prometheus,
    /// HAProxy's own counters (its runtime API's `show stat`).
    Haproxy,
}

impl SourceKind {
    /// Every kind, in the order the counters hold them.
    pub const ALL: [SourceKind; 3] = [
        SourceKind::Proxy,
        SourceKind::Prometheus,
        SourceKind::Haproxy,
    ];

    /// The label value.
    pub fn key(self) -> &'static str {
        match self {
            SourceKind::Proxy => "proxy",
            SourceKind::Prometheus => "prometheus",
            SourceKind::Haproxy => "haproxy",
        }
    }

    /// Its place in the counters.
    pub(super) fn index(self) -> usize {
        match self {
            SourceKind::Proxy => 0,
            SourceKind::Prometheus => 1,
            SourceKind::Haproxy => 2,
        }
    }
}

/// A metrics source whose reads are counted (by result) and timed in a
/// [`ControllerMetrics`].
pub struct Instrumented<S> {
    /// The source read.
    inner: S,
    /// What kind it is.
    kind: SourceKind,
    /// Where reads are counted.
    metrics: Arc<ControllerMetrics>,
}

impl<S> Instrumented<S> {
    /// Wraps `inner`, a source of kind `kind`.
    pub fn new(inner: S, kind: SourceKind, metrics: Arc<ControllerMetrics>) -> Self {
        Self {
            inner,
            kind,
            metrics,
        }
    }
}

impl<S: MetricsSource> MetricsSource for Instrumented<S> {
    fn noun(&self) -> &'static str {
        self.inner.noun()
    }

    async fn read(&self) -> Result<Reading, SourceError> {
        let started = clock::now();
        let result = self.inner.read().await;
        let took = clock::now().saturating_duration_since(started);
        self.metrics.source_read(self.kind, result.is_ok(), took);
        result
    }

    fn incomplete(&self) -> Option<String> {
        self.inner.incomplete()
    }
}
