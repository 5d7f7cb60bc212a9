//! Stage two for `[deployment]` and `[baseline]`: what is rolled out, where and when, and
//! the figures a report compares the rollout with.
//!
//! `deployment.start` is the one date-time in a plan: it accepts a string or a native TOML
//! date-time, and must be a full UTC date-time, so that the second of the day it yields
//! (which places the simulation's daily profile) never depends on a time zone.

use super::raw::{RawBaseline, RawDeployment, RawNext};
use super::scalar::{Num, StartValue, S};
use super::validator::{Field, Validator};
use crate::plan::{Baseline, Deployment};
use toml::value::{Datetime, Offset};

impl Validator<'_> {
    /// `[next]`: the file of the plan that follows, kept as written (the binary loads it
    /// relative to this plan's directory). `Some(None)` without the table; `None` when it is
    /// there but names no plan.
    pub(super) fn next_plan(
        &mut self,
        raw: Option<&S<RawNext>>,
    ) -> Option<Option<std::path::PathBuf>> {
        let Some(raw) = raw else {
            return Some(None);
        };
        match &raw.get_ref().plan {
            None => {
                self.missing(
                    raw.span(),
                    "[next]",
                    "plan",
                    "the file of the plan that follows this one, such as \"production.toml\"",
                );
                None
            }
            Some(v) => self.path(v, "next.plan").map(Some),
        }
    }

    /// `[deployment]`.
    pub(super) fn deployment(&mut self, raw: Option<&S<RawDeployment>>) -> Option<Deployment> {
        let Some(raw) = raw else {
            if !self.was_removed(usize::MAX, "deployment") {
                self.error(
                    0..0,
                    "missing required table [deployment] (with id, service and environment)".into(),
                );
            }
            return None;
        };
        let table = raw.span();
        let r = raw.get_ref();
        let ctx = "[deployment]";
        let id = match &r.id {
            None => {
                self.missing(table.clone(), ctx, "id", "a unique deployment id such as \"phase8-canary-20251006\"");
                None
            }
            Some(v) => self.text(v, "deployment.id").and_then(|id| {
                if let Some(bad) = id
                    .chars()
                    .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
                {
                    self.error(
                        v.span(),
                        format!(
                            "deployment.id: {id:?} contains {bad:?}; expected only letters, digits, '.', '_' and '-'"
                        ),
                    );
                    None
                } else {
                    Some(id)
                }
            }),
        };
        let service = match &r.service {
            None => {
                self.missing(
                    table.clone(),
                    ctx,
                    "service",
                    "the service being rolled out",
                );
                None
            }
            Some(v) => self.text(v, "deployment.service"),
        };
        let environment = match &r.environment {
            None => {
                self.missing(
                    table,
                    ctx,
                    "environment",
                    "where it is rolled out, such as \"staging\"",
                );
                None
            }
            Some(v) => self.text(v, "deployment.environment"),
        };
        let start = Field::of(r.start.as_ref(), |v| self.start(v));
        let (start, start_second_of_day) = match start {
            Field::Absent => (None, 0),
            Field::Invalid => return None,
            Field::Valid((s, sod)) => (Some(s), sod),
        };
        Some(Deployment {
            id: id?,
            service: service?,
            environment: environment?,
            start,
            start_second_of_day,
        })
    }

    /// `deployment.start`: the canonical string and the second of the day.
    fn start(&mut self, v: &S<StartValue>) -> Option<(String, u32)> {
        const EXPECTED: &str =
            "expected an RFC 3339 UTC date-time such as \"2025-10-06T18:00:00Z\"";
        let dt = match v.get_ref() {
            StartValue::Datetime(dt) => *dt,
            StartValue::Text(t) => {
                match t.trim().parse::<Datetime>() {
                    Ok(dt) => dt,
                    Err(e) => {
                        self.error(v.span(), format!("deployment.start: {t:?} is not a valid date-time ({e}); {EXPECTED}"));
                        return None;
                    }
                }
            }
            StartValue::Wrong(found) => {
                self.error(
                    v.span(),
                    format!("deployment.start: {EXPECTED}, found {found}"),
                );
                return None;
            }
        };
        match (dt.date, dt.time, dt.offset) {
            (Some(date), Some(time), Some(Offset::Z)) => {
                let second = time.second.unwrap_or(0);
                if second > 59 {
                    self.error(
                        v.span(),
                        format!("deployment.start: {dt} has a leap second; {EXPECTED}"),
                    );
                    return None;
                }
                let canonical = format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                    date.year, date.month, date.day, time.hour, time.minute, second
                );
                let sod =
                    u32::from(time.hour) * 3600 + u32::from(time.minute) * 60 + u32::from(second);
                Some((canonical, sod))
            }
            _ => {
                self.error(
                    v.span(),
                    format!("deployment.start: {dt} is not a full date-time in UTC (ending in Z); {EXPECTED}"),
                );
                None
            }
        }
    }

    /// `[baseline]`.
    pub(super) fn baseline(&mut self, raw: &S<RawBaseline>) -> Option<Baseline> {
        let r = raw.get_ref();
        let mut bad = false;
        let mut num = |this: &mut Self, v: &Option<S<Num>>, key: &str| -> Option<f64> {
            match Field::of(v.as_ref(), |v| {
                this.non_negative(v, &format!("baseline.{key}"))
            }) {
                Field::Absent => None,
                Field::Invalid => {
                    bad = true;
                    None
                }
                Field::Valid(x) => Some(x),
            }
        };
        let p50_ms = num(self, &r.p50_ms, "p50_ms");
        let p95_ms = num(self, &r.p95_ms, "p95_ms");
        let p99_ms = num(self, &r.p99_ms, "p99_ms");
        let throughput_rps = num(self, &r.throughput_rps, "throughput_rps");
        let error_rate = match Field::of(r.error_rate.as_ref(), |v| {
            self.rate_in(
                v,
                "baseline.error_rate",
                |x| (0.0..=1.0).contains(&x),
                "a rate between 0% and 100%",
            )
        }) {
            Field::Absent => None,
            Field::Invalid => {
                bad = true;
                None
            }
            Field::Valid(x) => Some(x),
        };
        if bad {
            return None;
        }
        Some(Baseline {
            p50_ms,
            p95_ms,
            p99_ms,
            error_rate,
            throughput_rps,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::load::parse_plan;
    use crate::load::tests::{ok, MINIMAL};

    #[test]
    fn start_accepts_strings_and_native_datetimes() {
        let s = MINIMAL.replace(
            "environment = \"staging\"",
            "environment = \"staging\"\nstart = \"2025-10-06T18:30:15.250Z\"",
        );
        let p = ok(&s);
        assert_eq!(p.deployment.start.as_deref(), Some("2025-10-06T18:30:15Z"));
        assert_eq!(p.deployment.start_second_of_day, 18 * 3600 + 30 * 60 + 15);
        let n = MINIMAL.replace(
            "environment = \"staging\"",
            "environment = \"staging\"\nstart = 2025-10-06T00:00:05Z",
        );
        let p = ok(&n);
        assert_eq!(p.deployment.start.as_deref(), Some("2025-10-06T00:00:05Z"));
        assert_eq!(p.deployment.start_second_of_day, 5);
    }

    #[test]
    fn start_must_be_a_real_utc_datetime() {
        for (value, expect) in [
            ("\"2025-02-30T18:00:00Z\"", "day between 01 and 28"),
            ("\"2025-13-01T18:00:00Z\"", "month between 01 and 12"),
            ("\"2025-10-06T18:00:00+02:00\"", "UTC"),
            ("\"2025-10-06\"", "UTC"),
            ("\"tomorrow\"", "RFC 3339"),
            ("2025-10-06T18:00:00", "UTC"),
            ("2025-10-06T25:00:00Z", "hour"),
        ] {
            let s = MINIMAL.replace(
                "environment = \"staging\"",
                &format!("environment = \"staging\"\nstart = {value}"),
            );
            let e = match parse_plan(&s, "t.toml") {
                Ok(_) => panic!("{value} should be rejected"),
                Err(e) => e.0,
            };
            assert_eq!(e.len(), 1, "{value}: {e:?}");
            assert_eq!((e[0].line, e[0].column), (5, 9), "{value}");
            assert!(e[0].message.contains(expect), "{value}: {}", e[0].message);
        }
    }
}
