//! The HTML report's charts, each built from the summary alone: the weight over the whole
//! rollout, each stage's checkpoints against the baseline and the gates' levels, the
//! rollback and rehearsal timelines, and the flags' users per stage.

use super::svg::{Bar, Chart, Level, Marker, Series};
use crate::facts::decision_word;
use crate::format::trimmed;
use ramp_core::summary::{
    Decision, FlagUsageSummary, GateSpec, RehearsalSummary, RollbackTiming, StageSummary, Summary,
};
use ramp_core::Metric;

/// A time axis's unit: chosen from the span shown, so that ticks read as round numbers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimeUnit {
    /// Seconds per unit.
    per: f64,
    /// Its symbol.
    name: &'static str,
}

impl TimeUnit {
    /// Hours from two hours up, minutes from ten minutes up, else seconds.
    pub(crate) fn for_span(span_s: f64) -> TimeUnit {
        if span_s >= 7200.0 {
            TimeUnit {
                per: 3600.0,
                name: "h",
            }
        } else if span_s >= 600.0 {
            TimeUnit {
                per: 60.0,
                name: "min",
            }
        } else {
            TimeUnit {
                per: 1.0,
                name: "s",
            }
        }
    }

    /// `t` seconds in this unit.
    fn of(self, t: f64) -> f64 {
        t / self.per
    }

    /// The x axis label of a time since the rollout started.
    fn since_start(self) -> String {
        format!("time since the rollout started ({})", self.name)
    }
}

/// The canary's weight over the whole rollout, with each stage's end and decision and the
/// rollback marked.
pub(crate) fn weight(s: &Summary) -> Chart {
    let unit = TimeUnit::for_span(s.totals.duration_s);
    let mut points = Vec::new();
    let mut markers = Vec::new();
    for st in &s.stages {
        let end = st.started_s + st.elapsed_s;
        points.push((unit.of(st.started_s), st.weight));
        points.push((unit.of(end), st.weight));
        // A rollback is marked once, below, where it was initiated.
        if let Some(d) = st.decision.filter(|d| *d != Decision::Rollback) {
            markers.push(Marker {
                label: format!("S{} {}", st.index, decision_word(Some(d))),
                x: unit.of(end),
                class: decision_class(d),
            });
        }
    }
    if let Some(rb) = &s.rollback {
        points.push((unit.of(rb.rollback_s), 0.0));
        markers.push(Marker {
            label: format!("S{} rollback", rb.stage),
            x: unit.of(rb.initiated_s),
            class: "fail",
        });
    }
    let stages = s
        .stages
        .iter()
        .map(|st| format!("stage {} at {}%", st.index, trimmed(st.weight, 2)))
        .collect::<Vec<_>>()
        .join(", ");
    let ending = match &s.rollback {
        Some(rb) => format!(
            " It rolled back to 0% at {} {}.",
            trimmed(unit.of(rb.rollback_s), 2),
            unit.name
        ),
        None => String::new(),
    };
    Chart {
        title: "Canary weight over the rollout".into(),
        x_label: unit.since_start(),
        alt: format!(
            "The canary's share of traffic over {} {}: {stages}.{ending}",
            trimmed(unit.of(s.totals.duration_s), 2),
            unit.name
        ),
        ..weight_chart(points, markers)
    }
}

/// A chart of the canary's weight (a step line from 0 %) with its markers; the caller sets
/// the title, the axis labels and the text alternative.
fn weight_chart(points: Vec<(f64, f64)>, markers: Vec<Marker>) -> Chart {
    Chart {
        series: vec![Series {
            name: "canary weight".into(),
            points,
            step: true,
        }],
        markers,
        y_label: "canary weight (%)".into(),
        y_from_zero: true,
        ..Chart::default()
    }
}

/// The CSS class of a decision's marker.
fn decision_class(d: Decision) -> &'static str {
    match d {
        Decision::Proceed => "mark",
        Decision::Monitor | Decision::Halt => "warn",
        Decision::Rollback => "fail",
    }
}

/// Which of a stage's charts: the latencies, the error rate or the throughput.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Panel {
    /// Canary P50, P95 and P99, ms.
    Latency,
    /// The canary's error rate, %.
    Errors,
    /// The service's throughput, req/s.
    Throughput,
}

impl Panel {
    /// Every panel, in the order the report shows them.
    pub(crate) const ALL: [Panel; 3] = [Panel::Latency, Panel::Errors, Panel::Throughput];

    /// The metrics it plots.
    fn metrics(self) -> &'static [Metric] {
        match self {
            Panel::Latency => &[Metric::P50Ms, Metric::P95Ms, Metric::P99Ms],
            Panel::Errors => &[Metric::ErrorRate],
            Panel::Throughput => &[Metric::ThroughputRps],
        }
    }

    /// The y axis label.
    fn y_label(self) -> &'static str {
        match self {
            Panel::Latency => "canary latency (ms)",
            Panel::Errors => "canary error rate (%)",
            Panel::Throughput => "service throughput (req/s)",
        }
    }
}

