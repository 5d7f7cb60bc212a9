//! A Monte Carlo study (`ramp simulate --runs N`) as HTML: the study's Markdown with the
//! distribution of outcomes and, per rehearsal, of detection delays drawn as bars.

use super::svg::{Bar, Chart};
use super::{markup, page};
use crate::format::trimmed;
use ramp_core::summary::{MonteCarlo, Outcome};

/// Renders the study.
pub(crate) fn monte_carlo(m: &MonteCarlo) -> String {
    let md = crate::study::monte_carlo_markdown(m);
    let mut ids = 0usize;
    let body = markup::to_html(&md, &mut |level, text| {
        let mut out = String::new();
        if level == 2 && text == "Outcomes" {
            ids += 1;
            out.push_str(&outcomes(m).render(&format!("chart{ids}")));
            for r in &m.rehearsals {
                if let Some(chart) = detection(r) {
                    ids += 1;
                    out.push_str(&chart.render(&format!("chart{ids}")));
                }
            }
        }
        out
    });
    page(&format!("Monte Carlo study — {}", m.deployment_id), &body)
}

/// The CSS class of an outcome's bar.
fn outcome_class(o: Outcome) -> &'static str {
    match o {
        Outcome::Promoted => "s3",
        Outcome::PromotedWithCaveats => "warn",
        Outcome::RolledBack => "fail",
        Outcome::Halted => "s1",
    }
}

/// The share of runs per outcome.
fn outcomes(m: &MonteCarlo) -> Chart {
    let runs = m.runs.max(1) as f64;
    let bars: Vec<Bar> = m
        .outcomes
        .iter()
        .map(|(o, n)| Bar {
            label: o.key().replace('_', " "),
            value: *n as f64 / runs * 100.0,
            class: outcome_class(*o),
        })
        .collect();
    let said = m
        .outcomes
        .iter()
        .map(|(o, n)| format!("{} {n}", o.key().replace('_', " ")))
        .collect::<Vec<_>>()
        .join(", ");
    Chart {
        title: format!("Outcomes of {} runs", m.runs),
        x_label: "outcome".into(),
        y_label: "share of runs (%)".into(),
        alt: format!("Runs per outcome, of {}: {said}.", m.runs),
        bars,
        y_from_zero: true,
        ..Chart::default()
    }
}

/// A rehearsal's detection delays (median and 95th percentile) against its recovery
/// target; `None` when no run detected the fault.
fn detection(r: &ramp_core::summary::RehearsalStudy) -> Option<Chart> {
    let median = r.median_detection_s?;
    let mut bars = vec![Bar {
        label: "median detection".into(),
        value: median,
        class: "s0",
    }];
    if let Some(p95) = r.p95_detection_s {
        bars.push(Bar {
            label: "p95 detection".into(),
            value: p95,
            class: "s1",
        });
    }
    if let Some(rec) = r.median_recovery_s {
        bars.push(Bar {
            label: "median recovery".into(),
            value: rec,
            class: "s3",
        });
    }
    let said = bars
        .iter()
        .map(|b| format!("{} {} s", b.label, trimmed(b.value, 1)))
        .collect::<Vec<_>>()
        .join(", ");
    Some(Chart {
        title: format!("{}: detection delay after the fault's onset", r.name),
        x_label: "statistic over the runs that detected it".into(),
        y_label: "seconds after onset (s)".into(),
        alt: format!("{}: {said}; target {} s.", r.name, trimmed(r.target_s, 1)),
        levels: vec![super::svg::Level {
            label: format!("target {} s", trimmed(r.target_s, 1)),
            y: r.target_s,
            class: "warn",
        }],
        bars,
        y_from_zero: true,
        ..Chart::default()
    })
}
