//! Locating problems in TOML files: one rule for every file Ramp reads.
//!
//! Ramp reads three kinds of TOML file (plans in `ramp-core`, flags files here, proxy
//! configurations in `ramp-proxy`), and each reports its problems as `file:line:column`, so
//! that an editor or a CI log can jump to them. This module holds what they share: turning
//! a byte offset of the text into a line and a column ([`line_col`]), the located error and
//! its one-line `file:line:column: error: message` form ([`LocatedError`]), and the
//! rewording of the toml crate's messages ([`one_line`], [`tidy_toml_message`]).
//!
//! It is pure (no I/O) and builds without the `server` feature, because `ramp-core` embeds
//! flags with `default-features = false` and uses it too.

use std::str::Utf8Error;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One located problem in a TOML file.
///
/// It exists so that every loader that says `error:` says it the same way: plans
/// (`ramp_core::load::PlanError`) and flags files (`FlagFileError`) are this type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: error: {message}")]
pub struct LocatedError {
    /// The file, as the caller named it, so that the message points where the user looks.
    pub file: String,
    /// 1-based line of the offending value (or of the table that lacks a key).
    pub line: usize,
    /// 1-based column, counted in characters, of the offending value.
    pub column: usize,
    /// What is wrong and what was expected, in one line: the constructors escape control
    /// characters (a quoted TOML key may hold a line break), as `\n`, `\r`, `\t` or `\u{..}`.
    pub message: String,
}

impl LocatedError {
    /// Builds an error at a byte offset of `source` (see [`line_col`] for the convention).
    pub fn at(source: &str, file: &str, offset: usize, message: String) -> LocatedError {
        let (line, column) = line_col(source, offset);
        LocatedError {
            file: file.to_string(),
            line,
            column,
            message: escape_controls(message),
        }
    }

    /// Builds an error about the file as a whole (it cannot be read), at 1:1.
    pub fn at_start(file: &str, message: String) -> LocatedError {
        LocatedError {
            file: file.to_string(),
            line: 1,
            column: 1,
            message: escape_controls(message),
        }
    }

    /// Builds an error at the first byte of `bytes` that is not UTF-8, as `error` found it.
    pub fn at_invalid_utf8(
        bytes: &[u8],
        error: &Utf8Error,
        file: &str,
        message: String,
    ) -> LocatedError {
        let valid = &bytes[..error.valid_up_to().min(bytes.len())];
        // The prefix is valid UTF-8 by construction; fall back to 1:1 rather than panic.
        let prefix = std::str::from_utf8(valid).unwrap_or("");
        LocatedError::at(prefix, file, prefix.len(), message)
    }
}