/// A metric's name in a chart, and the factor from its summary value to the axis (error
/// rates are fractions in the summary and percentages on the axis).
fn axis_metric(m: Metric) -> (&'static str, f64, &'static str) {
    match m {
        Metric::P50Ms => ("P50", 1.0, "ms"),
        Metric::P95Ms => ("P95", 1.0, "ms"),
        Metric::P99Ms => ("P99", 1.0, "ms"),
        Metric::ErrorRate => ("error rate", 100.0, "%"),
        Metric::ThroughputRps => ("throughput", 1.0, "req/s"),
    }
}

/// One stage's panel: its checkpoints' headline values against the baseline and the fail
/// and warn levels of the stage's gates on the same metrics.
pub(crate) fn stage_panel(
    s: &Summary,
    stage: &StageSummary,
    gates: &[GateSpec],
    panel: Panel,
) -> Chart {
    let unit = TimeUnit::for_span(stage.elapsed_s.max(stage.planned_duration_s));
    let mut series = Vec::new();
    let mut levels = Vec::new();
    let mut described = Vec::new();
    for &m in panel.metrics() {
        let (name, factor, u) = axis_metric(m);
        let points: Vec<(f64, f64)> = stage
            .checkpoints
            .iter()
            .filter_map(|cp| {
                let v = cp.metrics.get(m)?;
                v.is_finite().then(|| (unit.of(cp.t_s), v * factor))
            })
            .collect();
        // Error rates (scaled to percent) keep two decimals, the rest one.
        let decimals = if factor > 1.0 { 2 } else { 1 };
        match points.as_slice() {
            [] => {}
            [only] => described.push(format!("{name} {} {u}", trimmed(only.1, decimals))),
            [first, .., last] => described.push(format!(
                "{name} from {} to {} {u}",
                trimmed(first.1, decimals),
                trimmed(last.1, decimals)
            )),
        }
        series.push(Series {
            name: format!("canary {name}"),
            points,
            step: false,
        });
        if let Some(b) = s.baseline.metrics.get(m).filter(|b| b.is_finite()) {
            levels.push(Level {
                label: format!("baseline {name} {} {u}", trimmed(b * factor, decimals)),
                y: b * factor,
                class: "base",
            });
        }
        for g in gates.iter().filter(|g| g.metric == m) {
            if let Some(f) = g.max.or(g.min) {
                levels.push(Level {
                    label: format!("fail {name} {} {u}", trimmed(f * factor, decimals)),
                    y: f * factor,
                    class: "fail",
                });
            }
            if let Some(w) = g.warn {
                levels.push(Level {
                    label: format!("warn {name} {} {u}", trimmed(w * factor, decimals)),
                    y: w * factor,
                    class: "warn",
                });
            }
        }
    }
    if panel == Panel::Throughput {
        // The throughput shown is the service's, as in the report's tables.
        for sr in &mut series {
            sr.name = "service throughput".into();
        }
    }
    let n = stage.checkpoints.len();
    let title = match panel {
        Panel::Latency => format!("Stage {}: canary latency at each checkpoint", stage.index),
        Panel::Errors => format!(
            "Stage {}: canary error rate at each checkpoint",
            stage.index
        ),
        Panel::Throughput => {
            format!(
                "Stage {}: service throughput at each checkpoint",
                stage.index
            )
        }
    };
    Chart {
        alt: format!(
            "{title}: {n} checkpoint{}; {}. Dashed lines are the baseline and the gates' fail \
             and warn levels.",
            if n == 1 { "" } else { "s" },
            if described.is_empty() {
                "no values".to_string()
            } else {
                described.join(", ")
            }
        ),
        title,
        x_label: unit.since_start(),
        y_label: panel.y_label().into(),
        series,
        levels,
        y_from_zero: panel != Panel::Latency,
        x_range: Some((
            unit.of(stage.started_s),
            unit.of(stage.started_s + stage.elapsed_s),
        )),
        ..Chart::default()
    }
}

