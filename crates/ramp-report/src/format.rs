//! Number, duration and time formatting shared by every section.
//!
//! Every function here is total: a value that is not finite prints as an em dash instead of
//! `NaN` or `inf`, and a negative zero prints without its sign, so that the report never shows
//! an artefact of floating point.

use ramp_core::Metric;

/// What the report prints where there is no value.
pub(crate) const DASH: &str = "—";

/// Formats `v` with a fixed number of decimals; an em dash when `v` is not finite.
pub(crate) fn fixed(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return DASH.to_string();
    }
    let s = format!("{v:.decimals$}");
    match s.strip_prefix('-') {
        // A value that rounds to zero prints as zero, not as "-0.0".
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

/// Formats `v` with at most `max_decimals` decimals, dropping trailing zeros ("900", "0.8").
pub(crate) fn trimmed(v: f64, max_decimals: usize) -> String {
    let s = fixed(v, max_decimals);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Formats a count with thousands separators ("14,012,345").
pub(crate) fn count(n: u64) -> String {
    ramp_core::engine::group(n)
}

/// A latency or throughput for a table cell: whole numbers from 100 up, one decimal below.
fn magnitude(v: f64) -> String {
    if v.abs() >= 100.0 {
        fixed(v, 0)
    } else {
        fixed(v, 1)
    }
}

/// A metric value for a table cell, without its unit (the row label carries it): error
/// rates as percentages with two decimals, latencies and throughput as plain numbers.
pub(crate) fn cell(metric: Metric, v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => match metric {
            Metric::ErrorRate => fixed(v * 100.0, 2),
            _ => magnitude(v),
        },
        _ => DASH.to_string(),
    }
}

/// A metric value with its unit, for sentences ("821 ms", "0.41%", "131 req/s").
pub(crate) fn value(metric: Metric, v: f64) -> String {
    if !v.is_finite() {
        return DASH.to_string();
    }
    match metric {
        Metric::ErrorRate => format!("{}%", fixed(v * 100.0, 2)),
        Metric::P50Ms | Metric::P95Ms | Metric::P99Ms => format!("{} ms", magnitude(v)),
        Metric::ThroughputRps => format!("{} req/s", magnitude(v)),
    }
}

/// Like [`value`], with an em dash for a missing value.
pub(crate) fn opt_value(metric: Metric, v: Option<f64>) -> String {
    v.map_or_else(|| DASH.to_string(), |v| value(metric, v))
}

/// A metric value with one more digit, for averages ("821.0 ms", "0.40%", "131.6 req/s").
pub(crate) fn precise(metric: Metric, v: f64) -> String {
    if !v.is_finite() {
        return DASH.to_string();
    }
    match metric {
        Metric::ErrorRate => format!("{}%", fixed(v * 100.0, 2)),
        Metric::P50Ms | Metric::P95Ms | Metric::P99Ms => format!("{} ms", fixed(v, 1)),
        Metric::ThroughputRps => format!("{} req/s", fixed(v, 1)),
    }
}

/// A configured level (threshold or warn level) without unit: as written in a plan, so
/// without trailing zeros, except error rates, which always show two decimals of a percent.
pub(crate) fn level(metric: Metric, v: f64) -> String {
    match metric {
        Metric::ErrorRate => fixed(v * 100.0, 2),
        _ => trimmed(v, 2),
    }
}

/// A configured level with its unit ("800 ms", "0.50%", "50 req/s").
pub(crate) fn level_unit(metric: Metric, v: f64) -> String {
    let n = level(metric, v);
    if n == DASH {
        return n;
    }
    match metric {
        Metric::ErrorRate => format!("{n}%"),
        Metric::P50Ms | Metric::P95Ms | Metric::P99Ms => format!("{n} ms"),
        Metric::ThroughputRps => format!("{n} req/s"),
    }
}

/// The relative change of `observed` over `baseline`, in percent; `None` when either is
/// missing, not finite, or the baseline is zero.
pub(crate) fn change_pct(observed: Option<f64>, baseline: Option<f64>) -> Option<f64> {
    let (o, b) = (observed?, baseline?);
    if !o.is_finite() || !b.is_finite() || b == 0.0 {
        return None;
    }
    let pct = (o - b) / b.abs() * 100.0;
    pct.is_finite().then_some(pct)
}

/// A signed percentage with one decimal ("+14.0%", "-3.2%", "+0.0%").
pub(crate) fn signed_pct(p: f64) -> String {
    if !p.is_finite() {
        return DASH.to_string();
    }
    let s = fixed(p, 1);
    if s.starts_with('-') {
        format!("{s}%")
    } else {
        format!("+{s}%")
    }
}

/// Like [`signed_pct`], with an em dash for a missing value.
pub(crate) fn opt_signed_pct(p: Option<f64>) -> String {
    p.map_or_else(|| DASH.to_string(), signed_pct)
}

/// A short span of seconds: whole seconds when it is within 0.05 s of one, else one decimal
/// ("18 s", "2.5 s").
pub(crate) fn secs(s: f64) -> String {
    if !s.is_finite() {
        return DASH.to_string();
    }
    if (s - s.round()).abs() < 0.05 {
        format!("{} s", fixed(s.round(), 0))
    } else {
        format!("{} s", fixed(s, 1))
    }
}

/// A stage-length span in the staging report's unit: "60 min", "1440 min", "90 min 23 s", "45 s".
pub(crate) fn span(s: f64) -> String {
    if !s.is_finite() {
        return DASH.to_string();
    }
    let total = s.max(0.0).round() as u64;
    let (m, sec) = (total / 60, total % 60);
    match (m, sec) {
        (0, _) => format!("{sec} s"),
        (_, 0) => format!("{m} min"),
        _ => format!("{m} min {sec} s"),
    }
}

/// A long span for sentences: "31 h", "1 h 30 min", "45 min", "30 s".
pub(crate) fn long_span(s: f64) -> String {
    if !s.is_finite() {
        return DASH.to_string();
    }
    let total = s.max(0.0).round() as u64;
    let (h, m, sec) = (total / 3600, total % 3600 / 60, total % 60);
    match (h, m, sec) {
        (0, 0, _) => format!("{sec} s"),
        (0, _, 0) => format!("{m} min"),
        (0, _, _) => format!("{m} min {sec} s"),
        (_, 0, 0) => format!("{h} h"),
        (_, _, 0) => format!("{h} h {m} min"),
        _ => format!("{h} h {m} min {sec} s"),
    }
}

/// A moment in plan time as whole seconds, truncated as clocks do (5405.5 s is 5405 s),
/// after rounding to the millisecond that plan time counts in.
fn whole_secs(t: f64) -> u64 {
    ((t.max(0.0) * 1000.0).round() as u64) / 1000
}

/// Seconds from the deployment start as "T+0", "T+15m", "T+1h05m", "T+12h15m30s".
pub(crate) fn offset(t: f64) -> String {
    if !t.is_finite() {
        return DASH.to_string();
    }
    let total = whole_secs(t);
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    match (h, m, s) {
        (0, 0, 0) => "T+0".to_string(),
        (0, 0, _) => format!("T+{s}s"),
        (0, _, 0) => format!("T+{m}m"),
        (0, _, _) => format!("T+{m}m{s:02}s"),
        (_, _, 0) => format!("T+{h}h{m:02}m"),
        _ => format!("T+{h}h{m:02}m{s:02}s"),
    }
}

/// Seconds from the deployment start in minutes, as the staging report heads its table columns
/// ("T+15min", "T+420min"), with seconds when the time is not a whole minute.
pub(crate) fn offset_minutes(t: f64) -> String {
    if !t.is_finite() {
        return DASH.to_string();
    }
    let total = whole_secs(t);
    let (m, s) = (total / 60, total % 60);
    if total == 0 {
        "T+0".to_string()
    } else if s == 0 {
        format!("T+{m}min")
    } else {
        format!("T+{m}min{s:02}s")
    }
}

/// Escapes text for a Markdown table cell.
pub(crate) fn table_text(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Upper-cases the first letter ("staging" → "Staging").
pub(crate) fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Maps plan time to wall-clock time when the summary has a start, with plain UTC
/// arithmetic: deterministic, no time zone database, no clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    /// The start in milliseconds since the Unix epoch, when it could be read.
    start_ms: Option<i64>,
}

impl Clock {
    /// A clock for a summary's `start` field; without a readable start every time is shown
    /// as an offset from the deployment start.
    pub(crate) fn new(start: Option<&str>) -> Clock {
        Clock {
            start_ms: start.and_then(parse_rfc3339_ms),
        }
    }

    /// Plan time `t` (seconds) as UTC civil time, truncated to the second as clocks do.
    fn civil(&self, t: f64) -> Option<Civil> {
        let start = self.start_ms?;
        if !t.is_finite() {
            return None;
        }
        let ms = start.checked_add((t * 1000.0).round() as i64)?;
        Some(Civil::from_unix_secs(ms.div_euclid(1000)))
    }

    /// "2025-10-06 19:05:00 UTC", when there is a start.
    pub(crate) fn datetime(&self, t: f64) -> Option<String> {
        self.civil(t).map(|c| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                c.year, c.month, c.day, c.hour, c.minute, c.second
            )
        })
    }

    /// "2025-10-06 19:05", when there is a start.
    pub(crate) fn date_minute(&self, t: f64) -> Option<String> {
        self.civil(t).map(|c| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                c.year, c.month, c.day, c.hour, c.minute
            )
        })
    }

    /// The stamp of a log line: "12:15:30" with a start, "T+12h15m30s" (always with every
    /// unit, so that the stamps line up) without.
    pub(crate) fn log_stamp(&self, t: f64) -> String {
        match self.civil(t) {
            Some(c) => format!("{:02}:{:02}:{:02}", c.hour, c.minute, c.second),
            None if t.is_finite() => {
                let total = whole_secs(t);
                format!(
                    "T+{}h{:02}m{:02}s",
                    total / 3600,
                    total % 3600 / 60,
                    total % 60
                )
            }
            None => DASH.to_string(),
        }
    }

    /// A moment for tables and sentences: "2025-10-06 19:05:00 UTC (T+1h05m)" with a start,
    /// "T+1h05m" without.
    pub(crate) fn when(&self, t: f64) -> String {
        match self.datetime(t) {
            Some(dt) => format!("{dt} ({})", offset(t)),
            None => offset(t),
        }
    }

    /// A span of plan time: "2025-10-06 18:00 – 19:00 UTC" (the date once when both ends
    /// fall on the same day), or "T+0 – T+1h00m" without a start.
    pub(crate) fn range(&self, from: f64, to: f64) -> String {
        match (self.date_minute(from), self.date_minute(to)) {
            (Some(a), Some(b)) => {
                if a.get(..10) == b.get(..10) {
                    format!("{a} – {} UTC", b.get(11..).unwrap_or(&b))
                } else {
                    format!("{a} – {b} UTC")
                }
            }
            _ => format!("{} – {}", offset(from), offset(to)),
        }
    }
}

