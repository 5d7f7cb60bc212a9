//! The Markdown report's text as HTML: the subset of Markdown that `markdown.rs` writes
//! (headings, paragraphs, bold and code spans, lists, tables, fenced blocks, rules), so that
//! the HTML report says word for word what the Markdown report says.
//!
//! A general Markdown parser would be a dependency for a grammar this crate itself writes;
//! this converter knows exactly that grammar, and a test checks that every line of a real
//! report lands in the HTML.

use super::escape;
use std::fmt::Write as _;

/// Converts the report's Markdown to HTML. `after_heading` is called with each heading's
/// level and text and returns HTML to insert right after it (the charts of that section).
pub(crate) fn to_html(md: &str, after_heading: &mut dyn FnMut(usize, &str) -> String) -> String {
    let mut out = String::new();
    let lines: Vec<&str> = md.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim().is_empty() {
            i += 1;
        } else if let Some((level, text)) = heading(line) {
            let _ = writeln!(out, "<h{level}>{}</h{level}>", inline(text));
            out.push_str(&after_heading(level, text));
            i += 1;
        } else if line.starts_with("```") {
            out.push_str("<pre>");
            i += 1;
            while i < lines.len() && !lines[i].starts_with("```") {
                out.push_str(&escape(lines[i]));
                out.push('\n');
                i += 1;
            }
            out.push_str("</pre>\n");
            i += 1;
        } else if line.trim() == "---" {
            out.push_str("<hr>\n");
            i += 1;
        } else if line.starts_with('|') {
            let start = i;
            while i < lines.len() && lines[i].starts_with('|') {
                i += 1;
            }
            table(&lines[start..i], &mut out);
        } else if list_item(line).is_some() {
            let ordered = list_item(line).is_some_and(|(o, _)| o);
            let tag = if ordered { "ol" } else { "ul" };
            let _ = writeln!(out, "<{tag}>");
            while let Some((_, text)) = lines.get(i).and_then(|l| list_item(l)) {
                let _ = writeln!(out, "<li>{}</li>", inline(text));
                i += 1;
            }
            let _ = writeln!(out, "</{tag}>");
        } else {
            // A paragraph: consecutive plain lines, each kept on its own line as the
            // Markdown report's reader sees them ("**Deployment ID:** …").
            let mut parts = Vec::new();
            while i < lines.len() && is_plain(lines[i]) {
                parts.push(inline(lines[i]));
                i += 1;
            }
            let _ = writeln!(out, "<p>{}</p>", parts.join("<br>\n"));
        }
    }
    out
}

/// A line that continues a paragraph: not blank and not the start of another block.
fn is_plain(line: &str) -> bool {
    !line.trim().is_empty()
        && heading(line).is_none()
        && !line.starts_with("```")
        && !line.starts_with('|')
        && line.trim() != "---"
        && list_item(line).is_none()
}

/// A heading's level and text.
fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.chars().take_while(|c| *c == '#').count();
    (1..=6)
        .contains(&level)
        .then(|| line[level..].strip_prefix(' '))
        .flatten()
        .map(|text| (level, text))
}

/// A list item: whether it is numbered, and its text.
fn list_item(line: &str) -> Option<(bool, &str)> {
    if let Some(text) = line.strip_prefix("- ") {
        return Some((false, text));
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    (digits > 0)
        .then(|| line[digits..].strip_prefix(". "))
        .flatten()
        .map(|text| (true, text))
}

/// A pipe table: the first row is the header, the second the alignment row.
fn table(rows: &[&str], out: &mut String) {
    let cells = |row: &str| -> Vec<String> {
        row.trim()
            .trim_start_matches('|')
            .trim_end_matches('|')
            .split('|')
            .map(|c| inline(c.trim()))
            .collect()
    };
    out.push_str("<div class=\"table\"><table>\n");
    if let Some(head) = rows.first() {
        out.push_str("<thead><tr>");
        for c in cells(head) {
            let _ = write!(out, "<th>{c}</th>");
        }
        out.push_str("</tr></thead>\n");
    }
    out.push_str("<tbody>\n");
    for row in rows.iter().skip(2) {
        out.push_str("<tr>");
        for c in cells(row) {
            let _ = write!(out, "<td>{c}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
}

/// Inline markup: `code` spans and **bold**, everything else escaped.
pub(crate) fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut bold = false;
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('`') {
            if let Some(end) = after.find('`') {
                let _ = write!(out, "<code>{}</code>", escape(&after[..end]));
                rest = &after[end + 1..];
                continue;
            }
        }
        if let Some(after) = rest.strip_prefix("**") {
            out.push_str(if bold { "</strong>" } else { "<strong>" });
            bold = !bold;
            rest = after;
            continue;
        }
        // The next place markup may start, after at least one character (which may be
        // several bytes: the report writes emoji).
        let next = rest
            .char_indices()
            .skip(1)
            .find(|(_, c)| *c == '`' || *c == '*')
            .map_or(rest.len(), |(n, _)| n);
        out.push_str(&escape(&rest[..next]));
        rest = &rest[next..];
    }
    if bold {
        out.push_str("</strong>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_grammar_becomes_html() {
        let md = "# Title\n\n**Status:** ok\n**Mode:** sim\n\n| A | B |\n|---|---|\n| 1 | `x<y` |\n\n- one\n- two\n\n1. first\n\n```text\n[00:00] a < b\n```\n\n---\n";
        let html = to_html(md, &mut |level, text| format!("<!-- {level} {text} -->"));
        assert!(html.contains("<h1>Title</h1>\n<!-- 1 Title -->"), "{html}");
        assert!(html.contains("<p><strong>Status:</strong> ok<br>\n<strong>Mode:</strong> sim</p>"));
        assert!(html.contains("<th>A</th><th>B</th>"));
        assert!(html.contains("<td>1</td><td><code>x&lt;y</code></td>"));
        assert!(html.contains("<ul>\n<li>one</li>\n<li>two</li>\n</ul>"));
        assert!(html.contains("<ol>\n<li>first</li>\n</ol>"));
        assert!(html.contains("<pre>[00:00] a &lt; b\n</pre>"));
        assert!(html.contains("<hr>"));
    }

    #[test]
    fn a_lone_star_stays_text() {
        assert_eq!(inline("a * b"), "a * b");
        assert_eq!(inline("**x** and y"), "<strong>x</strong> and y");
        assert_eq!(inline("✅ **ok**"), "✅ <strong>ok</strong>");
    }
}
