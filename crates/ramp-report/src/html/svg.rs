//! Hand-written SVG charts: a plot area with labelled axes, line series with a marker at
//! every point, horizontal reference levels, vertical event markers and bars.
//!
//! A chart is built as data ([`Chart`]) and drawn by [`Chart::render`], so that tests can
//! check its geometry (how many points, which axis labels) without parsing SVG. Every
//! number is printed with a fixed number of decimals, so the same chart gives the same
//! bytes. Colours come from CSS classes (`s0`…`s3`, `fail`, `warn`, `base`, `mark`), so
//! the style sheet alone adapts the charts to a dark scheme and to print.

use super::escape;
use std::fmt::Write as _;

/// The drawing's width, in SVG user units (the chart scales to its container).
const WIDTH: f64 = 760.0;
/// The drawing's height.
const HEIGHT: f64 = 300.0;
/// Room left of the plot for the y tick labels and the y axis label.
const LEFT: f64 = 70.0;
/// Room right of the plot for the labels of reference levels.
const RIGHT: f64 = 160.0;
/// Room above the plot for the title.
const TOP: f64 = 34.0;
/// Room below the plot for the x tick labels, the x axis label and the legend.
const BOTTOM: f64 = 70.0;

/// One line of points, drawn with a marker at each point.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// Its name, in the legend.
    pub name: String,
    /// Its points, x ascending.
    pub points: Vec<(f64, f64)>,
    /// Whether the line steps (holds each value until the next x) instead of joining points
    /// straight: for a weight, which changes at once.
    pub step: bool,
}

/// A horizontal level across the whole plot: a baseline, a warn or a fail level.
#[derive(Debug, Clone)]
pub(crate) struct Level {
    /// Its label at the right of the plot ("fail 500 ms").
    pub label: String,
    /// Its value on the y axis.
    pub y: f64,
    /// Its CSS class: `fail`, `warn` or `base`.
    pub class: &'static str,
}

/// A vertical marker at one x: a stage boundary, a decision, a rollback.
#[derive(Debug, Clone)]
pub(crate) struct Marker {
    /// Its label, written along the top of the plot.
    pub label: String,
    /// Its position on the x axis.
    pub x: f64,
    /// Its CSS class: `mark` for a boundary, `fail` for a rollback, `warn` for a halt.
    pub class: &'static str,
}

/// One labelled bar of a bar chart.
#[derive(Debug, Clone)]
pub(crate) struct Bar {
    /// The category under the bar.
    pub label: String,
    /// Its height on the y axis.
    pub value: f64,
    /// Its CSS class (`s0`…`s3`, `fail`, `warn`).
    pub class: &'static str,
}

/// A chart as data: what it shows and how its axes are labelled.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chart {
    /// The title above the plot.
    pub title: String,
    /// The x axis label, with its unit ("time since the rollout started (h)").
    pub x_label: String,
    /// The y axis label, with its unit.
    pub y_label: String,
    /// The text alternative: what the chart shows in a sentence or two.
    pub alt: String,
    /// The line series.
    pub series: Vec<Series>,
    /// The horizontal levels.
    pub levels: Vec<Level>,
    /// The vertical markers.
    pub markers: Vec<Marker>,
    /// Bars, for a bar chart (then the x axis is categorical and `series` is empty).
    pub bars: Vec<Bar>,
    /// The x range, when it is not that of the data.
    pub x_range: Option<(f64, f64)>,
    /// Whether the y axis starts at zero (weights, rates, counts) rather than near the data.
    pub y_from_zero: bool,
}

/// Round tick positions covering `lo..=hi`: about five steps of 1, 2 or 5 times a power of
/// ten.
pub(crate) fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 1.0, lo + 1.0)
    };
    let raw = (hi - lo) / 5.0;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power);
    let first = (lo / step).floor() as i64;
    let last = (hi / step).ceil() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// A tick label: as few decimals as the step needs.
fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    let s = format!("{v:.decimals$}");
    if s.trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

/// Label positions near `ys` (pixels, any order) moved apart to at least `gap` from each
/// other, in the input's order, so that the labels of close levels stay legible.
fn spread(ys: Vec<f64>, gap: f64) -> Vec<f64> {
    let mut order: Vec<usize> = (0..ys.len()).collect();
    order.sort_by(|a, b| ys[*a].total_cmp(&ys[*b]));
    let mut out = ys.clone();
    let mut last = f64::NEG_INFINITY;
    for i in order {
        out[i] = ys[i].max(last + gap);
        last = out[i];
    }
    out
}

/// A coordinate with two decimals: enough for the screen, and deterministic.
fn c(v: f64) -> String {
    format!("{v:.2}")
}

impl Chart {
    /// How many points (markers) the chart draws: every series' points, or every bar.
    #[cfg(test)]
    pub(crate) fn point_count(&self) -> usize {
        self.series.iter().map(|s| s.points.len()).sum::<usize>() + self.bars.len()
    }