/// The moments of a rollback, seconds from the fault's onset (or from detection when the
/// onset is unknown), with the canary's weight before it.
struct Moments {
    /// What time zero is.
    zero: &'static str,
    /// (label, seconds after zero) in order; `None` for a moment that never came.
    at: Vec<(&'static str, Option<f64>)>,
    /// The stage's weight, percent.
    weight: f64,
    /// The recovery target, when rehearsed.
    target_s: Option<f64>,
}

/// A rollback's or a rehearsal's timeline: the canary's weight from the fault's onset to
/// restoration, each moment marked.
fn timeline(title: String, m: &Moments) -> Chart {
    // At least a second wide, so that a rollback done within milliseconds of its detection
    // (a live abort) is drawn on a readable axis rather than one of thousandths.
    let end_s =
        m.at.iter()
            .filter_map(|a| a.1)
            .chain(m.target_s)
            .fold(1.0, f64::max);
    let unit = TimeUnit::for_span(end_s);
    let mut points = Vec::new();
    let mut markers: Vec<Marker> = Vec::new();
    let mut said = Vec::new();
    let rolled_back =
        m.at.iter()
            .any(|(l, t)| *l == "rollback done" && t.is_some());
    for (label, t) in &m.at {
        let Some(t) = *t else { continue };
        let after_rollback = matches!(*label, "rollback done" | "restored");
        points.push((unit.of(t), if after_rollback { 0.0 } else { m.weight }));
        // Moments within a second of each other share one marker, so that their labels do
        // not overlap ("detection, initiation").
        match markers.last_mut() {
            Some(prev) if (prev.x - unit.of(t)).abs() * unit.per < 1.0 => {
                prev.label = format!("{}, {label}", prev.label);
            }
            _ => markers.push(Marker {
                label: (*label).to_string(),
                x: unit.of(t),
                class: if *label == "detection" {
                    "fail"
                } else {
                    "mark"
                },
            }),
        }
        said.push(format!(
            "{label} at {} {}",
            trimmed(unit.of(t), 1),
            unit.name
        ));
    }
    if let Some(target) = m.target_s {
        markers.push(Marker {
            label: "target".into(),
            x: unit.of(target),
            class: "warn",
        });
        said.push(format!(
            "target {} {}",
            trimmed(unit.of(target), 1),
            unit.name
        ));
    }
    Chart {
        alt: format!(
            "{title}, from the {}: {}.{}",
            m.zero,
            said.join(", "),
            if rolled_back {
                ""
            } else {
                " The rollback never completed."
            }
        ),
        title,
        x_label: format!("time since the {} ({})", m.zero, unit.name),
        x_range: Some((0.0, unit.of(end_s))),
        ..weight_chart(points, markers)
    }
}

/// The main timeline's rollback on a time axis.
pub(crate) fn rollback(s: &Summary, rb: &RollbackTiming) -> Chart {
    let zero_s = rb.fault_onset_s.unwrap_or(rb.detection_s);
    let rel = |t: f64| t - zero_s;
    let weight = s
        .stages
        .iter()
        .find(|st| st.index == rb.stage)
        .map_or(0.0, |st| st.weight);
    let mut at = Vec::new();
    if rb.fault_onset_s.is_some() {
        at.push(("onset", Some(0.0)));
    }
    at.extend([
        ("detection", Some(rel(rb.detection_s))),
        ("initiation", Some(rel(rb.initiated_s))),
        ("rollback done", Some(rel(rb.rollback_s))),
        ("restored", rb.restoration_s.map(rel)),
    ]);
    let moments = Moments {
        zero: if rb.fault_onset_s.is_some() {
            "fault's onset"
        } else {
            "detection"
        },
        at,
        weight,
        target_s: None,
    };
    timeline(format!("Stage {} rollback timeline", rb.stage), &moments)
}

/// A rehearsal on a time axis from the fault's onset, with its recovery target.
pub(crate) fn rehearsal(s: &Summary, n: usize, r: &RehearsalSummary) -> Chart {
    let rel = |t: Option<f64>| t.map(|t| t - r.fault_onset_s);
    let weight = s
        .stages
        .iter()
        .find(|st| st.index == r.stage)
        .map_or(0.0, |st| st.weight);
    let moments = Moments {
        zero: "fault's onset",
        at: vec![
            ("onset", Some(0.0)),
            ("detection", rel(r.detection_s)),
            ("initiation", rel(r.initiated_s)),
            ("rollback done", rel(r.rollback_s)),
            ("restored", rel(r.restoration_s)),
        ],
        weight,
        target_s: Some(r.target_s),
    };
    timeline(format!("Scenario {n} ({}) timeline", r.name), &moments)
}

/// One flag's users per stage: a bar per stage of the users it was on for.
pub(crate) fn flag_users(key: &str, rows: &[&FlagUsageSummary]) -> Chart {
    let bars: Vec<Bar> = rows
        .iter()
        .map(|f| Bar {
            label: format!("stage {} ({}%)", f.stage, trimmed(f.weight, 2)),
            value: f.on_users as f64,
            class: "s0",
        })
        .collect();
    let said = rows
        .iter()
        .map(|f| {
            format!(
                "stage {}: {} on, {} off",
                f.stage,
                crate::format::count(f.on_users),
                crate::format::count(f.off_users)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Chart {
        title: format!("Users with {key} on, per stage"),
        x_label: "stage (flag's share of users)".into(),
        y_label: "distinct users (count)".into(),
        alt: format!("Distinct users {key} was on for at each stage's end: {said}."),
        bars,
        y_from_zero: true,
        ..Chart::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_units_follow_the_span() {
        assert_eq!(TimeUnit::for_span(31.0 * 3600.0).name, "h");
        assert_eq!(TimeUnit::for_span(3600.0).name, "min");
        assert_eq!(TimeUnit::for_span(120.0).name, "s");
        assert_eq!(TimeUnit::for_span(8.0).name, "s");
    }
}
