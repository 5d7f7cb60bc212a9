//! Stage two for `[[report.queries]]`: the named PromQL queries a live run samples before and
//! during each stage, for the report's infrastructure impact.
//!
//! Each query is rendered and parsed with PromQL's grammar here, as query gates are, so that
//! a typo is a located error at `ramp validate`; and a plan with report queries must name the
//! Prometheus server they are read from (`[metrics] url`), since a report never shows numbers
//! it did not read.

use super::raw::RawReportQuery;
use super::scalar::S;
use super::validator::{valid_or_none, written, Field, Validator};
use crate::plan::ReportQuery;
use crate::units::Span;

/// The longest a report query's name may be: it heads a row of the report's table.
const MAX_NAME: usize = 64;

/// The longest a unit may be: it is shown next to every number of its row.
const MAX_UNIT: usize = 32;

/// The most report queries a plan may have: each is one more request to Prometheus at every
/// stage's start and checkpoint.
const MAX_QUERIES: usize = 32;

impl Validator<'_> {
    /// `[[report.queries]]`: each named uniquely, with a query that parses, an optional unit
    /// and a positive scale; `has_server` says whether `[metrics]` names a Prometheus URL,
    /// which any report query needs. `every` fills `{{interval}}` for the parse.
    pub(super) fn report_queries(
        &mut self,
        raw: Option<&S<Vec<S<RawReportQuery>>>>,
        has_server: bool,
        every: Option<Span>,
    ) -> Option<Vec<ReportQuery>> {
        let Some(raw) = raw else {
            return Some(Vec::new());
        };
        let every = every.unwrap_or(Span(5_000));
        let mut ok = true;
        if !raw.get_ref().is_empty() && !has_server {
            self.error(
                raw.span(),
                "report.queries: report queries are sampled from Prometheus, and the plan names no Prometheus server; add [metrics] url = \"http://127.0.0.1:9090\" (a Prometheus source), or remove [[report.queries]]".into(),
            );
            ok = false;
        }
        if raw.get_ref().len() > MAX_QUERIES {
            self.error(
                raw.span(),
                format!(
                    "report.queries: {} queries are more than {MAX_QUERIES}; each is sampled at every stage's start and checkpoint",
                    raw.get_ref().len()
                ),
            );
            ok = false;
        }
        let mut seen = Vec::new();
        let mut queries = Vec::new();
        for (i, q) in raw.get_ref().iter().enumerate() {
            let n = i + 1;
            let ctx = format!("report query {n}");
            match self.report_query(q, &ctx, (&mut seen, n), every) {
                Some(q) => queries.push(q),
                None => ok = false,
            }
        }
        ok.then_some(queries)
    }

    /// One `[[report.queries]]` entry.
    fn report_query(
        &mut self,
        raw: &S<RawReportQuery>,
        ctx: &str,
        seen: (&mut Vec<(String, usize)>, usize),
        every: Span,
    ) -> Option<ReportQuery> {
        let q = raw.get_ref();
        let name = self.unique_name(
            q.name.as_ref(),
            raw.span(),
            ctx,
            ("report query", "the query's name in the report"),
            seen,
        );
        let name = match (name, &q.name) {
            (Some(n), Some(v))
                if n.chars().count() > MAX_NAME || n.chars().any(char::is_control) =>
            {
                self.error(
                    v.span(),
                    format!("{ctx}: name {n:?} must be 1 to {MAX_NAME} characters without control characters: it heads a row of the report"),
                );
                None
            }
            (n, _) => n,
        };
        let query = match &q.query {
            None => {
                self.missing(
                    raw.span(),
                    ctx,
                    "query",
                    "the PromQL expression sampled; it must return one number, so wrap several series in sum(…)",
                );
                None
            }
            Some(v) => self
                .text(v, &format!("{ctx}: query"))
                .filter(|t| self.promql(t, None, every, &format!("{ctx}: query"), v.span())),
        };
        let unit = Field::of(q.unit.as_ref(), |v| {
            let u = self.text(v, &format!("{ctx}: unit"))?;
            if u.chars().count() > MAX_UNIT || u.chars().any(char::is_control) {
                self.error(
                    v.span(),
                    format!("{ctx}: unit {u:?} must be 1 to {MAX_UNIT} characters without control characters, such as \"cores\", \"MiB\" or \"%\""),
                );
                return None;
            }
            Some(u)
        });
        let scale = Field::of(q.scale.as_ref(), |v| {
            self.positive(v, &format!("{ctx}: scale"))
        });
        Some(ReportQuery {
            name: name?,
            query: query?,
            unit: written(unit)?,
            scale: valid_or_none(scale, 1.0)?,
        })
    }
}
