//! The HTML report: the Markdown report's text, word for word, with charts beside the
//! sections they illustrate, in one self-contained file (inline CSS and SVG, no script, no
//! external resource) that prints.
//!
//! Like the Markdown report it is a pure function of the summary: the same summary gives the
//! same bytes (no generation time, no random ids).

mod charts;
mod markup;
mod study;
mod style;
pub(crate) mod svg;

pub(crate) use study::monte_carlo;

use charts::Panel;
use ramp_core::summary::Summary;

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(ch),
        }
    }
    out
}

/// A number for a tooltip: at most two decimals.
pub(crate) fn num(v: f64) -> String {
    crate::format::trimmed(v, 2)
}

/// Wraps a body in the page: its title and the inline style sheet.
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title),
        style::CSS
    )
}

/// Renders the whole report.
pub(crate) fn render(s: &Summary) -> String {
    let md = crate::markdown::render(s);
    let title = md
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# "))
        .unwrap_or("Rollout report")
        .to_string();
    let mut section = String::new();
    let mut ids = 0usize;
    let mut next_id = || {
        ids += 1;
        format!("chart{ids}")
    };
    let body = markup::to_html(&md, &mut |level, text| {
        if level == 2 {
            section = text.to_string();
        }
        charts_after(s, level, text, &section, &mut next_id)
    });
    page(&title, &body)
}

/// The charts that belong right after a heading: the weight after the timeline's heading,
/// each stage's panels after its metrics heading, the rollback and each rehearsal after
/// theirs, the flags' users after the flags heading.
fn charts_after(
    s: &Summary,
    level: usize,
    text: &str,
    section: &str,
    next_id: &mut dyn FnMut() -> String,
) -> String {
    let mut out = String::new();
    if level == 2 && text == "Timeline" && !s.stages.is_empty() {
        out.push_str(&charts::weight(s).render(&next_id()));
    } else if level == 4 && text.starts_with("Metrics — Stage ") {
        let index = number_after(text, "Metrics — Stage ");
        if let Some(stage) = s.stages.iter().find(|st| Some(st.index) == index) {
            let gates = s
                .plan
                .iter()
                .find(|p| p.index == stage.index)
                .map_or(&[][..], |p| &p.gates[..]);
            if stage.checkpoints.is_empty() {
                out.push_str(
                    "<p class=\"note\">No checkpoint was recorded in this stage, so there is \
                     nothing to chart; the tables below have its numbers.</p>\n",
                );
            } else {
                for panel in Panel::ALL {
                    out.push_str(&charts::stage_panel(s, stage, gates, panel).render(&next_id()));
                }
            }
        }
    } else if level == 2 && text == "Automatic rollback" {
        if let Some(rb) = &s.rollback {
            out.push_str(&charts::rollback(s, rb).render(&next_id()));
        }
    } else if level == 3 && section == "Rollback scenarios tested" {
        if let Some(n) = number_after(text, "Scenario ") {
            if let Some(r) = s.rehearsals.get(n.wrapping_sub(1)) {
                out.push_str(&charts::rehearsal(s, n, r).render(&next_id()));
            }
        }
    } else if level == 2 && text == "Feature flags" {
        let mut keys: Vec<&str> = s.flags.iter().map(|f| f.key.as_str()).collect();
        keys.dedup();
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            let rows: Vec<_> = s.flags.iter().filter(|f| f.key == key).collect();
            out.push_str(&charts::flag_users(key, &rows).render(&next_id()));
        }
    }
    out
}

/// The number that follows `prefix` in `text` ("Scenario 2: …" → 2).
fn number_after(text: &str, prefix: &str) -> Option<usize> {
    let rest = text.strip_prefix(prefix)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}
