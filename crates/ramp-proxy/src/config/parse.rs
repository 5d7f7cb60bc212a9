//! Stage one: the text parsed into the raw [`FileConfig`], with every unknown key and every
//! value of the wrong type reported, not only the first, and an index of where each value
//! was written, so that stage two can locate its errors too.
//!
//! The text is parsed into a spanned TOML tree (`toml::de::DeTable`); a syntax error stops
//! here, reported alone and located, since nothing after it can be trusted. The tree is then
//! deserialized into `FileConfig`; when serde refuses an entry (an unknown key, or a value of
//! the wrong type), the refusal is recorded with serde's own message, the entry that holds
//! the error's position is set aside, and the rest is deserialized again, until it goes
//! through. Each round sets one entry aside, so this ends. A configuration is a few dozen
//! keys, so the rounds cost nothing that matters.

use super::error::{ConfigError, ConfigErrors};
use super::raw::FileConfig;
use ramp_flags::located::{line_col, one_line};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;
use toml::de::{DeTable, DeValue};

/// A configuration read and parsed (stage one), not yet validated: the raw values, where
/// each was written, and the problems stage one found.
///
/// It exists so that the command-line options can be laid over a file's values (`overlay`)
/// between the two stages, and so that stage two reports its problems together with stage
/// one's, located in the file wherever a value came from it.
#[derive(Debug)]
pub(crate) struct ConfigFile {
    /// The values, without those stage one set aside.
    pub(super) raw: FileConfig,
    /// The file as the user named it, or "command line", to label errors.
    pub(super) origin: String,
    /// Where each value was written in the file, and which keys were set aside.
    pub(super) places: Places,
    /// Stage one's problems: unknown keys and values of the wrong type.
    pub(super) problems: Vec<ConfigError>,
}

impl ConfigFile {
    /// Values that no file holds (built in code, or given only by options); `origin` labels
    /// their errors.
    pub(crate) fn from_raw(raw: FileConfig, origin: &str) -> ConfigFile {
        ConfigFile {
            raw,
            origin: origin.to_string(),
            places: Places::default(),
            problems: Vec::new(),
        }
    }

    /// Reads and parses a file; fails only when it cannot be read or is not TOML.
    pub(crate) fn read(path: &Path) -> Result<ConfigFile, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        ConfigFile::parse(path, &text)
    }

    /// Parses TOML text (stage one); fails only on a syntax error. Unknown keys and values
    /// of the wrong type are kept in `problems`, so that stage two still runs on the rest.
    pub(crate) fn parse(path: &Path, text: &str) -> Result<ConfigFile, ConfigErrors> {
        let parse_error = |span: Option<Range<usize>>, message: &str| {
            let (line, column) = span.map_or((0, 0), |s| line_col(text, s.start));
            ConfigError::Parse {
                path: path.to_path_buf(),
                line,
                column,
                message: one_line(message),
            }
        };
        let mut root = DeTable::parse(text).map_err(|e| parse_error(e.span(), e.message()))?;
        let mut places = Places::default();
        places.index(text, root.get_ref(), "");
        let mut problems = Vec::new();
        let raw = loop {
            match FileConfig::deserialize(toml::de::Deserializer::from(root.clone())) {
                Ok(raw) => break Some(raw),
                Err(e) => {
                    problems.push(parse_error(e.span(), e.message()));
                    let set_aside = e
                        .span()
                        .and_then(|span| remove_entry_at(root.get_mut(), span.start, ""));
                    match set_aside {
                        Some(key) => {
                            places.set_aside.insert(key);
                        }
                        // Nothing to set aside: no later round could do better.
                        None => break None,
                    }
                }
            }
        };
        let origin = path.display().to_string();
        match raw {
            Some(raw) => Ok(ConfigFile {
                raw,
                origin,
                places,
                problems,
            }),
            None => Err(ConfigErrors::in_file_order(problems)),
        }
    }
}

