//! Stage two's validator: the `Validator` itself, the checks of single values that every
//! section shares, and the walk over the whole plan.
//!
//! Each section's own checks are `impl Validator` blocks in the sibling module named after
//! it; `plan` calls them in turn and builds the plan only when every part is good. Also
//! here: `Field` (absent, invalid or valid) and the helpers that turn one into a value, and
//! the formatting of numbers, rates and spans for messages, which every section shares.

use super::raw::RawPlan;
use super::scalar::{Dur, Num, NumOrText, Text, TextList, S};
use super::PlanError;
use crate::plan::{Metric, Plan};
use crate::units::{parse_rate, Span};
use ramp_flags::located::LocatedError;
use std::ops::Range;

/// A checked optional value: absent, present but wrong (already reported), or good.
///
/// The difference between absent and wrong keeps one mistake from causing a second, bogus
/// error downstream ("no fail level" after an unparsable `max`).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Field<T> {
    /// The key was not written.
    Absent,
    /// The key was written with a bad value, which has been reported.
    Invalid,
    /// The key was written with a good value.
    Valid(T),
}

impl<T> Field<T> {
    /// Wraps the result of checking a key that may be absent.
    pub(super) fn of<R>(raw: Option<R>, check: impl FnOnce(R) -> Option<T>) -> Field<T> {
        match raw {
            None => Field::Absent,
            Some(r) => check(r).map_or(Field::Invalid, Field::Valid),
        }
    }

    /// Whether the key was written at all.
    pub(super) fn present(&self) -> bool {
        !matches!(self, Field::Absent)
    }

    /// This field if it was written, else `fallback` (inheritance of defaults).
    pub(super) fn or(self, fallback: Field<T>) -> Field<T> {
        if self.present() {
            self
        } else {
            fallback
        }
    }
}

/// The validation pass: the source (to turn spans into lines and columns) and the errors
/// found so far.
pub(super) struct Validator<'a> {
    /// The plan text.
    pub(super) source: &'a str,
    /// The file name that labels errors.
    pub(super) file: &'a str,
    /// Every error found so far.
    pub(super) errors: Vec<PlanError>,
    /// Keys removed from the tree by `check_keys` because their value had the wrong shape
    /// (already reported): the start of the table that held them (`usize::MAX` for the top
    /// level) and the key. A removed required key is not reported again as missing.
    pub(super) removed: Vec<(usize, String)>,
}

