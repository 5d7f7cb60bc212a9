//! Stage two for `[[stages]]`: weights, durations, checkpoints, approvals, and each stage's
//! effective gates.
//!
//! A stage's gates are its own overrides merged over the defaults of `[gates]` (checked in
//! `gates`), key by key: a new fail level replaces the default's warn level too, and every
//! gate's window must fit in its stage. Every effective window is recorded, so that
//! `[gates].evaluate_every` can then be checked against them.

use super::gates::{
    Defaults, GateSpec, WindowSource, WindowUse, DEFAULT_MIN_SAMPLES, DEFAULT_WINDOW,
};
use super::raw::{RawStage, RawStageGates};
use super::scalar::{Dur, Num, TextList, S};
use super::validator::{fmt_num, fmt_span, valid_or_none, Field, Validator};
use crate::plan::{Gate, Metric, Scope, Stage};
use crate::units::{Span, Weight};
use std::collections::BTreeMap;
use std::ops::Range;

impl Validator<'_> {
    /// `[[stages]]`: returns the stages (when all are good) and their total duration (when
    /// every duration is good), and records each effective gate window in `windows`.
    pub(super) fn stages(
        &mut self,
        raw: Option<&S<Vec<S<RawStage>>>>,
        defaults: &Defaults,
        windows: &mut Vec<WindowUse>,
    ) -> (Option<Vec<Stage>>, Option<Span>) {
        let list = match raw {
            Some(list) if !list.get_ref().is_empty() => list.get_ref(),
            Some(list) => {
                self.error(
                    list.span(),
                    "stages: expected at least one [[stages]] entry".into(),
                );
                return (None, None);
            }
            None => {
                if !self.was_removed(usize::MAX, "stages") {
                    self.error(
                        0..0,
                        "missing required [[stages]]; expected at least one stage with weight and duration".into(),
                    );
                }
                return (None, None);
            }
        };
        let mut stages = Some(Vec::with_capacity(list.len()));
        let mut total = Some(Span(0));
        // The previous stage's weight: (basis points, as written).
        let mut previous: Option<(Weight, f64)> = None;
        let mut last_weight = None;
        for (i, raw_stage) in list.iter().enumerate() {
            let n = i + 1;
            let ctx = format!("stage {n}");
            let r = raw_stage.get_ref();
            let weight = match &r.weight {
                None => {
                    self.missing(
                        raw_stage.span(),
                        &ctx,
                        "weight",
                        "the canary's share of traffic in percent, e.g. weight = 25",
                    );
                    None
                }
                Some(v) => self.weight(v, &ctx).map(|(w, p)| (w, p, v.span())),
            };
            if let Some((w, written, span)) = &weight {
                if let Some((pw, pwritten)) = previous {
                    if *w <= pw {
                        self.error(
                            span.clone(),
                            format!(
                                "{ctx}: weight {} is not greater than the previous stage's {}; weights must strictly increase",
                                fmt_num(*written),
                                fmt_num(pwritten)
                            ),
                        );
                    }
                }
            }
            previous = weight.as_ref().map(|(w, written, _)| (*w, *written));
            last_weight = Some(weight.clone());
            // Errors about the stage as a whole point at its weight, which names the stage.
            let weight_span = r.weight.as_ref().map_or(raw_stage.span(), |w| w.span());

            let duration = match &r.duration {
                None => {
                    self.missing(
                        raw_stage.span(),
                        &ctx,
                        "duration",
                        "how long the stage lasts, e.g. duration = \"60m\"",
                    );
                    None
                }
                Some(v) => self.positive_duration(v, &format!("{ctx}: duration")),
            };
            total = match (total, duration) {
                (Some(t), Some(d)) => Some(Span(t.0.saturating_add(d.0))),
                _ => None,
            };
            let checkpoint = self.checkpoint(r.checkpoint.as_ref(), duration, &ctx);

            let approvals = Field::of(r.approvals.as_ref(), |v| self.approvals(v, &ctx));
            let overrides = r.gates.as_ref().map(|g| g.get_ref());
            let gates = self.stage_gates(
                overrides,
                (n, &ctx),
                defaults,
                duration,
                (weight.as_ref().map(|(w, _, _)| *w), weight_span),
                windows,
            );

            stages = match (
                stages,
                weight,
                duration,
                checkpoint,
                gates,
                valid_or_none(approvals, Vec::new()),
            ) {
                (
                    Some(mut list),
                    Some((weight, _, _)),
                    Some(duration),
                    Some(checkpoint),
                    Some(gates),
                    Some(approvals),
                ) => {
                    list.push(Stage {
                        weight,
                        duration,
                        checkpoint,
                        gates,
                        approvals,
                    });
                    Some(list)
                }
                _ => None,
            };
        }
        if let Some(Some((w, written, span))) = last_weight {
            if w != Weight::FULL {
                self.error(
                    span,
                    format!(
                        "stage {}: the last stage's weight is {}; the last stage must be 100 so that the rollout ends fully promoted",
                        list.len(),
                        fmt_num(written)
                    ),
                );
            }
        }
        (stages, total)
    }

    /// A stage's `checkpoint`: longer than 0 and at most the stage's `duration`; a quarter
    /// of the duration when not written. `ctx` names the stage.
    fn checkpoint(
        &mut self,
        v: Option<&S<Dur>>,
        duration: Option<Span>,
        ctx: &str,
    ) -> Option<Span> {
        match (v, duration) {
            (Some(v), d) => {
                let cp = self.positive_duration(v, &format!("{ctx}: checkpoint"));
                match (cp, d) {
                    (Some(cp), Some(d)) if cp > d => {
                        self.error(
                            v.span(),
                            format!(
                                "{ctx}: checkpoint {} is longer than the stage's duration {}; expected at most the duration",
                                fmt_span(cp),
                                fmt_span(d)
                            ),
                        );
                        None
                    }
                    (cp, _) => cp,
                }
            }
            (None, Some(d)) => Some(default_checkpoint(d)),
            (None, None) => None,
        }
    }

    /// A stage's effective gates, in `Metric::ALL` order: its `overrides` merged over the
    /// defaults; `None` when one of them is wrong (already reported). Records each effective
    /// window in `windows`. Reports a window longer than the stage's `duration` where the
    /// stage wrote it, and an inherited one (once per window) at `weight_span`, the stage's
    /// weight, which names the stage; so too a stable-scoped gate in a stage at `weight` 100.
    /// `n` is the stage's number and `ctx` names it.
    fn stage_gates(
        &mut self,
        overrides: Option<&RawStageGates>,
        (n, ctx): (usize, &str),
        defaults: &Defaults,
        duration: Option<Span>,
        (weight, weight_span): (Option<Weight>, Range<usize>),
        windows: &mut Vec<WindowUse>,
    ) -> Option<Vec<Gate>> {
        let mut gates = Some(Vec::new());
        // Inherited windows that do not fit, grouped by window so that one error names
        // every gate it affects.
        let mut too_long: BTreeMap<Span, Vec<&'static str>> = BTreeMap::new();
        for (metric, default) in Metric::ALL.into_iter().zip(&defaults.gates) {
            let gctx = format!("{ctx}: gates.{}", metric.key());
            let over = overrides
                .and_then(|o| o.gate(metric))
                .map(|g| self.gate_spec(metric, g, &gctx));
            if over.is_none() && default.is_none() {
                continue;
            }
            let window = effective_window(over.as_ref(), default.as_ref(), defaults);
            if let Some((window, source)) = &window {
                match (duration, source) {
                    (Some(d), WindowSource::Stage(span)) if *window > d => self.error(
                        span.clone(),
                        format!(
                            "{gctx}: window {} is longer than the stage's duration {}; a gate's window must fit in its stage",
                            fmt_span(*window),
                            fmt_span(d)
                        ),
                    ),
                    (Some(d), _) if *window > d => {
                        too_long.entry(*window).or_default().push(metric.key())
                    }
                    _ => {}
                }
                windows.push(WindowUse {
                    window: *window,
                    source: source.clone(),
                    user: format!("stage {n}'s {} gate", metric.key()),
                });
            }
            let gate = self.effective_gate(
                metric,
                over.as_ref(),
                default.as_ref(),
                defaults,
                window.map(|(w, _)| w),
                &gctx,
            );
            match (gate, gates.as_mut()) {
                (Some(gate), Some(list)) => list.push(gate),
                (Some(_), None) => {}
                (None, _) => gates = None,
            }
        }
        if let (Some(list), Some(w)) = (gates.as_ref(), weight) {
            if w == Weight::FULL {
                for g in list.iter().filter(|g| g.scope == Scope::Stable) {
                    self.error(
                        weight_span.clone(),
                        format!(
                            "{ctx}: the {} gate judges the stable scope, which gets no traffic at weight 100, so it could never pass; scope it to canary or service in this stage",
                            g.metric.key()
                        ),
                    );
                }
            }
        }
        if let Some(d) = duration {
            for (window, metrics) in too_long {
                let plural = if metrics.len() == 1 { "gate" } else { "gates" };
                self.error(
                    weight_span.clone(),
                    format!(
                        "{ctx}: the {} window of the {} {plural} (inherited from [gates]) is longer than the stage's duration {}; a gate's window must fit in its stage (shorten the window or override it in this stage)",
                        fmt_span(window),
                        metrics.join(", "),
                        fmt_span(d)
                    ),
                );
            }
        }
        gates
    }

    /// A stage weight: a percentage in (0, 100] that is a whole number of basis points.
    /// Returns the weight and the percentage as written.
    fn weight(&mut self, v: &S<Num>, ctx: &str) -> Option<(Weight, f64)> {
        let p = self.number(v, &format!("{ctx}: weight"))?;
        if p <= 0.0 || p > 100.0 {
            self.error(
                v.span(),
                format!(
                    "{ctx}: weight {} is outside (0, 100]; expected a percentage of traffic above 0 and at most 100",
                    fmt_num(p)
                ),
            );
            return None;
        }
        match Weight::from_percent(p) {
            Some(w) => Some((w, p)),
            None => {
                self.error(
                    v.span(),
                    format!("{ctx}: weight {} is finer than 0.01%; expected a percentage with at most two decimals", fmt_num(p)),
                );
                None
            }
        }
    }

    /// Merges a stage's override of one metric over its default (the window is merged by
    /// `effective_window`) and checks the result; `None` when the stage has no gate for the
    /// metric or part of it is wrong (already reported).
    fn effective_gate(
        &mut self,
        metric: Metric,
        over: Option<&GateSpec>,
        default: Option<&GateSpec>,
        defaults: &Defaults,
        window: Option<Span>,
        ctx: &str,
    ) -> Option<Gate> {
        if over.is_none() && default.is_none() {
            return None;
        }
        // The fail level: the override's when it gives one, else the default's.
        let over_fail = over.map_or(Field::Absent, |o| o.fail.clone());
        let fail_inherited = !over_fail.present();
        let fail = match over_fail.or(default.map_or(Field::Absent, |d| d.fail.clone())) {
            Field::Valid(f) => Some(f),
            Field::Invalid => None,
            Field::Absent => {
                // Only reachable when there is an override and no default gate.
                if let Some(o) = over {
                    self.error(
                        o.span.clone(),
                        format!(
                            "{ctx}: [gates] has no {} gate to inherit a fail level from; expected max or min here",
                            metric.key()
                        ),
                    );
                }
                None
            }
        };
        // The warn level: replaced together with the fail level, or set on its own.
        let over_warn = over.map_or(Field::Absent, |o| o.warn.clone());
        let (warn, warn_from_override) = if !fail_inherited || over_warn.present() {
            (over_warn, true)
        } else {
            (default.map_or(Field::Absent, |d| d.warn.clone()), false)
        };
        if let (Some((bound, t, _)), Field::Valid((w, ws)), true) =
            (&fail, &warn, warn_from_override)
        {
            self.check_warn(ctx, metric, (*bound, *t), (*w, ws.clone()), fail_inherited);
        }
        let scope = inherited(over, default, |g| &g.scope);
        let min_samples =
            inherited(over, default, |g| &g.min_samples).or(defaults.min_samples.clone());
        let (bound, threshold, _) = fail?;
        let warn = match warn {
            Field::Absent => None,
            Field::Invalid => return None,
            Field::Valid((w, _)) => Some(w),
        };
        let scope = match scope {
            Field::Absent => default_scope(metric),
            Field::Invalid => return None,
            Field::Valid(s) => s,
        };
        let min_samples = match min_samples {
            Field::Absent => DEFAULT_MIN_SAMPLES,
            Field::Invalid => return None,
            Field::Valid(m) => m,
        };
        Some(Gate {
            metric,
            scope,
            bound,
            threshold,
            warn,
            window: window?,
            min_samples,
        })
    }

    /// A stage's `approvals`: approver names (one string or an array), none empty, none
    /// twice. An empty array means no approval is needed.
    fn approvals(&mut self, v: &S<TextList>, ctx: &str) -> Option<Vec<String>> {
        let what = format!("{ctx}: approvals");
        let (entries, mut ok) = self.entries(
            v,
            &what,
            "an array of the people who must approve, such as [\"SRE Lead\"]",
        );
        let mut out: Vec<String> = Vec::with_capacity(entries.len());
        for (_, name, span) in entries {
            if name.trim().is_empty() {
                self.error(
                    span,
                    format!("{what}: an approver's name is empty; expected who must approve, such as \"SRE Lead\""),
                );
                ok = false;
            } else if out.iter().any(|seen| seen == name) {
                self.error(
                    span,
                    format!("{what}: {name:?} is listed twice; name each approver once"),
                );
                ok = false;
            } else {
                out.push(name.to_string());
            }
        }
        ok.then_some(out)
    }
}