/// Parses TOML text into the file's raw values, without validating them.
///
/// Returns every unknown key and every value of the wrong type when there is any, located;
/// `Config::load` reports them together with the values' own problems.
pub fn parse_toml(path: &Path, text: &str) -> Result<FileConfig, ConfigErrors> {
    let file = ConfigFile::parse(path, text)?;
    if file.problems.is_empty() {
        Ok(file.raw)
    } else {
        Err(ConfigErrors::in_file_order(file.problems))
    }
}

/// Where each value of a file was written, by dotted key path (`stable`, `health.fall`, and
/// `stable[1]` for the second entry of an array), and the keys stage one set aside.
#[derive(Debug, Default, Clone)]
pub(super) struct Places {
    /// Line and column of each value.
    at: BTreeMap<String, (usize, usize)>,
    /// Keys whose entry stage one reported and removed (unknown, or of the wrong type).
    set_aside: BTreeSet<String>,
}

impl Places {
    /// Records where every value of `table` is, under `prefix`, recursively.
    fn index(&mut self, text: &str, table: &DeTable<'_>, prefix: &str) {
        for (key, value) in table.iter() {
            let path = dotted(prefix, key.get_ref());
            self.at
                .insert(path.clone(), line_col(text, value.span().start));
            match value.get_ref() {
                DeValue::Table(t) => self.index(text, t, &path),
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.at
                            .insert(format!("{path}[{i}]"), line_col(text, item.span().start));
                    }
                }
                DeValue::String(_)
                | DeValue::Integer(_)
                | DeValue::Float(_)
                | DeValue::Boolean(_)
                | DeValue::Datetime(_) => {}
            }
        }
    }

    /// The line and column of the value at `path`, if the file holds it.
    pub(super) fn of(&self, path: &str) -> Option<(usize, usize)> {
        self.at.get(path).copied()
    }

    /// Forgets the value at `path` (and everything under it), because an option replaced
    /// it: a problem with it must not point into the file, nor be taken for the file's
    /// value that stage one set aside.
    pub(super) fn forget(&mut self, path: &str) {
        self.at.retain(|k, _| !is_under(k, path));
        self.set_aside.retain(|k| !is_under(k, path));
    }

    /// Whether `field` (or a table holding it) was set aside by stage one, which has
    /// reported it already: stage two then sees it as absent, and must not report it again
    /// as missing.
    pub(super) fn is_set_aside(&self, field: &str) -> bool {
        self.set_aside.iter().any(|k| is_under(field, k))
    }
}

/// Whether the key path `path` is `ancestor` or lies under it.
fn is_under(path: &str, ancestor: &str) -> bool {
    match path.strip_prefix(ancestor) {
        Some(rest) => rest.is_empty() || rest.starts_with('.') || rest.starts_with('['),
        None => false,
    }
}

/// Joins a table's key path and a key.
fn dotted(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Removes the innermost table entry whose key or value holds the byte `offset`, and
/// returns its dotted key path; `None` when no entry holds it.
///
/// Tables are searched first, whatever their own span: a `[table]`'s span may not cover the
/// entries written under its header.
fn remove_entry_at(table: &mut DeTable<'_>, offset: usize, prefix: &str) -> Option<String> {
    let holds = |span: Range<usize>| span.contains(&offset) || span.start == offset;
    let mut hit = None;
    for (key, value) in table.iter_mut() {
        let name: &str = key.get_ref();
        let path = dotted(prefix, name);
        let (key_span, value_span) = (key.span(), value.span());
        if let DeValue::Table(inner) = value.get_mut() {
            if let Some(found) = remove_entry_at(inner, offset, &path) {
                return Some(found);
            }
        }
        if holds(key_span) || holds(value_span) {
            hit = Some((name.to_string(), path));
            break;
        }
    }
    let (name, path) = hit?;
    table.remove(name.as_str());
    Some(path)
}