impl Validator<'_> {
    /// Records an error at the start of `span`.
    pub(super) fn error(&mut self, span: Range<usize>, message: String) {
        let e = LocatedError::at(self.source, self.file, span.start, message);
        self.errors.push(e);
    }

    /// Whether `key` of the table starting at `table` (`usize::MAX`: the top level) was
    /// removed for having the wrong shape, an error already reported.
    pub(super) fn was_removed(&self, table: usize, key: &str) -> bool {
        self.removed.iter().any(|(t, k)| *t == table && k == key)
    }

    /// Records a missing required key, located at the table that lacks it.
    pub(super) fn missing(&mut self, table: Range<usize>, ctx: &str, key: &str, what: &str) {
        if self.was_removed(table.start, key) {
            return;
        }
        self.error(
            table,
            format!("{ctx}: missing required key `{key}` ({what})"),
        );
    }

    /// An entry's `name`: required, not empty, and unique among the entries of its `kind`
    /// (checks, hooks, rehearsals, simulation features). `what` says what a missing name is
    /// for; `seen` holds the names so far (with the entry that used each) and `n` is this
    /// entry's number.
    pub(super) fn unique_name(
        &mut self,
        v: Option<&S<Text>>,
        table: Range<usize>,
        ctx: &str,
        (kind, what): (&str, &str),
        (seen, n): (&mut Vec<(String, usize)>, usize),
    ) -> Option<String> {
        let Some(v) = v else {
            self.missing(table, ctx, "name", what);
            return None;
        };
        let name = self.text(v, &format!("{ctx}: name"))?;
        if let Some((_, first)) = seen.iter().find(|(s, _)| *s == name) {
            self.error(
                v.span(),
                format!("{ctx}: name {name:?} is already used by {kind} {first}; {kind} names must be unique"),
            );
            return None;
        }
        seen.push((name.clone(), n));
        Some(name)
    }

    // ----- scalar checks -----

    /// A finite number.
    pub(super) fn number(&mut self, v: &S<Num>, what: &str) -> Option<f64> {
        let x = match v.get_ref() {
            Num::Num(x) => *x,
            Num::Wrong(found) => {
                self.error(
                    v.span(),
                    format!("{what}: expected a number, found {found}"),
                );
                return None;
            }
        };
        if x.is_finite() {
            Some(x)
        } else {
            self.error(
                v.span(),
                format!("{what}: expected a finite number, found {x}"),
            );
            None
        }
    }

    /// A finite number of at least 0.
    pub(super) fn non_negative(&mut self, v: &S<Num>, what: &str) -> Option<f64> {
        let x = self.number(v, what)?;
        if x < 0.0 {
            self.error(
                v.span(),
                format!(
                    "{what}: {} is negative; expected a number of at least 0",
                    fmt_num(x)
                ),
            );
            return None;
        }
        Some(x)
    }

    /// A finite number above 0.
    pub(super) fn positive(&mut self, v: &S<Num>, what: &str) -> Option<f64> {
        let x = self.number(v, what)?;
        if x <= 0.0 {
            self.error(
                v.span(),
                format!(
                    "{what}: {} is not above 0; expected a number above 0",
                    fmt_num(x)
                ),
            );
            return None;
        }
        Some(x)
    }

    /// A whole number of at least 1 (a sample count).
    pub(super) fn count(&mut self, v: &S<Num>, what: &str) -> Option<u64> {
        let x = self.number(v, what)?;
        if x < 1.0 || x.fract() != 0.0 || x > 9.0e15 {
            self.error(
                v.span(),
                format!(
                    "{what}: expected a whole number of at least 1, found {}",
                    fmt_num(x)
                ),
            );
            return None;
        }
        Some(x as u64)
    }

    /// A string.
    pub(super) fn string<'t>(&mut self, v: &'t S<Text>, what: &str) -> Option<&'t str> {
        match v.get_ref() {
            Text::Text(t) => Some(t),
            Text::Wrong(found) => {
                self.error(
                    v.span(),
                    format!("{what}: expected a string, found {found}"),
                );
                None
            }
        }
    }

    /// A non-empty string.
    pub(super) fn text(&mut self, v: &S<Text>, what: &str) -> Option<String> {
        let t = self.string(v, what)?;
        if t.trim().is_empty() {
            self.error(v.span(), format!("{what}: must not be empty"));
            return None;
        }
        Some(t.to_string())
    }

    /// A rate, as a fraction: a string such as `"0.28%"` or a bare fraction.
    pub(super) fn rate(&mut self, v: &S<NumOrText>, what: &str) -> Option<f64> {
        let x = match v.get_ref() {
            NumOrText::Num(x) => *x,
            NumOrText::Text(t) => match parse_rate(t) {
                Ok(x) => x,
                Err(e) => {
                    self.error(v.span(), format!("{what}: {e}"));
                    return None;
                }
            },
            NumOrText::Wrong(found) => {
                self.error(
                    v.span(),
                    format!("{what}: expected a rate such as \"0.5%\" or 0.005, found {found}"),
                );
                return None;
            }
        };
        if !x.is_finite() {
            self.error(
                v.span(),
                format!("{what}: expected a finite rate, found {x}"),
            );
            return None;
        }
        Some(x)
    }

    /// A rate accepted by `ok`; `expected` describes the accepted range for the message.
    pub(super) fn rate_in(
        &mut self,
        v: &S<NumOrText>,
        what: &str,
        ok: impl Fn(f64) -> bool,
        expected: &str,
    ) -> Option<f64> {
        let x = self.rate(v, what)?;
        if !ok(x) {
            self.error(
                v.span(),
                format!(
                    "{what}: {} is out of range; expected {expected}",
                    describe_rate(v.get_ref(), x)
                ),
            );
            return None;
        }
        Some(x)
    }

    /// A duration string.
    pub(super) fn duration(&mut self, v: &S<Dur>, what: &str) -> Option<Span> {
        match v.get_ref() {
            Dur::Text(t) => match Span::parse(t) {
                Ok(s) => Some(s),
                Err(e) => {
                    // `Span::parse` names the duration itself ("duration \"60x\" has …"):
                    // after a key that is called `duration` too, say it once.
                    let message =
                        match (what.strip_suffix(": duration"), e.strip_prefix("duration ")) {
                            (Some(ctx), Some(rest)) => format!("{ctx}: duration {rest}"),
                            _ => format!("{what}: {e}"),
                        };
                    self.error(v.span(), message);
                    None
                }
            },
            Dur::Wrong(found) => {
                self.error(
                    v.span(),
                    format!("{what}: expected a duration string such as \"90s\", \"15m\" or \"1h30m\", found {found}"),
                );
                None
            }
            Dur::Num(n) => {
                let n = fmt_num(*n);
                self.error(
                    v.span(),
                    format!(
                        "{what}: expected a duration string with a unit such as \"{n}s\" or \"{n}m\", found the bare number {n}"
                    ),
                );
                None
            }
        }
    }

    /// A duration longer than zero.
    pub(super) fn positive_duration(&mut self, v: &S<Dur>, what: &str) -> Option<Span> {
        let s = self.duration(v, what)?;
        if s.0 == 0 {
            self.error(v.span(), format!("{what}: must be longer than 0"));
            return None;
        }
        Some(s)
    }

    /// The strings of a string-or-array value, each with its 1-based position and its span;
    /// a single string is entry 1 and spans the value. Every entry that is not a string is
    /// reported and left out, so that the caller still checks the others; the flag says
    /// whether every entry was a string. `expected` describes the value for a message about
    /// a value that is neither a string nor an array.
    pub(super) fn entries<'t>(
        &mut self,
        v: &'t S<TextList>,
        what: &str,
        expected: &str,
    ) -> (Vec<Entry<'t>>, bool) {
        match v.get_ref() {
            TextList::One(t) => (vec![(1, t.as_str(), v.span())], true),
            TextList::Wrong(found) => {
                self.error(
                    v.span(),
                    format!("{what}: expected {expected}, found {found}"),
                );
                (Vec::new(), false)
            }
            TextList::Many(list) => {
                let mut out = Vec::with_capacity(list.len());
                let mut ok = true;
                for (i, e) in list.iter().enumerate() {
                    match self.string(e, &format!("{what} entry {}", i + 1)) {
                        Some(t) => out.push((i + 1, t, e.span())),
                        None => ok = false,
                    }
                }
                (out, ok)
            }
        }
    }

    // ----- the whole plan -----

    /// Validates everything and builds the plan when every part is good.
    pub(super) fn plan(&mut self, raw: &RawPlan) -> Option<Plan> {
        let deployment = self.deployment(raw.deployment.as_ref());
        let baseline = raw.baseline.as_ref().map(|b| self.baseline(b));
        let defaults = self.defaults(raw.gates.as_ref());
        let mut windows = Vec::new();
        let (stages, total) = self.stages(raw.stages.as_ref(), &defaults, &mut windows);
        let evaluate_every = self.evaluate_every(&defaults, &windows);
        let max_unobserved = match defaults.max_unobserved {
            Field::Absent => Some(None),
            Field::Invalid => None,
            Field::Valid(s) => Some(Some(s)),
        };
        let sequential = self.sequential(
            raw.gates
                .as_ref()
                .and_then(|g| g.get_ref().sequential.as_ref()),
        );
        let relative = self.relative(
            raw.gates
                .as_ref()
                .and_then(|g| g.get_ref().relative.as_ref()),
            &defaults,
        );
        let gates_raw = raw.gates.as_ref().map(|g| g.get_ref());
        let burn_rate_slo = self.burn_rate(gates_raw.and_then(|g| g.burn_rate.as_ref()));
        let mann_whitney = self.mann_whitney(gates_raw.and_then(|g| g.mann_whitney.as_ref()));
        let simulation = raw.simulation.as_ref().map(|s| self.simulation(s, total));
        // A rehearsal runs on a fork of the simulation (`ramp simulate`) or on live traffic
        // (`ramp rehearse`, through the router): either is enough.
        let rehearsals = self.rehearsals(
            raw.rehearsals.as_ref(),
            raw.simulation.is_some() || raw.router.is_some(),
            total,
        );
        let store = self.store(raw.store.as_ref());
        let cluster = store
            .as_ref()
            .and_then(Option::as_ref)
            .map(|s| (s.etcd.clone(), s.prefix.clone()));
        let router = self.router(raw.router.as_ref(), cluster.as_ref());
        let control = self.control(raw.control.as_ref());
        let checks = self.checks(raw.checks.as_ref());
        let hooks = self.hooks(raw.hooks.as_ref());
        let notify = self.notifiers(raw.notify.as_ref());
        let next = self.next_plan(raw.next.as_ref());
        let flags = self.flags(raw.flags.as_ref());
        let ofrep = self.ofrep(raw.ofrep.as_ref());
        let shortest = stages
            .as_ref()
            .and_then(|s| s.iter().map(|st| st.duration).min());
        let metrics = self.metrics(
            raw.metrics.as_ref(),
            gates_raw.and_then(|g| g.query.as_ref()),
            (evaluate_every, shortest),
        );
        let report_queries = self.report_queries(
            raw.report
                .as_ref()
                .and_then(|r| r.get_ref().queries.as_ref()),
            raw.metrics
                .as_ref()
                .is_some_and(|m| m.get_ref().url.is_some()),
            evaluate_every,
        );

        let baseline = match baseline {
            None => None,
            Some(b) => Some(b?),
        };
        let simulation = match simulation {
            None => None,
            Some(s) => Some(s?),
        };
        let plan = Plan {
            deployment: deployment?,
            baseline,
            evaluate_every: evaluate_every?,
            max_unobserved: max_unobserved?,
            stages: stages?,
            sequential: sequential?,
            relative: relative?,
            burn_rate_slo: burn_rate_slo?,
            mann_whitney: mann_whitney?,
            simulation,
            rehearsals: rehearsals?,
            router: router?,
            control: control?,
            checks: checks?,
            hooks: hooks?,
            notify: notify?,
            next: next?,
            flags: flags?,
            ofrep: ofrep?,
            metrics: metrics.as_ref()?.source,
            prometheus: metrics.as_ref()?.prometheus.clone(),
            queries: metrics?.queries,
            report_queries: report_queries?,
            store: store?,
        };
        // The router and the metrics source, checked together once both are good.
        self.fits_metrics(raw, &plan).then_some(plan)
    }
}

