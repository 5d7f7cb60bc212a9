//! The Prometheus text exposition format (version 0.0.4), written by hand for the OFREP
//! server's and the live controller's `/metrics`, with the counters and the histogram they
//! render.
//!
//! Why not the `prometheus-client` crate: it encodes only OpenMetrics, whose counter families
//! (`# TYPE x counter` over samples `x_total`) the linter of `promtool check metrics` (the
//! Prometheus 2.42 that Ramp is tested with) reads as untyped families without help text,
//! and fails. The text format is a handful of rules (escaping, `HELP` and `TYPE` once per
//! family, a histogram's cumulative buckets), all of them here. It lives in this crate, the
//! lowest one the OFREP server and the live driver share, and is pure: callers pass values.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The `Content-Type` of a text exposition, which Prometheus negotiates on every scrape.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a family is, as its `# TYPE` line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (resets when the process restarts); its name ends in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Cumulative buckets, a sum and a count.
    Histogram,
}

impl Kind {
    /// The word of the `# TYPE` line.
    fn word(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A page of metrics being written: families one after the other, each with its `HELP` and
/// `TYPE` lines once, then its samples.
#[derive(Debug, Default)]
pub struct Exposition {
    /// The text so far.
    out: String,
}

impl Exposition {
    /// An empty page.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the family `name`; every sample until the next family belongs to it.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        write_header(&mut self.out, name, kind, help);
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        write_labels(&mut self.out, labels, None);
        self.out.push(' ');
        write_value(&mut self.out, value);
        self.out.push('\n');
    }

    /// A whole family of one sample: the common case of a gauge or counter without labels.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// The samples of one histogram of the current family (`name` without its `_bucket`,
    /// `_sum` and `_count` suffixes).
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        let mut cumulative = 0;
        let bucket = format!("{name}_bucket");
        for (le, n) in h.bounds.iter().zip(&h.counts) {
            cumulative += n;
            let le = format_value(*le);
            self.out.push_str(&bucket);
            write_labels(&mut self.out, labels, Some(&le));
            let _ = writeln!(self.out, " {cumulative}");
        }
        self.out.push_str(&bucket);
        write_labels(&mut self.out, labels, Some("+Inf"));
        let _ = writeln!(self.out, " {}", h.count);
        self.sample(&format!("{name}_sum"), labels, h.sum);
        self.sample(&format!("{name}_count"), labels, h.count as f64);
    }

    /// The finished page.
    pub fn finish(self) -> String {
        self.out
    }
}

/// Writes a family's `# HELP` and `# TYPE` lines, which every family needs once before its
/// samples (`promtool check metrics` refuses a family without help); for writers that build
/// their page themselves (the proxy's and the demo upstream's histograms).
pub fn write_header(out: &mut String, name: &str, kind: Kind, help: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {}", kind.word());
}

/// A label value escaped for the text format: backslash, double quote and line feed.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    push_escaped(&mut out, value);
    out
}

/// Appends `value` escaped for the text format.
fn push_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Writes `{a="x",b="y"}` (nothing without labels), with `le` last when given.
fn write_labels(out: &mut String, labels: &[(&str, &str)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in labels.iter().copied().chain(le.map(|v| ("le", v))) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        push_escaped(out, v);
        out.push('"');
    }
    out.push('}');
}

/// A sample value as the format spells it (`NaN`, `+Inf`, `-Inf`, else Rust's shortest
/// round-trip decimal).
fn format_value(v: f64) -> String {
    let mut s = String::new();
    write_value(&mut s, v);
    s
}

/// Appends a sample value.
fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

/// A counter shared between the code that counts and the handler that renders it.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The count now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A histogram of durations with fixed bucket bounds in seconds, recorded without a lock.
#[derive(Debug)]
pub struct Histogram {
    /// The upper bounds (seconds), increasing; `+Inf` is implied.
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative), one more than `bounds` for `+Inf`.
    counts: Box<[AtomicU64]>,
    /// The sum of the observations, nanoseconds.
    sum_ns: AtomicU64,
}

/// Bucket bounds for the duration of a request or a read on loopback or a LAN: 0.5 ms to
/// 10 s.
pub const DURATION_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Histogram {
    /// An empty histogram over `bounds` (seconds, increasing).
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Records one duration.
    pub fn observe(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        let i = self.bounds.partition_point(|&b| b < secs);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// The counts now, for rendering.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        HistogramSnapshot {
            bounds: self.bounds,
            count: counts.iter().sum(),
            counts: counts[..self.bounds.len()].to_vec(),
            sum: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// A histogram's counts at one moment.
#[derive(Debug, Clone)]
pub struct HistogramSnapshot {
    /// The bucket bounds.
    bounds: &'static [f64],
    /// Observations per finite bucket (not cumulative).
    counts: Vec<u64>,
    /// All observations, the `+Inf` bucket included.
    pub count: u64,
    /// Their sum, seconds.
    pub sum: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_histogram_renders_cumulative_buckets_and_escapes_labels() {
        let h = Histogram::new(&[0.01, 0.1]);
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_secs(3));
        let mut e = Exposition::new();
        e.family("x_seconds", Kind::Histogram, "A line\nand a \\.");
        e.histogram("x_seconds", &[("k", "a\"b")], &h.snapshot());
        let text = e.finish();
        assert!(
            text.contains("# HELP x_seconds A line\\nand a \\\\.\n"),
            "{text}"
        );
        assert!(
            text.contains("x_seconds_bucket{k=\"a\\\"b\",le=\"0.01\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("x_seconds_bucket{k=\"a\\\"b\",le=\"0.1\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("x_seconds_bucket{k=\"a\\\"b\",le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("x_seconds_sum{k=\"a\\\"b\"} 3.055\n"),
            "{text}"
        );
        assert!(text.contains("x_seconds_count{k=\"a\\\"b\"} 3\n"), "{text}");
    }
}