/// The window of a stage's effective gate and where it was written: the override's, else the
/// default gate's, else `[gates].window`, else 5 min; `None` when one of them was invalid.
fn effective_window(
    over: Option<&GateSpec>,
    default: Option<&GateSpec>,
    defaults: &Defaults,
) -> Option<(Span, WindowSource)> {
    let written = over
        .map(|o| (&o.window, true))
        .filter(|(w, _)| w.present())
        .or_else(|| {
            default
                .map(|d| (&d.window, false))
                .filter(|(w, _)| w.present())
        })
        .unwrap_or((&defaults.window, false));
    match written {
        (Field::Valid((w, s)), true) => Some((*w, WindowSource::Stage(s.clone()))),
        (Field::Valid((w, s)), false) => Some((*w, WindowSource::Defaults(s.clone()))),
        (Field::Invalid, _) => None,
        (Field::Absent, _) => Some((DEFAULT_WINDOW, WindowSource::BuiltIn)),
    }
}

/// A key of a stage's effective gate: the override's when it was written, else the default
/// gate's.
fn inherited<T: Clone>(
    over: Option<&GateSpec>,
    default: Option<&GateSpec>,
    key: impl Fn(&GateSpec) -> &Field<T>,
) -> Field<T> {
    let from_over = over.map_or(Field::Absent, |g| key(g).clone());
    from_over.or(default.map_or(Field::Absent, |g| key(g).clone()))
}