/// Escapes the control characters of a message (as Rust's `{:?}` does), so that a name the
/// author wrote with an escape, such as the quoted key `"a\nb"`, neither breaks the message's
/// line nor reaches the terminal raw; the message is otherwise unchanged.
fn escape_controls(message: String) -> String {
    if !message.contains(char::is_control) {
        return message;
    }
    message
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Converts a byte offset of `source` into a 1-based line and a 1-based column counted in
/// characters (a tab or a multi-byte character is one column), which is what editors jump to.
///
/// An offset past the end is clamped to the end, and an offset inside a multi-byte
/// character moves past that character: whatever the offset, no panic.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut column = 1;
    for (i, c) in source.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

/// Finds the first number of a parsed TOML document that does not fit in 64 bits, and says
/// so: its byte offset and the message.
///
/// TOML integers are 64-bit ("if an integer cannot be represented losslessly, an error must
/// be thrown") and its floats IEEE 754 binary64, but the toml crate's parser accepts longer
/// integers and floats beyond binary64's range, and only its deserializer refuses them, one
/// at a time and in serde's words, which would stop a loader at the first. A document with
/// one is not TOML, so every loader checks the parsed tree first and reports it as it reports
/// a syntax error: alone, located at the number. (`inf` and `nan` are TOML floats; the
/// loaders' own checks say where they make no sense.)
pub fn number_beyond_64_bits(root: &DeTable<'_>) -> Option<(usize, String)> {
    let mut first: Option<(usize, String)> = None;
    for (_, value) in root.iter() {
        find_wide_number(value, &mut first);
    }
    first
}

/// The walk of [`number_beyond_64_bits`] through one value, keeping the earliest find.
fn find_wide_number(value: &Spanned<DeValue<'_>>, first: &mut Option<(usize, String)>) {
    let problem = match value.get_ref() {
        DeValue::Integer(i) if i64::from_str_radix(i.as_str(), i.radix()).is_err() => {
            Some(format!(
                "the integer {i} does not fit in 64 bits; TOML integers go from {} to {}",
                i64::MIN,
                i64::MAX
            ))
        }
        DeValue::Float(x)
            if x.as_str().parse::<f64>().map_or(true, |v| v.is_infinite())
                && !x.as_str().contains("inf") =>
        {
            Some(format!(
                "the number {} does not fit in a 64-bit float; the largest is about 1.8e308",
                x.as_str()
            ))
        }
        DeValue::Array(items) => {
            for item in items.iter() {
                find_wide_number(item, first);
            }
            None
        }
        DeValue::Table(table) => {
            for (_, item) in table.iter() {
                find_wide_number(item, first);
            }
            None
        }
        _ => None,
    };
    if let Some(message) = problem {
        let at = value.span().start;
        if first.as_ref().is_none_or(|(found, _)| at < *found) {
            *first = Some((at, message));
        }
    }
}

/// Writes one problem a line, without a newline after the last: the `Display` of every
/// "all the problems of one file" type (flags files, proxy configurations), so that they
/// print alike.
pub fn write_lines<T: std::fmt::Display>(
    f: &mut std::fmt::Formatter<'_>,
    problems: &[T],
) -> std::fmt::Result {
    for (i, problem) in problems.iter().enumerate() {
        if i > 0 {
            writeln!(f)?;
        }
        write!(f, "{problem}")?;
    }
    Ok(())
}

/// The toml crate's message on one line: trimmed, with any line break turned into "; ", so
/// that one problem is one line of output.
pub fn one_line(message: &str) -> String {
    message.trim().replace('\n', "; ")
}

/// The toml crate's message for an author who writes keys: [`one_line`], and "key" rather
/// than serde's "field".
///
/// Plans and flags files report unknown keys themselves, in their own words, before serde
/// sees them, so this rewording only matters for a fallback; the proxy configuration keeps
/// serde's wording (it has always said "unknown field") and uses [`one_line`] alone.
pub fn tidy_toml_message(message: &str) -> String {
    let one_line = one_line(message);
    match one_line.strip_prefix("unknown field") {
        Some(rest) => format!("unknown key{rest}"),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_and_clamps() {
        let s = "ab\ncdé\nf";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 2), (1, 3));
        assert_eq!(line_col(s, 3), (2, 1));
        // 'é' is two bytes; the column after it counts it once.
        assert_eq!(line_col(s, 7), (2, 4));
        // Inside the multi-byte character (moves past it) and past the end: no panic.
        assert_eq!(line_col(s, 6), (2, 4));
        assert_eq!(line_col(s, 1000), (3, 2));
        assert_eq!(line_col("", 5), (1, 1));
    }

    #[test]
    fn a_located_error_reads_file_line_column_error_message() {
        let e = LocatedError::at("a = 1\nb = 2\n", "f.toml", 10, "bad".into());
        assert_eq!(e.to_string(), "f.toml:2:5: error: bad");
        assert_eq!(
            LocatedError::at_start("f.toml", "gone".into()).to_string(),
            "f.toml:1:1: error: gone"
        );
    }

    #[test]
    fn invalid_utf8_is_located_at_the_first_bad_byte() {
        let bytes = b"a = 1\nb = \"\xff\"\n".to_vec();
        let err = std::str::from_utf8(&bytes).unwrap_err();
        let e = LocatedError::at_invalid_utf8(&bytes, &err, "f.toml", "not UTF-8".into());
        assert_eq!((e.line, e.column), (2, 6));
    }

    #[test]
    fn a_key_with_a_line_break_is_reported_on_one_line() {
        // Found by the `flags_file` fuzzer (fuzz/corpus/flags_file/regression-cr-in-key.toml):
        // a quoted key may hold any character, and its `\r` reached the message verbatim,
        // which then printed over two lines (or, with `\r`, over itself).
        let source = "[flags.\"\\r\"]\n0={0={0={0=\"\"}}}\nd=\"\"\no=\"\"";
        let errors = crate::flags::parse_flags_file(source, "f.toml").unwrap_err();
        for e in &errors.0 {
            assert!(!e.message.contains(['\r', '\n']), "{e:?}");
        }
        assert_eq!(
            errors.0[0].to_string(),
            "f.toml:1:1: error: flags.\\r: missing required key `variants` (e.g. variants = { on = true, off = false })"
        );
        let e = LocatedError::at("", "f.toml", 0, "key `a\nb`\tc\u{1b}[2J".into());
        assert_eq!(e.message, "key `a\\nb`\\tc\\u{1b}[2J");
        let e = LocatedError::at_start("f.toml", "line\r\nbreak".into());
        assert_eq!(e.message, "line\\r\\nbreak");
    }

    #[test]
    fn toml_messages_are_one_line_and_say_key() {
        assert_eq!(one_line(" a\nb \n"), "a; b");
        assert_eq!(
            tidy_toml_message("unknown field `x`, expected `y`\n"),
            "unknown key `x`, expected `y`"
        );
        assert_eq!(one_line("unknown field `x`"), "unknown field `x`");
    }
}
