//! Renders a rollout [`Summary`] as the Markdown report that approvers read, and as the JSON
//! summary that scripts read.
//!
//! Both are pure functions of the summary: no clock, no randomness, no hash-map iteration,
//! so the same summary always gives the same bytes, and a stored summary can be re-rendered
//! later. Every number and every claim in the report is computed from the summary; a section
//! without data says so instead of inventing content.
//!
//! The Markdown report follows the structure of the staging canary report that Ramp's
//! example plans reproduce (docs/report.md describes it): header, executive summary, deployment
//! strategy, timeline, one section per stage with its metric table and decision point,
//! summary against the baseline, feature-specific performance, the feature flags' users per
//! stage (when the run had flags), the automatic rollback, rollback scenarios tested,
//! decision matrix and final verdict.

mod facts;
mod format;
mod markdown;
mod study;

pub use study::monte_carlo_markdown;

use ramp_core::summary::Summary;

/// Renders the Markdown report of a rollout.
///
/// The output is deterministic: the same summary gives byte-identical text.
pub fn markdown(summary: &Summary) -> String {
    markdown::render(summary)
}

/// Renders the JSON summary (its keys are a stable contract, listed in the README): pretty-printed, with a trailing
/// newline. It reads back (with `serde_json`) into an equal [`Summary`] as long as every
/// number in it is finite.
pub fn json(summary: &Summary) -> String {
    let mut text = serde_json::to_string_pretty(summary)
        .expect("a Summary has only string keys, so it always serializes");
    text.push('\n');
    text
}

/// Renders any serializable record (a Monte Carlo study) as pretty JSON with a trailing
/// newline.
pub fn to_json<T: serde::Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value)
        .expect("Ramp's records have only string keys, so they always serialize");
    text.push('\n');
    text
}