/// The default checkpoint interval: a quarter of the stage, rounded to whole seconds (and
/// never zero).
fn default_checkpoint(duration: Span) -> Span {
    let secs = duration.0.saturating_add(2_000) / 4_000;
    if secs == 0 {
        Span(duration.0.min(1_000))
    } else {
        Span(secs * 1_000)
    }
}

/// The scope a gate judges when the plan does not say: the whole service for throughput
/// (the staging report's floor is service-wide), the canary for everything else.
fn default_scope(metric: Metric) -> Scope {
    match metric {
        Metric::ThroughputRps => Scope::Service,
        _ => Scope::Canary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::tests::{errs, ok, MINIMAL};
    use crate::plan::Bound;

    #[test]
    fn default_checkpoint_is_a_quarter_rounded_to_seconds() {
        assert_eq!(default_checkpoint(Span::from_mins(60)), Span::from_mins(15));
        assert_eq!(default_checkpoint(Span::from_secs(90)), Span::from_secs(23));
        assert_eq!(default_checkpoint(Span::from_secs(10)), Span::from_secs(3));
        assert_eq!(default_checkpoint(Span::from_secs(1)), Span::from_secs(1));
        assert_eq!(default_checkpoint(Span(400)), Span(400));
    }

    #[test]
    fn overrides_merge_over_defaults() {
        let src = r#"[deployment]
id = "d1"
service = "svc"
environment = "staging"

[gates]
window = "5m"
min_samples = 200
p95_ms = { max = 500, warn = 400, window = "10m", min_samples = 300 }
p99_ms = { max = 1000, warn = 900 }
error_rate = { max = "1%", scope = "service" }

[[stages]]
weight = 50
duration = "1h"
# Only warn: keeps the default max.
gates.p99_ms = { warn = 700 }
# A new fail level drops the default's warn.
gates.p95_ms = { max = 450 }
# A gate with no default needs a fail level of its own.
gates.p50_ms = { max = 180, scope = "stable" }

[[stages]]
weight = 100
duration = "2h"
gates.error_rate = { max = "0.8%", warn = "0.5%", window = "15m" }
gates.throughput_rps = { min = 50 }
"#;
        let p = ok(src);
        let s1 = &p.stages[0].gates;
        let metrics: Vec<Metric> = s1.iter().map(|g| g.metric).collect();
        assert_eq!(
            metrics,
            [
                Metric::P50Ms,
                Metric::P95Ms,
                Metric::P99Ms,
                Metric::ErrorRate
            ],
            "ordered by Metric::ALL"
        );
        assert_eq!(
            (
                s1[0].scope,
                s1[0].threshold,
                s1[0].window,
                s1[0].min_samples
            ),
            (Scope::Stable, 180.0, Span::from_mins(5), 200)
        );
        // p95: max replaced, warn dropped, window and min_samples inherited from the default gate.
        assert_eq!(
            (s1[1].threshold, s1[1].warn, s1[1].window, s1[1].min_samples),
            (450.0, None, Span::from_mins(10), 300)
        );
        // p99: warn set, max kept.
        assert_eq!((s1[2].threshold, s1[2].warn), (1000.0, Some(700.0)));
        assert_eq!(s1[3].scope, Scope::Service, "scope inherited");
        // Stage 2 has no p50 gate: there is no default and no override.
        let s2 = &p.stages[1].gates;
        let metrics: Vec<Metric> = s2.iter().map(|g| g.metric).collect();
        assert_eq!(
            metrics,
            [
                Metric::P95Ms,
                Metric::P99Ms,
                Metric::ErrorRate,
                Metric::ThroughputRps
            ]
        );
        assert_eq!(
            (s2[0].threshold, s2[0].warn),
            (500.0, Some(400.0)),
            "defaults kept"
        );
        assert_eq!(
            s2[2].scope,
            Scope::Service,
            "scope inherited through a new max"
        );
        assert_eq!(s2[2].window, Span::from_mins(15));
        assert!((s2[2].threshold - 0.008).abs() < 1e-12);
        assert_eq!(s2[2].warn, Some(0.005));
        assert_eq!(
            (s2[3].bound, s2[3].scope, s2[3].threshold, s2[3].min_samples),
            (Bound::Min, Scope::Service, 50.0, 200),
            "throughput defaults to the service scope"
        );
        assert!(p.stages[0].gates.iter().all(|g| g.bound == Bound::Max));
    }

    #[test]
    fn a_warn_only_override_is_checked_against_the_inherited_level() {
        let src = MINIMAL.to_string()
            + "gates.p99_ms = { warn = 1200 }\n\n[gates]\np99_ms = { max = 1000 }\n";
        let e = errs(&src);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!((e[0].0, e[0].1), (10, 25), "at the warn value");
        assert!(
            e[0].2
                .contains("warn 1200 is not below max 1000 (from [gates])"),
            "{}",
            e[0].2
        );
    }
}