/// A UTC civil time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl Civil {
    /// The civil time of a count of seconds since the Unix epoch.
    fn from_unix_secs(secs: i64) -> Civil {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a count of days since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Reads an RFC 3339 time ("2025-10-06T18:00:00Z", "2025-10-06T20:00:00.5+02:00") as
/// milliseconds since the Unix epoch. A missing offset is read as UTC. `None` when the text
/// is not such a time.
fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let s = text.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let year = num(0..4)?;
    let month = u32::try_from(num(5..7)?).ok()?;
    let day = u32::try_from(num(8..10)?).ok()?;
    let hour = num(11..13)?;
    let minute = num(14..16)?;
    let second = num(17..19)?;
    if s.get(4) != Some(&b'-')
        || s.get(7) != Some(&b'-')
        || !matches!(s.get(10), Some(b'T' | b't' | b' '))
        || s.get(13) != Some(&b':')
        || s.get(16) != Some(&b':')
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix(b".") {
        let len = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        for (i, b) in frac[..len].iter().take(3).enumerate() {
            millis += i64::from(b - b'0') * 10i64.pow(2 - i as u32);
        }
        rest = &frac[len..];
    }
    let offset_s = match rest {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let h = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let m = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            let v = h * 3600 + m * 60;
            if *sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    Some(secs * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_never_print_nan_or_negative_zero() {
        assert_eq!(fixed(f64::NAN, 1), DASH);
        assert_eq!(fixed(f64::INFINITY, 0), DASH);
        assert_eq!(fixed(-0.04, 1), "0.0");
        assert_eq!(signed_pct(-0.04), "+0.0%");
        assert_eq!(signed_pct(14.04), "+14.0%");
        assert_eq!(signed_pct(-3.25), "-3.2%");
        assert_eq!(trimmed(900.0, 2), "900");
        assert_eq!(trimmed(0.80, 2), "0.8");
        assert_eq!(count(14_012_345), "14,012,345");
        assert_eq!(count(999), "999");
        assert_eq!(count(0), "0");
    }

    #[test]
    fn metric_values_use_their_units() {
        assert_eq!(cell(Metric::ErrorRate, Some(0.0041)), "0.41");
        assert_eq!(cell(Metric::P99Ms, Some(821.4)), "821");
        assert_eq!(cell(Metric::P50Ms, Some(12.34)), "12.3");
        assert_eq!(cell(Metric::P50Ms, None), DASH);
        assert_eq!(value(Metric::ErrorRate, 0.0041), "0.41%");
        assert_eq!(precise(Metric::P99Ms, 821.0), "821.0 ms");
        assert_eq!(level_unit(Metric::ErrorRate, 0.008), "0.80%");
        assert_eq!(level_unit(Metric::P99Ms, 800.0), "800 ms");
        assert_eq!(
            change_pct(Some(821.0), Some(720.0)).map(signed_pct),
            Some("+14.0%".into())
        );
        assert_eq!(change_pct(Some(1.0), Some(0.0)), None);
    }

    #[test]
    fn spans_and_offsets_read_like_the_seed() {
        assert_eq!(span(3600.0), "60 min");
        assert_eq!(span(86_400.0), "1440 min");
        assert_eq!(span(5423.2), "90 min 23 s");
        assert_eq!(long_span(111_600.0), "31 h");
        assert_eq!(long_span(5400.0), "1 h 30 min");
        assert_eq!(offset(0.0), "T+0");
        assert_eq!(offset(3900.0), "T+1h05m");
        assert_eq!(offset(44_130.0), "T+12h15m30s");
        assert_eq!(offset_minutes(900.0), "T+15min");
        assert_eq!(offset_minutes(0.0), "T+0");
        assert_eq!(offset(5405.5), "T+1h30m05s");
        assert_eq!(secs(18.0), "18 s");
        assert_eq!(secs(2.5), "2.5 s");
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-1_000_000, -1, 0, 1, 19_000, 20_367, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn wall_clock_adds_plan_time_to_the_start() {
        let clock = Clock::new(Some("2025-10-06T18:00:00Z"));
        assert_eq!(
            clock.datetime(0.0).as_deref(),
            Some("2025-10-06 18:00:00 UTC")
        );
        assert_eq!(
            clock.datetime(25_200.0).as_deref(),
            Some("2025-10-07 01:00:00 UTC")
        );
        assert_eq!(clock.log_stamp(44_130.0), "06:15:30");
        assert_eq!(clock.range(0.0, 3600.0), "2025-10-06 18:00 – 19:00 UTC");
        assert_eq!(
            clock.range(10_800.0, 25_200.0),
            "2025-10-06 21:00 – 2025-10-07 01:00 UTC"
        );
        let shifted = Clock::new(Some("2025-10-06T20:00:00.250+02:00"));
        assert_eq!(
            shifted.datetime(0.0).as_deref(),
            Some("2025-10-06 18:00:00 UTC")
        );
        let leap = Clock::new(Some("2024-02-28T23:30:00Z"));
        assert_eq!(
            leap.datetime(3600.0).as_deref(),
            Some("2024-02-29 00:30:00 UTC")
        );
        let none = Clock::new(Some("yesterday"));
        assert_eq!(none.datetime(0.0), None);
        assert_eq!(none.log_stamp(44_130.0), "T+12h15m30s");
        assert_eq!(none.log_stamp(5400.0), "T+1h30m00s");
        assert_eq!(clock.log_stamp(0.999), "18:00:00");
    }
}
