//! Stage two for `[gates]`: the evaluation interval, the default gate of each metric, and
//! the canary-versus-stable tests (sequential, relative, burn rate and Mann-Whitney).
//!
//! The default gates are checked here one table at a time (`gate_spec`) and kept as
//! `Defaults`; `stages` merges each stage's overrides over them. The evaluation interval is
//! checked last, against every window the stages ended up with.

use super::raw::{
    RawBurnRate, RawGate, RawGates, RawMannWhitney, RawRelative, RawSequential, RawSequentialTest,
};
use super::scalar::{NumOrText, S};
use super::validator::{describe_rate, fmt_metric, fmt_num, fmt_span, span_of, Field, Validator};
use crate::plan::{Bound, Metric, RelativeGate, Scope, SequentialGates};
use crate::units::{parse_rate, Span};
use std::ops::Range;

/// The default evaluation interval.
const DEFAULT_EVALUATE_EVERY: Span = Span(5_000);
/// The default gate window.
pub(super) const DEFAULT_WINDOW: Span = Span(300_000);
/// The default minimum sample count.
pub(super) const DEFAULT_MIN_SAMPLES: u64 = 100;

/// Where an effective gate's window came from, to locate a window that does not fit.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum WindowSource {
    /// Written in the stage's own gate table, at this span.
    Stage(Range<usize>),
    /// Inherited from `[gates]` (the metric's default gate or `[gates].window`), at this span.
    Defaults(Range<usize>),
    /// The built-in default.
    BuiltIn,
}

/// One validated gate table, default or override, before merging.
#[derive(Debug, Clone)]
pub(super) struct GateSpec {
    /// The table's span, for errors about the table as a whole.
    pub(super) span: Range<usize>,
    /// The fail level: bound, threshold and the threshold's span.
    pub(super) fail: Field<(Bound, f64, Range<usize>)>,
    /// The warn level and its span.
    pub(super) warn: Field<(f64, Range<usize>)>,
    /// The scope.
    pub(super) scope: Field<Scope>,
    /// The window and its span.
    pub(super) window: Field<(Span, Range<usize>)>,
    /// The minimum sample count.
    pub(super) min_samples: Field<u64>,
}

/// The validated `[gates]` table.
pub(super) struct Defaults {
    /// The evaluation interval and, when written, its span.
    pub(super) evaluate_every: Field<(Span, Range<usize>)>,
    /// `[gates].max_unobserved`.
    pub(super) max_unobserved: Field<Span>,
    /// `[gates].window` and its span.
    pub(super) window: Field<(Span, Range<usize>)>,
    /// `[gates].min_samples`.
    pub(super) min_samples: Field<u64>,
    /// The default gate of each metric, in `Metric::ALL` order.
    pub(super) gates: [Option<GateSpec>; 5],
}

/// An effective gate window in some stage, for the `evaluate_every` check.
pub(super) struct WindowUse {
    /// The window.
    pub(super) window: Span,
    /// Where it was written.
    pub(super) source: WindowSource,
    /// Which stage and gate uses it, for messages ("stage 1's p95_ms gate").
    pub(super) user: String,
}

