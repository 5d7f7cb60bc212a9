//! Small value types whose preconditions live in the type: a `Weight` is always within
//! 0–100 %, a `Fraction` within 0–1, and plan time is a count of milliseconds since the
//! deployment started. Parsing of the human forms used in plan files ("60m", "0.28%") is
//! here too, so that every crate reads them the same way.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds of plan time since the deployment started.
///
/// The engine never reads a clock: drivers feed it this value, from a virtual clock in
/// simulation or from the real clock in a live run. Integer milliseconds keep simulation
/// output byte-identical across machines.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct PlanTime(pub u64);

impl PlanTime {
    /// The deployment start.
    pub const ZERO: PlanTime = PlanTime(0);

    /// Plan time from whole seconds.
    pub fn from_secs(s: u64) -> PlanTime {
        PlanTime(s * 1000)
    }

    /// Plan time in (fractional) seconds, the unit of every time in the JSON summary.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// This time moved later by `d`.
    pub fn plus(self, d: Span) -> PlanTime {
        PlanTime(self.0.saturating_add(d.0))
    }

    /// The span from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: PlanTime) -> Span {
        Span(self.0.saturating_sub(earlier.0))
    }
}

/// A length of plan time in milliseconds (a stage duration, a window, a checkpoint interval).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Span(pub u64);

impl Span {
    /// A span of whole seconds.
    pub fn from_secs(s: u64) -> Span {
        Span(s * 1000)
    }

    /// A span of whole minutes.
    pub fn from_mins(m: u64) -> Span {
        Span(m * 60_000)
    }

    /// The span in (fractional) seconds.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Parses the duration forms accepted in plans: one or more `<number><unit>` parts with
    /// units `ms`, `s`, `m`, `h`, `d` (for example `"90s"`, `"1h30m"`, `"24h"`, `"1.5h"`).
    /// One parser serves plans and flag schedules (`ramp_flags`, which ramp-core embeds), so
    /// the two can never disagree on what a duration means.
    pub fn parse(text: &str) -> Result<Span, String> {
        ramp_flags::flags::raw::parse_duration_ms(text).map(Span)
    }
}

impl fmt::Display for Span {
    /// Writes the span in minutes when it is whole minutes, as the staging report's tables do ("60 min",
    /// "1440 min"), else in seconds (with a decimal when a live clock made it uneven) or, under
    /// a second, milliseconds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if ms == 0 {
            write!(f, "0 s")
        } else if ms.is_multiple_of(60_000) {
            write!(f, "{} min", ms / 60_000)
        } else if ms.is_multiple_of(1000) {
            write!(f, "{} s", ms / 1000)
        } else if ms > 1000 {
            write!(f, "{:.1} s", ms as f64 / 1000.0)
        } else {
            write!(f, "{} ms", ms)
        }
    }
}

/// A traffic weight in hundredths of a percent (basis points), always within 0–100 %.
///
/// Basis points let flag rollouts take steps under 1 % while keeping comparisons exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Weight(u16);

impl Weight {
    /// No traffic to the canary: where a rollback leaves it.
    pub const ZERO: Weight = Weight(0);
    /// All traffic to the canary: the last stage of every plan.
    pub const FULL: Weight = Weight(10_000);

    /// A weight from a percentage; `None` outside 0–100 or when it is not a multiple of 0.01.
    pub fn from_percent(p: f64) -> Option<Weight> {
        if !p.is_finite() || !(0.0..=100.0).contains(&p) {
            return None;
        }
        let bp = (p * 100.0).round();
        if (bp - p * 100.0).abs() > 1e-6 {
            return None;
        }
        Some(Weight(bp as u16))
    }

    /// The weight in basis points (0–10,000).
    pub fn basis_points(self) -> u16 {
        self.0
    }

    /// The weight as a percentage.
    pub fn percent(self) -> f64 {
        self.0 as f64 / 100.0
    }

    /// The weight as a share of traffic in 0–1.
    pub fn share(self) -> f64 {
        self.0 as f64 / 10_000.0
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(100) {
            write!(f, "{}%", self.0 / 100)
        } else {
            write!(f, "{}%", self.percent())
        }
    }
}

impl Serialize for Weight {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.percent())
    }
}

impl<'de> Deserialize<'de> for Weight {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let p = f64::deserialize(d)?;
        Weight::from_percent(p)
            .ok_or_else(|| serde::de::Error::custom(format!("weight {p} is not within 0–100")))
    }
}

/// Parses a rate written either as a percentage string (`"0.28%"`) or as a bare fraction
/// (`0.0028`). Returns the fraction. Percent strings may carry a sign (`"+0.05%"`), which is
/// how relative changes are written.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (num, scale) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), 0.01),
        None => (t, 1.0),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("expected a rate such as \"0.5%\" or 0.005, found \"{text}\""))?;
    if !v.is_finite() {
        return Err(format!("expected a finite rate, found \"{text}\""));
    }
    Ok(v * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(Span::parse("90s"), Ok(Span(90_000)));
        assert_eq!(Span::parse("15m"), Ok(Span(900_000)));
        assert_eq!(Span::parse("1h30m"), Ok(Span(5_400_000)));
        assert_eq!(Span::parse("24h"), Ok(Span(86_400_000)));
        assert_eq!(Span::parse("250ms"), Ok(Span(250)));
        assert_eq!(Span::parse("1.5h"), Ok(Span(5_400_000)));
        assert!(Span::parse("10").unwrap_err().contains("without a unit"));
        assert!(Span::parse("10x").unwrap_err().contains("unknown unit"));
        assert!(Span::parse("").is_err());
        assert!(Span::parse("m").is_err());
    }

    #[test]
    fn weights_are_bounded_basis_points() {
        assert_eq!(Weight::from_percent(5.0).unwrap().basis_points(), 500);
        assert_eq!(Weight::from_percent(0.25).unwrap().basis_points(), 25);
        assert!(Weight::from_percent(100.5).is_none());
        assert!(Weight::from_percent(-1.0).is_none());
        assert!(Weight::from_percent(0.001).is_none());
        assert_eq!(Weight::FULL.to_string(), "100%");
        assert_eq!(Weight::from_percent(2.5).unwrap().to_string(), "2.5%");
    }

    #[test]
    fn rates_parse_as_percent_or_fraction() {
        assert!((parse_rate("0.28%").unwrap() - 0.0028).abs() < 1e-12);
        assert!((parse_rate("+0.05%").unwrap() - 0.0005).abs() < 1e-12);
        assert!((parse_rate("0.01").unwrap() - 0.01).abs() < 1e-12);
        assert!(parse_rate("abc%").is_err());
    }

    #[test]
    fn spans_display_in_a_readable_unit() {
        assert_eq!(Span::from_mins(60).to_string(), "60 min");
        assert_eq!(Span::from_mins(1440).to_string(), "1440 min");
        assert_eq!(Span::from_secs(90).to_string(), "90 s");
    }
}