/// One string of a string-or-array value: its 1-based position, the string and its span.
pub(super) type Entry<'t> = (usize, &'t str, Range<usize>);

/// The span of an optional spanned value, or an empty span at the start (only used where
/// the value is known to be present).
pub(super) fn span_of<T>(v: &Option<S<T>>) -> Range<usize> {
    v.as_ref().map_or(0..0, |v| v.span())
}

/// A field's value, or `default` when absent; `None` when it was invalid.
pub(super) fn valid_or_none<T>(f: Field<T>, default: T) -> Option<T> {
    match f {
        Field::Absent => Some(default),
        Field::Invalid => None,
        Field::Valid(x) => Some(x),
    }
}

/// An optional field's value: `Some(None)` when absent, `None` when it was invalid (already
/// reported).
pub(super) fn written<T>(f: Field<T>) -> Option<Option<T>> {
    match f {
        Field::Absent => Some(None),
        Field::Invalid => None,
        Field::Valid(x) => Some(Some(x)),
    }
}

/// A number for messages: integers without a decimal point, others in shortest form.
pub(super) fn fmt_num(x: f64) -> String {
    let r = if x.abs() < 1e9 {
        (x * 1e9).round() / 1e9
    } else {
        x
    };
    if r == 0.0 {
        "0".into()
    } else {
        format!("{r}")
    }
}

