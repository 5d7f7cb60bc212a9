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
//!
//! The HTML report (`html`) is the same text with charts: one self-contained file, chosen by
//! a `--report` path ending in `.html` ([`ReportFormat::for_path`]).

mod facts;
mod format;
mod html;
mod infra;
mod markdown;
mod sign_off;
mod study;

pub use study::monte_carlo_markdown;

use ramp_core::summary::{MonteCarlo, Summary};

/// Renders the Markdown report of a rollout.
///
/// The output is deterministic: the same summary gives byte-identical text.
pub fn markdown(summary: &Summary) -> String {
    markdown::render(summary)
}

/// Renders the HTML report of a rollout: the Markdown report's text with its charts (the
/// weight over the rollout, each stage's checkpoints against the baseline and the gates, the
/// rollback and rehearsal timelines, the flags' users), inline CSS and SVG, no script.
///
/// The output is deterministic, as the Markdown report's is.
pub fn html(summary: &Summary) -> String {
    html::render(summary)
}

/// Renders a Monte Carlo study as HTML: its Markdown with the outcomes and the rehearsals'
/// detection delays drawn.
pub fn monte_carlo_html(study: &MonteCarlo) -> String {
    html::monte_carlo(study)
}

/// Which report a `--report` path asks for. Chosen by the file's extension, so that one
/// option serves both readers: approvers who open a page, and tools that diff Markdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// The Markdown report (any extension but `.html` and `.htm`).
    Markdown,
    /// The self-contained HTML report.
    Html,
}

impl ReportFormat {
    /// The format a path's extension names: `.html` or `.htm` (any case) for HTML, anything
    /// else for Markdown, as before the HTML report existed.
    pub fn for_path(path: &std::path::Path) -> ReportFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm") => {
                ReportFormat::Html
            }
            _ => ReportFormat::Markdown,
        }
    }

    /// The report of a rollout in this format.
    pub fn render(self, summary: &Summary) -> String {
        match self {
            ReportFormat::Markdown => markdown(summary),
            ReportFormat::Html => html(summary),
        }
    }

    /// The report of a Monte Carlo study in this format.
    pub fn render_study(self, study: &MonteCarlo) -> String {
        match self {
            ReportFormat::Markdown => monte_carlo_markdown(study),
            ReportFormat::Html => monte_carlo_html(study),
        }
    }
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