    /// The x range: the given one, or that of the data and markers.
    fn x_extent(&self) -> (f64, f64) {
        if let Some(r) = self.x_range {
            return r;
        }
        let xs = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .chain(self.markers.iter().map(|m| m.x));
        let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(x), hi.max(x))
        });
        if lo.is_finite() {
            (lo, hi)
        } else {
            (0.0, 1.0)
        }
    }

    /// The y ticks: covering the data, the levels and the bars.
    pub(crate) fn y_ticks(&self) -> Vec<f64> {
        let ys = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .chain(self.levels.iter().map(|l| l.y))
            .chain(self.bars.iter().map(|b| b.value))
            .filter(|y| y.is_finite());
        let (mut lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
            (lo.min(y), hi.max(y))
        });
        if !lo.is_finite() {
            return ticks(0.0, 1.0);
        }
        if self.y_from_zero {
            lo = lo.min(0.0);
        }
        ticks(lo, hi)
    }

    /// The x ticks of a time axis (none for a bar chart).
    pub(crate) fn x_ticks(&self) -> Vec<f64> {
        if !self.bars.is_empty() {
            return Vec::new();
        }
        let (lo, hi) = self.x_extent();
        ticks(lo, hi)
            .into_iter()
            .filter(|t| *t >= lo - 1e-9 && *t <= hi + 1e-9)
            .collect()
    }

    /// Draws the chart as an inline `<figure>` with the SVG and its caption (the text
    /// alternative, which the SVG's `aria-labelledby` also points at).
    pub(crate) fn render(&self, id: &str) -> String {
        let mut o = String::new();
        let (px0, px1) = (LEFT, WIDTH - RIGHT);
        let (py0, py1) = (TOP, HEIGHT - BOTTOM);
        let yt = self.y_ticks();
        let (y_lo, y_hi) = (yt[0], yt[yt.len() - 1]);
        let (x_lo, x_hi) = self.x_extent();
        let x_span = if x_hi > x_lo { x_hi - x_lo } else { 1.0 };
        let sx = |x: f64| px0 + (x - x_lo) / x_span * (px1 - px0);
        let sy = |y: f64| py1 - (y - y_lo) / (y_hi - y_lo) * (py1 - py0);
        let _ = write!(
            o,
            "<figure class=\"chart\" id=\"{id}\"><svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
             aria-labelledby=\"{id}-t {id}-d\" xmlns=\"http://www.w3.org/2000/svg\">\
             <title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc>",
            escape(&self.title),
            escape(&self.alt)
        );
        let _ = write!(
            o,
            "<text class=\"title\" x=\"{}\" y=\"20\">{}</text>",
            c(px0),
            escape(&self.title)
        );
        // Grid and y ticks.
        let y_step = if yt.len() > 1 { yt[1] - yt[0] } else { 1.0 };
        for t in &yt {
            let y = c(sy(*t));
            let _ = write!(
                o,
                "<line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\"/>\
                 <text class=\"tick\" x=\"{}\" y=\"{y}\" text-anchor=\"end\" dy=\"4\">{}</text>",
                c(px0),
                c(px1),
                c(px0 - 6.0),
                tick_label(*t, y_step)
            );
        }
        let xt = self.x_ticks();
        let x_step = if xt.len() > 1 { xt[1] - xt[0] } else { 1.0 };
        for t in &xt {
            let x = c(sx(*t));
            let _ = write!(
                o,
                "<text class=\"tick\" x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                c(py1 + 16.0),
                tick_label(*t, x_step)
            );
        }
        let _ = write!(
            o,
            "<line class=\"axis\" x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\"/>\
             <line class=\"axis\" x1=\"{0}\" x2=\"{3}\" y1=\"{2}\" y2=\"{2}\"/>",
            c(px0),
            c(py0),
            c(py1),
            c(px1)
        );
        let _ = write!(
            o,
            "<text class=\"label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\
             <text class=\"label\" transform=\"translate(16 {}) rotate(-90)\" \
             text-anchor=\"middle\">{}</text>",
            c((px0 + px1) / 2.0),
            c(py1 + 34.0),
            escape(&self.x_label),
            c((py0 + py1) / 2.0),
            escape(&self.y_label)
        );
        let label_ys = spread(self.levels.iter().map(|l| sy(l.y)).collect(), 11.0);
        for (l, ly) in self.levels.iter().zip(label_ys) {
            let y = c(sy(l.y));
            let _ = write!(
                o,
                "<line class=\"level {}\" x1=\"{}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\"/>\
                 <text class=\"level-label {}\" x=\"{}\" y=\"{}\" dy=\"4\">{}</text>",
                l.class,
                c(px0),
                c(px1),
                l.class,
                c(px1 + 4.0),
                c(ly),
                escape(&l.label)
            );
        }
        for (i, m) in self.markers.iter().enumerate() {
            let x = c(sx(m.x));
            // Stagger the labels' heights so that neighbouring markers do not overlap.
            let ly = py0 + 10.0 + (i % 4) as f64 * 12.0;
            let _ = write!(
                o,
                "<line class=\"marker {}\" x1=\"{x}\" x2=\"{x}\" y1=\"{}\" y2=\"{}\"/>\
                 <text class=\"marker-label {}\" x=\"{x}\" y=\"{}\" dx=\"3\">{}</text>",
                m.class,
                c(py0),
                c(py1),
                m.class,
                c(ly),
                escape(&m.label)
            );
        }
        self.render_bars(&mut o, px0, px1, &sy);
        for (i, s) in self.series.iter().enumerate() {
            let mut d = String::new();
            let mut prev: Option<(f64, f64)> = None;
            for &(x, y) in &s.points {
                match prev {
                    None => {
                        let _ = write!(d, "M{} {}", c(sx(x)), c(sy(y)));
                    }
                    Some((_, py)) if s.step => {
                        let _ =
                            write!(d, " L{} {} L{} {}", c(sx(x)), c(sy(py)), c(sx(x)), c(sy(y)));
                    }
                    Some(_) => {
                        let _ = write!(d, " L{} {}", c(sx(x)), c(sy(y)));
                    }
                }
                prev = Some((x, y));
            }
            let _ = write!(o, "<path class=\"line s{}\" d=\"{d}\"/>", i % 4);
            for &(x, y) in &s.points {
                let _ = write!(
                    o,
                    "<circle class=\"point s{}\" cx=\"{}\" cy=\"{}\" r=\"3\"/>",
                    i % 4,
                    c(sx(x)),
                    c(sy(y))
                );
            }
            let lx = px0 + i as f64 * 150.0;
            let ly = HEIGHT - 12.0;
            let _ = write!(
                o,
                "<rect class=\"swatch s{}\" x=\"{}\" y=\"{}\" width=\"12\" height=\"4\"/>\
                 <text class=\"legend\" x=\"{}\" y=\"{}\">{}</text>",
                i % 4,
                c(lx),
                c(ly - 4.0),
                c(lx + 16.0),
                c(ly),
                escape(&s.name)
            );
        }
        let _ = write!(
            o,
            "</svg><figcaption>{}</figcaption></figure>",
            escape(&self.alt)
        );
        o
    }

    /// Draws the bars, spread evenly over the plot's width, each labelled under the axis.
    fn render_bars(&self, o: &mut String, px0: f64, px1: f64, sy: &dyn Fn(f64) -> f64) {
        if self.bars.is_empty() {
            return;
        }
        let slot = (px1 - px0) / self.bars.len() as f64;
        for (i, b) in self.bars.iter().enumerate() {
            let x = px0 + slot * i as f64 + slot * 0.15;
            let (top, bottom) = (sy(b.value), sy(0.0));
            let _ = write!(
                o,
                "<rect class=\"bar {}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\">\
                 <title>{}: {}</title></rect>\
                 <text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                b.class,
                c(x),
                c(top.min(bottom)),
                c(slot * 0.7),
                c((bottom - top).abs()),
                escape(&b.label),
                super::num(b.value),
                c(x + slot * 0.35),
                c(bottom + 16.0),
                escape(&b.label)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 100.0), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let t = ticks(145.0, 1000.0);
        assert!(t[0] <= 145.0 && *t.last().unwrap() >= 1000.0, "{t:?}");
        assert_eq!(t[1] - t[0], 200.0);
        // A flat range still has ticks around its one value.
        assert!(ticks(5.0, 5.0).len() >= 2);
    }

    #[test]
    fn close_level_labels_are_moved_apart() {
        assert_eq!(
            spread(vec![100.0, 95.0, 200.0], 11.0),
            vec![106.0, 95.0, 200.0]
        );
    }

    #[test]
    fn a_chart_draws_one_marker_per_point_with_its_axis_labels() {
        let chart = Chart {
            title: "Canary P95".into(),
            x_label: "time (min)".into(),
            y_label: "latency (ms)".into(),
            alt: "Three checkpoints.".into(),
            series: vec![Series {
                name: "p95".into(),
                points: vec![(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)],
                step: false,
            }],
            ..Chart::default()
        };
        let svg = chart.render("c1");
        assert_eq!(chart.point_count(), 3);
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains(">time (min)</text>"), "{svg}");
        assert!(svg.contains(">latency (ms)</text>"), "{svg}");
        assert!(svg.contains("<desc id=\"c1-d\">Three checkpoints.</desc>"));
        // Same chart, same bytes.
        assert_eq!(svg, chart.render("c1"));
    }
}