/// A fraction as a percentage for messages ("0.8%").
fn fmt_pct(x: f64) -> String {
    format!("{}%", fmt_num(x * 100.0))
}

/// A metric value for messages: error rates as percentages, others as plain numbers.
pub(super) fn fmt_metric(metric: Metric, x: f64) -> String {
    match metric {
        Metric::ErrorRate => fmt_pct(x),
        _ => fmt_num(x),
    }
}

/// A rate for messages, as written: `"150%"`, or `5 (= 500%)` for a bare fraction.
pub(super) fn describe_rate(raw: &NumOrText, x: f64) -> String {
    match raw {
        NumOrText::Text(t) => format!("{t:?}"),
        NumOrText::Num(n) => format!("{} (= {})", fmt_num(*n), fmt_pct(x)),
        NumOrText::Wrong(found) => found.clone(),
    }
}

/// A span for messages in the largest unit that divides it ("1h", "90m", "30s", "800ms").
pub(super) fn fmt_span(s: Span) -> String {
    let ms = s.0;
    if ms == 0 {
        return "0s".into();
    }
    for (unit, suffix) in [(3_600_000, "h"), (60_000, "m"), (1_000, "s")] {
        // A pattern rather than `ms % unit == 0`: `is_multiple_of` is newer than the MSRV.
        if let (whole, 0) = (ms / unit, ms % unit) {
            return format!("{whole}{suffix}");
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_format_numbers_and_spans_for_people() {
        assert_eq!(fmt_num(1000.0), "1000");
        assert_eq!(fmt_num(0.1 + 0.2), "0.3");
        assert_eq!(fmt_num(-0.0), "0");
        assert_eq!(fmt_pct(0.008), "0.8%");
        assert_eq!(fmt_span(Span::from_mins(60)), "1h");
        assert_eq!(fmt_span(Span::from_mins(90)), "90m");
        assert_eq!(fmt_span(Span(800)), "800ms");
        assert_eq!(fmt_span(Span::from_secs(30)), "30s");
    }
}