impl Validator<'_> {
    /// `[gates]`.
    pub(super) fn defaults(&mut self, raw: Option<&S<RawGates>>) -> Defaults {
        let Some(raw) = raw else {
            return Defaults {
                evaluate_every: Field::Absent,
                max_unobserved: Field::Absent,
                window: Field::Absent,
                min_samples: Field::Absent,
                gates: Default::default(),
            };
        };
        let r = raw.get_ref();
        let evaluate_every = Field::of(r.evaluate_every.as_ref(), |v| {
            self.positive_duration(v, "gates.evaluate_every")
                .map(|s| (s, v.span()))
        });
        let max_unobserved = Field::of(r.max_unobserved.as_ref(), |v| {
            self.positive_duration(v, "gates.max_unobserved")
        });
        let window = Field::of(r.window.as_ref(), |v| {
            self.positive_duration(v, "gates.window")
                .map(|s| (s, v.span()))
        });
        let min_samples = Field::of(r.min_samples.as_ref(), |v| {
            self.count(v, "gates.min_samples")
        });
        let mut gates: [Option<GateSpec>; 5] = Default::default();
        for (slot, metric) in gates.iter_mut().zip(Metric::ALL) {
            let Some(g) = r.gate(metric) else { continue };
            let ctx = format!("gates.{}", metric.key());
            let spec = self.gate_spec(metric, g, &ctx);
            if !spec.fail.present() {
                self.error(
                    spec.span.clone(),
                    format!("{ctx}: missing a fail level; expected max = … (a ceiling) or min = … (a floor)"),
                );
            }
            if let (Field::Valid((bound, t, _)), Field::Valid((w, ws))) = (&spec.fail, &spec.warn) {
                self.check_warn(&ctx, metric, (*bound, *t), (*w, ws.clone()), false);
            }
            *slot = Some(spec);
        }
        Defaults {
            evaluate_every,
            max_unobserved,
            window,
            min_samples,
            gates,
        }
    }

    /// Checks the keys of one gate table on their own (merging comes later).
    pub(super) fn gate_spec(&mut self, metric: Metric, raw: &S<RawGate>, ctx: &str) -> GateSpec {
        let r = raw.get_ref();
        let max = Field::of(r.max.as_ref(), |v| {
            self.threshold(metric, v, &format!("{ctx}: max"))
        });
        let min = Field::of(r.min.as_ref(), |v| {
            self.threshold(metric, v, &format!("{ctx}: min"))
        });
        let fail = match (max, min) {
            (Field::Absent, Field::Absent) => Field::Absent,
            (Field::Valid(t), Field::Absent) => Field::Valid((Bound::Max, t, span_of(&r.max))),
            (Field::Absent, Field::Valid(t)) => Field::Valid((Bound::Min, t, span_of(&r.min))),
            (max, min) => {
                if max.present() && min.present() {
                    self.error(
                        span_of(&r.min),
                        format!("{ctx}: has both max and min; expected exactly one fail level: max (a ceiling) or min (a floor)"),
                    );
                }
                Field::Invalid
            }
        };
        let warn = Field::of(r.warn.as_ref(), |v| {
            self.threshold(metric, v, &format!("{ctx}: warn"))
                .map(|w| (w, v.span()))
        });
        let scope = Field::of(r.scope.as_ref(), |v| {
            match self.string(v, &format!("{ctx}: scope"))? {
                "canary" => Some(Scope::Canary),
                "stable" => Some(Scope::Stable),
                "service" => Some(Scope::Service),
                other => {
                    self.error(
                    v.span(),
                    format!("{ctx}: scope {other:?} is not one of \"canary\", \"stable\" or \"service\""),
                );
                    None
                }
            }
        });
        let window = Field::of(r.window.as_ref(), |v| {
            self.positive_duration(v, &format!("{ctx}: window"))
                .map(|s| (s, v.span()))
        });
        let min_samples = Field::of(r.min_samples.as_ref(), |v| {
            self.count(v, &format!("{ctx}: min_samples"))
        });
        GateSpec {
            span: raw.span(),
            fail,
            warn,
            scope,
            window,
            min_samples,
        }
    }

    /// A gate level (`max`, `min` or `warn`): a rate of at most 100 % for `error_rate`, a
    /// plain number for the others; never negative.
    fn threshold(&mut self, metric: Metric, v: &S<NumOrText>, what: &str) -> Option<f64> {
        let unit = if metric == Metric::ThroughputRps {
            "requests per second"
        } else {
            "milliseconds"
        };
        let x = match (metric, v.get_ref()) {
            (Metric::ErrorRate, _) => self.rate(v, what)?,
            (_, NumOrText::Num(x)) => {
                if !x.is_finite() {
                    self.error(
                        v.span(),
                        format!("{what}: expected a finite number, found {x}"),
                    );
                    return None;
                }
                *x
            }
            (_, NumOrText::Text(t)) => {
                self.error(
                    v.span(),
                    format!("{what}: expected a number ({unit}), found the string {t:?}"),
                );
                return None;
            }
            (_, NumOrText::Wrong(found)) => {
                self.error(
                    v.span(),
                    format!("{what}: expected a number ({unit}), found {found}"),
                );
                return None;
            }
        };
        if x < 0.0 {
            let shown = if metric == Metric::ErrorRate {
                describe_rate(v.get_ref(), x)
            } else {
                fmt_num(x)
            };
            self.error(
                v.span(),
                format!("{what}: {shown} is negative; a gate level must be 0 or more"),
            );
            return None;
        }
        if metric == Metric::ErrorRate && x > 1.0 {
            self.error(
                v.span(),
                format!(
                    "{what}: {} is above 100%; expected an error rate such as \"1%\" (a bare number is a fraction: 0.01)",
                    describe_rate(v.get_ref(), x)
                ),
            );
            return None;
        }
        Some(x)
    }

    /// Checks that a warn level sits on the safe side of its fail level; `inherited` says
    /// the fail level came from `[gates]`, which the message then mentions.
    pub(super) fn check_warn(
        &mut self,
        ctx: &str,
        metric: Metric,
        (bound, threshold): (Bound, f64),
        (warn, warn_span): (f64, Range<usize>),
        inherited: bool,
    ) {
        let (ok, side, name) = match bound {
            Bound::Max => (warn < threshold, "below", "max"),
            Bound::Min => (warn > threshold, "above", "min"),
        };
        if !ok {
            let from = if inherited { " (from [gates])" } else { "" };
            self.error(
                warn_span,
                format!(
                    "{ctx}: warn {} is not {side} {name} {}{from}; a warn level must be on the safe side of the fail level",
                    fmt_metric(metric, warn),
                    fmt_metric(metric, threshold)
                ),
            );
        }
    }

    /// `[gates].evaluate_every`, checked against every effective window: a gate must be
    /// evaluated at least once per window.
    pub(super) fn evaluate_every(
        &mut self,
        defaults: &Defaults,
        windows: &[WindowUse],
    ) -> Option<Span> {
        let (every, span) = match &defaults.evaluate_every {
            Field::Absent => (DEFAULT_EVALUATE_EVERY, None),
            Field::Invalid => return None,
            Field::Valid((s, span)) => (*s, Some(span.clone())),
        };
        let too_short: Vec<&WindowUse> = windows.iter().filter(|w| w.window < every).collect();
        if too_short.is_empty() {
            return Some(every);
        }
        if let Some(span) = span {
            // The interval was written: blame it once, naming the shortest window.
            if let Some(short) = too_short.iter().min_by_key(|w| w.window) {
                self.error(
                    span,
                    format!(
                        "gates.evaluate_every {} is longer than the {} window of {}; a gate must be evaluated at least once per window",
                        fmt_span(every),
                        fmt_span(short.window),
                        short.user
                    ),
                );
            }
        } else {
            // The default interval: blame each window that is too short, once.
            let mut seen: Vec<&Range<usize>> = Vec::new();
            for w in too_short {
                if let WindowSource::Stage(s) | WindowSource::Defaults(s) = &w.source {
                    if !seen.contains(&s) {
                        seen.push(s);
                        self.error(
                            s.clone(),
                            format!(
                                "window {} (used by {}) is shorter than evaluate_every ({} by default); a gate must be evaluated at least once per window",
                                fmt_span(w.window),
                                w.user,
                                fmt_span(every)
                            ),
                        );
                    }
                }
            }
        }
        None
    }

    /// `[gates.sequential]`: each test's α in (0, 0.5], the latency floor in [0, 1).
    pub(super) fn sequential(&mut self, raw: Option<&S<RawSequential>>) -> Option<SequentialGates> {
        let Some(raw) = raw else {
            return Some(SequentialGates::default());
        };
        let r = raw.get_ref();
        let mut ok = true;
        let alpha = |this: &mut Self, t: &S<RawSequentialTest>, ctx: &str| -> Option<f64> {
            match &t.get_ref().alpha {
                None => Some(0.01),
                Some(a) => this.rate_in(
                    a,
                    &format!("{ctx}.alpha"),
                    |x| x > 0.0 && x <= 0.5,
                    "a false-rollback budget above 0 and at most 0.5, e.g. 0.01",
                ),
            }
        };
        let errors = match &r.errors {
            None => None,
            Some(t) => {
                if let Some(f) = &t.get_ref().floor {
                    self.error(
                        f.span(),
                        "gates.sequential.errors.floor: a floor applies only to the latency test; remove it".into(),
                    );
                    ok = false;
                }
                let a = alpha(self, t, "gates.sequential.errors");
                ok &= a.is_some();
                a
            }
        };
        let latency = match &r.latency {
            None => None,
            Some(t) => {
                let a = alpha(self, t, "gates.sequential.latency");
                let floor = match &t.get_ref().floor {
                    None => Some(0.0),
                    Some(f) => self.rate_in(
                        f,
                        "gates.sequential.latency.floor",
                        |x| (0.0..1.0).contains(&x),
                        "a relative shift from 0% to under 100%, e.g. \"2%\"",
                    ),
                };
                ok &= a.is_some() && floor.is_some();
                a.zip(floor)
            }
        };
        if r.errors.is_none() && r.latency.is_none() {
            self.error(
                raw.span(),
                "gates.sequential: expected at least one test: errors = { alpha = 0.01 } or latency = { alpha = 0.01 }".into(),
            );
            ok = false;
        }
        ok.then_some(SequentialGates { errors, latency })
    }

    /// `[gates.relative]`: each ratio at least 1, windows and sample counts like gates'.
    pub(super) fn relative(
        &mut self,
        raw: Option<&S<RawRelative>>,
        defaults: &Defaults,
    ) -> Option<Vec<RelativeGate>> {
        let Some(raw) = raw else {
            return Some(Vec::new());
        };
        let r = raw.get_ref();
        let mut ok = true;
        let mut out = Vec::new();
        let default_window = match &defaults.window {
            Field::Valid((w, _)) => Some(*w),
            Field::Absent => Some(DEFAULT_WINDOW),
            Field::Invalid => None,
        };
        let default_samples = match &defaults.min_samples {
            Field::Valid(n) => Some(*n),
            Field::Absent => Some(DEFAULT_MIN_SAMPLES),
            Field::Invalid => None,
        };
        for (metric, g) in [
            (Metric::P50Ms, &r.p50_ms),
            (Metric::P95Ms, &r.p95_ms),
            (Metric::P99Ms, &r.p99_ms),
            (Metric::ErrorRate, &r.error_rate),
        ] {
            let Some(g) = g else { continue };
            let ctx = format!("gates.relative.{}", metric.key());
            let gr = g.get_ref();
            let ratio = match &gr.max {
                None => {
                    self.error(
                        g.span(),
                        format!("{ctx}: missing max; expected the largest canary/stable ratio, e.g. max = \"+10%\" or max = \"1.5x\""),
                    );
                    None
                }
                Some(v) => self.ratio(v, &format!("{ctx}.max")),
            };
            let window = match &gr.window {
                None => default_window,
                Some(w) => self.positive_duration(w, &format!("{ctx}.window")),
            };
            let min_samples = match &gr.min_samples {
                None => default_samples,
                Some(n) => self.count(n, &format!("{ctx}.min_samples")),
            };
            match (ratio, window, min_samples) {
                (Some(max_ratio), Some(window), Some(min_samples)) => out.push(RelativeGate {
                    metric,
                    max_ratio,
                    window,
                    min_samples,
                }),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// A ratio written as "+10%" (1.10), "1.5x" (1.5) or a bare number (the ratio itself);
    /// at least 1, since a canary may always be as good as stable.
    fn ratio(&mut self, v: &S<NumOrText>, what: &str) -> Option<f64> {
        let parsed = match v.get_ref() {
            NumOrText::Num(x) => Ok(*x),
            NumOrText::Text(t) => {
                let t = t.trim();
                if let Some(x) = t.strip_suffix(['x', '×']) {
                    x.trim().parse::<f64>().map_err(|_| ())
                } else if t.ends_with('%') {
                    parse_rate(t).map(|r| 1.0 + r).map_err(|_| ())
                } else {
                    Err(())
                }
            }
            NumOrText::Wrong(_) => Err(()),
        };
        match parsed {
            Ok(x) if x.is_finite() && x >= 1.0 => Some(x),
            Ok(x) => {
                self.error(
                    v.span(),
                    format!("{what}: ratio {} is below 1; expected the canary's largest value relative to stable, such as \"+10%\" or \"1.5x\"", fmt_num(x)),
                );
                None
            }
            Err(()) => {
                self.error(
                    v.span(),
                    format!("{what}: expected a ratio such as \"+10%\", \"1.5x\" or 1.1"),
                );
                None
            }
        }
    }

    /// `[gates.burn_rate]`: the SLO, above 0 % and below 100 %; `Some(None)` when the plan
    /// has no burn-rate gates.
    pub(super) fn burn_rate(&mut self, raw: Option<&S<RawBurnRate>>) -> Option<Option<f64>> {
        match raw {
            None => Some(None),
            Some(b) => match &b.get_ref().slo {
                None => {
                    self.error(
                        b.span(),
                        "gates.burn_rate: missing slo; expected the canary's availability objective, e.g. slo = \"99.9%\"".into(),
                    );
                    None
                }
                Some(v) => self
                    .rate_in(
                        v,
                        "gates.burn_rate.slo",
                        |x| x > 0.0 && x < 1.0,
                        "an objective above 0% and below 100%, e.g. \"99.9%\"",
                    )
                    .map(Some),
            },
        }
    }

    /// `[gates.mann_whitney]`: the test's level, above 0 and at most 0.5 (default 0.02);
    /// `Some(None)` when the plan has no Mann-Whitney test.
    pub(super) fn mann_whitney(&mut self, raw: Option<&S<RawMannWhitney>>) -> Option<Option<f64>> {
        match raw {
            None => Some(None),
            Some(m) => match &m.get_ref().alpha {
                None => Some(Some(0.02)),
                Some(v) => self
                    .rate_in(
                        v,
                        "gates.mann_whitney.alpha",
                        |x| x > 0.0 && x <= 0.5,
                        "a level above 0 and at most 0.5, e.g. 0.02 (Kayenta's 98% confidence)",
                    )
                    .map(Some),
            },
        }
    }
}
