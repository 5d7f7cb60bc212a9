//! Stage two for `[[rehearsals]]`: named faults injected at a plan time, each with a
//! recovery target and the restoration window and tolerance that say when it has recovered.
//!
//! A rehearsal's fault is checked with the simulation's fault checks (`Validator::at` and
//! `Validator::fault`, in `simulation`), so that a fault means the same in both places.

use super::raw::RawRehearsal;
use super::scalar::S;
use super::simulation::FaultKeys;
use super::validator::{valid_or_none, Field, Validator};
use crate::plan::Rehearsal;
use crate::units::Span;

/// The default rehearsal recovery target (the staging report's 120 s).
const DEFAULT_TARGET: Span = Span(120_000);
/// The default rehearsal restoration window.
const DEFAULT_RESTORE_WINDOW: Span = Span(10_000);
/// The default rehearsal restoration tolerance.
const DEFAULT_RESTORE_TOLERANCE: f64 = 0.10;

impl Validator<'_> {
    /// `[[rehearsals]]`.
    pub(super) fn rehearsals(
        &mut self,
        raw: Option<&S<Vec<S<RawRehearsal>>>>,
        has_simulation: bool,
        total: Option<Span>,
    ) -> Option<Vec<Rehearsal>> {
        let Some(list) = raw else {
            return Some(Vec::new());
        };
        let mut out = Some(Vec::new());
        if !has_simulation {
            if let Some(first) = list.get_ref().first() {
                self.error(
                    first.span(),
                    "rehearsals: a rehearsal runs in the simulator or on live traffic; expected a [simulation] section (for `ramp simulate`) or a [router] (for `ramp rehearse`)".into(),
                );
                out = None;
            }
        }
        let mut names: Vec<(String, usize)> = Vec::new();
        for (i, reh) in list.get_ref().iter().enumerate() {
            let n = i + 1;
            let ctx = format!("rehearsal {n}");
            let r = reh.get_ref();
            let name = self.unique_name(
                r.name.as_ref(),
                reh.span(),
                &ctx,
                (
                    "rehearsal",
                    "the name reports show, e.g. name = \"Simulated P95 breach\"",
                ),
                (&mut names, n),
            );
            let at = self.at(r.at.as_ref(), reh.span(), &ctx, total);
            let fault = match &r.fault {
                None => {
                    self.missing(
                        reh.span(),
                        &ctx,
                        "fault",
                        "the fault to inject, e.g. fault = { cohort = \"canary\", add_latency = \"800ms\" }",
                    );
                    None
                }
                Some(f) => {
                    let fr = f.get_ref();
                    let keys = FaultKeys {
                        span: f.span(),
                        cohort: fr.cohort.as_ref(),
                        duration: fr.duration.as_ref(),
                        add_latency: fr.add_latency.as_ref(),
                        fraction: fr.fraction.as_ref(),
                        error_rate: fr.error_rate.as_ref(),
                    };
                    self.fault(&keys, at, &format!("{ctx}: fault"))
                }
            };
            let target = Field::of(r.target.as_ref(), |v| {
                self.positive_duration(v, &format!("{ctx}: target"))
            });
            let restore_window = Field::of(r.restore_window.as_ref(), |v| {
                self.positive_duration(v, &format!("{ctx}: restore_window"))
            });
            let restore_tolerance = Field::of(r.restore_tolerance.as_ref(), |v| {
                self.rate_in(
                    v,
                    &format!("{ctx}: restore_tolerance"),
                    |x| x > 0.0,
                    "a rate above 0%, such as \"10%\"",
                )
            });
            out = match (
                out,
                name,
                fault,
                valid_or_none(target, DEFAULT_TARGET),
                valid_or_none(restore_window, DEFAULT_RESTORE_WINDOW),
                valid_or_none(restore_tolerance, DEFAULT_RESTORE_TOLERANCE),
            ) {
                (
                    Some(mut v),
                    Some(name),
                    Some(fault),
                    Some(target),
                    Some(restore_window),
                    Some(restore_tolerance),
                ) => {
                    v.push(Rehearsal {
                        name,
                        fault,
                        target,
                        restore_window,
                        restore_tolerance,
                    });
                    Some(v)
                }
                _ => None,
            };
        }
        out
    }
}
